"""Database → what the admin pages show beyond reports.status/deliveries (read only).

Signers come out as name, city, country and dates: never an e-mail or its key.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from delivery.storage.models import AuditRow, CampaignRow, DeliveryFileRow, DeliveryRow, SignerRow

SEARCH_LIMIT = 50
AUDIT_PAGE = 100


@dataclass(frozen=True)
class FileContent:
    name: str
    kind: str
    data: bytes


def growth(session: Session, campaign_id: int) -> list[tuple[date, int]]:
    """Cumulative active signers at the end of each day that had signatures (UTC days)."""
    day = func.date(SignerRow.signed_at)
    rows = session.execute(select(day, func.count()).where(
        SignerRow.campaign_id == campaign_id, SignerRow.withdrawn_at.is_(None))
        .group_by(day).order_by(day)).all()
    out, total = [], 0
    for value, count in rows:
        total += count
        out.append((value if isinstance(value, date) else date.fromisoformat(str(value)), total))
    return out


def countries(session: Session, campaign_id: int) -> list[tuple[str, int]]:
    return [(c, n) for c, n in session.execute(
        select(SignerRow.country, func.count()).where(
            SignerRow.campaign_id == campaign_id, SignerRow.withdrawn_at.is_(None))
        .group_by(SignerRow.country).order_by(func.count().desc(), SignerRow.country)).all()]


def search_signers(session: Session, campaign_id: int, text: str) -> list[dict[str, Any]]:
    """Signers whose name contains `text` (case-insensitive), newest first, at most SEARCH_LIMIT."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    rows = session.execute(select(SignerRow.id, SignerRow.name, SignerRow.city, SignerRow.country,
                                  SignerRow.signed_at, SignerRow.consent, SignerRow.withdrawn_at)
                           .where(SignerRow.campaign_id == campaign_id,
                                  SignerRow.name.ilike(f"%{escaped}%", escape="\\"))
                           .order_by(SignerRow.id.desc()).limit(SEARCH_LIMIT)).all()
    return [{"id": r.id, "name": r.name, "city": r.city, "country": r.country, "signed_at": r.signed_at,
             "consent": r.consent, "withdrawn_at": r.withdrawn_at} for r in rows]


def withdrawn_count(session: Session, campaign_id: int) -> int:
    return session.scalar(select(func.count()).select_from(SignerRow).where(
        SignerRow.campaign_id == campaign_id, SignerRow.withdrawn_at.is_not(None))) or 0


def audit_page(session: Session, *, campaign_id: int | None, before: int | None) -> list[dict[str, Any]]:
    """The newest audit rows (of this campaign and of none), AUDIT_PAGE at a time, older than `before`."""
    query = select(AuditRow, CampaignRow.slug).join(CampaignRow, AuditRow.campaign_id == CampaignRow.id,
                                                     isouter=True)
    if campaign_id is not None:
        query = query.where((AuditRow.campaign_id == campaign_id) | AuditRow.campaign_id.is_(None))
    if before is not None:
        query = query.where(AuditRow.id < before)
    rows = session.execute(query.order_by(AuditRow.id.desc()).limit(AUDIT_PAGE)).all()
    return [{"id": a.id, "at": a.at, "actor": a.actor, "action": a.action, "subject": a.subject,
             "campaign": slug, "detail": _detail(a.detail)} for a, slug in rows]


def _detail(text: str) -> str:
    try:
        data = json.loads(text)
    except ValueError:
        return text
    if not isinstance(data, dict):
        return text
    return ", ".join(f"{k}={v}" for k, v in data.items())


def delivery_file(session: Session, campaign_id: int, public_id: str, name: str) -> FileContent | None:
    row = session.execute(select(DeliveryFileRow.name, DeliveryFileRow.kind, DeliveryFileRow.content)
                          .join(DeliveryRow, DeliveryFileRow.delivery_id == DeliveryRow.id)
                          .where(DeliveryRow.campaign_id == campaign_id, DeliveryRow.public_id == public_id,
                                 DeliveryFileRow.name == name)).first()
    return FileContent(row.name, row.kind, row.content) if row else None


def latest_delivery_by(session: Session, campaign_id: int, actor: str, after_id: int) -> str | None:
    return session.scalar(select(DeliveryRow.public_id).where(
        DeliveryRow.campaign_id == campaign_id, DeliveryRow.created_by == actor, DeliveryRow.id > after_id)
        .order_by(DeliveryRow.id.desc()).limit(1))


def max_delivery_id(session: Session) -> int:
    return session.scalar(select(func.max(DeliveryRow.id))) or 0


def as_datetime(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "–"
