"""Messages to send (stored bytes per recipient and part) + clock → outbox rows moved through
their states, each SMTP answer recorded, organizers alerted; a SendReport per run.

States live in the database and move only along TRANSITIONS. A worker claims one due message
at a time in a short transaction (a lease with a per-claim owner token), sends outside any
transaction, and records the outcome in another short transaction that only succeeds while it
still owns the lease. A lease that expired belonged to a worker that died mid-send: the message
is claimed again and counted in crash_resends, because it may or may not have reached the server.

A recipient's dossier arrives whole or not at all, in order: part n+1 is claimed only once part n
is sent, and when a part is refused for good the recipient's later parts are `blocked` (never
offered, unless the delivery is retried), so no office gets the end of a list without its cover
letter. When the last dossier message of a delivery is settled, one alert names every recipient
that did not get the whole dossier, and why.

A message's attachments that are files of its delivery are stored once, as those files: its
stored bytes hold a one-line stand-in for each, and `message_content` puts the files in when it is
claimed (checking each against the SHA-256 it was built with, and the whole against its size), so
every attempt sends the same bytes. One that fails the check is never sent and fails like a
refusal (its later parts blocked, the organizers told), without holding up the rest. At a million
signers this keeps 0.3 MB for a delivery's 25 e-mails instead of 225 MB beside its 165 MB of files.

A part refused as too large (552, 5.3.4) in a recipient's first cut waits as `recut`: the service
builds that recipient's dossier again in smaller e-mails (cut 1, new Message-IDs) and the first
cut's messages become `replaced`. A second cut refused as too large fails like any refusal.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import secrets
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, parseaddr
from typing import Any

from sqlalchemy import Engine, and_, delete, exists, insert, or_, select, update
from sqlalchemy.orm import Session, aliased

from delivery.errors import OutcomeUnknown, StoredMessageChanged, TransportError
from delivery.mail.classify import Outcome, RetryPolicy, Verdict, classify, verdict
from delivery.mail.message import Written, return_path, stand_ins, with_bodies
from delivery.settings import Settings
from delivery.storage.db import transaction
from delivery.storage.models import DeliveryFileRow, DeliveryRow, MessageBodyRow, MessageRow, SmtpPauseRow

log = logging.getLogger(__name__)

# Every allowed move, and only these. sending → queued/retry is an authentication pause (the
# attempt is given back); sending → sending is a claim of a message whose lease expired;
# queued/retry → blocked: an earlier part to the same recipient was refused for good.
TRANSITIONS: dict[str, frozenset[str]] = {
    "queued": frozenset({"sending", "cancelled", "blocked", "replaced"}),
    "retry": frozenset({"sending", "cancelled", "blocked", "replaced"}),
    # sending → recut: too large in the first cut, to be cut again smaller (replace_cut)
    "sending": frozenset({"sent", "retry", "failed", "queued", "sending", "recut"}),
    "failed": frozenset({"queued"}),  # retry_delivery
    "blocked": frozenset({"queued", "replaced"}),  # retry_delivery, once the earlier part is queued again
    "recut": frozenset({"replaced", "cancelled", "failed"}),  # failed: it cannot be cut smaller
    "replaced": frozenset(),
    # sent → bounced: the accepting server, or one after it, returned the message (mark_bounced)
    "sent": frozenset({"bounced"}),
    "bounced": frozenset({"queued"}),  # retry_delivery
    "cancelled": frozenset(),
}
WAITING = ("queued", "retry")
# Nothing more happens to these without a person (a retry) or a later report (a bounce).
FINAL = ("sent", "failed", "blocked", "bounced", "cancelled", "replaced")
RECUT = "recut"  # waits for the service to cut the recipient's dossier again, smaller
MAX_CUT = 1  # a recipient's dossier is cut again once
UNDELIVERED = ("failed", "blocked", "bounced")
# RFC 3463: the message is too large for the system (5.3.4) or for the mailbox (5.2.3): the same
# bytes would bounce again
TOO_LARGE_STATUSES = ("5.3.4", "5.2.3")
ANSWER_LIMIT = 2000
CrashPoint = Callable[[str], None]


def allowed(old: str, new: str) -> bool:
    return new in TRANSITIONS.get(old, frozenset())


def sources(new: str, *, among: Sequence[str]) -> tuple[str, ...]:
    """The states in `among` that may move to `new`, as the table says."""
    return tuple(s for s in among if allowed(s, new))


@dataclass
class SendReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    paused: int = 0
    crash_resends: int = 0
    lease_lost: int = 0  # finished sending but another worker had taken the message over
    account_paused: bool = False  # the SMTP account is paused: nothing was claimed
    recut: int = 0  # refused as too large, to go again in smaller e-mails

    def to_dict(self) -> dict[str, int]:
        return {k: int(v) for k, v in asdict(self).items()}

    def merged(self, other: SendReport) -> SendReport:
        """Both runs' counts added up (paused when either was)."""
        mine, theirs = asdict(self), asdict(other)
        return SendReport(**{k: (v or theirs[k]) if isinstance(v, bool) else v + theirs[k]
                             for k, v in mine.items()})


