"""First run end to end in real headless Chromium (Playwright, Debian's /usr/bin/chromium): from an
empty database, the link `serve` prints makes the owner, who makes an organizer's account and an
API token; the organizer, in a browser without JavaScript, logs in and is refused the accounts
page; the audit log names each step's actor. Screenshots go to test-artifacts/browser/."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from delivery.runtime.serve import announce_setup
from delivery.services import accounts
from delivery.services.app import App
from delivery.storage.db import make_engine
from tests.support.browser import ARTIFACTS, log_in, serving
from tests.web.test_web import PASSWORD, SLUG, add_signers, make_app, web_config

pytestmark = pytest.mark.slow
ORGANIZER_PASSWORD = "organizer's own long password"


@pytest.fixture
def first_run(tmp_path: Path) -> Iterator[tuple[str, str, App]]:
    """The admin on a real uvicorn server on loopback over an empty SQLite database (no account),
    with the setup link announced for its address as `serve` announces it."""
    engine = make_engine(f"sqlite:///{tmp_path / 'delivery.sqlite3'}")
    app = make_app(engine, tmp_path)
    add_signers(app)
    printed: list[str] = []
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        link = announce_setup(app, sock, out=printed.append)
    assert link is not None and link in printed[0]
    with serving(app, web_config(), port=port) as base:
        yield base, link, app
    engine.dispose()


def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def watch(page: Any) -> list[str]:
    """Script errors and CSP violations; not the console's note of a form refused on purpose (400)."""
    problems: list[str] = []
    expected = "the server responded with a status of 400"
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" and expected not in m.text
            else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    return problems


def test_first_run_owner_organizer_token_and_refusal(first_run: tuple[str, str, App], browser: Any) -> None:
    base, link, app = first_run
    assert link.startswith(base + "/setup?token=")
    owner = browser.new_context(viewport={"width": 1280, "height": 900})
    owner.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
    page = owner.new_page()
    problems = watch(page)

    page.goto(f"{base}/login")
    assert "No account exists yet" in page.inner_text("main")
    page.goto(link)
    assert page.inner_text("h1") == "Create the owner's account"
    shot(page, "accounts-01-setup")
    page.get_by_label("Name", exact=True).fill("anna")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password again").fill(PASSWORD + "!")
    page.click("button:has-text('Create the account and log in')")
    page.wait_for_selector(".field-error")
    # the error is tied to its field, and the field is marked
    described = page.get_attribute("#f-password2", "aria-describedby") or ""
    assert "e-password2" in described.split() and page.get_attribute("#f-password2", "aria-invalid") == "true"
    assert "differ" in page.inner_text("#e-password2")
    shot(page, "accounts-02-setup-error")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password again").fill(PASSWORD)
    page.click("button:has-text('Create the account and log in')")
    page.wait_for_url(f"{base}/accounts")
    assert "Welcome, anna" in page.inner_text("main")
    shot(page, "accounts-03-owner")

    # keyboard focus is visible: a field, then the next control by Tab
    page.focus("#f-name")
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") == "solid"
    page.keyboard.press("Tab")
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") == "solid"

    page.get_by_label("Name", exact=True).fill("maria")
    page.select_option("#f-role", "organizer")
    page.get_by_label("Their first password").fill(ORGANIZER_PASSWORD)
    page.get_by_label("Password again").fill(ORGANIZER_PASSWORD)
    page.click("button:has-text('Make the account')")
    page.wait_for_selector("text=Account maria made")
    rows = page.inner_text("table")
    assert "maria" in rows and "organizer" in rows and "anna" in rows and "owner" in rows
    shot(page, "accounts-04-organizer-made")

    page.click("main >> text=API tokens")
    page.wait_for_url(f"{base}/tokens")
    page.get_by_label("Name", exact=True).fill("website")
    page.select_option("#f-campaign", SLUG)
    page.click("button:has-text('Make the token')")
    page.wait_for_selector("#new-token")
    token = page.input_value("#new-token")
    assert token.startswith("pd_")
    copy = page.locator("button:has-text('Copy the token')")
    assert copy.is_visible()  # shown by copy.js: without JavaScript the field alone is there
    copy.click()
    page.wait_for_selector("#copy-status:has-text('Copied.')")
    shot(page, "accounts-05-token-shown-once")
    api = owner.request.post(f"{base}/api/v1/campaigns/{SLUG}/signatures",
                             headers={"authorization": f"Bearer {token}"},
                             data={"name": "Lilit Hakobyan", "email": "lilit@example.net", "city": "Vanadzor",
                                   "country": "Armenia", "consent": True})
    assert api.status == 201
    page.goto(f"{base}/tokens")
    assert token not in page.content() and "website" in page.inner_text("table")
    shot(page, "accounts-06-tokens")

    # the organizer, in a browser without JavaScript
    organizer = browser.new_context(viewport={"width": 375, "height": 740}, java_script_enabled=False)
    other = organizer.new_page()
    log_in(other, base, "maria", ORGANIZER_PASSWORD)
    other.wait_for_url(f"{base}/c/{SLUG}/")
    assert other.locator("nav a[href='/accounts']").count() == 0
    response = other.goto(f"{base}/accounts")
    assert response is not None and response.status == 403
    assert "Only an owner" in other.inner_text("main") and "anna" in other.inner_text("main")
    shot(other, "accounts-07-organizer-403")
    organizer.close()

    page.goto(f"{base}/c/{SLUG}/audit")
    lines = [line.split("\t") for line in page.inner_text("tbody").splitlines()]
    steps = [(cells[1], cells[2], cells[3]) for cells in reversed(lines) if len(cells) >= 4]
    assert steps == [("serve", "setup.link", "setup"), ("web:anna", "user.add", "anna"),
                     ("web:anna", "user.login", "anna"), ("web:anna", "user.add", "maria"),
                     ("web:anna", "token.add", "website"), ("api:website", "signers.add", "1 signer"),
                     ("web:maria", "user.login", "maria")]
    shot(page, "accounts-08-audit")
    assert [(u.name, u.role) for u in accounts.list_users(app)] == [("anna", "owner"), ("maria", "organizer")]
    assert problems == []
