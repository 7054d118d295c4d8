"""A campaign set up and run from the browser alone, end to end in real headless Chromium, from an
empty database and the shipped campaign file: the setup link makes the owner; the readiness panel
is red (example.org recipients, no signing key); the owner sets the recipients, milestones and
schedule, uploads a signing pair, edits the letter and sees it in the live preview (a template
error shown with its line first), and makes an organizer's account; the panel is green; the
organizer imports a CSV and sends; the offices' e-mails carry the edited letter, signed; the
audit log lists each step with its actor. Screenshots go to test-artifacts/browser/setup-*."""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from delivery.bundle.verify import verify_path
from delivery.campaigns.config import load_campaigns
from delivery.runtime.serve import announce_setup
from delivery.services.app import App, init
from delivery.settings import load_settings
from delivery.storage.db import make_engine
from tests.services.test_signing_keys import p12
from tests.support.browser import ARTIFACTS, log_in, serving
from tests.support.pdfs import make_cert
from tests.support.readers import pdftotext
from tests.support.smtpd import SmtpServer
from tests.web.test_accounts_browser import watch
from tests.web.test_web import SECRET, audit_actions, web_config

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
SLUG = "salman-mukaev"
OWNER_PASSWORD = "the owner's long password"
ORGANIZER_PASSWORD = "organizer's own long password"
PM, MIGRATION = "office@pm.gov.am", "info@migration.gov.am"
SENTENCE = "Every one of these signers asks you to let Salman Mukaev go to safety."
BUILD_TIMEOUT_MS = 180_000
CSV = ("name,email,city,country,signed_at,consent\n"
       "Anna Petrosyan,anna@example.net,Yerevan,Armenia,2026-11-01T10:00:00Z,yes\n"
       "Ivan Petrov,ivan@example.net,Moscow,Russia,2026-11-02T10:00:00Z,yes\n"
       "Marie Dupont,marie@example.net,Lyon,France,2026-11-03T10:00:00Z,no\n"
       "Գոհար Սարգսյան,gohar@example.net,Gyumri,Armenia,2026-11-04T10:00:00Z,yes\n").encode()


@pytest.fixture
def first_run(tmp_path: Path, smtp_server: SmtpServer) -> Iterator[tuple[str, str, App]]:
    """The shipped campaign file, an empty SQLite database, a loopback SMTP server, and the admin
    on a real uvicorn with the setup link announced as `serve` announces it."""
    (tmp_path / "schedules").mkdir()
    shutil.copy(REPO / "schedules" / f"{SLUG}.toml", tmp_path / "schedules")
    engine = make_engine(f"sqlite:///{tmp_path / 'delivery.sqlite3'}")
    settings = load_settings({"DELIVERY_HOME": str(tmp_path), "DELIVERY_VAR_DIR": str(tmp_path / "var"),
                              "DELIVERY_SECRET_KEY": SECRET, **smtp_server.env()})
    app = App(settings=settings, engine=engine, campaigns=load_campaigns(settings.schedules_dir))
    init(app)
    printed: list[str] = []
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        link = announce_setup(app, sock, out=printed.append)
    assert link is not None
    with serving(app, web_config(), port=port) as base:
        yield base, link, app
    engine.dispose()


def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"setup-{name}.png"), full_page=True)


def findings(page: Any) -> list[tuple[str, str]]:
    items = page.locator(".readiness .finding")
    return [((items.nth(i).get_attribute("class") or "").split()[-1], items.nth(i).inner_text())
            for i in range(items.count())]


def received_by(smtp_server: SmtpServer, address: str) -> list[EmailMessage]:
    out = []
    for received in smtp_server.received:
        if address in received.rcpt_tos:
            message = message_from_bytes(received.data, policy=policy.default)
            assert isinstance(message, EmailMessage)
            out.append(message)
    return out