@dataclass(frozen=True)
class Claim:
    id: int
    delivery_id: int
    recipient: str
    kind: str
    message_id: str
    content: bytes
    attempts: int  # including this one
    cut: int  # 0: the e-mails first built; 1: cut again smaller after a "too large"
    retry_from: datetime  # the start of its retry window
    token: str
    reclaimed: bool  # its previous lease expired mid-send
    # Its stored bytes no longer make the e-mail it was built as: `attempt` sends nothing and
    # the message fails (delivery.mail.classify), so it does not hold up the messages after it.
    unsendable: StoredMessageChanged | None = None


# --- writing messages -------------------------------------------------------------------------

def _insert(session: Session) -> Any:
    # imported here: reading the outbox (`status`) needs neither dialect's insert
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert


def _add(session: Session, *, delivery_id: int, recipient: str, kind: str, part: int, parts: int,
         message_id: str, content: bytes, now: datetime, cut: int = 0, size: int | None = None,
         attachments: str | None = None) -> int:
    stmt = _insert(session)(MessageRow).values(
        delivery_id=delivery_id, recipient=recipient, kind=kind, part=part, parts=parts, cut=cut,
        status="queued", message_id=message_id, size=len(content) if size is None else size,
        attempts=0, created_at=now, next_attempt_at=now, crash_resends=0,
    ).on_conflict_do_nothing().returning(MessageRow.id)
    # RETURNING, not rowcount: the ORM insert path reports -1 rows on some drivers.
    added = [row.id for row in session.execute(stmt)]
    for row_id in added:
        session.execute(insert(MessageBodyRow).values(message_id=row_id, content=content,
                                                      attachments=attachments))
    return len(added)


def enqueue(session: Session, *, delivery_id: int, recipient: str, kind: str,
            parts: Sequence[Written], now: datetime, cut: int = 0) -> int:
    """Queue one message per part, numbered from 1; due at `now`. Existing messages are left
    alone, so this may run any number of times. Returns how many are new.

    An attachment that is a file stored for the delivery (the same name and SHA-256) is kept
    as that file (MessageBodyRow); any other goes into the stored bytes."""
    stored = {name: sha256 for name, sha256 in session.execute(
        select(DeliveryFileRow.name, DeliveryFileRow.sha256)
        .where(DeliveryFileRow.delivery_id == delivery_id))}
    added = 0
    for index, written in enumerate(parts, start=1):
        kept = [(n, f) for n, f in written.bodies if stored.get(f.name) == f.sha256]
        inline = [(n, f.data) for n, f in written.bodies if stored.get(f.name) != f.sha256]
        content = with_bodies(written.written, stand_ins(written.message_id, inline))
        attachments = json.dumps([[n, f.name, f.sha256] for n, f in kept]) if kept else None
        added += _add(session, delivery_id=delivery_id, recipient=recipient, kind=kind, part=index,
                      parts=len(parts), message_id=written.message_id, content=content, now=now,
                      cut=cut, size=written.size, attachments=attachments)
    return added


