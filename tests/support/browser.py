"""The web admin served by a real uvicorn on loopback, and Debian's headless Chromium, for the
browser tests (tests/web)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn

from delivery.services.app import App
from delivery.web import create_web_app
from delivery.web.config import WebConfig
from tests.support.smtpd import free_port

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@contextmanager
def serving(app: App, config: WebConfig, *, port: int | None = None) -> Iterator[str]:
    """The admin of `app` on a loopback port (a free one unless given) → its base URL, until the
    block ends."""
    assert CHROMIUM.exists(), "Debian chromium is missing: make test installs it (scripts/setup-system.sh)"
    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(create_web_app(app, config=config), host="127.0.0.1",
                                           port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 10
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium (Playwright's Browser), closed at the end of the block."""
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


def log_in(page: Any, base: str, name: str, password: str) -> None:
    """Log in through the admin's login form, and wait for the page it leads to."""
    page.goto(f"{base}/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_load_state()
