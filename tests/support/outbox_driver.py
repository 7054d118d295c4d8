"""Outbox test helpers, and a driver that runs send_due in a process of its own.

As a script: `python -m tests.support.outbox_driver '{"url": ..., "port": ..., "worker": ..., "now": ...,
"crash_at": "claimed" | "answered" | null, "until_empty": bool}'` prints the SendReport as JSON.
With crash_at set, the process SIGKILLs itself at that point of the first message: no cleanup,
no commit, exactly like a machine losing power.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

from sqlalchemy import Engine

from delivery.mail.message import Written
from delivery.mail.outbox import SendReport, enqueue, send_due
from delivery.settings import Settings, SmtpSettings
from delivery.storage.db import make_engine, transaction
from delivery.storage.models import CampaignRow, DeliveryRow

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SENDER = "campaign@example.org"
ORGANIZERS = ("organizers@example.org",)


def make_delivery(engine: Engine, public_id: str = "d-0001", *, now: datetime = T0) -> int:
    with transaction(engine) as session:
        campaign = session.query(CampaignRow).filter_by(slug="test").one_or_none()
        if campaign is None:
            campaign = CampaignRow(slug="test", title="Test", goal=100, created_at=now)
            session.add(campaign)
            session.flush()
        delivery = DeliveryRow(campaign_id=campaign.id, public_id=public_id, trigger="manual",
                               status="sending", created_at=now, created_by="test",
                               last_signer_id=0, signer_count=0, recipients="[]")
        session.add(delivery)
        session.flush()
        return delivery.id


def message(public_id: str, recipient: str, part: int = 1) -> Written:
    """An e-mail without attachments the way delivery.mail.message writes them: deterministic, CRLF."""
    mid = f"<{public_id}.{recipient.split('@')[0]}.{part}@example.org>"
    msg = EmailMessage(policy=SMTP)
    msg["From"] = SENDER
    msg["To"] = recipient
    msg["Subject"] = f"Dossier {public_id}"
    msg["Message-ID"] = mid
    msg["X-Dossier-Id"] = public_id
    msg.set_content("The dossier is attached.\n.\nA line that is just a dot, above.\n")
    content = msg.as_bytes(policy=SMTP)
    return Written(mid, content, (), len(content))


def queue(engine: Engine, delivery_id: int, recipients: Sequence[str], *,
          public_id: str = "d-0001", now: datetime = T0, cut: int = 0) -> int:
    with transaction(engine) as session:
        return sum(enqueue(session, delivery_id=delivery_id, recipient=r, kind="dossier",
                           parts=[message(public_id, r)], now=now, cut=cut) for r in recipients)


def settings_for(tmp: Path, port: int | None, *, timeout: float = 1.0, security: str = "none",
                 username: str | None = None, password: str | None = None,
                 ca_file: Path | None = None, url: str = "sqlite://") -> Settings:
    smtp = None if port is None else SmtpSettings(
        host="127.0.0.1", port=port, security=security, username=username, password=password,
        ca_file=ca_file, timeout=timeout)
    return Settings(home=tmp, database_url=url, smtp=smtp, outbox_dir=tmp / "outbox", var_dir=tmp,
                    signing_key=None, signing_cert=None)


async def run(engine: Engine, settings: Settings, *, now: datetime, worker: str = "w1",
              until_empty: bool = False, **kwargs: object) -> SendReport:
    """send_due with the test sender and organizers, no jitter; repeated until nothing is due."""
    total = SendReport()
    while True:
        report = await send_due(engine, settings, sender_for=lambda _d: SENDER,
                                organizers_for=lambda _d: ORGANIZERS, now=now, worker_id=worker,
                                rand=lambda: 0.0, **kwargs)  # type: ignore[arg-type]
        total = total.merged(report)
        total.account_paused = report.account_paused
        handled = (report.sent + report.retried + report.failed + report.paused + report.lease_lost
                   + report.recut)
        if not until_empty or handled == 0:
            return total


def main(argv: list[str]) -> int:
    args = json.loads(argv[0])
    engine = make_engine(args["url"])
    settings = settings_for(Path(args.get("tmp", ".")), args["port"], url=args["url"])

    def crash(point: str) -> None:
        if point == args.get("crash_at"):
            os.kill(os.getpid(), signal.SIGKILL)

    report = asyncio.run(run(engine, settings, now=datetime.fromisoformat(args["now"]),
                             worker=args["worker"], until_empty=args.get("until_empty", False),
                             crash_point=crash, limit=args.get("limit", 50)))
    print(json.dumps(report.to_dict()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