def message_content(session: Session, message: MessageRow) -> bytes:
    """A queued message's bytes as they go over the wire: its stored bytes, with the bodies of
    the delivery's files it attaches put in."""
    body = message.body
    if body.attachments is None:
        return body.content
    kept = json.loads(body.attachments)
    files = {name: (sha256, content) for name, sha256, content in session.execute(
        select(DeliveryFileRow.name, DeliveryFileRow.sha256, DeliveryFileRow.content).where(
            DeliveryFileRow.delivery_id == message.delivery_id,
            DeliveryFileRow.name.in_([name for _, name, _ in kept])))}
    bodies = []
    for n, name, sha256 in kept:
        found = files.get(name)
        if found is None or found[0] != sha256:
            raise StoredMessageChanged(message.id, f"the file it attaches, {name}, is not the one "
                                                   "it was built with")
        bodies.append((n, found[1]))
    content = with_bodies(body.content, stand_ins(message.message_id, bodies))
    if len(content) != message.size:
        raise StoredMessageChanged(message.id, f"{len(content)} bytes instead of {message.size}")
    return content


@dataclass(frozen=True)
class Recut:
    """A recipient's dossier to cut again: its delivery, and the size of the e-mail refused."""

    message_id: int
    delivery_id: int
    recipient: str
    refused_size: int
    cut: int  # the cut to make


def recuts_due(session: Session, *, now: datetime) -> list[Recut]:
    """The refused messages waiting for a smaller cut that no worker holds now."""
    rows = session.execute(select(MessageRow.id, MessageRow.delivery_id, MessageRow.recipient,
                                  MessageRow.size, MessageRow.cut)
                           .where(MessageRow.status == RECUT, or_(MessageRow.lease_until.is_(None),
                                                                  MessageRow.lease_until <= now))
                           .order_by(MessageRow.id))
    return [Recut(r.id, r.delivery_id, r.recipient, r.size, r.cut + 1) for r in rows]


def claim_recut(session: Session, recut: Recut, *, owner: str, now: datetime, lease: timedelta) -> bool:
    """Hold the re-cut for `owner` while it builds (another instance takes it once the lease ends)."""
    claimed = session.execute(update(MessageRow).where(
        MessageRow.id == recut.message_id, MessageRow.status == RECUT,
        or_(MessageRow.lease_until.is_(None), MessageRow.lease_until <= now))
        .values(lease_owner=owner[:100], lease_until=now + lease))
    return int(claimed.rowcount) == 1  # type: ignore[attr-defined]


def replace_cut(session: Session, recut: Recut, *, owner: str, parts: Sequence[Written],
                now: datetime) -> bool:
    """The recipient's smaller e-mails queued, and its earlier cut's messages that were not sent
    → replaced, in the caller's transaction; False when `owner` no longer holds the re-cut."""
    held = session.execute(update(MessageRow).where(
        MessageRow.id == recut.message_id, MessageRow.status == RECUT,
        MessageRow.lease_owner == owner[:100]).values(
            status="replaced", lease_owner=None, lease_until=None))
    if held.rowcount != 1:  # type: ignore[attr-defined]
        return False
    session.execute(update(MessageRow).where(
        MessageRow.delivery_id == recut.delivery_id, MessageRow.recipient == recut.recipient,
        MessageRow.kind == "dossier", MessageRow.cut == recut.cut - 1,
        MessageRow.status.in_(sources("replaced", among=["queued", "retry", "blocked"])))
        .values(status="replaced", next_attempt_at=now,
                last_answer=f"replaced by {len(parts)} smaller e-mail(s)"))
    enqueue(session, delivery_id=recut.delivery_id, recipient=recut.recipient, kind="dossier",
            parts=parts, now=now, cut=recut.cut)
    return True


