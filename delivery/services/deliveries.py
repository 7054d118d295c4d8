"""App + clock → deliveries: detect milestones, create, build, send, cancel, release (the service).

Every function takes ids and a clock, works in short transactions and is safe to run from any
number of processes at once: uniqueness comes from constraints (milestones, messages), exclusive
work from leased claims (building a delivery, sending a message). Status changes follow the one
table in delivery.services.states; leases are taken, kept alive and handed back here, nowhere else.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from delivery.artifacts import BundleFile
from delivery.campaigns.config import Campaign, Recipient
from delivery.campaigns.milestones import crossing
from delivery.campaigns.window import earliest_send
from delivery.dossier.stored import Frozen
from delivery.errors import BuildStopped, DeliveryError, NotFound, StateConflict, UsageError
from delivery.logs import safe_error
from delivery.mail import outbox
from delivery.services import bounces, links, retention
from delivery.services.app import App
from delivery.services.states import DeliveryState, move
from delivery.signers.store import count_signers
from delivery.storage import audit
from delivery.storage.db import reading, transaction
from delivery.storage.models import DeliveryRow, LinkRow, MessageRow, MilestoneRow, SignerRow

log = logging.getLogger("delivery.services.deliveries")
# A build renews its lease every HEARTBEAT seconds while it runs, however long it takes; a builder
# that dies (kill -9, a lost database connection) is taken over once BUILD_LEASE has passed.
BUILD_LEASE = timedelta(minutes=3)
HEARTBEAT = 30.0
Progress = Callable[[int, int], None]


@dataclass
class TickReport:
    campaign: str
    signer_count: int
    milestones: list[int] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    released: list[str] = field(default_factory=list)
    built: list[str] = field(default_factory=list)
    build_failures: list[str] = field(default_factory=list)
    send: dict[str, int] = field(default_factory=dict)
    bounces: dict[str, object] = field(default_factory=dict)
    chased: list[str] = field(default_factory=list)  # deliveries whose unused links were reminded of

    def to_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class DeliveryRef:
    id: int
    public_id: str
    # True when the request's key had made this delivery already: nothing was created now.
    replayed: bool = False


def new_dossier_id(campaign: Campaign, now: datetime) -> str:
    prefix = "".join(word[0] for word in campaign.slug.split("-") if word)[:4].upper() or "D"
    return f"{prefix}-{now:%Y%m%d}-{secrets.token_hex(3).upper()}"


def _create_delivery(session: Session, app: App, campaign: Campaign, campaign_id: int, *, now: datetime,
                     trigger: str, milestone: int | None, recipients: Sequence[Recipient], actor: str,
                     hold_until: datetime | None, request_key: str | None = None) -> DeliveryRow:
    last = session.scalar(select(func.max(SignerRow.id)).where(SignerRow.campaign_id == campaign_id)) or 0
    delivery = DeliveryRow(
        campaign_id=campaign_id, public_id=new_dossier_id(campaign, now), trigger=trigger,
        milestone=milestone, request_key=request_key,
        status=DeliveryState.HELD if hold_until and hold_until > now else DeliveryState.QUEUED,
        created_at=now, created_by=actor, hold_until=hold_until, last_signer_id=last,
        signer_count=0, recipients=json.dumps([r.email for r in recipients]))
    session.add(delivery)
    session.flush()
    delivery.signer_count = Frozen.of(delivery).count_shown(session)
    audit.record(session, at=now, actor=actor, action="delivery.create", campaign_id=campaign_id,
                 subject=delivery.public_id, trigger=trigger, milestone=milestone,
                 signer_count=delivery.signer_count, recipients=[r.email for r in recipients])
    return delivery


def detect_milestones(app: App, campaign: Campaign, *, now: datetime) -> tuple[int, list[int], str | None]:
    """Record newly reached milestones and create one held delivery for the highest.

    Two instances racing here both try to insert the milestone rows; the unique constraint lets
    one win and the other roll back, so the delivery is created once.
    """
    with transaction(app.engine) as session:
        campaign_id = app.campaign_id(session, campaign)
        count = count_signers(session, campaign_id)
        reached = set(session.scalars(select(MilestoneRow.threshold).where(
            MilestoneRow.campaign_id == campaign_id)))
    found = crossing(count, campaign.thresholds, reached)
    if found is None:
        return count, [], None
    try:
        with transaction(app.engine) as session:
            delivery = _create_delivery(
                session, app, campaign, campaign_id, now=now, trigger="milestone", milestone=found.highest,
                recipients=campaign.recipients, actor="scheduler",
                hold_until=now + campaign.schedule.hold if campaign.schedule.hold else None)
            for threshold in found.reached:
                session.add(MilestoneRow(campaign_id=campaign_id, threshold=threshold, reached_at=now,
                                         signer_count=count, delivery_id=delivery.id))
            session.flush()
            public_id = delivery.public_id
    except IntegrityError:
        log.info("milestone already recorded by another instance", extra={"campaign": campaign.slug})
        return count, [], None
    log.info("milestone %s reached: delivery %s created", found.highest, public_id,
             extra={"campaign": campaign.slug})
    return count, list(found.reached), public_id


def release_due_holds(app: App, campaign: Campaign, *, now: datetime) -> list[str]:
    with transaction(app.engine) as session:
        campaign_id = app.campaign_id(session, campaign)
        rows = list(session.scalars(select(DeliveryRow).where(
            DeliveryRow.campaign_id == campaign_id, DeliveryRow.status == DeliveryState.HELD,
            DeliveryRow.hold_until <= now)))
        for row in rows:
            row.status = move(row.public_id, row.status, DeliveryState.QUEUED, doing="release")
        return [r.public_id for r in rows]


def claim_build(app: App, campaign: Campaign, *, now: datetime) -> int | None:
    """Claim one queued (or abandoned) delivery for building; None when there is none."""
    with transaction(app.engine) as session:
        campaign_id = app.campaign_id(session, campaign)
        query = (select(DeliveryRow.id).where(
            DeliveryRow.campaign_id == campaign_id,
            or_(DeliveryRow.status == DeliveryState.QUEUED,
                (DeliveryRow.status == DeliveryState.BUILDING) & (DeliveryRow.lease_until < now)))
            .order_by(DeliveryRow.id).limit(1))
        if app.engine.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        delivery_id = session.scalar(query)
        if delivery_id is None:
            return None
        session.execute(update(DeliveryRow).where(DeliveryRow.id == delivery_id).values(
            status=DeliveryState.BUILDING, lease_owner=app.worker_id, lease_until=now + BUILD_LEASE))
        return delivery_id


def release_own_leases(app: App, *, now: datetime) -> int:
    """Give back what this process claimed but will not finish: its builds go back to the queue,
    its sending messages' leases expire now (a reclaim counts them in crash_resends, as the server
    may have accepted them)."""
    with transaction(app.engine) as session:
        builds = session.execute(update(DeliveryRow).where(
            DeliveryRow.status == DeliveryState.BUILDING, DeliveryRow.lease_owner == app.worker_id).values(
            status=DeliveryState.QUEUED, lease_owner=None, lease_until=None))
        sends = outbox.expire_own_leases(session, app.worker_id, now=now)
    return int(builds.rowcount) + sends  # type: ignore[attr-defined]


def build_delivery(app: App, delivery_id: int, *, now: datetime, progress: Progress | None = None) -> bool:
    """Build, sign and enqueue a claimed delivery. False (and the delivery failed, the organizers
    alerted) when anything goes wrong in the build, an unexpected error included: a delivery never
    sits in `building` for want of a failure."""
    from delivery.services.pipeline import build_bundle_for_delivery

    with transaction(app.engine) as session:
        delivery = session.get(DeliveryRow, delivery_id)
        if delivery is None:
            raise NotFound(f"no delivery #{delivery_id}")
        campaign = app.campaign_by_id(session, delivery.campaign_id)
    try:
        with _lease_kept(app, delivery_id, now=now):
            files = build_bundle_for_delivery(app, campaign, delivery, now=now, progress=progress)
        return _enqueue_built(app, campaign, delivery, files, now=now)
    except DeliveryError as exc:
        _fail_build(app, delivery_id, campaign, str(exc), now=now)
        return False
    except BuildStopped:
        raise  # a shutdown: the caller hands the lease back
    except Exception as exc:
        # Not a message of ours: it may hold anything, so the log gets its kind and first line
        # (safe_error, without database parameters) and the traceback, the alert the kind only.
        log.error("delivery %s: unexpected error while building: %s", delivery.public_id,
                  safe_error(exc), exc_info=exc)
        _fail_build(app, delivery_id, campaign, f"unexpected error while building the dossier "
                    f"({type(exc).__name__}); the service log has the details", now=now)
        return False


@contextmanager
def _heartbeat(name: str, renew: Callable[[datetime], None], *, now: datetime) -> Iterator[None]:
    """While the body runs, a thread calls `renew` with a new lease end every HEARTBEAT seconds
    (the tick's `now` plus the time taken plus BUILD_LEASE)."""
    stop = threading.Event()
    started = time.monotonic()

    def beat() -> None:
        while not stop.wait(HEARTBEAT):
            until = now + timedelta(seconds=time.monotonic() - started) + BUILD_LEASE
            try:
                renew(until)
            except Exception as exc:  # the lease then runs out and another worker takes the work over
                log.warning("%s: could not renew the lease: %s", name, safe_error(exc))

    thread = threading.Thread(target=beat, name=name, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _lease_kept(app: App, delivery_id: int, *, now: datetime) -> contextlib.AbstractContextManager[None]:
    """The build's lease moved on while the build runs, as long as this worker still holds it."""
    def renew(until: datetime) -> None:
        with transaction(app.engine) as session:
            session.execute(update(DeliveryRow).where(
                DeliveryRow.id == delivery_id, DeliveryRow.status == DeliveryState.BUILDING,
                DeliveryRow.lease_owner == app.worker_id).values(lease_until=until))

    return _heartbeat(f"lease-{delivery_id}", renew, now=now)


def _enqueue_built(app: App, campaign: Campaign, delivery: DeliveryRow, files: Sequence[BundleFile], *,
                   now: datetime) -> bool:
    """Store the built files and queue each recipient's e-mails, in one transaction with the move
    to `sending` → False when another worker took the build over meanwhile."""
    from delivery.services.pipeline import messages_for, store_files

    delivery_id = delivery.id
    send_at = now if delivery.trigger == "manual" else earliest_send(
        now, campaign.schedule.send_window, campaign.schedule.timezone)
    with transaction(app.engine) as session:
        owned = session.execute(update(DeliveryRow).where(
            DeliveryRow.id == delivery_id, DeliveryRow.status == DeliveryState.BUILDING,
            DeliveryRow.lease_owner == app.worker_id).values(
            status=DeliveryState.SENDING, built_at=now, lease_owner=None, lease_until=None))
        if owned.rowcount != 1:  # type: ignore[attr-defined]
            log.warning("delivery %s: build lease lost; another worker owns it", delivery.public_id)
            return False
        store_files(session, delivery_id, files)
        session.execute(delete(LinkRow).where(LinkRow.delivery_id == delivery_id))
        for recipient_email, parts, link in messages_for(app, campaign, delivery, files, send_at=send_at):
            if link is not None:
                session.add(LinkRow(delivery_id=delivery_id, recipient=recipient_email,
                                    token_hash=link.token_hash, created_at=now, expires_at=link.expires_at))
            outbox.enqueue(session, delivery_id=delivery_id, recipient=recipient_email, kind="dossier",
                           parts=parts, now=send_at)
    log.info("delivery %s built: %d files", delivery.public_id, len(files))
    return True


def _fail_build(app: App, delivery_id: int, campaign: Campaign, reason: str, *, now: datetime) -> None:
    with transaction(app.engine) as session:
        delivery = session.get(DeliveryRow, delivery_id)
        assert delivery is not None
        if delivery.lease_owner != app.worker_id:
            log.warning("delivery %s: build lease lost; another worker owns it", delivery.public_id)
            return
        delivery.status = move(delivery.public_id, delivery.status, DeliveryState.FAILED, doing="fail")
        delivery.error = reason
        delivery.lease_owner = delivery.lease_until = None
        audit.record(session, at=now, actor="system", action="delivery.build_failed",
                     campaign_id=delivery.campaign_id, subject=delivery.public_id, reason=reason)
        outbox.enqueue_alert(session, delivery_id=delivery_id, public_id=delivery.public_id,
                             sender=campaign.sender, organizers=campaign.organizers,
                             reason_key="build", reason=reason, now=now)
    log.error("delivery %s could not be built: %s", delivery.public_id, reason)


# A recipient whose e-mail was refused as too large gets e-mails of at most this share of it (and
# never under the smallest e-mail that carries the letter and the summary).
RECUT_SHARE = 0.5


def recut_refused(app: App, *, now: datetime) -> list[str]:
    """Each recipient whose e-mail was refused as too large in its first cut → its dossier built
    again in smaller e-mails (new Message-IDs) in place of the first cut's unsent ones, audited
    "delivery.recut"; the addresses done. One that cannot be cut smaller, or takes a download
    link, fails as any refusal does, and the organizers' alert names it."""
    from delivery.campaigns.config import MIN_MESSAGE_SIZE
    from delivery.errors import OversizedMessage
    from delivery.services.pipeline import recut_messages

    owner = f"{app.worker_id}#recut"
    with reading(app.engine) as session:
        due = outbox.recuts_due(session, now=now)
    done: list[str] = []
    for recut in due:
        with transaction(app.engine) as session:
            if not outbox.claim_recut(session, recut, owner=owner, now=now, lease=BUILD_LEASE):
                continue  # another instance has it
            delivery = session.get(DeliveryRow, recut.delivery_id)
            assert delivery is not None
            session.expunge(delivery)
            campaign = app.campaign_by_id(session, delivery.campaign_id)
            linked = session.scalar(select(LinkRow.id).where(
                LinkRow.delivery_id == recut.delivery_id, LinkRow.recipient == recut.recipient)) is not None
        limit = max(MIN_MESSAGE_SIZE, int(recut.refused_size * RECUT_SHARE))
        if linked or limit >= recut.refused_size:
            _fail_recut(app, campaign, delivery, recut, owner=owner, now=now,
                        why="the download link's e-mail was refused as too large" if linked else
                        f"it cannot be cut under {recut.refused_size:,} bytes")
            continue
        try:
            with _recut_lease_kept(app, recut, owner=owner, now=now):
                parts = recut_messages(app, campaign, delivery, recut.recipient, limit=limit, cut=recut.cut,
                                       now=now)
        except OversizedMessage as exc:
            _fail_recut(app, campaign, delivery, recut, owner=owner, now=now, why=str(exc))
            continue
        except DeliveryError as exc:  # the lease runs out and the next tick tries again
            log.error("delivery %s: %s could not be cut smaller: %s", delivery.public_id, recut.recipient,
                      safe_error(exc))
            continue
        with transaction(app.engine) as session:
            if not outbox.replace_cut(session, recut, owner=owner, parts=parts, now=now):
                continue
            audit.record(session, at=now, actor="system", action="delivery.recut",
                         campaign_id=delivery.campaign_id, subject=delivery.public_id,
                         recipient=recut.recipient, refused_bytes=recut.refused_size, limit=limit,
                         messages=len(parts))
        log.warning("delivery %s: %s refused a %d-byte e-mail as too large; sent again in %d e-mails of "
                    "at most %d bytes", delivery.public_id, recut.recipient, recut.refused_size, len(parts),
                    limit)
        done.append(recut.recipient)
    return done


def _recut_lease_kept(app: App, recut: outbox.Recut, *, owner: str,
                      now: datetime) -> contextlib.AbstractContextManager[None]:
    """The re-cut's hold renewed while its build runs (as a delivery's build lease is)."""
    def renew(until: datetime) -> None:
        with transaction(app.engine) as session:
            session.execute(update(MessageRow).where(
                MessageRow.id == recut.message_id, MessageRow.status == outbox.RECUT,
                MessageRow.lease_owner == owner[:100]).values(lease_until=until))

    return _heartbeat(f"recut-{recut.message_id}", renew, now=now)


def _fail_recut(app: App, campaign: Campaign, delivery: DeliveryRow, recut: outbox.Recut, *, owner: str,
                now: datetime, why: str) -> None:
    with transaction(app.engine) as session:
        if outbox.fail_recut(session, recut, owner=owner, why=why, now=now):
            outbox.alert_if_settled(session, delivery_id=delivery.id, public_id=delivery.public_id,
                                    sender=campaign.sender, organizers=campaign.organizers, now=now)
    log.error("delivery %s: %s refused the dossier as too large, and %s", delivery.public_id,
              recut.recipient, why)


def send_due(app: App, *, now: datetime) -> dict[str, int]:
    def sender_for(delivery_id: int) -> str:
        with transaction(app.engine) as session:
            row = session.get(DeliveryRow, delivery_id)
            assert row is not None
            return app.campaign_by_id(session, row.campaign_id).sender_address

    def organizers_for(delivery_id: int) -> Sequence[str]:
        with transaction(app.engine) as session:
            row = session.get(DeliveryRow, delivery_id)
            assert row is not None
            return app.campaign_by_id(session, row.campaign_id).organizers

    report = asyncio.run(outbox.send_due(app.engine, app.settings, sender_for=sender_for,
                                         organizers_for=organizers_for, now=now, worker_id=app.worker_id))
    if recut_refused(app, now=now):  # the smaller e-mails go at once
        again = asyncio.run(outbox.send_due(app.engine, app.settings, sender_for=sender_for,
                                            organizers_for=organizers_for, now=now, worker_id=app.worker_id))
        report = report.merged(again)
    settle_deliveries(app)
    return report.to_dict()


def settle_deliveries(app: App) -> None:
    """A sending delivery is done when every dossier message is sent, failed when any failed."""
    with transaction(app.engine) as session:
        for delivery in session.scalars(select(DeliveryRow).where(
                DeliveryRow.status == DeliveryState.SENDING)):
            states = set(session.scalars(select(MessageRow.status).where(
                MessageRow.delivery_id == delivery.id, MessageRow.kind == "dossier")))
            if states and states <= set(outbox.FINAL):
                outcome = DeliveryState.DONE if states - {"replaced"} == {"sent"} else DeliveryState.FAILED
                delivery.status = move(delivery.public_id, delivery.status, outcome, doing="settle")


def tick(app: App, campaign: Campaign, *, now: datetime, progress: Progress | None = None) -> TickReport:
    """One scheduler tick for one campaign: idempotent, safe on any number of instances."""
    count, reached, created = detect_milestones(app, campaign, now=now)
    report = TickReport(campaign=campaign.slug, signer_count=count, milestones=reached,
                        created=[created] if created else [])
    report.released = release_due_holds(app, campaign, now=now)
    while (delivery_id := claim_build(app, campaign, now=now)) is not None:
        with reading(app.engine) as session:
            public_id = session.get(DeliveryRow, delivery_id).public_id  # type: ignore[union-attr]
        (report.built if build_delivery(app, delivery_id, now=now, progress=progress)
         else report.build_failures).append(public_id)
    report.send = send_due(app, now=now)
    # The mailbox is the installation's, read by each campaign's tick: a reading finds only what
    # arrived since the last one, whichever campaign's tick made it.
    report.bounces = bounces.poll_bounces(app, now=now).to_dict()
    settle_deliveries(app)
    report.chased = links.chase(app, campaign, now=now)
    retention.apply_retention(app, campaign, now=now)  # the campaign's `retention`, once it is due
    return report


def create_manual(app: App, campaign: Campaign, *, now: datetime, to: Sequence[str] = (),
                  actor: str, request_key: str | None = None) -> DeliveryRef:
    """A manual delivery to all recipients or the named ones, created already claimed for building
    by this process (so no scheduler tick builds it first): then `build_and_send` it.

    `request_key` (1 to 64 characters; a fresh one when None, as for each CLI `send`) names the
    request: a second call with the same key in this campaign (a replay, a double click, at the
    same moment in another process too) creates nothing, whatever recipients it names, and returns
    the first call's delivery with `replayed` set; its caller must not build that one. The unique
    constraint on (campaign, key) decides, so two racing calls cannot both pass a look-up first.
    """
    recipients = pick_recipients(campaign, to)
    key = secrets.token_urlsafe(24) if request_key is None else request_key
    if not 0 < len(key) <= 64:
        raise UsageError("a send request's key has 1 to 64 characters")
    try:
        with transaction(app.engine) as session:
            campaign_id = app.campaign_id(session, campaign)
            delivery = _create_delivery(session, app, campaign, campaign_id, now=now, trigger="manual",
                                        milestone=None, recipients=recipients, actor=actor, hold_until=None,
                                        request_key=key)
            delivery.status = move(delivery.public_id, delivery.status, DeliveryState.BUILDING,
                                   doing="build")
            delivery.lease_owner, delivery.lease_until = app.worker_id, now + BUILD_LEASE
            return DeliveryRef(delivery.id, delivery.public_id)
    except IntegrityError:
        first = _replayed_request(app, campaign, key, now=now, actor=actor)
        if first is None:  # another constraint than the key's
            raise
        return first


def _replayed_request(app: App, campaign: Campaign, key: str, *, now: datetime,
                      actor: str) -> DeliveryRef | None:
    """The delivery an earlier request with this key made, the replay audited; None without one.

    The replay gets its own audit row: the log then shows that the second click or resubmission
    reached the service and that nothing was sent for it, instead of leaving an organizer's
    "I pressed Send twice" unanswerable; only a logged-in organizer's valid form can add one.
    """
    with transaction(app.engine) as session:
        campaign_id = app.campaign_id(session, campaign)
        first = session.scalar(select(DeliveryRow).where(DeliveryRow.campaign_id == campaign_id,
                                                         DeliveryRow.request_key == key))
        if first is None:
            return None
        audit.record(session, at=now, actor=actor, action="delivery.create_replayed", campaign_id=campaign_id,
                     subject=first.public_id, status=first.status)
        return DeliveryRef(first.id, first.public_id, replayed=True)


def build_and_send(app: App, delivery_id: int, *, now: datetime, progress: Progress | None = None) -> bool:
    """Build a delivery this process has claimed, then send what is due. False if the build failed."""
    if not build_delivery(app, delivery_id, now=now, progress=progress):
        return False
    send_due(app, now=now)
    return True


def send_now(app: App, campaign: Campaign, *, now: datetime, to: Sequence[str] = (), actor: str,
             progress: Progress | None = None) -> str:
    """A manual delivery, created, built and sent in this call (the CLI's `send`)."""
    ref = create_manual(app, campaign, now=now, to=to, actor=actor)
    build_and_send(app, ref.id, now=now, progress=progress)
    return ref.public_id


def pick_recipients(campaign: Campaign, to: Sequence[str]) -> list[Recipient]:
    if not to:
        return list(campaign.recipients)
    picked = []
    for address in to:
        try:
            picked.append(campaign.recipient(address))
        except KeyError:
            known = ", ".join(r.email for r in campaign.recipients)
            raise UsageError(f"'{address}' is not a recipient of {campaign.slug} "
                             f"(recipients: {known})") from None
    return picked


def find_delivery(session: Session, app: App, campaign: Campaign, ref: str) -> DeliveryRow:
    campaign_id = app.campaign_id(session, campaign)
    query = select(DeliveryRow).where(DeliveryRow.campaign_id == campaign_id)
    if re.fullmatch(r"[0-9]{1,9}", ref):
        query = query.where(DeliveryRow.id == int(ref))
    elif re.fullmatch(r"[A-Za-z0-9-]{1,40}", ref):
        query = query.where(DeliveryRow.public_id == ref)
    else:
        raise NotFound(f"'{ref}' is not a delivery id (as shown by `deliveries`)")
    delivery = session.scalar(query)
    if delivery is None:
        raise NotFound(f"no delivery '{ref}' in campaign {campaign.slug}")
    return delivery


def cancel(app: App, campaign: Campaign, ref: str, *, now: datetime, actor: str) -> str:
    with transaction(app.engine) as session:
        delivery = find_delivery(session, app, campaign, ref)
        delivery.status = move(delivery.public_id, delivery.status, DeliveryState.CANCELLED, doing="cancel")
        cancelled = outbox.cancel_delivery_messages(session, delivery.id, now)
        audit.record(session, at=now, actor=actor, action="delivery.cancel", campaign_id=delivery.campaign_id,
                     subject=delivery.public_id, messages_cancelled=cancelled)
        return delivery.public_id


def release(app: App, campaign: Campaign, ref: str, *, now: datetime, actor: str) -> str:
    with transaction(app.engine) as session:
        delivery = find_delivery(session, app, campaign, ref)
        if delivery.status != DeliveryState.HELD:
            raise StateConflict(f"delivery {delivery.public_id} is {delivery.status}, not held")
        delivery.status = move(delivery.public_id, delivery.status, DeliveryState.QUEUED, doing="release")
        delivery.hold_until = now
        audit.record(session, at=now, actor=actor, action="delivery.release",
                     campaign_id=delivery.campaign_id, subject=delivery.public_id)
        return delivery.public_id


def retry(app: App, campaign: Campaign, ref: str, *, now: datetime, actor: str) -> str:
    with transaction(app.engine) as session:
        delivery = find_delivery(session, app, campaign, ref)
        if delivery.status == DeliveryState.FAILED and delivery.built_at is None:
            # the build failed: build again
            delivery.status = move(delivery.public_id, delivery.status, DeliveryState.QUEUED, doing="retry")
            delivery.error = None
        elif delivery.status in (DeliveryState.FAILED, DeliveryState.SENDING):
            if outbox.retry_delivery(session, delivery.id, now) == 0:
                raise StateConflict(f"delivery {delivery.public_id} has no failed message to retry")
            if delivery.status == DeliveryState.FAILED:
                delivery.status = move(delivery.public_id, delivery.status, DeliveryState.SENDING,
                                       doing="retry")
        else:
            raise StateConflict(f"delivery {delivery.public_id} is {delivery.status}: nothing to retry")
        audit.record(session, at=now, actor=actor, action="delivery.retry",
                     campaign_id=delivery.campaign_id, subject=delivery.public_id)
        return delivery.public_id


ACTIONS: dict[str, Callable[..., str]] = {"cancel": cancel, "release": release, "retry": retry}


def change(app: App, campaign: Campaign, action: str, ref: str, *, now: datetime, actor: str) -> str:
    """An organizer's cancel, release or retry of a delivery → its public id (audited)."""
    try:
        fn = ACTIONS[action]
    except KeyError:
        raise UsageError(f"'{action}' is not one of {', '.join(ACTIONS)}") from None
    return fn(app, campaign, ref, now=now, actor=actor)


def needs_work_now(action: str) -> bool:
    """A release or a retry is followed at once by the tick's work (`tick`, idempotent), from the
    CLI and the web alike, instead of waiting for the scheduler's next check."""
    return action in ("release", "retry")
