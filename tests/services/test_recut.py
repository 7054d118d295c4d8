"""A dossier refused as too large (552 5.3.4) by a server that announced a larger SIZE, as a relay
further on does: that recipient's dossier is cut again once, in smaller e-mails with new
Message-IDs, and arrives whole, signed and complete; nothing of the first cut goes after the
refusal; a recipient whose smaller e-mails are refused again fails like any refusal, and the one
alert names it. On SQLite and PostgreSQL, against a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import select

from delivery.bundle.verify import verify_path
from delivery.services import deliveries, reports
from delivery.storage.db import reading
from delivery.storage.models import AuditRow, MessageRow
from tests.services.test_deliveries import NAMES, TUESDAY_10, AppFactory, add
from tests.support.campaigns import campaign_file
from tests.support.smtpd import RecordingHandler, SmtpServer

PM, MIGRATION = "prime-minister@example.org", "migration-service@example.org"
# what the offices' own servers take, behind the relay that announced 32 MB
TAKES = {PM: 2_000_000, MIGRATION: 500_000}
FIRST_CUT = 3_000_000  # the recipients' max_message_size: the first cut's e-mails are up to this


class SmallerBehind(RecordingHandler):
    """Accepts only what the recipient's own server takes; answers 552 5.3.4 to anything larger."""

    def __init__(self) -> None:
        super().__init__()
        self.refused: list[tuple[str, str, int]] = []  # (recipient, X-Dossier-Part, bytes)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        data = envelope.original_content or b""
        data = data.encode() if isinstance(data, str) else data
        [to] = envelope.rcpt_tos
        if len(data) > TAKES.get(to, 10**9):
            part = message_from_bytes(data, policy=policy.default)["X-Dossier-Part"]
            self.refused.append((to, str(part), len(data)))
            return "552 5.3.4 Message size exceeds fixed maximum message size"
        return await super().handle_DATA(server, session, envelope)


def parsed(data: bytes) -> EmailMessage:
    message = message_from_bytes(data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def test_a_dossier_refused_as_too_large_is_cut_smaller_once_and_arrives_whole(
        make_app: AppFactory, tmp_path: Path, signing_files: tuple[Path, Path]) -> None:
    handler = SmallerBehind()
    server = SmtpServer(handler)
    server.start()
    toml = campaign_file(slug="small", title="Small test petition", goal=50_000, signing="required",
                         hold="0s", thresholds="[40000]", check_every="1m", send_window="Mon-Fri 09:00-18:00")
    toml = toml.replace('language = "en"', f'language = "en"\nmax_message_size = {FIRST_CUT}')
    toml = toml.replace('language = "hy"', f'language = "hy"\nmax_message_size = {FIRST_CUT}')
    try:
        app = make_app(server.env(), toml)
        campaign = app.campaign(None)
        add(app, [f"{NAMES[i % len(NAMES)]} {i}" for i in range(40_000)], TUESDAY_10)
        report = deliveries.tick(app, campaign, now=TUESDAY_10)
        assert report.built and not report.build_failures
    finally:
        server.stop()
    received = [(r.rcpt_tos[0], parsed(r.data)) for r in handler.received]
    dossiers = [(to, m) for to, m in received if to != "organizers@example.org"]
    # both first cuts were refused at their first part, and nothing after it of that cut went
    first = handler.refused[:2]
    assert sorted(to for to, _, _ in first) == [MIGRATION, PM]
    assert all(part.startswith("1/") for _, part, _ in first)
    assert all(".c1." in str(m["Message-ID"]) for _, m in dossiers)  # only smaller e-mails went

    # the Prime Minister's office: the smaller cut, whole, each e-mail under what it takes
    mine = [m for to, m in dossiers if to == PM]
    total = len(mine)
    assert total >= 3 and [m["X-Dossier-Part"] for m in mine] == [f"{n}/{total}" for n in range(1, total + 1)]
    assert all(len(m.as_bytes()) <= TAKES[PM] for m in mine)
    folder = tmp_path / "pm"
    folder.mkdir()
    for message in mine:
        for part in message.iter_attachments():
            (folder / str(part.get_filename())).write_bytes(part.get_content())
    verdict = verify_path(folder, trust=signing_files[1])
    assert verdict.ok, verdict
    manifest = json.loads((folder / "manifest.json").read_bytes())
    assert manifest["signer_count"] == 40_000 and {f["language"] for f in manifest["files"]
                                                   if f["name"].endswith(".pdf")} == {"en"}

    # the Migration Service's server refused the smaller cut too: failed, named in the one alert
    assert [(to, part) for to, part, _ in handler.refused if to == MIGRATION][1][1].startswith("1/")
    assert not [m for to, m in dossiers if to == MIGRATION]
    [alert] = [m for to, m in received if to == "organizers@example.org"]
    body = alert.get_content()
    assert "1 of 2 recipients did not get the whole dossier" in body and MIGRATION in body and PM not in body
    [delivery] = reports.deliveries(app, campaign, now=datetime.now(UTC))
    assert delivery.status == "failed"
    states = sorted({(m.recipient, m.cut, m.status) for m in delivery.messages if m.kind == "dossier"})
    assert (PM, 0, "replaced") in states and (PM, 1, "sent") in states
    assert (MIGRATION, 1, "failed") in states and (MIGRATION, 1, "blocked") in states
    assert not [s for s in states if s[1] == 0 and s[2] not in ("replaced",)]
    with reading(app.engine) as session:
        recuts = [json.loads(a.detail) for a in session.scalars(
            select(AuditRow).where(AuditRow.action == "delivery.recut").order_by(AuditRow.id))]
        ids = list(session.scalars(select(MessageRow.message_id)))
    assert sorted(r["recipient"] for r in recuts) == [MIGRATION, PM]
    assert len(ids) == len(set(ids))  # every e-mail its own Message-ID
    # a second tick changes nothing: no third cut, nothing sent again
    before = len(handler.received)
    deliveries.tick(app, campaign, now=TUESDAY_10)
    assert len(handler.received) == before