def test_a_campaign_set_up_and_sent_from_the_browser_alone(
        first_run: tuple[str, str, App], browser: Any, smtp_server: SmtpServer, tmp_path: Path) -> None:
    base, link, app = first_run
    owner = browser.new_context(viewport={"width": 1280, "height": 900})
    page = owner.new_page()
    problems = watch(page)

    # the setup link makes the owner
    page.goto(link)
    page.get_by_label("Name", exact=True).fill("anna")
    page.get_by_label("Password", exact=True).fill(OWNER_PASSWORD)
    page.get_by_label("Password again").fill(OWNER_PASSWORD)
    page.click("button:has-text('Create the account and log in')")
    page.wait_for_url(f"{base}/accounts")

    # red: placeholders on example.org and no signing key
    page.goto(f"{base}/c/{SLUG}/")
    red = findings(page)
    assert [kind for kind, _ in red if kind == "error"] == ["error", "error"]
    assert any("example.org" in text for _, text in red) and any("No signing key" in text for _, text in red)
    shot(page, "01-dashboard-red")

    # recipients, milestones and schedule
    page.click("nav >> text=Settings")
    page.wait_for_url(f"{base}/c/{SLUG}/settings")
    shot(page, "02-settings")
    page.fill("#f-r0-email", PM)
    page.fill("#f-r1-email", "not an address")
    page.fill("#f-thresholds", "3, 10, 80000")
    page.fill("#f-hold", "0s")
    page.fill("#f-send_window", "")
    page.click("button:has-text('Save the settings')")
    page.wait_for_selector("#e-r1-email")
    assert page.get_attribute("#f-r1-email", "aria-invalid") == "true"
    assert "e-r1-email" in (page.get_attribute("#f-r1-email", "aria-describedby") or "")
    assert page.input_value("#f-r0-email") == PM  # what was typed stays
    shot(page, "03-settings-refused")
    page.fill("#f-r1-email", MIGRATION)
    page.click("button:has-text('Save the settings')")
    page.wait_for_selector("text=Saved as version 2")
    assert "milestones.thresholds" in page.inner_text("#versions-title ~ div")
    shot(page, "04-settings-saved")

    # the signing pair
    page.click("nav >> text=Signing")
    key, cert = make_cert("Save Salman Mukaev campaign")
    page.set_input_files("#f-pkcs12", files=[{"name": "campaign.p12", "mimeType": "application/x-pkcs12",
                                              "buffer": p12(key, cert)}])
    page.fill("#f-p12_passphrase", "s3cret")
    page.click("button:has-text('Upload the PKCS#12 file')")
    page.wait_for_selector("text=is stored, its key encrypted")

    # the letter, with its live preview
    page.goto(f"{base}/c/{SLUG}/")
    page.click("nav >> text=Letter")
    page.wait_for_url(f"{base}/c/{SLUG}/letter/en")
    page.wait_for_selector("#letter-preview:not([hidden])")
    first_picture = page.get_attribute("#letter-preview", "src")
    shot(page, "05-letter")
    source = page.input_value("#f-source")
    broken = source.replace("<p>We call on you", f"<p>{{% if count %}}{SENTENCE}</p>\n<p>We call on you", 1)
    page.fill("#f-source", broken)
    page.wait_for_selector("#problems li")
    line = broken[:broken.index(SENTENCE)].count("\n") + 1
    assert page.inner_text("#problems li a") == f"Line {line}"
    assert page.get_attribute("#f-source", "aria-invalid") == "true"
    shot(page, "06-letter-problem")
    page.fill("#f-source", source.replace("<p>We call on you", f"<p>{SENTENCE}</p>\n<p>We call on you", 1))
    page.wait_for_selector("#problems li", state="detached")
    for _ in range(300):  # the script's answer: a new picture (the page's CSP forbids eval'd waits)
        if page.get_attribute("#letter-preview", "src") != first_picture:
            break
        page.wait_for_timeout(100)
    assert page.get_attribute("#letter-preview", "src") != first_picture
    assert page.get_attribute("#f-source", "aria-invalid") is None
    shot(page, "07-letter-preview")
    page.click("button:has-text('Save the letter')")
    page.wait_for_selector("text=is saved as version 1")

    # an organizer's account
    page.goto(f"{base}/accounts")
    page.get_by_label("Name", exact=True).fill("maria")
    page.select_option("#f-role", "organizer")
    page.get_by_label("Their first password").fill(ORGANIZER_PASSWORD)
    page.get_by_label("Password again").fill(ORGANIZER_PASSWORD)
    page.click("button:has-text('Make the account')")
    page.wait_for_selector("text=Account maria made")

    # green
    page.goto(f"{base}/c/{SLUG}/")
    assert findings(page) == [("ok", "Ready: real recipients, a signing key and an SMTP server are set.")]
    shot(page, "08-dashboard-green")
    assert problems == []

    # the organizer imports a file and sends, in a browser without JavaScript
    organizer = browser.new_context(viewport={"width": 375, "height": 740}, java_script_enabled=False)
    other = organizer.new_page()
    log_in(other, base, "maria", ORGANIZER_PASSWORD)
    other.wait_for_url(f"{base}/c/{SLUG}/")
    assert other.locator("nav a[href$='/settings']").count() == 0
    response = other.goto(f"{base}/c/{SLUG}/letter/en")
    assert response is not None and response.status == 403
    other.goto(f"{base}/c/{SLUG}/signers/import")
    other.set_input_files("#f-file", files=[{"name": "signers.csv", "mimeType": "text/csv", "buffer": CSV}])
    other.click("button:has-text('Check the file')")
    other.wait_for_selector("h1:has-text('Check the import')")
    other.click("button:has-text('Confirm import')")
    other.wait_for_selector("h1:has-text('Signers imported')")
    other.goto(f"{base}/c/{SLUG}/send")
    other.click("text=Review…")
    other.wait_for_selector("text=Confirm sending")
    other.click("button:has-text('Send now')")
    other.wait_for_url("**/deliveries/**")
    deadline_ms = BUILD_TIMEOUT_MS
    while other.locator("h1 .state.done").count() == 0 and deadline_ms > 0:  # no script: reload
        other.wait_for_timeout(2000)
        deadline_ms -= 2000
        other.reload()
    assert other.locator("h1 .state.done").count() == 1, other.inner_text("main")
    shot(other, "09-organizer-sent")
    organizer.close()

    # the offices got the dossier with the edited letter, signed and complete
    [to_pm] = received_by(smtp_server, PM)
    [to_migration] = received_by(smtp_server, MIGRATION)
    assert SENTENCE in " ".join(to_pm.get_body(("plain",)).get_content().split())  # type: ignore[union-attr]
    assert SENTENCE not in to_migration.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    folder = tmp_path / "received"
    folder.mkdir()
    for part in to_pm.iter_attachments():
        (folder / str(part.get_filename())).write_bytes(part.get_content())
    english = next(folder.glob("*-en*.pdf"))
    assert SENTENCE in " ".join(pdftotext(english.read_bytes()).split())
    trusted = tmp_path / "campaign.pem"
    trusted.write_bytes(cert.public_bytes(serialization.Encoding.PEM))  # sent to the offices apart
    report = verify_path(folder, trust=trusted)
    assert report.ok and report.trusted, report

    # each step in the audit log, with its actor
    steps = audit_actions(app)
    for step in [("serve", "setup.link"), ("web:anna", "user.add"), ("web:anna", "campaign.settings"),
                 ("web:anna", "signing.upload"), ("web:anna", "letter.save"), ("web:maria", "user.login"),
                 ("web:maria", "signers.import")]:
        assert step in steps, step
    assert [a for a in steps if a[0] == "web:maria" and a[1].startswith("delivery.")], steps
    page.goto(f"{base}/c/{SLUG}/audit")
    audit = page.inner_text("main")
    assert "campaign.settings" in audit and "letter.save" in audit and "web:maria" in audit
    shot(page, "10-audit")
