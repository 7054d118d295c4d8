"""A download page's token → what the page shows, the files it gives, and the downloads and
acknowledgement it records; organizers' extend and revoke.

The token is in the recipient's e-mail only; the database keeps its SHA-256 (LinkRow), so a
copy of the database opens no page. Opening the page (`open_page`) changes nothing: mail
security scanners fetch every link in an office's inbox before a person sees it. A download and
the acknowledgement are POSTs, each recorded with the time, the file and the browser's name for
itself, never its address. Downloads through one link are limited per hour, counted in the
database so that every `serve` instance applies the same limit.
"""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import Select, and_, exists, func, select
from sqlalchemy.orm import Session

from delivery.artifacts import MANIFEST_KINDS
from delivery.campaigns.config import Campaign
from delivery.errors import DeliveryError, NotFound, StateConflict
from delivery.mail import outbox
from delivery.services.app import App
from delivery.storage import audit
from delivery.storage.db import reading, transaction
from delivery.storage.models import DeliveryFileRow, DeliveryRow, DownloadRow, LinkRow, MessageRow

DOWNLOADS_PER_HOUR = 60
USER_AGENT_LIMIT = 300
ZIP_SUFFIX = ".zip"
MAX_EXTENSION = timedelta(days=3650)
LINK_PATH = "/d/"  # the page's address under DELIVERY_PUBLIC_URL (delivery.logs hides the token)


class LinkState(StrEnum):
    OPEN = "open"
    EXPIRED = "expired"
    REVOKED = "revoked"


class LinkUnavailable(DeliveryError):
    """The page is not there (unknown token) or no longer gives files (expired, revoked)."""

    def __init__(self, state: LinkState | None, *, since: datetime | None = None) -> None:
        self.state = state  # None: no such link
        self.since = since
        super().__init__(f"download link {state or 'unknown'}")


class TooManyDownloads(DeliveryError):
    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after
        super().__init__(f"too many downloads through this link; try again in {retry_after} s")


@dataclass(frozen=True)
class PageFile:
    name: str
    size: int
    sha256: str
    pages: int | None


@dataclass(frozen=True)
class Page:
    """What the download page shows."""

    campaign: str
    dossier_id: str
    recipient: str
    language: str
    signer_count: int
    expires_at: datetime
    acknowledged_at: datetime | None
    files: list[PageFile]

    @property
    def zip_name(self) -> str:
        return f"{self.dossier_id}{ZIP_SUFFIX}"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def link_url(public_url: str, token: str) -> str:
    return f"{public_url}{LINK_PATH}{token}"


def link_state(link: LinkRow, now: datetime) -> LinkState:
    if link.revoked_at is not None:
        return LinkState.REVOKED
    return LinkState.OPEN if now < link.expires_at else LinkState.EXPIRED


def _link(session: Session, token: str, *, lock: bool = False) -> LinkRow:
    # a token is at most 43 characters of base64url; anything else is no token of ours
    if not 20 <= len(token) <= 64:
        raise LinkUnavailable(None)
    query = select(LinkRow).where(LinkRow.token_hash == token_hash(token))
    link = session.scalar(query.with_for_update() if lock else query)
    if link is None:
        raise LinkUnavailable(None)
    return link


def _open(session: Session, token: str, now: datetime, *, lock: bool = False) -> LinkRow:
    link = _link(session, token, lock=lock)
    state = link_state(link, now)
    if state is not LinkState.OPEN:
        raise LinkUnavailable(state, since=link.revoked_at or link.expires_at)
    return link


