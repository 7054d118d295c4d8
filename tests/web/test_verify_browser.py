"""The public /verify page in real headless Chromium: dossiers built through the services are
chosen in its file input (or dropped onto it), an intact PDF and a delivered e-mail are accepted,
a flipped byte, appended bytes and a preview are refused; too large a file is stopped by the
script before it is sent, and refused by the server (413) when scripts are off. Screenshots go
to test-artifacts/browser/."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.browser import ARTIFACTS, serving
from tests.web.test_verify_page import EN_PDF, Dossiers, build_app, build_dossiers, flipped
from tests.web.test_web import web_config

pytestmark = pytest.mark.slow


@pytest.fixture
def live(tmp_path: Path, signing_files: tuple[Path, Path]) -> Iterator[tuple[str, Dossiers]]:
    dossiers = build_dossiers(tmp_path, signing_files)
    with serving(dossiers.app, web_config()) as base:
        yield base, dossiers
    dossiers.app.engine.dispose()


def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def check(page: Any, *files: tuple[str, bytes]) -> str:
    """Choose `files` in the form, send it, and return the verdict's words."""
    page.set_input_files("#verify-file", files=[
        {"name": name, "mimeType": "application/octet-stream", "buffer": data} for name, data in files])
    with page.expect_navigation():
        page.click("button[type=submit]")
    return str(page.inner_text("main"))


def test_a_recipient_checks_dossiers_in_the_browser(live: tuple[str, Dossiers], browser: Any) -> None:
    base, dossiers = live
    context = browser.new_context(viewport={"width": 1100, "height": 900}, locale="en-GB")
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))

    page.goto(f"{base}/verify")
    assert page.title() == "Check a petition dossier"
    assert page.is_visible("#verify-drop-hint")  # the script ran: dropping is offered
    shot(page, "verify-01-form")

    words = check(page, (EN_PDF, dossiers.pdf))
    assert page.inner_text("#verdict") == "Authentic"
    assert "with the certificate this service signs with" in words and "PAdES B-B" in words
    assert "No. 1 to 12" in words and "VERIFIED: every check holds" not in words  # details closed
    page.click("summary")
    assert "VERIFIED: every check holds (PAdES B-B)" in page.inner_text("main")
    shot(page, "verify-02-accepted")

    check(page, (EN_PDF, flipped(dossiers.pdf)))
    assert page.inner_text("#verdict") == "Not verified: do not rely on these files"
    assert "signed bytes were altered (the digest does not match)" in page.inner_text("main")
    shot(page, "verify-03-refused")

    words = check(page, (EN_PDF, dossiers.pdf + b"\n% a note added\n"))
    assert page.inner_text("#verdict") == "Not verified: do not rely on these files"
    assert "bytes after the signed range" in words

    words = check(page, *dossiers.preview.items())
    assert page.inner_text("#verdict") == "A preview, not a delivered dossier"
    assert "this is a preview built by the organizers, never a delivered dossier" in words
    shot(page, "verify-04-preview")

    words = check(page, ("Petition dossier.eml", dossiers.email))
    assert page.inner_text("#verdict") == "Authentic"
    assert "manifest.json.p7s" in words and "SHA-256 matches manifest.json" in words
    assert "no part is missing" in words
    shot(page, "verify-05-email")

    # Dropped onto the box, a file is checked at once.
    page.goto(f"{base}/verify")
    drop = page.evaluate_handle(
        """([name, data]) => {
             const bytes = Uint8Array.from(atob(data), c => c.charCodeAt(0));
             const transfer = new DataTransfer();
             transfer.items.add(new File([bytes], name, {type: "application/pdf"}));
             return transfer;
           }""", [EN_PDF, base64.b64encode(dossiers.pdf).decode()])
    with page.expect_navigation():
        page.dispatch_event("#verify-drop", "drop", {"dataTransfer": drop})
    assert page.inner_text("#verdict") == "Authentic"

    assert problems == []


def test_too_large_a_file_is_stopped_by_the_script_or_refused_by_the_server(
        tmp_path: Path, browser: Any) -> None:
    app = build_app(tmp_path, {"DELIVERY_VERIFY_MAX_MB": "1"})
    big = {"name": "big.pdf", "mimeType": "application/pdf", "buffer": b"%PDF" + b"0" * (3 * 1024 * 1024)}
    with serving(app, web_config()) as base:
        page = browser.new_context().new_page()
        posts: list[str] = []
        page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
        page.goto(f"{base}/verify")
        page.set_input_files("#verify-file", files=[big])
        page.click("button[type=submit]")
        assert "These files are larger than 1 MB in all" in page.inner_text("#verify-status")
        assert posts == [] and page.url == f"{base}/verify"

        page = browser.new_context(java_script_enabled=False).new_page()
        page.goto(f"{base}/verify")
        assert "at most 1 MB" in page.inner_text("main")
        page.set_input_files("#verify-file", files=[big])
        with page.expect_navigation() as navigation:
            page.click("button[type=submit]")
        response = navigation.value
        assert response is not None and response.status == 413
        assert "These files are larger than 1 MB in all" in page.inner_text("main")
        shot(page, "verify-06-too-large")
    app.engine.dispose()
