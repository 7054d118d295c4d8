"""The signer import page: upload a CSV, see the dry run (counts, the first rows as read), confirm
it; refusals shown next to the field that settles them; CSRF, tokens bound to a user, campaign
and hour, uploads kept private and deleted. Through httpx (Starlette's TestClient) on SQLite and
PostgreSQL, and once in real headless Chromium without JavaScript."""

from __future__ import annotations

import html as html_lib
import re
import stat
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from starlette.testclient import TestClient

from delivery.services import signers
from delivery.services.app import App
from delivery.storage.db import make_engine
from delivery.web import create_web_app
from tests.support.browser import serving
from tests.web.test_web import (
    NOW,
    PASSWORD,
    SLUG,
    add_signers,
    add_user,
    audit_actions,
    csrf_of,
    login,
    make_app,
    web_config,
)

CHECK = f"/c/{SLUG}/signers/import/check"
CONFIRM = f"/c/{SLUG}/signers/import/confirm"
FORM = f"/c/{SLUG}/signers/import"

# A Google Forms sheet downloaded as CSV from a US spreadsheet: month first; 3/15 settles it.
GOOGLE_US = (
    b"Timestamp,Email Address,Full name,City,Country,May we publish your name with the petition?\r\n"
    b"3/4/2026 14:05:33,alice.walker@example.org,Alice Walker,Boston,United States,Yes\r\n"
    b"3/15/2026 9:01:02,bob.stone@example.org,Bob Stone,Denver,United States,Yes\r\n"
    b"3/7/2026 18:30:00,carol.king@example.org,Carol King,Austin,United States,\r\n"
)
NO_CONSENT = (
    b"name,email,city,country,signed_at\n"
    b"Ann Lee,ann.lee@example.org,Yerevan,Armenia,2026-03-04 10:00\n"
    b"Tigran Hakobyan,tigran@example.org,Gyumri,Armenia,2026-03-05 11:30\n"
)


@pytest.fixture
def app(engine: Engine, tmp_path: Path) -> App:
    app = make_app(engine, tmp_path)
    add_signers(app)
    add_user(app)
    add_user(app, "second-organizer")
    return app


@pytest.fixture
def client(app: App) -> Iterator[TestClient]:
    web = create_web_app(app, config=web_config())
    web.state.web.clock = lambda: NOW
    with TestClient(web, client=("127.0.0.1", 40000)) as c:
        yield c


def uploads(app: App) -> list[Path]:
    root = app.settings.var_dir / "web-imports"
    return sorted(root.iterdir()) if root.exists() else []


def check(client: TestClient, csrf: str | None, content: bytes | None, name: str = "responses.csv",
          **fields: str) -> Any:
    data = {**({"csrf": csrf} if csrf is not None else {}), **fields}
    files = {"file": (name, content, "text/csv")} if content is not None else None
    if files is None:  # a form posted without choosing a file: still multipart, as browsers send it
        files = {"file": ("", b"", "application/octet-stream")}
    return client.post(CHECK, data=data, files=files)