def build_alert(*, public_id: str, sender: str, organizer: str, reason_key: str, reason: str,
                now: datetime) -> tuple[str, bytes]:
    """A short plain-text alert to one organizer, with its own deterministic Message-ID."""
    address = parseaddr(sender)[1] or sender
    domain = address.rsplit("@", 1)[-1] or "localhost"
    who = hashlib.sha256(organizer.strip().lower().encode()).hexdigest()[:10]
    mid = f"<alert-{public_id}-{reason_key}-{who}@{domain}>"
    msg = EmailMessage(policy=SMTP)
    msg["From"] = sender
    msg["To"] = organizer
    msg["Subject"] = f"Petition delivery {public_id} needs attention ({reason_key})"
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = mid
    msg["Auto-Submitted"] = "auto-generated"
    indented = "\n".join(f"  {line}" for line in reason.splitlines())
    msg.set_content(
        f"Delivery {public_id} ran into a problem that will not fix itself:\n\n{indented}\n\n"
        "See `petition-delivery deliveries` (or the web admin's Deliveries page) for each\n"
        "recipient's status. After fixing the cause:\n"
        f"  - a failed delivery: `petition-delivery deliveries retry {public_id}`, or its Retry button;\n"
        "  - a paused SMTP account: `petition-delivery smtp resume`, or the dashboard's\n"
        "    Resume sending button.\n")
    return mid, msg.as_bytes(policy=SMTP)


# An alert's `part`: what it is about, so that one kind does not silence the other.
DELIVERY_ALERT, PAUSE_ALERT = 0, -1  # the delivery failed (its build, or recipients); SMTP paused


def bounce_alert_part(message_id: int) -> int:
    """Below PAUSE_ALERT: one alert per bounced message (its outbox id)."""
    return PAUSE_ALERT - message_id


CHASE_ALERTS = -(2**30)  # below every bounce alert's part


def chase_alert_part(link_id: int) -> int:
    """One reminder per download link that nobody used (its id)."""
    return CHASE_ALERTS - link_id


def enqueue_alert(session: Session, *, delivery_id: int, public_id: str, sender: str,
                  organizers: Sequence[str], reason_key: str, reason: str, now: datetime,
                  part: int = DELIVERY_ALERT) -> int:
    """One alert of each kind (`part`) per organizer and delivery: repeated problems do not
    repeat it."""
    created = 0
    for organizer in organizers:
        mid, content = build_alert(public_id=public_id, sender=sender, organizer=organizer,
                                   reason_key=reason_key, reason=reason, now=now)
        created += _add(session, delivery_id=delivery_id, recipient=organizer, kind="alert",
                        part=part, parts=1, message_id=mid, content=content, now=now)
    return created


# --- organizer actions ------------------------------------------------------------------------

def retry_delivery(session: Session, delivery_id: int, now: datetime) -> int:
    """Failed and bounced dossier messages of a delivery → queued, and waiting retries → due now;
    attempts kept. A message refused or returned as too large stays as it is: the same bytes are
    never offered again.
    The retry window restarts now. Alerts are not resent: they told of the failure retried here."""
    waiting = session.execute(update(MessageRow).where(
        MessageRow.delivery_id == delivery_id, MessageRow.kind != "alert", MessageRow.status == "retry",
        MessageRow.next_attempt_at > now).values(next_attempt_at=now, retry_from=now))
    failed = session.execute(select(MessageRow.id, MessageRow.status, MessageRow.last_code,
                                    MessageRow.last_answer, MessageRow.bounce_status)
                             .where(MessageRow.delivery_id == delivery_id, MessageRow.kind != "alert",
                                    MessageRow.status.in_(sources("queued", among=["failed", "bounced"]))))
    ids = [row.id for row in failed if not _too_large(row.status, row.last_code, row.last_answer,
                                                      row.bounce_status)]
    hurried = int(waiting.rowcount)  # type: ignore[attr-defined]
    if not ids:
        return hurried
    result = session.execute(update(MessageRow).where(MessageRow.id.in_(ids),
                                                      MessageRow.status.in_(("failed", "bounced")))
                             .values(status="queued", next_attempt_at=now, retry_from=now,
                                     bounced_at=None, bounce_kind=None, bounce_status=None,
                                     bounce_diagnostic=None))
    # the parts after a refused one go again with it; not while it stays failed (too large)
    still_failed = select(MessageRow.recipient).where(
        MessageRow.delivery_id == delivery_id, MessageRow.kind != "alert",
        MessageRow.status.in_(("failed", "bounced")))
    unblocked = session.execute(update(MessageRow).where(
        MessageRow.delivery_id == delivery_id, MessageRow.kind != "alert",
        MessageRow.status.in_(sources("queued", among=["blocked"])),
        MessageRow.recipient.not_in(still_failed)).values(
            status="queued", next_attempt_at=now, retry_from=now))
    return (hurried + int(result.rowcount)  # type: ignore[attr-defined]
            + int(unblocked.rowcount))  # type: ignore[attr-defined]


