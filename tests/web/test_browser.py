"""The web admin end to end in real headless Chromium (Playwright, Debian's /usr/bin/chromium):
log in, see the dashboard, preview a dossier, send it to a recipient on a loopback SMTP server and
see it marked sent, cancel a held delivery. Screenshots go to test-artifacts/browser/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from delivery.services.app import App
from delivery.storage.db import make_engine
from tests.support.browser import ARTIFACTS, log_in, serving
from tests.support.smtpd import SmtpServer
from tests.web.test_web import PASSWORD, SLUG, add_signers, add_user, held_delivery, make_app, web_config

BUILD_TIMEOUT_MS = 180_000

pytestmark = pytest.mark.slow


@pytest.fixture
def live(tmp_path: Path, smtp_server: SmtpServer) -> Iterator[tuple[str, App]]:
    """The admin on a real uvicorn server on loopback, with a SQLite database and SMTP to aiosmtpd."""
    engine = make_engine(f"sqlite:///{tmp_path / 'delivery.sqlite3'}")
    app = make_app(engine, tmp_path, extra_env=smtp_server.env())
    add_signers(app)
    add_user(app)
    with serving(app, web_config()) as base:
        yield base, app
    engine.dispose()


def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_organizer_logs_in_previews_sends_and_cancels(live: tuple[str, App], browser: Any,
                                                      smtp_server: SmtpServer) -> None:
    base, app = live
    held = held_delivery(app)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))

    page.goto(f"{base}/c/{SLUG}/")
    assert "/login" in page.url
    shot(page, "01-login")
    page.fill("input[name=name]", "organizer")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/c/{SLUG}/")
    body = page.inner_text("main")
    assert "4 signers of 80,000" in body and "Next milestone: 10" in body
    assert page.locator("svg.chart").count() == 1 and page.locator("progress").count() == 1
    shot(page, "02-dashboard")

    page.click("text=Preview the dossier")
    page.wait_for_selector("text=Nothing was sent.", timeout=BUILD_TIMEOUT_MS)
    shot(page, "03-preview")
    pdf_link = page.locator("main table a").first
    pdf = context.request.get(base + pdf_link.get_attribute("href"))
    assert pdf.status == 200 and pdf.body().startswith(b"%PDF")

    page.goto(f"{base}/c/{SLUG}/send")
    page.uncheck("input[value='migration-service@example.org']")
    shot(page, "04-send-choose")
    page.click("text=Review…")
    page.wait_for_selector("text=Confirm sending")
    assert "migration-service@example.org" not in page.inner_text("main")
    shot(page, "05-send-confirm")
    page.click("button:has-text('Send now')")
    page.wait_for_url("**/deliveries/**")
    shot(page, "06-delivery-sending")
    page.wait_for_selector("h1 .state.done", timeout=BUILD_TIMEOUT_MS)
    assert "250" in page.inner_text("main")  # the server's last SMTP answer is shown
    shot(page, "07-delivery-done")
    received = [r for r in smtp_server.received if "prime-minister@example.org" in r.rcpt_tos]
    assert len(received) == 1
    assert not [r for r in smtp_server.received if "migration-service@example.org" in r.rcpt_tos]

    page.goto(f"{base}/c/{SLUG}/deliveries/{held}")
    assert "held" in page.inner_text("h1")
    page.click("button:has-text('Cancel delivery')")
    page.wait_for_selector("h1 .state.cancelled")
    assert "cancelled: nothing more will be sent" in page.inner_text("main")
    shot(page, "08-cancelled")

    page.goto(f"{base}/c/{SLUG}/signers?q=Petr")
    assert "Anna Petrosyan" in page.inner_text("main")
    shot(page, "09-signers")
    page.goto(f"{base}/c/{SLUG}/audit")
    audit = page.inner_text("main")
    assert "web:organizer" in audit and "delivery.cancel" in audit
    shot(page, "10-audit")
    assert "@example.net" not in page.content()
    assert problems == []  # no CSP violations, no script errors


def test_pages_fit_a_phone_screen(live: tuple[str, App], browser: Any) -> None:
    base, _ = live
    context = browser.new_context(viewport={"width": 375, "height": 740}, device_scale_factor=2,
                                  is_mobile=True)
    page = context.new_page()
    log_in(page, base, "organizer", PASSWORD)
    page.wait_for_url(f"{base}/c/{SLUG}/")
    for path, name in ((f"/c/{SLUG}/", "phone-dashboard"), (f"/c/{SLUG}/signers", "phone-signers"),
                       (f"/c/{SLUG}/send", "phone-send")):
        page.goto(base + path)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 375, f"{path} is {width}px wide on a 375px screen"
        shot(page, name)
