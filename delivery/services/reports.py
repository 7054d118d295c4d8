"""Database → plain dicts for `status` and `deliveries`: what the CLI prints and the web shows.

No signer data leaves through here: counts, countries and delivery facts only.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from delivery.campaigns.config import Campaign
from delivery.campaigns.milestones import next_milestone
from delivery.services.app import App
from delivery.signers.store import count_signers
from delivery.storage.db import reading
from delivery.storage.models import (
    DeliveryFileRow,
    DeliveryRow,
    MessageRow,
    MilestoneRow,
    SignerRow,
    SmtpPauseRow,
)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value else None


def status(app: App, campaign: Campaign) -> dict[str, Any]:
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
    recent = deliveries(app, campaign, limit=10)
    return {
        "campaign": campaign.slug,
        "title": campaign.title,
        "signers": count,
        "goal": campaign.goal,
        "percent": round(100 * count / campaign.goal, 1),
        "milestones_reached": [{"threshold": t, "reached_at": _iso(at), "delivery": d}
                               for t, at, d in reached],
        "next_milestone": next_milestone(count, campaign.thresholds),
        # Passed but not yet recorded: the next scheduler tick creates their delivery.
        "milestones_pending": [t for t in campaign.thresholds
                               if t <= count and t not in {r[0] for r in reached}],
        "top_countries": [{"country": c, "signers": n} for c, n in by_country],
        "smtp_paused": [{"account": a, "since": _iso(s), "reason": r} for a, s, r in pauses],
        "deliveries": recent,
    }


def deliveries(app: App, campaign: Campaign, *, limit: int | None = None) -> list[dict[str, Any]]:
    with reading(app.engine) as session:
        campaign_id = app.campaign_id(session, campaign)
        query = (select(DeliveryRow).where(DeliveryRow.campaign_id == campaign_id)
                 .order_by(DeliveryRow.id.desc()))
        rows = list(session.scalars(query.limit(limit) if limit else query))
        ids = [r.id for r in rows]
        files: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
        for f in session.execute(select(DeliveryFileRow.delivery_id, DeliveryFileRow.name,
                                        DeliveryFileRow.size, DeliveryFileRow.sha256, DeliveryFileRow.pages)
                                 .where(DeliveryFileRow.delivery_id.in_(ids)).order_by(DeliveryFileRow.id)):
            files[f.delivery_id].append({"name": f.name, "size": f.size, "sha256": f.sha256,
                                         "pages": f.pages})
        messages: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
        for m in session.scalars(select(MessageRow).where(MessageRow.delivery_id.in_(ids))
                                 .order_by(MessageRow.kind.desc(), MessageRow.recipient, MessageRow.part)):
            messages[m.delivery_id].append({
                "recipient": m.recipient, "kind": m.kind, "part": f"{m.part}/{m.parts}", "status": m.status,
                "attempts": m.attempts, "last_answer": _answer(m.last_code, m.last_answer),
                "next_attempt_at": _iso(m.next_attempt_at) if m.status in ("queued", "retry") else None,
                "sent_at": _iso(m.sent_at), "crash_resends": m.crash_resends, "message_id": m.message_id})
    return [{
        "id": r.public_id, "trigger": r.trigger, "milestone": r.milestone, "status": r.status,
        "created_at": _iso(r.created_at), "created_by": r.created_by, "hold_until": _iso(r.hold_until),
        "signer_count": r.signer_count, "recipients": json.loads(r.recipients), "error": r.error,
        "files": files[r.id], "messages": messages[r.id],
    } for r in rows]


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