def open_page(app: App, token: str, *, now: datetime) -> Page:
    """What the page shows; LinkUnavailable when it shows nothing. Records nothing."""
    with reading(app.engine) as session:
        link = _open(session, token, now)
        delivery = session.get(DeliveryRow, link.delivery_id)
        assert delivery is not None
        campaign = app.campaign_by_id(session, delivery.campaign_id)
        language = campaign.recipient(link.recipient).language
        files = [PageFile(f.name, f.size, f.sha256, f.pages) for f in session.execute(
            _files_query(link, language).with_only_columns(
                DeliveryFileRow.name, DeliveryFileRow.size, DeliveryFileRow.sha256, DeliveryFileRow.pages))]
        return Page(campaign=campaign.text(language).title, dossier_id=delivery.public_id,
                    recipient=link.recipient, language=language, signer_count=delivery.signer_count,
                    expires_at=link.expires_at, acknowledged_at=link.acknowledged_at, files=files)


def page_language(app: App, token: str) -> str | None:
    """The recipient's language, for the page that says a link is unavailable."""
    with reading(app.engine) as session:
        try:
            link = _link(session, token)
        except LinkUnavailable:
            return None
        delivery = session.get(DeliveryRow, link.delivery_id)
        assert delivery is not None
        try:
            return app.campaign_by_id(session, delivery.campaign_id).recipient(link.recipient).language
        except KeyError:
            return None


def _files_query(link: LinkRow, language: str) -> Select[DeliveryFileRow]:
    """The recipient's files: its edition's PDFs and the shared ones (manifest, signature); the
    letter alone is in its e-mail already."""
    shared = DeliveryFileRow.kind.in_(MANIFEST_KINDS)
    edition = (DeliveryFileRow.kind == "pdf") & (DeliveryFileRow.language == language)
    return (select(DeliveryFileRow).where(DeliveryFileRow.delivery_id == link.delivery_id, shared | edition)
            .order_by(shared, DeliveryFileRow.part, DeliveryFileRow.id))


def _record(session: Session, link: LinkRow, file: str, user_agent: str, now: datetime) -> None:
    recent = session.scalar(select(func.count()).select_from(DownloadRow).where(
        DownloadRow.link_id == link.id, DownloadRow.at > now - timedelta(hours=1))) or 0
    if recent >= DOWNLOADS_PER_HOUR:
        oldest = session.scalar(select(func.min(DownloadRow.at)).where(
            DownloadRow.link_id == link.id, DownloadRow.at > now - timedelta(hours=1)))
        wait = (oldest + timedelta(hours=1) - now).total_seconds() if oldest else 3600
        raise TooManyDownloads(max(1, int(wait)))
    session.add(DownloadRow(link_id=link.id, at=now, file=file[:200],
                            user_agent=(user_agent or "-")[:USER_AGENT_LIMIT]))


def download(app: App, token: str, name: str, *, user_agent: str, now: datetime) -> tuple[str, bytes]:
    """One file of the page, recorded; NotFound when the page has no file of that name."""
    with transaction(app.engine) as session:
        link = _open(session, token, now, lock=True)
        language = _language(app, session, link)
        row = session.scalar(_files_query(link, language).where(DeliveryFileRow.name == name))
        if row is None:
            raise NotFound(f"no file named {name[:100]} on this page")
        _record(session, link, row.name, user_agent, now)
        return row.name, row.content


def download_all(app: App, token: str, *, user_agent: str, now: datetime) -> tuple[str, Iterator[bytes]]:
    """(file name, chunks) of one ZIP of every file of the page, recorded as one download. The
    ZIP is written as it is sent, one file in memory at a time (stored: PDFs do not compress)."""
    with transaction(app.engine) as session:
        link = _open(session, token, now, lock=True)
        language = _language(app, session, link)
        delivery = session.get(DeliveryRow, link.delivery_id)
        assert delivery is not None
        ids = list(session.scalars(_files_query(link, language).with_only_columns(DeliveryFileRow.id)))
        name = f"{delivery.public_id}{ZIP_SUFFIX}"
        _record(session, link, name, user_agent, now)
    return name, _zip_chunks(app, ids)