def confirm_fields(page: str) -> dict[str, str]:
    """The hidden fields of the page's "Confirm import" form, as a browser would post them."""
    match = re.search(r'<form method="post" action="[^"]*/signers/import/confirm">(.*?)</form>', page, re.S)
    assert match, "no confirmation form on the page"
    return {name: html_lib.unescape(value)
            for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', match[1])}


def field_error(page: str, name: str) -> str:
    """The error shown at field `name`; the field itself must point at it (aria-describedby)."""
    match = re.search(rf'<p class="field-error" id="e-{name}">(.*?)</p>', page, re.S)
    assert match, f"no error at field {name}"
    control = re.search(rf'<(?:select|input|textarea) id="f-{name}"[^>]*>', page)
    assert control, f"no field {name}"
    assert f"e-{name}" in control[0] and 'aria-invalid="true"' in control[0], control[0]
    return html_lib.unescape(re.sub(r"<[^>]+>", "", match[1]))


def errors_at(page: str) -> list[str]:
    return re.findall(r'<p class="field-error" id="e-([a-z_]+)">', page)


# --- (1) the whole path: upload, check, confirm ----------------------------------------------------

def test_a_us_google_forms_file_is_checked_then_imported(app: App, client: TestClient) -> None:
    csrf = login(client)
    signers_page = client.get(f"/c/{SLUG}/signers").text
    assert f'href="{FORM}"' in signers_page and "Import signers" in signers_page
    form = client.get(FORM)
    assert form.status_code == 200 and 'enctype="multipart/form-data"' in form.text
    assert 'value="google-forms"' in form.text and "day first (27/11/2026)" in form.text
    assert 'placeholder="Asia/Yerevan"' in form.text and "200 MB" in form.text
    assert "only for lists where every signer agreed" in form.text
    before = signers.count(app, app.campaigns[SLUG])

    checked = check(client, csrf, GOOGLE_US, format="google-forms")
    assert checked.status_code == 200, checked.text
    page = checked.text
    assert "Nothing is stored yet" in page and "Confirm import" in page
    assert re.search(r'Would import</th><td class="num">3<', page)
    assert re.search(r'Named</th><td class="num">2<', page)
    assert re.search(r'Withheld</th><td class="num">1<', page)
    assert "month first (11/27/2026), settled by the file" in page
    # the dates read month first, shown in the campaign's zone (the file's times are in it)
    assert "4 Mar 2026, 14:05" in page and "15 Mar 2026, 09:01" in page and "7 Mar 2026, 18:30" in page
    rows = dict(re.findall(r"<td>(\w+ \w+)</td><td><time[^>]*>[^<]*</time></td><td>[^<]*</td><td>(\w+)</td>",
                           page))
    assert rows == {"Alice Walker": "named", "Bob Stone": "named", "Carol King": "withheld"}
    assert "@example.org" not in page  # no page shows a signer's e-mail
    assert signers.count(app, app.campaigns[SLUG]) == before  # a check stores nothing
    assert not [a for a in audit_actions(app) if a[1] == "signers.import"]

    # the upload waits privately, bound to its token
    [folder] = uploads(app)
    fields = confirm_fields(page)
    assert folder.name == fields["token"] and len(fields["token"]) == 32
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder.parent).stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / "responses.csv").stat().st_mode) == 0o600
    assert (folder / "responses.csv").read_bytes() == GOOGLE_US

    done = client.post(CONFIRM, data=fields)
    assert done.status_code == 200, done.text
    assert "Signers imported" in done.text and "The uploaded file was deleted" in done.text
    assert re.search(r'Imported</th><td class="num">3<', done.text)
    assert signers.count(app, app.campaigns[SLUG]) == before + 3
    assert ("web:organizer", "signers.import") in audit_actions(app)
    assert uploads(app) == []  # the file and whatever the import wrote beside it are gone

    again = client.post(CONFIRM, data=fields)  # a second click, a reload
    assert again.status_code == 410 and "no longer here" in again.text
    assert signers.count(app, app.campaigns[SLUG]) == before + 3
    imports = [a for a in audit_actions(app) if a[1] == "signers.import"]
    assert imports == [("web:organizer", "signers.import")]


# --- (2) a refusal next to its field, then settled ---------------------------------------------------

def test_a_file_without_consent_is_refused_at_the_consent_choice_until_decided(app: App,
                                                                                client: TestClient) -> None:
    csrf = login(client)
    before = signers.count(app, app.campaigns[SLUG])
    refused = check(client, csrf, NO_CONSENT, name="paper-forms.csv")
    assert refused.status_code == 400
    assert errors_at(refused.text) == ["consent_missing"]
    message = field_error(refused.text, "consent_missing")
    assert message.startswith("Problem: paper-forms.csv: no column says whether each signer agreed")
    assert "“No consent column”: “withhold every name”" in message and "--consent-missing" not in message
    assert "a line “consent=COLUMN” in “Column map”" in message
    assert "Confirm import" not in refused.text
    assert str(app.settings.var_dir) not in refused.text  # the private folder is never shown
    assert signers.count(app, app.campaigns[SLUG]) == before

    # the file is kept: the same form, filled, with its token; choosing "withhold" settles it
    token = re.search(r'name="token" value="([^"]+)"', refused.text)
    assert token and "Leave this empty to use <strong>paper-forms.csv</strong>" in refused.text
    settled = check(client, csrf, None, token=token[1], consent_missing="withhold")
    assert settled.status_code == 200, settled.text
    assert re.search(r'Would import</th><td class="num">2<', settled.text)
    assert re.search(r'Withheld</th><td class="num">2<', settled.text)
    assert "<td>named</td>" not in settled.text and settled.text.count("<td>withheld</td>") == 2
    assert '<option value="withhold" selected>' in settled.text
    fields = confirm_fields(settled.text)
    assert fields["consent_missing"] == "withhold"
    assert signers.count(app, app.campaigns[SLUG]) == before

    # confirming other options than those checked imports nothing
    changed = client.post(CONFIRM, data={**fields, "consent_missing": "name"})
    assert changed.status_code == 409 and "check the file with these options" in changed.text
    assert signers.count(app, app.campaigns[SLUG]) == before
    done = client.post(CONFIRM, data=fields)
    assert done.status_code == 200 and signers.count(app, app.campaigns[SLUG]) == before + 2


