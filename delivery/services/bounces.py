"""The bounce mailbox → bounced outbox messages, their deliveries failed, organizers alerted,
each step audited; a BouncePoll of what one reading found.

A tick reads the mails that arrived since the last reading (delivery.mail.mailbox), reads each
as a bounce or not (delivery.mail.bounces), and matches it to the dossier message whose
Message-ID it quotes, exactly. Each mail is settled in one transaction with the mailbox cursor,
so a crash re-reads at most the mail in hand, and the bounce's unique fingerprint makes that
re-reading (or another instance's, at the same moment) change nothing: a bounce never counts
twice. A report that names none of our messages is counted and kept, and changes nothing.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from delivery.errors import MailboxError
from delivery.logs import safe_error
from delivery.mail import mailbox, outbox
from delivery.mail.message import return_check
from delivery.services.app import App
from delivery.services.states import DeliveryState, allowed
from delivery.settings import ImapSettings
from delivery.storage import audit
from delivery.storage.db import transaction
from delivery.storage.models import BounceRow, DeliveryRow, MailboxCursorRow, MessageRow

if TYPE_CHECKING:
    from delivery.mail.bounces import Bounce

log = logging.getLogger(__name__)
ACTOR = "bounce reader"


@dataclass
class BouncePoll:
    read: int = 0  # new mails in the mailbox
    not_bounces: int = 0  # replies, auto-replies and the like: left alone
    bounced: int = 0  # messages that did not arrive
    delayed: int = 0  # messages a server is still trying to deliver
    unmatched: int = 0  # bounces that name none of our messages
    repeated: int = 0  # a report already read (a copy, another instance)
    error: str | None = None  # the mailbox could not be read: the next tick tries again

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def poll_bounces(app: App, *, now: datetime) -> BouncePoll:
    """Read the bounce mailbox once, if one is configured; a mailbox that cannot be read is
    reported (and logged), never raised: sending goes on without it."""
    imap = app.settings.bounce_imap
    poll = BouncePoll()
    if imap is None:
        return poll
    # Here, not at the top: the report parser (flufl.bounce) is for a configured mailbox only,
    # not for every command that reaches deliveries.
    from delivery.mail.bounces import read_bounce

    with transaction(app.engine) as session:
        cursor = session.get(MailboxCursorRow, imap.account)
        uidvalidity, after = (cursor.uidvalidity, cursor.last_uid) if cursor else (None, 0)
    try:
        reading = mailbox.read_new(imap, uidvalidity=uidvalidity, after_uid=after)
    except MailboxError as exc:
        log.warning("%s; the next tick tries again", safe_error(exc))
        poll.error = str(exc)
        return poll
    for uid, raw in reading.mails:
        poll.read += 1
        try:
            _settle(app, imap, reading.uidvalidity, uid, read_bounce(raw), poll, now=now)
        except IntegrityError:  # another instance recorded this very report a moment ago
            poll.repeated += 1
    if not reading.mails:
        with transaction(app.engine) as session:
            _advance(session, imap, reading.uidvalidity, after if reading.uidvalidity == uidvalidity else 0,
                     now=now)
    if any((poll.bounced, poll.delayed, poll.unmatched)):
        log.info("bounces: %d read, %d bounced, %d delayed, %d naming none of ours, %d already read",
                 poll.read, poll.bounced, poll.delayed, poll.unmatched, poll.repeated)
    return poll


def _advance(session: Session, imap: ImapSettings, uidvalidity: int, uid: int, *, now: datetime) -> None:
    cursor = session.get(MailboxCursorRow, imap.account, with_for_update=True)
    if cursor is None:
        session.add(MailboxCursorRow(account=imap.account, uidvalidity=uidvalidity, last_uid=uid,
                                     read_at=now))
        session.flush()
    elif cursor.uidvalidity != uidvalidity or uid > cursor.last_uid:
        cursor.uidvalidity, cursor.last_uid, cursor.read_at = uidvalidity, uid, now


def _settle(app: App, imap: ImapSettings, uidvalidity: int, uid: int, bounce: Bounce | None,
            poll: BouncePoll, *, now: datetime) -> None:
    from delivery.mail.bounces import BounceKind

    with transaction(app.engine) as session:
        _advance(session, imap, uidvalidity, uid, now=now)
        if bounce is None:
            poll.not_bounces += 1
            return
        if session.scalar(select(BounceRow.id).where(BounceRow.fingerprint == bounce.fingerprint)):
            poll.repeated += 1
            return
        message = session.scalar(select(MessageRow).where(
            MessageRow.message_id.in_(bounce.message_ids), MessageRow.kind == "dossier")
            .order_by(MessageRow.id).limit(1)) if bounce.message_ids else None
        if message is None and bounce.return_tags:
            message = _by_return_path(session, bounce)
        diagnostic = _diagnostic(bounce, message)
        session.add(BounceRow(fingerprint=bounce.fingerprint, read_at=now, mailbox=imap.account, uid=uid,
                              kind=bounce.kind.value, message_id=message.id if message else None,
                              status=bounce.status, diagnostic=diagnostic))
        # A racing instance that read the same report first makes this flush fail: the whole
        # transaction, its cursor move included, is then theirs to have made.
        session.flush()
        if message is None:
            poll.unmatched += 1
            return
        if not outbox.mark_bounced(session, message.id, kind=bounce.kind.value, status=bounce.status,
                                   diagnostic=diagnostic, now=now):
            poll.repeated += 1
            return
        if bounce.kind is BounceKind.DELAYED:
            poll.delayed += 1
            return
        poll.bounced += 1
        _fail_delivery(app, session, message, bounce, diagnostic, now=now)


def _by_return_path(session: Session, bounce: Bounce) -> MessageRow | None:
    """The dossier message a VERP return path names, when its check fits the Message-ID."""
    rows = session.scalars(select(MessageRow).where(
        MessageRow.id.in_([row_id for row_id, _ in bounce.return_tags]), MessageRow.kind == "dossier"))
    checks = dict(bounce.return_tags)
    return next((row for row in rows if checks.get(row.id) == return_check(row.message_id)), None)


def _diagnostic(bounce: Bounce, message: MessageRow | None) -> str:
    """The server's words, with the address it names when that is not the one we sent to (a
    forward inside the office)."""
    others = [a for a in bounce.addresses if message is None or a != message.recipient.lower()]
    named = f" (reported for {', '.join(others)})" if others and message is not None else ""
    return f"{bounce.diagnostic}{named}"[:outbox.ANSWER_LIMIT]


def _fail_delivery(app: App, session: Session, message: MessageRow, bounce: Bounce, diagnostic: str,
                   *, now: datetime) -> None:
    delivery = session.get(DeliveryRow, message.delivery_id, with_for_update=True)
    assert delivery is not None
    campaign = app.campaign_by_id(session, delivery.campaign_id)
    audit.record(session, at=now, actor=ACTOR, action="message.bounced", campaign_id=delivery.campaign_id,
                 subject=delivery.public_id, recipient=message.recipient,
                 part=f"{message.part}/{message.parts}", status=bounce.status or "", diagnostic=diagnostic)
    if delivery.status == DeliveryState.DONE and allowed(delivery.status, DeliveryState.FAILED):
        delivery.status = DeliveryState.FAILED
        delivery.error = f"{message.recipient}: part {message.part} of {message.parts} bounced"
        audit.record(session, at=now, actor=ACTOR, action="delivery.bounced",
                     campaign_id=delivery.campaign_id, subject=delivery.public_id, status="failed")
    status = f"{bounce.status} " if bounce.status else ""
    reason = (f"{message.recipient} did not receive part {message.part} of {message.parts} after all: "
              f"a mail server returned it ({status}{diagnostic}). Check the address with the office, "
              "then retry the delivery.")
    outbox.enqueue_alert(session, delivery_id=delivery.id, public_id=delivery.public_id,
                         sender=campaign.sender, organizers=campaign.organizers,
                         reason_key=f"bounced-{message.id}", reason=reason, now=now,
                         part=outbox.bounce_alert_part(message.id))