class _Chunks:
    """A write-only stream whose writes are collected and handed out in chunks."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.offset = 0

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        self.offset += len(data)
        return len(data)

    def tell(self) -> int:
        return self.offset

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def take(self) -> bytes:
        out = b"".join(self.parts)
        self.parts.clear()
        return out


def _zip_chunks(app: App, ids: list[int]) -> Iterator[bytes]:
    stream = _Chunks()
    with zipfile.ZipFile(stream, "w", compression=zipfile.ZIP_STORED) as archive:
        for file_id in ids:
            with reading(app.engine) as session:
                row = session.get(DeliveryFileRow, file_id)
                assert row is not None
                name, content = row.name, row.content
            archive.writestr(name, content)
            yield stream.take()
    yield stream.take()


def acknowledge(app: App, token: str, *, user_agent: str, now: datetime) -> datetime:
    """The recipient confirms receipt: recorded once (a second press keeps the first time)."""
    with transaction(app.engine) as session:
        link = _open(session, token, now, lock=True)
        if link.acknowledged_at is None:
            link.acknowledged_at = now
            delivery = session.get(DeliveryRow, link.delivery_id)
            assert delivery is not None
            audit.record(session, at=now, actor=f"recipient {link.recipient}", action="link.acknowledged",
                         campaign_id=delivery.campaign_id, subject=delivery.public_id,
                         user_agent=(user_agent or "-")[:USER_AGENT_LIMIT])
        return link.acknowledged_at


def _language(app: App, session: Session, link: LinkRow) -> str:
    delivery = session.get(DeliveryRow, link.delivery_id)
    assert delivery is not None
    return app.campaign_by_id(session, delivery.campaign_id).recipient(link.recipient).language


# --- organizers -------------------------------------------------------------------------------

def _organizer_link(session: Session, app: App, campaign: Campaign, ref: str, recipient: str) -> tuple[
        DeliveryRow, LinkRow]:
    delivery = session.scalar(select(DeliveryRow).where(
        DeliveryRow.public_id == ref, DeliveryRow.campaign_id == app.campaign_id(session, campaign)))
    if delivery is None:
        raise NotFound(f"no delivery {ref[:40]} in campaign {campaign.slug}")
    link = session.scalar(select(LinkRow).where(LinkRow.delivery_id == delivery.id,
                                                func.lower(LinkRow.recipient) == recipient.strip().lower())
                          .with_for_update())
    if link is None:
        raise NotFound(f"delivery {ref[:40]} sent no download link to {recipient[:100]}")
    return delivery, link


def extend(app: App, campaign: Campaign, ref: str, recipient: str, *, by: timedelta, now: datetime,
           actor: str) -> datetime:
    """The link works `by` longer (from its expiry, or from now when it has expired)."""
    if not timedelta(days=1) <= by <= MAX_EXTENSION:
        raise StateConflict("a link is extended by 1 to 3650 days")
    with transaction(app.engine) as session:
        delivery, link = _organizer_link(session, app, campaign, ref, recipient)
        if link.revoked_at is not None:
            raise StateConflict(f"the link to {link.recipient} was revoked: it cannot be extended")
        before = link.expires_at
        link.expires_at = max(link.expires_at, now) + by
        audit.record(session, at=now, actor=actor, action="link.extend", campaign_id=delivery.campaign_id,
                     subject=delivery.public_id, recipient=link.recipient,
                     expires_before=before.isoformat(timespec="seconds"),
                     expires_after=link.expires_at.isoformat(timespec="seconds"))
        return link.expires_at


def revoke(app: App, campaign: Campaign, ref: str, recipient: str, *, now: datetime, actor: str) -> None:
    """The link gives nothing more, for good."""
    with transaction(app.engine) as session:
        delivery, link = _organizer_link(session, app, campaign, ref, recipient)
        if link.revoked_at is not None:
            raise StateConflict(f"the link to {link.recipient} is already revoked")
        link.revoked_at = now
        audit.record(session, at=now, actor=actor, action="link.revoke", campaign_id=delivery.campaign_id,
                     subject=delivery.public_id, recipient=link.recipient)


def chase(app: App, campaign: Campaign, *, now: datetime) -> list[str]:
    """One reminder to the organizers for each link recipient who, the campaign's `chase_after`
    after its e-mail was accepted, has neither downloaded anything nor confirmed receipt → the
    deliveries reminded about. The reminder and its mark are one transaction: never twice."""
    if campaign.chase_after is None:
        return []
    reminded = []
    with transaction(app.engine) as session:
        campaign_id = app.campaign_id(session, campaign)
        unused = session.execute(
            select(LinkRow, DeliveryRow.public_id, MessageRow.sent_at)
            .join(DeliveryRow, DeliveryRow.id == LinkRow.delivery_id)
            .join(MessageRow, and_(MessageRow.delivery_id == LinkRow.delivery_id,
                                   MessageRow.recipient == LinkRow.recipient, MessageRow.kind == "dossier"))
            .where(DeliveryRow.campaign_id == campaign_id, LinkRow.chased_at.is_(None),
                   LinkRow.revoked_at.is_(None), LinkRow.acknowledged_at.is_(None),
                   MessageRow.status == "sent", MessageRow.sent_at <= now - campaign.chase_after,
                   ~exists().where(DownloadRow.link_id == LinkRow.id))
            .order_by(LinkRow.id).with_for_update(of=LinkRow, skip_locked=True)).all()
        for link, public_id, sent_at in unused:
            assert sent_at is not None  # a sent message has its time
            link.chased_at = now
            days = (now - sent_at).days
            reason = (f"{link.recipient} has neither downloaded the dossier nor confirmed receipt "
                      f"since its e-mail was accepted on {sent_at:%Y-%m-%d} ({days} days ago). Check "
                      "with the office that the e-mail arrived (a spam folder, a filter), or send "
                      "the dossier again; the link works until "
                      f"{link.expires_at:%Y-%m-%d} and can be extended on the delivery's page.")
            outbox.enqueue_alert(session, delivery_id=link.delivery_id, public_id=public_id,
                                 sender=campaign.sender, organizers=campaign.organizers,
                                 reason_key=f"unanswered-{link.id}", reason=reason, now=now,
                                 part=outbox.chase_alert_part(link.id))
            audit.record(session, at=now, actor="scheduler", action="link.chased", campaign_id=campaign_id,
                         subject=public_id, recipient=link.recipient)
            reminded.append(public_id)
    return reminded


@dataclass(frozen=True)
class LinkReport:
    """A recipient's download page as the delivery log shows it."""

    expires_at: str
    state: str  # a LinkState
    downloads: int
    first_download_at: str | None
    last_download_at: str | None
    acknowledged_at: str | None


def link_reports(session: Session, delivery_ids: list[int], *,
                 now: datetime) -> dict[tuple[int, str], LinkReport]:
    """Each link of these deliveries, by (delivery id, recipient)."""
    links = list(session.scalars(select(LinkRow).where(LinkRow.delivery_id.in_(delivery_ids))))
    counts = {link_id: (n, first, last) for link_id, n, first, last in session.execute(
        select(DownloadRow.link_id, func.count(), func.min(DownloadRow.at), func.max(DownloadRow.at))
        .where(DownloadRow.link_id.in_([link.id for link in links])).group_by(DownloadRow.link_id))}
    out = {}
    for link in links:
        n, first, last = counts.get(link.id, (0, None, None))
        out[(link.delivery_id, link.recipient)] = LinkReport(
            expires_at=iso_seconds(link.expires_at) or "", state=link_state(link, now).value, downloads=n,
            first_download_at=iso_seconds(first), last_download_at=iso_seconds(last),
            acknowledged_at=iso_seconds(link.acknowledged_at))
    return out


def iso_seconds(value: datetime | None) -> str | None:
    """A time as the reports give it (ISO 8601, to the second), or None."""
    return value.isoformat(timespec="seconds") if value is not None else None
