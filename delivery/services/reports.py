"""Database → typed read models for `status` and `deliveries`: what the CLI prints and the web shows.

No signer data leaves through here: counts, countries and delivery facts only.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, select

from delivery.campaigns.config import Campaign
from delivery.campaigns.milestones import next_milestone
from delivery.mail.classify import queue_id
from delivery.mail.outbox import WAITING
from delivery.services.app import App
from delivery.services.links import LinkReport, iso_seconds, link_reports
from delivery.services.states import DeliveryState
from delivery.signers.store import count_signers
from delivery.storage.db import reading
from delivery.storage.models import (
    CampaignRow,
    DeliveryFileRow,
    DeliveryRow,
    MessageRow,
    MilestoneRow,
    SignerRow,
    SmtpPauseRow,
)


@dataclass(frozen=True)
class FileReport:
    name: str
    size: int
    sha256: str
    pages: int | None


@dataclass(frozen=True)
class MessageReport:
    recipient: str
    kind: str  # dossier | alert
    part: str  # "2/3"
    status: str  # a MessageState
    attempts: int
    last_answer: str | None
    next_attempt_at: str | None
    sent_at: str | None
    crash_resends: int
    message_id: str | None
    queue_id: str | None = None  # the accepting server's id for it, from its 250 answer
    # The last bounce read for it: "failed" (status bounced) or "delayed" (still sent), when,
    # its RFC 3463 status and the server's words
    bounce: str | None = None
    bounced_at: str | None = None
    bounce_status: str | None = None
    bounce_diagnostic: str | None = None
    link: LinkReport | None = None  # the download page this e-mail carries, when it is a link
    cut: int = 0  # 1: the recipient's dossier cut again in smaller e-mails after a "too large"


@dataclass(frozen=True)
class DeliveryReport:
    id: str
    trigger: str
    milestone: int | None
    status: str  # a DeliveryState
    created_at: str
    created_by: str
    hold_until: str | None
    signer_count: int
    recipients: list[str]
    error: str | None
    files: list[FileReport]
    messages: list[MessageReport]

    @property
    def dossier_messages(self) -> list[MessageReport]:
        return [m for m in self.messages if m.kind == "dossier"]

    @property
    def alert_messages(self) -> list[MessageReport]:
        return [m for m in self.messages if m.kind != "dossier"]

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class MilestoneReached:
    threshold: int
    reached_at: str
    delivery: str | None


@dataclass(frozen=True)
class CountryCount:
    country: str
    signers: int


@dataclass(frozen=True)
class PauseReport:
    account: str
    since: str
    reason: str


@dataclass(frozen=True)
class CampaignStatus:
    campaign: str
    title: str
    signers: int
    goal: int
    percent: float
    milestones_reached: list[MilestoneReached]
    next_milestone: int | None
    # Passed but not yet recorded: the next scheduler tick creates their delivery.
    milestones_pending: list[int]
    top_countries: list[CountryCount]
    smtp_paused: list[PauseReport]
    deliveries: list[DeliveryReport]

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def status(app: App, campaign: Campaign, *, now: datetime) -> CampaignStatus:
    with reading(app.engine) as session:
        campaign_id = app.campaign_id(session, campaign)
        count = count_signers(session, campaign_id)
        reached = session.execute(select(MilestoneRow.threshold, MilestoneRow.reached_at,
                                         DeliveryRow.public_id)
                                  .join(DeliveryRow, MilestoneRow.delivery_id == DeliveryRow.id, isouter=True)
                                  .where(MilestoneRow.campaign_id == campaign_id)
                                  .order_by(MilestoneRow.threshold)).all()
        by_country = session.execute(
            select(SignerRow.country, func.count()).where(
                SignerRow.campaign_id == campaign_id, SignerRow.withdrawn_at.is_(None))
            .group_by(SignerRow.country).order_by(func.count().desc(), SignerRow.country).limit(10)).all()
        pauses = session.execute(select(SmtpPauseRow.account, SmtpPauseRow.since, SmtpPauseRow.reason)).all()
    recorded = {t for t, _, _ in reached}
    return CampaignStatus(
        campaign=campaign.slug, title=campaign.title, signers=count, goal=campaign.goal,
        percent=round(100 * count / campaign.goal, 1),
        milestones_reached=[MilestoneReached(t, at.isoformat(timespec="seconds"), d) for t, at, d in reached],
        next_milestone=next_milestone(count, campaign.thresholds),
        milestones_pending=[t for t in campaign.thresholds if t <= count and t not in recorded],
        top_countries=[CountryCount(c, n) for c, n in by_country],
        smtp_paused=[PauseReport(a, s.isoformat(timespec="seconds"), r) for a, s, r in pauses],
        deliveries=deliveries(app, campaign, limit=10, now=now))


def deliveries(app: App, campaign: Campaign, *, now: datetime, limit: int | None = None,
               public_id: str | None = None) -> list[DeliveryReport]:
    """The campaign's deliveries, newest first (only `public_id`'s, when given); a download
    link's state (open, expired) as of `now`, the service's clock."""
    with reading(app.engine) as session:
        campaign_id = app.campaign_id(session, campaign)
        query = (select(DeliveryRow).where(DeliveryRow.campaign_id == campaign_id)
                 .order_by(DeliveryRow.id.desc()))
        if public_id is not None:
            query = query.where(DeliveryRow.public_id == public_id)
        rows = list(session.scalars(query.limit(limit) if limit else query))
        ids = [r.id for r in rows]
        files: dict[int, list[FileReport]] = {i: [] for i in ids}
        for f in session.execute(select(DeliveryFileRow.delivery_id, DeliveryFileRow.name,
                                        DeliveryFileRow.size, DeliveryFileRow.sha256, DeliveryFileRow.pages)
                                 .where(DeliveryFileRow.delivery_id.in_(ids)).order_by(DeliveryFileRow.id)):
            files[f.delivery_id].append(FileReport(f.name, f.size, f.sha256, f.pages))
        messages: dict[int, list[MessageReport]] = {i: [] for i in ids}
        links = link_reports(session, ids, now=now)
        # not the e-mails' bytes (MessageRow.body, loaded only when read): a status needs none of
        # them (hundreds of MB at a million signers)
        for m in session.scalars(select(MessageRow)
                                 .where(MessageRow.delivery_id.in_(ids))
                                 .order_by(MessageRow.kind.desc(), MessageRow.recipient, MessageRow.cut,
                                           MessageRow.part)):
            messages[m.delivery_id].append(MessageReport(
                recipient=m.recipient, kind=m.kind, part=f"{m.part}/{m.parts}", status=m.status,
                attempts=m.attempts, last_answer=_answer(m.last_code, m.last_answer),
                next_attempt_at=iso_seconds(m.next_attempt_at) if m.status in WAITING else None,
                sent_at=iso_seconds(m.sent_at), crash_resends=m.crash_resends, message_id=m.message_id,
                queue_id=queue_id(m.last_answer or "") if m.status in ("sent", "bounced") else None,
                bounce=m.bounce_kind, bounced_at=iso_seconds(m.bounced_at), bounce_status=m.bounce_status,
                bounce_diagnostic=m.bounce_diagnostic,
                link=links.get((m.delivery_id, m.recipient)) if m.kind == "dossier" else None, cut=m.cut))
    return [DeliveryReport(
        id=r.public_id, trigger=r.trigger, milestone=r.milestone, status=r.status,
        created_at=r.created_at.isoformat(timespec="seconds"), created_by=r.created_by,
        hold_until=iso_seconds(r.hold_until), signer_count=r.signer_count,
        recipients=json.loads(r.recipients),
        error=r.error, files=files[r.id], messages=messages[r.id],
    ) for r in rows]


def delivery(app: App, campaign: Campaign, public_id: str, *, now: datetime) -> DeliveryReport | None:
    found = deliveries(app, campaign, public_id=public_id, now=now)
    return found[0] if found else None


@dataclass(frozen=True)
class StuckBuild:
    campaign: str
    delivery: str
    lease_until: str


@dataclass(frozen=True)
class Attention:
    """What needs a person although the service runs: for `/healthz` and monitoring."""

    stuck_builds: list[StuckBuild]  # building, but the builder's lease ran out
    smtp_paused: list[PauseReport]

    @property
    def problems(self) -> list[str]:
        return ([f"delivery {b.delivery} ({b.campaign}) has been building without a live builder since "
                 f"{b.lease_until}; the next tick takes it over" for b in self.stuck_builds]
                + [f"sending through {p.account} is paused since {p.since} ({p.reason}): fix the "
                   "password, then run `petition-delivery smtp resume` or press Resume sending"
                   for p in self.smtp_paused])

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def attention(app: App, *, now: datetime) -> Attention:
    with reading(app.engine) as session:
        stuck = session.execute(
            select(CampaignRow.slug, DeliveryRow.public_id, DeliveryRow.lease_until)
            .join(CampaignRow, CampaignRow.id == DeliveryRow.campaign_id)
            .where(DeliveryRow.status == DeliveryState.BUILDING, DeliveryRow.lease_until < now)
            .order_by(DeliveryRow.id)).all()
        pauses = session.execute(select(SmtpPauseRow.account, SmtpPauseRow.since, SmtpPauseRow.reason)).all()
    return Attention(
        stuck_builds=[StuckBuild(slug, public_id, iso_seconds(until) or "")
                      for slug, public_id, until in stuck],
        smtp_paused=[PauseReport(a, s.isoformat(timespec="seconds"), r) for a, s, r in pauses])


def _answer(code: int | None, text: str | None) -> str | None:
    if code is None and not text:
        return None
    return f"{code or ''} {text or ''}".strip()


def export_files(app: App, campaign: Campaign, target: Path) -> None:
    """Every delivery's bundle files, as sent, under target/<dossier id>/."""
    with reading(app.engine) as session:
        campaign_id = app.campaign_id(session, campaign)
        for public_id, name, content in session.execute(
                select(DeliveryRow.public_id, DeliveryFileRow.name, DeliveryFileRow.content)
                .join(DeliveryFileRow, DeliveryFileRow.delivery_id == DeliveryRow.id)
                .where(DeliveryRow.campaign_id == campaign_id)):
            (target / public_id).mkdir(parents=True, exist_ok=True)
            (target / public_id / name).write_bytes(content)