def _too_large(status: str, code: int | None, answer: str | None, bounce_status: str | None) -> bool:
    if status == "bounced":
        return bounce_status in TOO_LARGE_STATUSES
    return verdict(None, code, answer or "") is Verdict.TOO_LARGE


def mark_bounced(session: Session, message_id: int, *, kind: str, status: str | None,
                 diagnostic: str, now: datetime) -> bool:
    """Record a bounce on a sent dossier message. "failed": sent → bounced, and the recipient's
    later parts that still wait are blocked (a dossier goes whole or not at all); "delayed": the
    report is kept on the message, which stays sent. True when the message changed; False when
    it was no longer sent (bounced already, or retried since)."""
    values: dict[str, Any] = {"bounced_at": now, "bounce_kind": kind, "bounce_status": status,
                              "bounce_diagnostic": diagnostic[:ANSWER_LIMIT]}
    if kind == "failed":
        assert allowed("sent", "bounced")
        values["status"] = "bounced"
    changed = session.execute(update(MessageRow).where(
        MessageRow.id == message_id, MessageRow.kind == "dossier", MessageRow.status == "sent")
        .values(**values))
    if changed.rowcount != 1:  # type: ignore[attr-defined]
        return False
    if kind == "failed":
        _block_later_parts(session, message_id, why="bounced", now=now)
    return True


def cancel_delivery_messages(session: Session, delivery_id: int, now: datetime) -> int:
    """Waiting dossier messages → cancelled. In-flight ones finish; alerts still go."""
    result = session.execute(
        update(MessageRow)
        .where(MessageRow.delivery_id == delivery_id, MessageRow.kind != "alert",
               MessageRow.status.in_(sources("cancelled", among=list(TRANSITIONS))))
        .values(status="cancelled", next_attempt_at=now))
    return int(result.rowcount)  # type: ignore[attr-defined]


def pause_account(session: Session, account: str, *, reason: str, now: datetime) -> bool:
    stmt = _insert(session)(SmtpPauseRow).values(account=account, since=now, reason=reason)
    return bool(session.execute(stmt.on_conflict_do_nothing()
                                .returning(SmtpPauseRow.account)).all())


def clear_pause(session: Session, account: str) -> bool:
    result = session.execute(delete(SmtpPauseRow).where(SmtpPauseRow.account == account))
    return bool(result.rowcount)  # type: ignore[attr-defined]


def pauses(session: Session) -> list[SmtpPauseRow]:
    return list(session.scalars(select(SmtpPauseRow).order_by(SmtpPauseRow.since)))


def expire_own_leases(session: Session, worker_id: str, *, now: datetime) -> int:
    """This worker's messages in flight → their leases end now, for any instance to reclaim."""
    result = session.execute(update(MessageRow).where(
        MessageRow.status == "sending",
        MessageRow.lease_owner.startswith(f"{worker_id[:80]}#", autoescape=True),
        MessageRow.lease_until > now).values(lease_until=now))
    return int(result.rowcount)  # type: ignore[attr-defined]


def is_paused(session: Session, account: str) -> bool:
    return session.get(SmtpPauseRow, account) is not None


# --- sending ----------------------------------------------------------------------------------

