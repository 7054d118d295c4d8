"""The Settings and Letter pages through HTTP (Starlette TestClient), on SQLite and PostgreSQL: owners
only; a refusal beside its field with nothing saved; a form opened before another save refused
with who saved; restoring a version; the letter's problems with their lines (the page and the
live preview's JSON), never saved; a stale form (CSRF) refused."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from starlette.testclient import TestClient

from delivery.campaigns.form import form_values
from delivery.services import accounts, campaign_settings, letters
from delivery.services.app import App
from delivery.web import create_web_app
from tests.web.test_web import NOW, PASSWORD, SLUG, add_signers, csrf_of, login, make_app, web_config

LANGUAGES = ["en", "hy", "ru"]
SETTINGS = f"/c/{SLUG}/settings"
LETTER = f"/c/{SLUG}/letter/en"


@pytest.fixture
def app(engine: Engine, tmp_path: Path) -> App:
    app = make_app(engine, tmp_path)
    add_signers(app)
    accounts.add_user(app, "anna", PASSWORD, now=NOW, actor="cli:tester", role="owner")
    accounts.add_user(app, "maria", PASSWORD, now=NOW, actor="cli:tester")
    return app


@pytest.fixture
def owner(app: App) -> Iterator[TestClient]:
    with TestClient(create_web_app(app, config=web_config()), client=("127.0.0.1", 40001)) as client:
        login(client, "anna")
        yield client


def fields(app: App, page: str, **changes: str) -> dict[str, str]:
    return form_values(app.campaigns[SLUG], LANGUAGES) | {"csrf": csrf_of(page), "based_on": "0"} | changes


def test_organizers_get_a_403_page_and_no_menu_entry(app: App) -> None:
    with TestClient(create_web_app(app, config=web_config()), client=("127.0.0.1", 40002)) as client:
        csrf = login(client, "maria")
        dashboard = client.get(f"/c/{SLUG}/")
        assert f'href="{SETTINGS}"' not in dashboard.text
        for path in (SETTINGS, LETTER):
            page = client.get(path)
            assert page.status_code == 403 and "Only an owner" in page.text
        refused = client.post(SETTINGS, data=fields(app, dashboard.text, hold="1h"))
        assert refused.status_code == 403
        assert client.post(f"{LETTER}/preview", data={"csrf": csrf, "source": "<p>x</p>"}).status_code == 403
    assert campaign_settings.history(app, app.campaigns[SLUG]) == []


def test_a_refused_field_is_marked_beside_itself_and_nothing_is_saved(app: App, owner: TestClient) -> None:
    page = owner.get(SETTINGS)
    assert page.status_code == 200 and 'id="f-r0-email"' in page.text
    assert 'value="prime-minister@example.org"' in page.text
    refused = owner.post(SETTINGS, data=fields(app, page.text, timezone="Asia/Nowhere", hold="1h"))
    assert refused.status_code == 400
    field = re.search(r'<input id="f-timezone"[^>]*>', refused.text)
    assert field and 'aria-invalid="true"' in field.group(0) and "e-timezone" in field.group(0)
    assert "unknown time zone &#39;Asia/Nowhere&#39;" in refused.text
    assert 'value="1h"' in refused.text  # what was typed stays in the form
    assert campaign_settings.history(app, app.campaigns[SLUG]) == []
    assert app.campaigns[SLUG].schedule.hold.total_seconds() == 7200


def test_a_save_a_conflict_and_a_restore(app: App, owner: TestClient) -> None:
    page = owner.get(SETTINGS)
    saved = owner.post(SETTINGS, data=fields(app, page.text, hold="1h"), follow_redirects=True)
    assert "Saved as version 2" in saved.text and "schedule.hold" in saved.text
    stale = owner.post(SETTINGS, data=fields(app, page.text, hold="3h"), follow_redirects=True)  # based on 0
    assert "Not saved: anna saved version 2" in stale.text
    assert app.campaigns[SLUG].schedule.hold.total_seconds() == 3600
    restored = owner.post(f"{SETTINGS}/restore", data={"csrf": csrf_of(saved.text), "version": "1",
                                                         "based_on": "2"}, follow_redirects=True)
    assert "Version 1 is in force again, saved as version 3" in restored.text
    assert app.campaigns[SLUG].schedule.hold.total_seconds() == 7200
    expired = owner.post(SETTINGS, data=fields(app, page.text, hold="1h", csrf="forged-token-value-000000"))
    assert expired.status_code == 403
    no_version = owner.post(SETTINGS, data=fields(app, page.text, hold="1h", based_on="not a number"))
    assert no_version.status_code == 400 and "This form has expired" in no_version.text


def source_of(page: str) -> str:
    found = re.search(r'<textarea id="f-source"[^>]*>(.*?)</textarea>', page, re.S)
    assert found
    return html.unescape(found.group(1))


def test_the_letter_page_shows_problems_with_their_lines_and_saves_only_a_good_letter(
        app: App, owner: TestClient) -> None:
    page = owner.get(LETTER)
    assert page.status_code == 200 and 'src="data:image/png;base64,' in page.text
    source = source_of(page.text)
    broken = source + "\n<p>{{ signers[0] }}</p>"
    line = broken.count("\n") + 1
    answer = owner.post(f"{LETTER}/preview", data={"csrf": csrf_of(page.text), "source": broken}).json()
    assert answer["image"] is None
    assert [(p["line"], p["where"]) for p in answer["problems"]] == [(line, f"Line {line}")]
    assert "&#39;signers&#39; is undefined" not in answer["problems"][0]["message"]  # JSON, not HTML
    assert "'signers' is undefined" in answer["problems"][0]["message"]
    refused = owner.post(LETTER, data={"csrf": csrf_of(page.text), "source": broken, "based_on": "0",
                                       "action": "save"})
    assert refused.status_code == 400 and f'data-line="{line}"' in refused.text
    assert source_of(refused.text) == broken  # the text typed stays in the editor
    assert letters.history(app, app.campaigns[SLUG], "en") == []
    good = source.replace("</p>", " Thank you.</p>", 1)
    answer = owner.post(f"{LETTER}/preview", data={"csrf": csrf_of(page.text), "source": good}).json()
    assert answer["problems"] == [] and answer["image"].startswith("data:image/png;base64,")
    saved = owner.post(LETTER, data={"csrf": csrf_of(page.text), "source": good, "based_on": "0",
                                     "action": "save"}, follow_redirects=True)
    assert "is saved as version 1" in saved.text and source_of(saved.text) == good
    assert dict(app.campaigns[SLUG].letters) == {"en": good}
    back = owner.post(f"{LETTER}/restore", follow_redirects=True,
                      data={"csrf": csrf_of(saved.text), "version": "0", "based_on": "1"})
    assert "is saved as version 2" in back.text and source_of(back.text) == source
    assert owner.get(f"/c/{SLUG}/letter/de").status_code == 404
