"""An organizer's "resume sending" → the SMTP account's pause cleared (audited), and the mail that
waited for it sent at once.

The outbox pauses an account when the server refuses its credentials (every message would be
refused the same way); only a person who has fixed the password can say the account is usable
again. The pause is not tied to a campaign: one account sends for all of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from delivery.errors import NotFound, UsageError
from delivery.mail import outbox
from delivery.services import deliveries
from delivery.services.app import App
from delivery.storage import audit
from delivery.storage.db import reading, transaction


@dataclass(frozen=True)
class Pause:
    account: str
    since: datetime
    reason: str


@dataclass(frozen=True)
class Resumed:
    account: str
    paused_since: datetime
    send: dict[str, int]  # the send that followed: sent, retried, failed …
    paused_again: str | None = None  # the server's answer, when it refused the login once more


def paused_accounts(app: App) -> list[Pause]:
    with reading(app.engine) as session:
        return [Pause(p.account, p.since, p.reason) for p in outbox.pauses(session)]


def resume(app: App, account: str | None, *, now: datetime, actor: str, send: bool = True) -> Resumed:
    """Clear the pause of `account` (None: the only paused one), then send what is due unless
    `send` is False (the web sends in a background job)."""
    with transaction(app.engine) as session:
        paused = {p.account: p for p in outbox.pauses(session)}
        if account is None:
            if not paused:
                raise NotFound("no SMTP account is paused; nothing to resume")
            if len(paused) > 1:
                raise UsageError(f"several SMTP accounts are paused ({', '.join(sorted(paused))}): "
                                 "name one with --account")
            account = next(iter(paused))
        pause = paused.get(account)
        if pause is None:
            raise NotFound(f"SMTP account '{account}' is not paused; nothing to resume")
        since = pause.since
        outbox.clear_pause(session, account)
        audit.record(session, at=now, actor=actor, action="smtp.resume", subject=account[:200],
                     paused_since=since, reason=pause.reason)
    if not send:
        return Resumed(account, since, {})
    report = deliveries.send_due(app, now=now)
    again = next((p.reason for p in paused_accounts(app) if p.account == account), None)
    return Resumed(account, since, report, again)