def claim_one(engine: Engine, *, now: datetime, worker_id: str, lease: timedelta,
              account: str | None) -> Claim | None:
    """The next due message, leased to this worker: status sending, attempts + 1."""
    with transaction(engine) as session:
        if account is not None and is_paused(session, account):
            return None
        due = or_(and_(MessageRow.status.in_(sources("sending", among=WAITING)),
                       MessageRow.next_attempt_at <= now),
                  and_(MessageRow.status == "sending", MessageRow.lease_until <= now))
        earlier = aliased(MessageRow)
        waits_for_earlier_part = exists().where(
            earlier.delivery_id == MessageRow.delivery_id, earlier.recipient == MessageRow.recipient,
            earlier.kind == MessageRow.kind, earlier.cut == MessageRow.cut, earlier.part < MessageRow.part,
            earlier.status != "sent")
        row = session.scalar(select(MessageRow).where(due, ~waits_for_earlier_part)
                             .order_by(MessageRow.next_attempt_at, MessageRow.id)
                             .limit(1).with_for_update(skip_locked=True))
        if row is None:
            return None
        assert allowed(row.status, "sending")
        try:
            content, unsendable = message_content(session, row), None
        except StoredMessageChanged as exc:
            log.error("%s", exc)
            content, unsendable = b"", exc
        claim = Claim(row.id, row.delivery_id, row.recipient, row.kind, row.message_id,
                      content, row.attempts + 1, row.cut, row.retry_from or row.created_at,
                      f"{worker_id[:80]}#{secrets.token_hex(6)}", row.status == "sending", unsendable)
        session.execute(update(MessageRow).where(MessageRow.id == row.id).values(
            status="sending", lease_owner=claim.token, lease_until=now + lease,
            attempts=claim.attempts, crash_resends=row.crash_resends + int(claim.reclaimed)))
        return claim


async def attempt(claim: Claim, settings: Settings, sender: str) -> tuple[BaseException | None,
                                                                          int | None, str]:
    """Send once; (error, code, text) for classify. Errors are data here, not control flow."""
    from delivery.mail import transport  # aiosmtplib: only a command that sends needs it

    if claim.unsendable is not None:
        return claim.unsendable, None, str(claim.unsendable)
    if settings.smtp is None:
        try:
            path = transport.write_eml(claim.content, message_id=claim.message_id,
                                       outbox_dir=settings.outbox_dir)
        except OSError as exc:  # a full or unwritable disk: try again later
            return exc, None, f"cannot write to the outbox folder: {exc.strerror or exc}"
        return None, None, f"written to {path.name}"
    try:
        if claim.kind == "dossier" and settings.bounce_imap is not None and settings.bounce_imap.verp:
            sender = return_path(sender, claim.id, claim.message_id)
        reply = await transport.send_bytes(claim.content, sender=sender,
                                           recipient=claim.recipient, smtp=settings.smtp)
    except TransportError as exc:
        return exc, exc.code, exc.text
    return None, reply.code, reply.text


def complete(engine: Engine, claim: Claim, outcome: Outcome, *, uncertain: bool, now: datetime,
             alert_to: Sequence[str], sender: str, account: str | None) -> bool:
    """Record the outcome if we still own the lease; pause and alert as the outcome says."""
    values: dict[str, Any] = {
        "lease_owner": None, "lease_until": None, "last_code": outcome.code,
        "last_answer": outcome.text[:ANSWER_LIMIT],
    }
    if outcome.action == "sent":
        values.update(status="sent", sent_at=now)
    elif outcome.action == "retry":
        values.update(status="retry", next_attempt_at=outcome.next_attempt_at)
    elif cut_again(claim, outcome):
        values.update(status=RECUT)
    elif outcome.action == "failed":
        values.update(status="failed")
    else:  # pause: this attempt does not count
        given_back = claim.attempts - 1
        values.update(status="queued" if given_back == 0 else "retry", attempts=given_back,
                      next_attempt_at=now)
    assert allowed("sending", values["status"])
    if uncertain:
        values["crash_resends"] = MessageRow.crash_resends + 1
    with transaction(engine) as session:
        if claim.kind != "alert":
            # One completion of a delivery's messages at a time, so that exactly one of them
            # sees the delivery's last message settled (and writes its alert).
            session.execute(select(DeliveryRow.id).where(DeliveryRow.id == claim.delivery_id)
                            .with_for_update())
        owned = session.execute(update(MessageRow).where(
            MessageRow.id == claim.id, MessageRow.lease_owner == claim.token,
            MessageRow.status == "sending").values(**values))
        if owned.rowcount != 1:  # type: ignore[attr-defined]
            return False
        if outcome.action == "failed" and claim.kind != "alert":
            recut = values["status"] == RECUT
            _block_later_parts(session, claim.id, now=now,
                               why="was too large for the server, and is cut again smaller" if recut
                               else "was refused")
        if outcome.action == "pause" and account is not None:
            answer = f"{outcome.code or ''} {outcome.text}".strip()
            pause_account(session, account, reason=answer[:ANSWER_LIMIT], now=now)
            # Alerts to the organizers would wait behind this very pause: the log and /healthz say it.
            log.error("SMTP account %s paused, nothing is sent through it (alerts included) until a "
                      "person clears it: %s. Fix DELIVERY_SMTP_USERNAME/DELIVERY_SMTP_PASSWORD, then run "
                      "`petition-delivery smtp resume` or press Resume sending on the dashboard",
                      account, outcome.text[:200])
        if claim.kind == "alert" or not alert_to:
            return True
        public_id = session.scalar(select(DeliveryRow.public_id)
                                   .where(DeliveryRow.id == claim.delivery_id)) or "?"
        if outcome.action == "pause":
            reason = (f"SMTP account {account} paused, nothing is sent until it is cleared: "
                      f"{outcome.code or ''} {outcome.text}")
            enqueue_alert(session, delivery_id=claim.delivery_id, public_id=public_id,
                          sender=sender, organizers=alert_to, reason_key=outcome.reason,
                          reason=reason[:ANSWER_LIMIT], now=now, part=PAUSE_ALERT)
        elif outcome.action in ("sent", "failed"):
            alert_if_settled(session, delivery_id=claim.delivery_id, public_id=public_id, sender=sender,
                             organizers=alert_to, now=now)
    return True