def test_refusals_land_on_the_field_that_settles_them(app: App, client: TestClient) -> None:
    csrf = login(client)
    ambiguous = b"name,email,country,signed_at,consent\nAnn,ann@example.org,AM,03/04/2026,yes\n"
    page = check(client, csrf, ambiguous).text
    assert errors_at(page) == ["date_order"]
    message = field_error(page, "date_order")
    assert "“Order of day and month”: “day first” or “month first”" in message and "--date" not in message
    fine = check(client, csrf, ambiguous, date_order="dmy")
    assert fine.status_code == 200 and "3 Apr 2026" in fine.text
    assert "day first (27/11/2026), as you chose" in fine.text

    page = check(client, csrf, NO_CONSENT, timezone="Mars/Olympus", consent_missing="withhold").text
    assert errors_at(page) == ["timezone"] and "Mars/Olympus" in field_error(page, "timezone")
    page = check(client, csrf, NO_CONSENT, maps="city=Town", consent_missing="withhold").text
    assert errors_at(page) == ["maps"]
    assert "the “Column map” line city=Town: no such column" in field_error(page, "maps")
    page = check(client, csrf, NO_CONSENT, where="Petition=Free the test", consent_missing="withhold").text
    assert errors_at(page) == ["where"]
    page = check(client, csrf, "name;email\nÅsa;asa@example.org\n".encode("cp1252")).text
    assert errors_at(page) == ["encoding"] and "“Encoding”: cp1252" in field_error(page, "encoding")
    page = check(client, csrf, b"PK\x03\x04" + b"\0" * 100, name="signers.xlsx").text
    assert errors_at(page) == ["file"] and "spreadsheet file" in field_error(page, "file")
    page = check(client, csrf, None).text
    assert errors_at(page) == ["file"] and "Choose the CSV file" in field_error(page, "file")
    assert 'href="#f-file"' in page  # the summary at the top links to the field


# --- (3) CSRF, tokens and the folder of uploads ---------------------------------------------------

def test_posts_without_the_csrf_token_are_refused(app: App, client: TestClient) -> None:
    csrf = login(client)
    before = signers.count(app, app.campaigns[SLUG])
    for token in (None, "", "wrong-token-wrong-token-wrong-token"):
        refused = check(client, token, GOOGLE_US, format="google-forms")
        assert refused.status_code == 403
    assert uploads(app) == []  # nothing kept from a refused post
    fields = confirm_fields(check(client, csrf, GOOGLE_US, format="google-forms").text)
    assert client.post(CONFIRM, data={k: v for k, v in fields.items() if k != "csrf"}).status_code == 403
    assert client.post(CONFIRM, data={**fields, "csrf": "x" * 43}).status_code == 403
    assert signers.count(app, app.campaigns[SLUG]) == before
    assert not [a for a in audit_actions(app) if a[1] == "signers.import"]
    client.cookies.clear()  # no session at all: to the login page, nothing imported
    anonymous = client.post(CONFIRM, data=fields, follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")
    assert signers.count(app, app.campaigns[SLUG]) == before


def test_a_token_is_the_users_own_and_expires_within_the_hour(app: App, client: TestClient) -> None:
    csrf = login(client)
    before = signers.count(app, app.campaigns[SLUG])
    fields = confirm_fields(check(client, csrf, GOOGLE_US, format="google-forms").text)

    other = TestClient(client.app)
    other_csrf = login(other, "second-organizer")
    assert other.post(CONFIRM, data={**fields, "csrf": other_csrf}).status_code == 410
    assert client.post(CONFIRM, data={**fields, "token": "A" * 32}).status_code == 410
    assert client.post(CONFIRM, data={**fields, "token": "../../etc"}).status_code == 410
    assert len(uploads(app)) == 1

    client.app.state.web.clock = lambda: NOW + timedelta(minutes=61)  # type: ignore[attr-defined]
    expired = client.post(CONFIRM, data=fields)
    assert expired.status_code == 410 and "more than an hour ago" in expired.text
    assert signers.count(app, app.campaigns[SLUG]) == before
    assert uploads(app) == []

    # an expired upload nobody came back to is cleaned at the next check
    first = confirm_fields(check(client, csrf, GOOGLE_US, format="google-forms").text)["token"]
    client.app.state.web.clock = lambda: NOW + timedelta(hours=3)  # type: ignore[attr-defined]
    second = confirm_fields(check(client, csrf, NO_CONSENT, consent_missing="withhold").text)["token"]
    assert [p.name for p in uploads(app)] == [second] and first != second


def test_do_not_import_deletes_the_upload_at_once(app: App, client: TestClient) -> None:
    csrf = login(client)
    before = signers.count(app, app.campaigns[SLUG])
    token = confirm_fields(check(client, csrf, GOOGLE_US, format="google-forms").text)["token"]
    discard = f"/c/{SLUG}/signers/import/discard"
    assert client.post(discard, data={"token": token}).status_code == 403
    assert len(uploads(app)) == 1
    deleted = client.post(discard, data={"csrf": csrf, "token": token})
    assert deleted.status_code == 200 and deleted.url.path == f"/c/{SLUG}/signers"
    assert "Nothing was imported; the uploaded file was deleted." in deleted.text
    assert uploads(app) == [] and signers.count(app, app.campaigns[SLUG]) == before
    assert client.post(CONFIRM, data={"csrf": csrf, "token": token}).status_code == 410


def test_the_page_needs_a_login_and_has_no_script(client: TestClient) -> None:
    assert client.get(FORM, follow_redirects=False).status_code == 303
    csrf = login(client)
    for page in (client.get(FORM).text, check(client, csrf, GOOGLE_US, format="google-forms").text):
        assert "<script" not in page and " style=" not in page and 'name="viewport"' in page
        assert "Update signers already stored</label>" in page and "built-in" not in page
        assert 'class="field invalid"' not in page
        for control in re.findall(r'<(?:select|textarea|input) id="(f-[a-z_]+)"', page):
            assert f'for="{control}"' in page, control  # every field has its label
    assert csrf_of(client.get(FORM).text) == csrf


# --- (4) real headless Chromium, JavaScript off ----------------------------------------------------

@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[str, App]]:
    engine = make_engine(f"sqlite:///{tmp_path / 'delivery.sqlite3'}")
    app = make_app(engine, tmp_path)
    add_signers(app)
    add_user(app)
    with serving(app, web_config()) as base:
        yield base, app
    engine.dispose()


