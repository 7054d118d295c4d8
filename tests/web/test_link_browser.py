"""Link delivery end to end in real headless Chromium: the e-mail's link opens a page that
downloads nothing, its buttons download files whose SHA-256 match the signed manifest, the
confirmation of receipt shows on the organizers' delivery page, and an expired or withdrawn link
gets a clear page, not a file. Screenshots go to test-artifacts/browser/."""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update

from delivery.campaigns.config import parse_campaign
from delivery.services import deliveries
from delivery.services.app import App, init
from delivery.settings import load_settings
from delivery.storage.db import make_engine, transaction
from delivery.storage.models import DownloadRow, LinkRow
from tests.support.browser import ARTIFACTS, log_in, serving
from tests.support.smtpd import SmtpServer, free_port
from tests.web.test_web import PASSWORD, SLUG, add_signers, add_user, campaign_toml, web_config

pytestmark = pytest.mark.slow
PM = "prime-minister@example.org"


@pytest.fixture
def live(tmp_path: Path, smtp_server: SmtpServer) -> Iterator[tuple[str, App]]:
    port = free_port()
    engine = make_engine(f"sqlite:///{tmp_path / 'delivery.sqlite3'}")
    env = {"DELIVERY_HOME": str(tmp_path), "DELIVERY_VAR_DIR": str(tmp_path / "var"),
           "DELIVERY_PUBLIC_URL": f"http://127.0.0.1:{port}", **smtp_server.env()}
    toml = campaign_toml().replace(f'email = "{PM}"', f'email = "{PM}"\ndelivery = "link"', 1)
    app = App(settings=load_settings(env), engine=engine,
              campaigns={SLUG: parse_campaign(toml, f"{SLUG}.toml")})
    init(app)
    add_signers(app)
    add_user(app)
    with serving(app, web_config(), port=port) as base:
        yield base, app
    engine.dispose()


def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def link_mail(smtp_server: SmtpServer) -> EmailMessage:
    [received] = [r for r in smtp_server.received if PM in r.rcpt_tos]
    msg = message_from_bytes(received.data, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def downloads(app: App) -> int:
    with transaction(app.engine) as session:
        return int(session.scalar(select(func.count()).select_from(DownloadRow)) or 0)


def test_a_recipient_opens_the_link_downloads_and_confirms_and_the_organizer_sees_it(
        live: tuple[str, App], browser: Any, smtp_server: SmtpServer) -> None:
    base, app = live
    ref = deliveries.create_manual(app, app.campaigns[SLUG], now=datetime.now(UTC), actor="test")
    # in a thread of its own, as `serve` runs it: Playwright's loop holds this one
    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(deliveries.build_and_send, app, ref.id, now=datetime.now(UTC)).result()
    mail = link_mail(smtp_server)
    text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    match = re.search(re.escape(base) + r"/d/[A-Za-z0-9_-]+", text)
    assert match, text
    url = match.group(0)
    manifest_bytes = next(p.get_content() for p in mail.iter_attachments()
                          if p.get_filename() == "manifest.json")
    manifest = json.loads(manifest_bytes)
    sha = {f["name"]: f["sha256"] for f in manifest["files"]}

    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    # A mail scanner fetches the link: it gets a page, no file, and nothing is recorded.
    fetched = context.request.get(url)
    assert fetched.status == 200 and fetched.headers["content-type"].startswith("text/html")
    assert "content-disposition" not in fetched.headers and fetched.headers["cache-control"] == "no-store"
    page.goto(url)
    assert downloads(app) == 0
    body = page.inner_text("main")
    assert ref.public_id in body and "Download all files" in body
    shot(page, "link-01-landing")

    pdf_name = next(n for n in sha if n.endswith(".pdf") and "-en" in n)
    with page.expect_download() as info:
        page.click(f"button[aria-label='Download {pdf_name}']")
    assert info.value.suggested_filename == pdf_name
    data = Path(info.value.path()).read_bytes()
    assert data.startswith(b"%PDF") and hashlib.sha256(data).hexdigest() == sha[pdf_name]
    with page.expect_download() as info:
        page.click("text=Download all files")
    archive = zipfile.ZipFile(io.BytesIO(Path(info.value.path()).read_bytes()))
    listed = [n for n in archive.namelist() if n in sha]
    assert pdf_name in listed and all(hashlib.sha256(archive.read(n)).hexdigest() == sha[n] for n in listed)
    assert archive.read("manifest.json") == manifest_bytes  # the one the e-mail carries
    assert downloads(app) == 2

    page.click("text=I received the dossier")
    page.wait_for_selector("text=Receipt confirmed")
    shot(page, "link-02-received")

    # The organizer sees the downloads and the confirmation, and can extend or withdraw the link.
    admin = context.new_page()
    log_in(admin, base, "organizer", PASSWORD)
    admin.goto(f"{base}/c/{SLUG}/deliveries/{ref.public_id}")
    cells = admin.locator("section:has(h2:text('Download links')) tbody tr td").all_inner_texts()
    assert cells[0] == PM and cells[1].startswith("open")
    assert cells[2].startswith("2") and "first " in cells[2]  # two downloads, first and last shown
    assert "UTC" in cells[3]  # the receipt, confirmed on the page
    shot(admin, "link-03-admin-delivery")

    with transaction(app.engine) as session:
        session.execute(update(LinkRow).values(expires_at=datetime.now(UTC) - timedelta(days=1)))
    page.goto(url)
    assert "This link has expired" in page.inner_text("main")
    gone = context.request.post(f"{url}/files/{pdf_name}")
    assert gone.status == 410 and not gone.body().startswith(b"%PDF")
    shot(page, "link-04-expired")
    admin.reload()
    admin.click(f"button[aria-label='Extend the link to {PM}']")
    admin.wait_for_selector("text=now works until")
    page.goto(url)
    assert "Download all files" in page.inner_text("main")

    admin.click(f"button[aria-label='Withdraw the link to {PM}']")
    admin.wait_for_selector("text=was withdrawn")
    page.goto(url)
    assert "This link was withdrawn" in page.inner_text("main")
    assert context.request.get(url).status == 410
    assert context.request.post(f"{url}/all").status == 410
    shot(page, "link-05-withdrawn")
    page.goto(f"{base}/d/not-a-real-token-at-all-0123456789")
    assert "This link is not valid" in page.inner_text("main")
    assert downloads(app) == 2
    # the gone pages answer 410 and 404 on purpose: Chromium logs those, nothing else
    assert [p for p in problems if not p.startswith("Failed to load resource")] == []