def alert_if_settled(session: Session, *, delivery_id: int, public_id: str, sender: str,
                     organizers: Sequence[str], now: datetime) -> None:
    """Once the delivery's last dossier message is settled: one alert naming every recipient
    that did not get the whole dossier (none when all did)."""
    summary = undelivered_summary(session, delivery_id)
    if summary is not None and organizers:
        reason_key, reason = summary
        enqueue_alert(session, delivery_id=delivery_id, public_id=public_id, sender=sender,
                      organizers=organizers, reason_key=reason_key, reason=reason, now=now)


def fail_recut(session: Session, recut: Recut, *, owner: str, why: str, now: datetime) -> bool:
    """A re-cut that cannot be made → the refused message failed, as any refusal (its later parts
    stay blocked); False when `owner` no longer holds it."""
    row = session.scalar(select(MessageRow).where(
        MessageRow.id == recut.message_id, MessageRow.status == RECUT, MessageRow.lease_owner == owner[:100]))
    if row is None:
        return False
    assert allowed(RECUT, "failed")
    row.status, row.lease_owner, row.lease_until = "failed", None, None
    row.last_answer = f"{row.last_answer or ''}; not sent in smaller e-mails: {why}"[:ANSWER_LIMIT]
    row.next_attempt_at = now
    return True


def _block_later_parts(session: Session, message_id: int, *, why: str, now: datetime) -> None:
    """The parts after this one to its recipient that still wait → blocked."""
    row = session.execute(select(MessageRow.delivery_id, MessageRow.recipient, MessageRow.kind,
                                 MessageRow.part, MessageRow.parts, MessageRow.cut)
                          .where(MessageRow.id == message_id)).one()
    session.execute(update(MessageRow).where(
        MessageRow.delivery_id == row.delivery_id, MessageRow.recipient == row.recipient,
        MessageRow.kind == row.kind, MessageRow.cut == row.cut, MessageRow.part > row.part,
        MessageRow.status.in_(sources("blocked", among=WAITING))).values(
            status="blocked", next_attempt_at=now,
            last_answer=f"not sent: part {row.part} of {row.parts} to this recipient {why}, "
                        "and a dossier goes whole or not at all"))


def undelivered_summary(session: Session, delivery_id: int) -> tuple[str, str] | None:
    """Once no dossier message of the delivery waits or is in flight: (reason key, text) naming
    every recipient that did not get the whole dossier, with each refusal; None while some are
    still to settle, or when every message was sent."""
    messages = list(session.scalars(select(MessageRow).where(
        MessageRow.delivery_id == delivery_id, MessageRow.kind != "alert")
        .order_by(MessageRow.recipient, MessageRow.cut, MessageRow.part)))
    if any(m.status in (*WAITING, "sending", RECUT) for m in messages):
        return None
    refused = [m for m in messages if m.status == "failed"]
    if not refused:
        return None
    recipients = sorted({m.recipient for m in messages if m.status in UNDELIVERED})
    lines = [f"{len(recipients)} of {len({m.recipient for m in messages})} recipients did not "
             "get the whole dossier:"]
    for m in refused:
        blocked = sum(1 for other in messages if other.recipient == m.recipient
                      and other.status == "blocked")
        held = f"; {blocked} later part(s) not sent" if blocked else ""
        code = f"{m.last_code} " if m.last_code else ""
        lines.append(f"- {m.recipient}, part {m.part} of {m.parts}: {code}{m.last_answer or ''}"
                     f"{held}")
    keys = sorted({_reason_key(m) for m in refused})
    return "-".join(keys), "\n".join(lines)[:ANSWER_LIMIT * 4]


