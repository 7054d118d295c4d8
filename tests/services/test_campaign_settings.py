"""Campaign settings and letters edited in the web admin (delivery.services.campaign_settings and
delivery.services.letters), on SQLite and PostgreSQL: each change a version in force at once here
and in another instance at its next refresh, audited with its actor and the keys it changed;
refused input saves nothing; a form opened on an older version is refused; earlier versions (the
file's too) restore; a campaign file changed afterwards wins at `init`; `campaigns export` writes
what is in force; the letter is checked with its line numbers before saving, sandboxed, and is
the one the next dossier and its e-mail carry."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from delivery.campaigns.config import load_campaigns
from delivery.campaigns.form import form_values
from delivery.services import campaign_settings, letters, pipeline
from delivery.services.app import App, init, refresh_campaigns
from delivery.services.preview import preview
from delivery.settings import load_settings
from delivery.storage.db import make_engine, reading
from delivery.storage.models import AuditRow
from tests.support.campaigns import campaign_file
from tests.support.readers import pdftotext

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
SLUG = "settings-test"
LANGUAGES = ["en", "hy", "ru"]
REPO = Path(__file__).resolve().parents[2]


def write_campaign(home: Path, changes: dict[str, str] | None = None) -> Path:
    (home / "schedules").mkdir(parents=True, exist_ok=True)
    path = home / "schedules" / f"{SLUG}.toml"
    text = campaign_file(slug=SLUG, title="Settings test", goal=80000, signing="off", hold="2h",
                         thresholds="[3, 10, 80000]", check_every="5m")
    for old, new in (changes or {}).items():
        text = text.replace(old, new)
    path.write_text(text, encoding="utf-8")
    return path


def open_home(home: Path, engine: Engine) -> App:
    settings = load_settings({"DELIVERY_HOME": str(home), "DELIVERY_VAR_DIR": str(home / "var"),
                              "DELIVERY_OUTBOX_DIR": str(home / "outbox"),
                              "DELIVERY_DATABASE_URL": engine.url.render_as_string(hide_password=False)})
    app = App(settings=settings, engine=engine, campaigns=load_campaigns(settings.schedules_dir))
    init(app, now=NOW)
    return app


@pytest.fixture
def app(engine: Engine, tmp_path: Path) -> App:
    write_campaign(tmp_path)
    return open_home(tmp_path, engine)


def posted(app: App, **changes: str) -> dict[str, str]:
    return form_values(app.campaigns[SLUG], LANGUAGES) | changes


def save(app: App, fields: dict[str, str] | None = None, /, *, based_on: int = 0, actor: str = "web:anna",
         **changes: str) -> None:
    campaign_settings.save(app, app.campaigns[SLUG], posted(app, **(fields or {}), **changes),
                           based_on=based_on, languages=LANGUAGES, actor=actor, now=NOW)


def audit(app: App, action: str) -> list[tuple[str, dict[str, object]]]:
    with reading(app.engine) as session:
        rows = session.scalars(select(AuditRow).where(AuditRow.action == action).order_by(AuditRow.id))
        return [(row.actor, json.loads(row.detail)) for row in rows]


def test_a_saved_change_is_in_force_here_and_in_another_instance_after_its_refresh(
        app: App, database_url: str) -> None:
    other = App(settings=app.settings, engine=make_engine(database_url),
                campaigns=load_campaigns(app.settings.schedules_dir))
    refresh_campaigns(other)
    save(app, hold="1h", thresholds="5, 50, 80000")
    assert app.campaigns[SLUG].schedule.hold.total_seconds() == 3600
    assert app.campaigns[SLUG].thresholds == (5, 50, 80000)
    assert other.campaigns[SLUG].schedule.hold.total_seconds() == 7200  # not refreshed yet
    assert refresh_campaigns(other) is True
    assert other.campaigns[SLUG].schedule.hold.total_seconds() == 3600
    assert refresh_campaigns(other) is False  # nothing new: one query, nothing parsed
    versions = campaign_settings.history(app, app.campaigns[SLUG])
    assert [(v.version, v.origin) for v in versions] == [(2, "admin"), (1, "file")]
    assert versions[0].changes == ("milestones.thresholds", "schedule.hold")
    assert audit(app, "campaign.settings") == [
        ("web:anna", {"version": 2, "changed": ["milestones.thresholds", "schedule.hold"]})]
    other.close()


def test_a_refused_form_names_its_field_and_saves_nothing(app: App) -> None:
    before = app.campaigns[SLUG]
    with pytest.raises(campaign_settings.FormInvalid) as refused:
        save(app, timezone="Asia/Nowhere")
    assert refused.value.errors == {"timezone": "unknown time zone 'Asia/Nowhere'"}
    with pytest.raises(campaign_settings.FormInvalid) as refused:
        save(app, {"r1-email": "not an address"})
    assert list(refused.value.errors) == ["r1-email"]
    with pytest.raises(campaign_settings.FormInvalid) as refused:  # the Armenian reader's title
        save(app, {"title-en": "Free him", "title-hy": "", "title-ru": "Освободите"})
    assert list(refused.value.errors) == ["title-hy"]
    assert campaign_settings.history(app, before) == []
    assert app.campaigns[SLUG] == before
    assert audit(app, "campaign.settings") == []


def test_a_recipient_language_without_its_letter_is_refused_like_a_campaign_file(
        engine: Engine, tmp_path: Path) -> None:
    write_campaign(tmp_path)
    shutil.copytree(REPO / "templates", tmp_path / "templates")
    with (tmp_path / "templates" / "languages.toml").open("a", encoding="utf-8") as languages:
        languages.write('\n[de]\nlocale = "de"\nname = "Deutsch"\n')
    app = open_home(tmp_path, engine)
    with pytest.raises(campaign_settings.FormInvalid) as refused:
        save(app, {"r1-language": "de"})
    [(field, problem)] = refused.value.errors.items()
    assert field == "r1-language" and "de.html.j2" in problem
    assert campaign_settings.history(app, app.campaigns[SLUG]) == []


def test_recipients_are_added_and_removed_keeping_what_the_form_does_not_show(app: App) -> None:
    save(app, {"r2-email": "office@gov.am", "r2-language": "ru", "r2-name-en": "Office",
                 "r2-name-hy": "Գրասենյակ", "r2-name-ru": "Канцелярия", "r2-delivery": "link",
                 "r0-remove": "1"})
    recipients = app.campaigns[SLUG].recipients
    assert [r.email for r in recipients] == ["migration-service@example.org", "office@gov.am"]
    assert recipients[1].delivery == "link" and recipients[1].text("hy").name == "Գրասենյակ"
    assert app.campaigns[SLUG].sender == "Test campaign <campaign@example.org>"  # not on the form
    assert campaign_settings.history(app, app.campaigns[SLUG])[0].changes == (
        "recipients[prime-minister@example.org]", "recipients[office@gov.am]")


def test_a_form_opened_before_another_save_is_refused_naming_who_saved(app: App) -> None:
    save(app, hold="1h", actor="web:anna")
    with pytest.raises(campaign_settings.SettingsConflict) as conflict:
        save(app, hold="3h", actor="web:maria", based_on=0)
    assert conflict.value.version.version == 2 and conflict.value.version.actor == "web:anna"
    assert app.campaigns[SLUG].schedule.hold.total_seconds() == 3600


def test_restoring_version_1_brings_the_files_settings_back(app: App) -> None:
    save(app, hold="1h")
    campaign_settings.restore(app, app.campaigns[SLUG], 1, based_on=2, actor="web:maria", now=NOW)
    assert app.campaigns[SLUG].schedule.hold.total_seconds() == 7200
    versions = campaign_settings.history(app, app.campaigns[SLUG])
    newest = versions[0]
    assert (newest.version, newest.origin, newest.changes) == (3, "restore", ("schedule.hold",))
    assert audit(app, "campaign.settings")[-1] == (
        "web:maria", {"version": 3, "changed": ["schedule.hold"], "restored": 1})


def test_init_keeps_the_admins_settings_until_the_file_changes(
        app: App, engine: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    save(app, hold="1h")
    again = open_home(tmp_path, engine)  # the file unchanged: the admin's version stays
    assert again.campaigns[SLUG].schedule.hold.total_seconds() == 3600
    assert len(campaign_settings.history(again, again.campaigns[SLUG])) == 2
    write_campaign(tmp_path, {"goal = 80000": "goal = 90000"})
    with caplog.at_level(logging.WARNING, logger="delivery.services.app"):
        changed = open_home(tmp_path, engine)
    campaign = changed.campaigns[SLUG]
    assert campaign.goal == 90000 and campaign.schedule.hold.total_seconds() == 7200
    versions = campaign_settings.history(changed, campaign)
    assert (versions[0].version, versions[0].origin) == (3, "file")
    assert set(versions[0].changes) == {"campaign.goal", "schedule.hold"}
    assert "changed since version 2" in caplog.text
    assert audit(app, "campaign.settings")[-1][0] == "init"


def test_campaigns_export_writes_the_settings_in_force(app: App, tmp_path: Path, database_url: str) -> None:
    save(app, {"r0-email": "pm@gov.am"}, hold="1h")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DELIVERY_")} | {
        "DELIVERY_HOME": str(tmp_path), "DELIVERY_VAR_DIR": str(tmp_path / "var"),
        "DELIVERY_DATABASE_URL": database_url}
    out = subprocess.run([sys.executable, "-m", "delivery", "campaigns", "export", SLUG], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=120, check=True).stdout
    assert 'hold = "1h"' in out and 'email = "pm@gov.am"' in out
    assert "prime-minister@example.org" not in out


# --- the letter -----------------------------------------------------------------------------

def file_letter(app: App, language: str) -> str:
    return letters.view(app, app.campaigns[SLUG], language).source


def problems(app: App, source: str, language: str = "en") -> list[tuple[int | None, str]]:
    found = letters.problems(app, app.campaigns[SLUG], language, source, now=NOW)
    return [(p.line, p.message) for p in found]


def test_letter_problems_are_found_with_their_lines_before_saving(app: App) -> None:
    assert problems(app, file_letter(app, "en")) == []
    assert problems(app, "<p>One</p>\n<p>Two</p>\n<p>{% if count %}three</p>") == [
        (3, "Unexpected end of template. Jinja was looking for the following tags: 'elif' or 'else' "
            "or 'endif'. The innermost block that needs to be closed is 'if'.")]
    assert problems(app, "<p>{{ count }}</p>\n<p>{{ signers.first }}</p>") == [
        (2, "UndefinedError: 'signers' is undefined")]
    sandboxed = problems(app, "<p>{{ ''.__class__.__mro__[1].__subclasses__() }}</p>")
    assert sandboxed[0][0] == 1
    assert sandboxed[0][1].startswith("SecurityError: access to attribute '__class__'")
    assert problems(app, "<p>ok</p>", language="de") == [(None, "no recipient reads 'de'")]


def test_a_saved_letter_is_in_the_next_dossier_and_its_email_in_that_language_only(
        app: App, tmp_path: Path) -> None:
    sentence = "We ask you, in the name of every signer, to let him go to safety."
    source = file_letter(app, "en").replace("<p>We call on you", f"<p>{sentence}</p>\n<p>We call on you")
    assert problems(app, source) == []
    letters.save(app, app.campaigns[SLUG], "en", source, based_on=0, actor="web:anna", now=NOW)
    campaign = app.campaigns[SLUG]
    assert dict(campaign.letters) == {"en": source}
    result = preview(app, campaign, out_dir=tmp_path / "preview", now=NOW)
    texts = {f.name: " ".join(pdftotext((Path(result.folder) / f.name).read_bytes()).split())
             for f in result.files if f.name.endswith(".pdf")}
    english = next(text for name, text in texts.items() if "-en" in name)
    armenian = next(text for name, text in texts.items() if "-hy" in name)
    assert sentence in english and sentence not in armenian
    recipient = campaign.recipient("prime-minister@example.org")
    mail = pipeline.render_letter(app.settings.templates_dir, campaign, recipient, dossier_id="d1",
                                  signer_count=3, milestone=3, created_at=NOW)
    assert sentence in " ".join(mail.body.split())
    assert audit(app, "letter.save") == [("web:anna", {"language": "en", "version": 1, "chars": len(source)})]


def test_the_preview_picture_is_the_first_page_and_follows_the_letter(app: App) -> None:
    campaign = app.campaigns[SLUG]
    first = letters.preview_png(app, campaign, "en", file_letter(app, "en"), now=NOW)
    other = letters.preview_png(app, campaign, "en", "<p>A different letter.</p>", now=NOW)
    assert first[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(first[16:20], "big"), int.from_bytes(first[20:24], "big")
    assert (width, height) == (497, 702)  # A4 at 60 dpi, as poppler rounds it
    assert hashlib.sha256(first).digest() != hashlib.sha256(other).digest()
    assert dict(app.campaigns[SLUG].letters) == {}  # a preview saves nothing


def test_restoring_the_files_letter_and_a_conflict(app: App) -> None:
    campaign = app.campaigns[SLUG]
    letters.save(app, campaign, "hy", "<p>Նոր նամակ</p>", based_on=0, actor="web:anna", now=NOW)
    with pytest.raises(letters.LetterConflict) as conflict:
        letters.save(app, app.campaigns[SLUG], "hy", "<p>Ուրիշ</p>", based_on=0, actor="web:maria", now=NOW)
    assert conflict.value.version.actor == "web:anna"
    letters.restore(app, app.campaigns[SLUG], "hy", 0, based_on=1, actor="web:maria", now=NOW)
    assert dict(app.campaigns[SLUG].letters)["hy"] == letters.version_source(app, campaign, "hy", 0)
    assert [(v.version, v.origin) for v in letters.history(app, campaign, "hy")] == [
        (2, "restore"), (1, "admin")]
    chars = len(letters.version_source(app, campaign, "hy", 0))
    assert audit(app, "letter.restore")[-1] == (
        "web:maria", {"language": "hy", "version": 2, "restored": 0, "chars": chars})


def test_a_letter_with_a_problem_or_a_form_naming_no_version_is_refused_by_the_service(app: App) -> None:
    from delivery.errors import UsageError

    campaign = app.campaigns[SLUG]
    with pytest.raises(letters.LetterInvalid) as refused:
        letters.save(app, campaign, "en", "<p>{{ nobody.here }}</p>", based_on=0, actor="web:anna", now=NOW)
    assert [p.line for p in refused.value.problems] == [1]
    with pytest.raises(UsageError):
        letters.save(app, campaign, "en", "<p>Fine.</p>", based_on=7, actor="web:anna", now=NOW)
    with pytest.raises(UsageError):
        save(app, based_on=3, hold="1h")
    assert letters.history(app, campaign, "en") == [] and campaign_settings.history(app, campaign) == []
