"""Link delivery through the services, on SQLite and PostgreSQL: the e-mail that carries the link,
the page that records nothing, the downloads and the acknowledgement it records, expiry, revoking,
extending and the download limit."""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from collections.abc import Callable
from datetime import timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import func, select

from delivery.bundle.verify import verify_path
from delivery.errors import NotFound, StateConflict
from delivery.services import deliveries, links, reports
from delivery.services.app import App
from delivery.storage.db import transaction
from delivery.storage.models import AuditRow, DownloadRow, LinkRow, MessageBodyRow, MessageRow
from tests.pdf.test_pdfa import assert_pdfa
from tests.services.test_deliveries import NAMES, TUESDAY_10, add, campaign_toml
from tests.support.readers import pdftotext
from tests.support.smtpd import SmtpServer

AppFactory = Callable[..., App]
PM, MIGRATION = "prime-minister@example.org", "migration-service@example.org"
PUBLIC = "https://petition.example.org"
URL = re.compile(re.escape(PUBLIC) + r"/d/([A-Za-z0-9_-]+)")


def link_campaign(mode: str = "link") -> str:
    return campaign_toml().replace(f'email = "{PM}"', f'email = "{PM}"\ndelivery = "{mode}"', 1)


def delivered(app: App, smtp_server: SmtpServer) -> tuple[str, dict[str, EmailMessage]]:
    add(app, NAMES[:4], TUESDAY_10)
    ref = deliveries.create_manual(app, app.campaign(None), now=TUESDAY_10, actor="test")
    assert deliveries.build_and_send(app, ref.id, now=TUESDAY_10)
    mails: dict[str, EmailMessage] = {}
    for received in smtp_server.received:
        msg = message_from_bytes(received.data, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        mails[received.rcpt_tos[0]] = msg
    return ref.public_id, mails


def token_of(mail: EmailMessage) -> str:
    body = mail.get_body(("plain",))
    assert body is not None
    match = URL.search(body.get_content())
    assert match, body.get_content()
    return match.group(1)


def test_a_link_recipient_gets_the_letter_the_link_and_the_manifest_and_no_pdf(
        make_app: AppFactory, smtp_server: SmtpServer, tmp_path: Path,
        signing_files: tuple[Path, Path]) -> None:
    app = make_app({**smtp_server.env(), "DELIVERY_PUBLIC_URL": PUBLIC}, link_campaign())
    public_id, mails = delivered(app, smtp_server)
    linked, attached = mails[PM], mails[MIGRATION]
    names = [p.get_filename() for p in linked.iter_attachments()]
    # the dossier itself is not attached: the letter and summary alone, signed, and the manifest
    assert names == ["dossier-small-en-letter.pdf", "manifest.json", "manifest.json.p7s"]
    assert not any("letter" in str(p.get_filename()) for p in attached.iter_attachments())
    assert any(str(p.get_filename()).endswith(".pdf") for p in attached.iter_attachments())
    folder = tmp_path / "linked"
    folder.mkdir()
    for part in linked.iter_attachments():
        (folder / str(part.get_filename())).write_bytes(part.get_content())
    letter = (folder / "dossier-small-en-letter.pdf").read_bytes()
    printed = " ".join(pdftotext(letter).split())
    assert "Nikol Pashinyan" in printed and NAMES[0] not in printed  # the letter, no signer
    assert_pdfa(letter)  # PDF/A-3b, like every part
    report = verify_path(folder, trust=signing_files[1])
    verdicts = {v.name: v for v in report.verdicts}
    assert verdicts["dossier-small-en-letter.pdf"].ok  # signed, and its SHA-256 in the manifest
    # the parts are on the page; only its own edition's are asked for (the letter says which)
    assert not report.ok and verdicts["manifest.json"].reason == "1 listed file(s) missing"
    assert not verdicts["dossier-small-en.pdf"].ok and "dossier-small-hy.pdf" not in verdicts
    text = linked.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    token = token_of(linked)
    assert len(token) >= 43  # 256 bits of base64url: at least the 128 bits asked for
    manifest = json.loads(next(p.get_content() for p in linked.iter_attachments()
                               if p.get_filename() == "manifest.json"))
    pdfs = [f for f in manifest["files"] if f["name"].endswith(".pdf") and "-en" in f["name"]]
    assert pdfs and all(f["sha256"] in text for f in pdfs)  # every file's SHA-256 in the letter
    assert "downloaded until" in text and public_id in text
    with transaction(app.engine) as session:
        [row] = session.scalars(select(LinkRow))
        assert row.recipient == PM and row.token_hash == hashlib.sha256(token.encode()).hexdigest()
        assert row.expires_at == TUESDAY_10 + timedelta(days=90)
        assert token not in json.dumps([row.token_hash, row.recipient])  # only its hash is stored


def test_the_page_records_nothing_the_buttons_record_each_download_and_the_receipt(
        make_app: AppFactory, smtp_server: SmtpServer) -> None:
    app = make_app({**smtp_server.env(), "DELIVERY_PUBLIC_URL": PUBLIC}, link_campaign())
    campaign = app.campaign(None)
    public_id, mails = delivered(app, smtp_server)
    token = token_of(mails[PM])
    later = TUESDAY_10 + timedelta(hours=3)
    page = links.open_page(app, token, now=later)
    links.open_page(app, token, now=later)
    assert page.dossier_id == public_id and page.language == "en" and page.acknowledged_at is None
    assert [f.name for f in page.files][-2:] == ["manifest.json", "manifest.json.p7s"]
    with transaction(app.engine) as session:
        assert session.scalar(select(func.count()).select_from(DownloadRow)) == 0
    [pdf] = [f for f in page.files if f.name.endswith(".pdf")]
    name, data = links.download(app, token, pdf.name, user_agent="Firefox/140", now=later)
    assert name == pdf.name and hashlib.sha256(data).hexdigest() == pdf.sha256
    zip_name, chunks = links.download_all(app, token, user_agent="Firefox/140",
                                          now=later + timedelta(minutes=1))
    archive = zipfile.ZipFile(io.BytesIO(b"".join(chunks)))
    assert zip_name == f"{public_id}.zip" and archive.testzip() is None
    assert {n: hashlib.sha256(archive.read(n)).hexdigest() for n in archive.namelist()} == {
        f.name: f.sha256 for f in page.files}
    with pytest.raises(NotFound):
        links.download(app, token, "../../etc/passwd", user_agent="x", now=later)
    first = links.acknowledge(app, token, user_agent="Firefox/140", now=later + timedelta(minutes=2))
    assert links.acknowledge(app, token, user_agent="x", now=later + timedelta(hours=1)) == first

    [report] = reports.deliveries(app, campaign, now=later)
    shown = {m.recipient: m.link for m in report.dossier_messages}
    assert shown[MIGRATION] is None
    link = shown[PM]
    assert link is not None and (link.downloads, link.state) == (2, "open")
    # the state is the service clock's: 90 days after the e-mail the link has expired
    [past] = reports.deliveries(app, campaign, now=TUESDAY_10 + timedelta(days=91))
    expired = {m.recipient: m.link for m in past.dossier_messages}[PM]
    assert expired is not None and expired.state == "expired"
    assert link.first_download_at == later.isoformat(timespec="seconds")
    assert link.last_download_at == (later + timedelta(minutes=1)).isoformat(timespec="seconds")
    assert link.acknowledged_at == first.isoformat(timespec="seconds")
    with transaction(app.engine) as session:
        agents = list(session.scalars(select(DownloadRow.user_agent)))
        acknowledged = session.scalars(select(AuditRow).where(AuditRow.action == "link.acknowledged")).all()
    assert agents == ["Firefox/140", "Firefox/140"] and len(acknowledged) == 1
    assert acknowledged[0].actor == f"recipient {PM}"


def test_expired_revoked_and_unknown_links_give_nothing_and_organizers_can_extend(
        make_app: AppFactory, smtp_server: SmtpServer) -> None:
    app = make_app({**smtp_server.env(), "DELIVERY_PUBLIC_URL": PUBLIC}, link_campaign())
    campaign = app.campaign(None)
    public_id, mails = delivered(app, smtp_server)
    token = token_of(mails[PM])
    expired = TUESDAY_10 + timedelta(days=91)
    with pytest.raises(links.LinkUnavailable) as gone:
        links.open_page(app, token, now=expired)
    assert gone.value.state is links.LinkState.EXPIRED
    with pytest.raises(links.LinkUnavailable):
        links.download(app, token, "manifest.json", user_agent="x", now=expired)
    until = links.extend(app, campaign, public_id, PM, by=timedelta(days=30), now=expired, actor="web:owner")
    assert until == expired + timedelta(days=30)
    assert links.open_page(app, token, now=expired).expires_at == until

    links.revoke(app, campaign, public_id, PM, now=expired, actor="web:owner")
    with pytest.raises(links.LinkUnavailable) as revoked:
        links.open_page(app, token, now=expired)
    assert revoked.value.state is links.LinkState.REVOKED and revoked.value.since == expired
    with pytest.raises(StateConflict):
        links.extend(app, campaign, public_id, PM, by=timedelta(days=30), now=expired, actor="web:owner")
    with pytest.raises(NotFound):
        links.revoke(app, campaign, public_id, MIGRATION, now=expired, actor="web:owner")
    for wrong in (token[:-1] + ("A" if token[-1] != "A" else "B"), "x", "a" * 500):
        with pytest.raises(links.LinkUnavailable) as unknown:
            links.open_page(app, wrong, now=TUESDAY_10)
        assert unknown.value.state is None
    with transaction(app.engine) as session:
        actions = [a.action for a in session.scalars(select(AuditRow).where(AuditRow.actor == "web:owner"))]
    assert actions == ["link.extend", "link.revoke"]


def test_downloads_through_one_link_are_limited_per_hour(make_app: AppFactory,
                                                          smtp_server: SmtpServer) -> None:
    app = make_app({**smtp_server.env(), "DELIVERY_PUBLIC_URL": PUBLIC}, link_campaign())
    _, mails = delivered(app, smtp_server)
    token = token_of(mails[PM])
    start = TUESDAY_10 + timedelta(hours=1)
    for i in range(links.DOWNLOADS_PER_HOUR):
        links.download(app, token, "manifest.json", user_agent="x", now=start + timedelta(seconds=i))
    with pytest.raises(links.TooManyDownloads) as limited:
        links.download(app, token, "manifest.json", user_agent="x", now=start + timedelta(minutes=5))
    assert 0 < limited.value.retry_after <= 3600
    links.download(app, token, "manifest.json", user_agent="x", now=start + timedelta(hours=1, seconds=1))


def test_a_link_recipient_without_a_public_address_stops_the_build_before_anything_is_sent(
        make_app: AppFactory, smtp_server: SmtpServer) -> None:
    app = make_app(smtp_server.env(), link_campaign())
    add(app, NAMES[:4], TUESDAY_10)
    ref = deliveries.create_manual(app, app.campaign(None), now=TUESDAY_10, actor="test")
    assert not deliveries.build_and_send(app, ref.id, now=TUESDAY_10)
    [report] = reports.deliveries(app, app.campaign(None), now=TUESDAY_10)
    assert report.status == "failed" and "DELIVERY_PUBLIC_URL" in (report.error or "")
    assert report.dossier_messages == [] and not [r for r in smtp_server.received if PM in r.rcpt_tos]


def test_auto_sends_attachments_when_one_email_holds_them(make_app: AppFactory,
                                                          smtp_server: SmtpServer) -> None:
    app = make_app({**smtp_server.env(), "DELIVERY_PUBLIC_URL": PUBLIC}, link_campaign("auto"))
    _, mails = delivered(app, smtp_server)
    assert any(str(p.get_filename()).endswith(".pdf") for p in mails[PM].iter_attachments())
    with transaction(app.engine) as session:
        assert session.scalar(select(func.count()).select_from(LinkRow)) == 0


def test_organizers_are_reminded_once_of_a_link_nobody_used(make_app: AppFactory,
                                                            smtp_server: SmtpServer) -> None:
    both = link_campaign().replace(f'email = "{MIGRATION}"', f'email = "{MIGRATION}"\ndelivery = "link"', 1)
    app = make_app({**smtp_server.env(), "DELIVERY_PUBLIC_URL": PUBLIC},
                   both.replace('signing = "required"', 'signing = "required"\nchase_after = "7d"', 1))
    campaign = app.campaign(None)
    public_id, mails = delivered(app, smtp_server)
    links.download(app, token_of(mails[PM]), "manifest.json", user_agent="x",
                   now=TUESDAY_10 + timedelta(days=1))

    def reminders() -> list[bytes]:
        with transaction(app.engine) as session:
            return list(session.scalars(select(MessageBodyRow.content).join(MessageRow)
                                               .where(MessageRow.kind == "alert")))

    assert deliveries.tick(app, campaign, now=TUESDAY_10 + timedelta(days=6)).chased == []
    assert deliveries.tick(app, campaign, now=TUESDAY_10 + timedelta(days=8)).chased == [public_id]
    [reminder] = reminders()
    assert MIGRATION.encode() in reminder and b"neither downloaded" in reminder
    assert PM.encode() not in reminder.split(b"\r\n\r\n", 1)[1]  # the one who downloaded is not named
    assert deliveries.tick(app, campaign, now=TUESDAY_10 + timedelta(days=9)).chased == []
    assert len(reminders()) == 1
    # an organizer's reminder reaches them through the outbox like any alert
    assert [r for r in smtp_server.received if "organizers@example.org" in r.rcpt_tos]