def _reason_key(message: MessageRow) -> str:
    """The word classify's outcome gave a refused message, from what was stored of it."""
    answer = message.last_answer or ""
    if answer.startswith("gave up after"):
        return "expired"
    if verdict(None, message.last_code, answer) is Verdict.TOO_LARGE:
        return "too_large"
    return "rejected"


async def send_due(
    engine: Engine,
    settings: Settings,
    *,
    sender_for: Callable[[int], str],
    organizers_for: Callable[[int], Sequence[str]],
    now: datetime,
    worker_id: str,
    limit: int = 50,
    lease: timedelta = timedelta(minutes=10),
    rand: Callable[[], float] = random.random,
    policy: RetryPolicy | None = None,
    crash_point: CrashPoint | None = None,
) -> SendReport:
    """Send up to `limit` due messages, one at a time. `crash_point` is a test hook called with
    "claimed" (lease committed, nothing sent) and "answered" (server replied, nothing recorded)."""
    policy = policy or RetryPolicy()
    account = settings.smtp.account if settings.smtp is not None else None
    report = SendReport()
    senders: dict[int, str] = {}
    organizers: dict[int, Sequence[str]] = {}
    for _ in range(limit):
        claim = claim_one(engine, now=now, worker_id=worker_id, lease=lease, account=account)
        if claim is None:
            if account is not None:
                with transaction(engine) as session:
                    report.account_paused = is_paused(session, account)
            break
        if crash_point is not None:
            crash_point("claimed")
        report.crash_resends += int(claim.reclaimed)
        if claim.delivery_id not in senders:
            senders[claim.delivery_id] = parseaddr(sender_for(claim.delivery_id))[1]
        sender = senders[claim.delivery_id]
        error, code, text = await attempt(claim, settings, sender)
        if crash_point is not None:
            crash_point("answered")
        outcome = classify(error, code=code, text=text, attempts=claim.attempts,
                           first_attempt_at=claim.retry_from, now=now, policy=policy, rand=rand)
        uncertain = isinstance(error, OutcomeUnknown) and outcome.action == "retry"
        if claim.kind != "alert" and outcome.action != "retry" and claim.delivery_id not in organizers:
            organizers[claim.delivery_id] = organizers_for(claim.delivery_id)
        alert_to = organizers.get(claim.delivery_id, ()) if claim.kind != "alert" else ()
        if not complete(engine, claim, outcome, uncertain=uncertain, now=now, alert_to=alert_to,
                        sender=sender, account=account):
            log.warning("message %s: lease lost before its outcome was recorded", claim.message_id)
            report.lease_lost += 1
            continue
        _count(report, claim, outcome, uncertain)
        log.info("message %s to %s: %s %s %s", claim.message_id, claim.recipient, outcome.action,
                 outcome.code or "", outcome.text[:200])
    return report


def cut_again(claim: Claim, outcome: Outcome) -> bool:
    """Whether a refusal sends this dossier message's recipient smaller e-mails rather than failing."""
    return (outcome.action == "failed" and outcome.reason == "too_large" and claim.kind == "dossier"
            and claim.cut < MAX_CUT)


def _count(report: SendReport, claim: Claim, outcome: Outcome, uncertain: bool) -> None:
    report.crash_resends += int(uncertain)
    if cut_again(claim, outcome):
        report.recut += 1
    elif outcome.action == "sent":
        report.sent += 1
    elif outcome.action == "retry":
        report.retried += 1
    elif outcome.action == "failed":
        report.failed += 1
    else:
        report.paused += 1