def _log_in(page: Any, base: str) -> None:
    page.goto(f"{base}/login")
    page.fill("input[name=name]", "organizer")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/c/{SLUG}/")


@pytest.mark.slow
def test_an_organizer_imports_a_file_in_a_browser_without_javascript(live: tuple[str, App],
                                                                     browser: Any) -> None:
    from tests.web.test_browser import shot

    base, app = live
    context = browser.new_context(viewport={"width": 1280, "height": 900}, java_script_enabled=False)
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    _log_in(page, base)
    page.goto(f"{base}/c/{SLUG}/signers")
    page.click("text=Import signers")
    page.wait_for_url(f"{base}{FORM}")
    for name in ("file", "format", "maps", "where", "encoding", "date_order", "timezone",
                 "signed_at_missing", "consent_missing", "update"):
        assert page.locator(f"label[for=f-{name}]").count() == 1, name
    assert page.get_by_label("CSV file").count() == 1
    assert page.get_by_label("No consent column").count() == 1
    shot(page, "import-01-form")

    page.set_input_files("#f-file", files=[{"name": "paper-forms.csv", "mimeType": "text/csv",
                                            "buffer": NO_CONSENT}])
    page.click("button:has-text('Check the file')")
    page.wait_for_selector("#e-consent_missing")
    assert "withhold every name" in page.inner_text("#e-consent_missing")
    # Chromium notes the page's status (400: the form needs a change) in the console; nothing else
    assert [p for p in problems if "status of 400" not in p] == []
    problems.clear()
    shot(page, "import-02-refused")

    page.set_input_files("#f-file", files=[{"name": "responses.csv", "mimeType": "text/csv",
                                            "buffer": GOOGLE_US}])
    page.select_option("#f-format", "google-forms")
    page.select_option("#f-consent_missing", "")
    page.click("button:has-text('Check the file')")
    page.wait_for_selector("h1:has-text('Check the import')")
    main = page.inner_text("main")
    assert "4 Mar 2026, 14:05" in main and "15 Mar 2026, 09:01" in main and "withheld" in main
    assert signers.count(app, app.campaigns[SLUG]) == 4
    shot(page, "import-03-checked")

    page.click("button:has-text('Confirm import')")
    page.wait_for_selector("h1:has-text('Signers imported')")
    assert "Imported 3 signers from responses.csv" in page.inner_text("main")
    assert signers.count(app, app.campaigns[SLUG]) == 7
    assert ("web:organizer", "signers.import") in audit_actions(app)
    assert uploads(app) == []
    assert "@example.org" not in page.content()
    shot(page, "import-04-done")
    assert problems == []


@pytest.mark.slow
def test_the_import_pages_fit_a_phone_screen(live: tuple[str, App], browser: Any) -> None:
    from tests.web.test_browser import shot

    base, _ = live
    context = browser.new_context(viewport={"width": 375, "height": 740}, device_scale_factor=2,
                                  is_mobile=True)
    page = context.new_page()
    _log_in(page, base)
    page.goto(f"{base}{FORM}")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    shot(page, "phone-import-form")
    page.set_input_files("#f-file", files=[{"name": "responses.csv", "mimeType": "text/csv",
                                            "buffer": GOOGLE_US}])
    page.select_option("#f-format", "google-forms")
    page.click("button:has-text('Check the file')")
    page.wait_for_selector("h1:has-text('Check the import')")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    page.keyboard.press("Tab")
    shot(page, "phone-import-checked")
