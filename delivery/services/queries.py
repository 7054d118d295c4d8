"""App + campaign → what the admin pages show beyond reports.status/deliveries (read only).

Signers come out as name, city, country and dates: never an e-mail or its key.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, select

from delivery.campaigns.config import Campaign
from delivery.services.app import App
from delivery.storage.db import reading
from delivery.storage.models import AuditRow, CampaignRow, DeliveryFileRow, DeliveryRow, SignerRow

SEARCH_LIMIT = 50
AUDIT_PAGE = 100


@dataclass(frozen=True)
class FileContent:
    name: str
    kind: str
    data: bytes


@dataclass(frozen=True)
class SignerMatch:
    id: int
    name: str
    city: str
    country: str
    signed_at: datetime
    consent: bool
    withdrawn_at: datetime | None


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: str
    subject: str
    campaign: str | None
    detail: str


def growth(app: App, campaign: Campaign) -> list[tuple[date, int]]:
    """Cumulative active signers at the end of each day that had signatures (UTC days)."""
    day = func.date(SignerRow.signed_at)
    with reading(app.engine) as session:
        rows = session.execute(select(day, func.count()).where(
            SignerRow.campaign_id == app.campaign_id(session, campaign), SignerRow.withdrawn_at.is_(None))
            .group_by(day).order_by(day)).all()
    out, total = [], 0
    for value, count in rows:
        total += count
        out.append((value if isinstance(value, date) else date.fromisoformat(str(value)), total))
    return out


def countries(app: App, campaign: Campaign) -> list[tuple[str, int]]:
    with reading(app.engine) as session:
        return [(c, n) for c, n in session.execute(
            select(SignerRow.country, func.count()).where(
                SignerRow.campaign_id == app.campaign_id(session, campaign), SignerRow.withdrawn_at.is_(None))
            .group_by(SignerRow.country).order_by(func.count().desc(), SignerRow.country)).all()]


def search_signers(app: App, campaign: Campaign, text: str) -> list[SignerMatch]:
    """Signers whose name contains `text` (case-insensitive), newest first, at most SEARCH_LIMIT."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    with reading(app.engine) as session:
        rows = session.execute(select(SignerRow.id, SignerRow.name, SignerRow.city, SignerRow.country,
                                      SignerRow.signed_at, SignerRow.consent, SignerRow.withdrawn_at)
                               .where(SignerRow.campaign_id == app.campaign_id(session, campaign),
                                      SignerRow.name.ilike(f"%{escaped}%", escape="\\"))
                               .order_by(SignerRow.id.desc()).limit(SEARCH_LIMIT)).all()
    return [SignerMatch(r.id, r.name, r.city, r.country, r.signed_at, r.consent, r.withdrawn_at)
            for r in rows]


def withdrawn_count(app: App, campaign: Campaign) -> int:
    with reading(app.engine) as session:
        return session.scalar(select(func.count()).select_from(SignerRow).where(
            SignerRow.campaign_id == app.campaign_id(session, campaign),
            SignerRow.withdrawn_at.is_not(None))) or 0


def audit_page(app: App, campaign: Campaign | None, *, before: int | None) -> list[AuditEntry]:
    """The newest audit rows (of this campaign and of none), AUDIT_PAGE at a time, older than `before`."""
    query = select(AuditRow, CampaignRow.slug).join(CampaignRow, AuditRow.campaign_id == CampaignRow.id,
                                                     isouter=True)
    with reading(app.engine) as session:
        if campaign is not None:
            campaign_id = app.campaign_id(session, campaign)
            query = query.where((AuditRow.campaign_id == campaign_id) | AuditRow.campaign_id.is_(None))
        if before is not None:
            query = query.where(AuditRow.id < before)
        rows = session.execute(query.order_by(AuditRow.id.desc()).limit(AUDIT_PAGE)).all()
        return [AuditEntry(a.id, a.at, a.actor, a.action, a.subject, slug, _detail(a.detail))
                for a, slug in rows]


def _detail(text: str) -> str:
    try:
        data = json.loads(text)
    except ValueError:
        return text
    if not isinstance(data, dict):
        return text
    return ", ".join(f"{k}={v}" for k, v in data.items())


def delivery_file(app: App, campaign: Campaign, public_id: str, name: str) -> FileContent | None:
    with reading(app.engine) as session:
        row = session.execute(select(DeliveryFileRow.name, DeliveryFileRow.kind, DeliveryFileRow.content)
                              .join(DeliveryRow, DeliveryFileRow.delivery_id == DeliveryRow.id)
                              .where(DeliveryRow.campaign_id == app.campaign_id(session, campaign),
                                     DeliveryRow.public_id == public_id,
                                     DeliveryFileRow.name == name)).first()
    return FileContent(row.name, row.kind, row.content) if row else None
