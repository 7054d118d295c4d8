"""A confirmed manual send in a campaign that asks for a second approver → a pending send_requests
row; another account's approval → the manual delivery (deliveries.create_manual); each step audited.

A request carries the confirmation's one-time key: confirming twice (a double click, a reload)
finds the first request instead of making another, and once approved the same key becomes the
delivery's, so approving twice, or again after a crash between the approval and the delivery,
makes one delivery only. The request's row is locked while it is decided, so two approvers at
once cannot both approve, nor one approve what another cancels.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from delivery.campaigns.config import Campaign
from delivery.errors import NotFound, StateConflict, UsageError
from delivery.services import deliveries
from delivery.services.app import App
from delivery.services.deliveries import DeliveryRef
from delivery.storage import audit
from delivery.storage.db import reading, transaction
from delivery.storage.models import SendRequestRow


class RequestState(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    CANCELLED = "cancelled"


PENDING, APPROVED, CANCELLED = RequestState.PENDING, RequestState.APPROVED, RequestState.CANCELLED
# a decision is final: an approved request has its delivery, a cancelled one never gets one
TRANSITIONS: dict[RequestState, frozenset[RequestState]] = {
    PENDING: frozenset({APPROVED, CANCELLED}),
    APPROVED: frozenset(),
    CANCELLED: frozenset(),
}


def _decide(row: SendRequestRow, new: RequestState, *, by: str, now: datetime) -> None:
    if new not in TRANSITIONS[RequestState(row.status)]:
        raise StateConflict(f"a send request {row.status} cannot become {new}")
    row.status, row.decided_by, row.decided_at = new, by, now


@dataclass(frozen=True)
class SendRequest:
    id: int
    recipients: tuple[str, ...]  # the addresses confirmed
    requested_by: str  # the account's name
    requested_at: datetime
    status: RequestState
    replayed: bool = False  # True when this confirmation had made the request already


def _view(row: SendRequestRow, replayed: bool = False) -> SendRequest:
    return SendRequest(row.id, tuple(json.loads(row.recipients)), row.requested_by, row.requested_at,
                       RequestState(row.status), replayed)


def request_send(app: App, campaign: Campaign, *, to: list[str], requested_by: str, request_key: str,
                 now: datetime, actor: str) -> SendRequest:
    """A pending request to send to `to` (addresses of the campaign), audited as "send.request";
    the request this key made already when it did."""
    emails = [r.email for r in deliveries.pick_recipients(campaign, to)]
    if not 0 < len(request_key) <= 64:
        raise UsageError("a send request's key has 1 to 64 characters")
    try:
        with transaction(app.engine) as session:
            campaign_id = app.campaign_id(session, campaign)
            row = SendRequestRow(campaign_id=campaign_id, request_key=request_key,
                                 recipients=json.dumps(emails), requested_by=requested_by,
                                 requested_at=now, status=PENDING)
            session.add(row)
            session.flush()
            audit.record(session, at=now, actor=actor, action="send.request", campaign_id=campaign_id,
                         subject=f"request {row.id}", recipients=len(emails))
            return _view(row)
    except IntegrityError:
        with reading(app.engine) as session:
            campaign_id = app.campaign_id(session, campaign)
            first = session.scalar(select(SendRequestRow).where(SendRequestRow.campaign_id == campaign_id,
                                                                SendRequestRow.request_key == request_key))
            if first is None:
                raise
            return _view(first, replayed=True)


def pending(app: App, campaign: Campaign) -> list[SendRequest]:
    """The campaign's requests waiting for approval, oldest first."""
    with reading(app.engine) as session:
        campaign_id = app.campaign_id(session, campaign)
        rows = session.scalars(select(SendRequestRow).where(
            SendRequestRow.campaign_id == campaign_id, SendRequestRow.status == PENDING)
            .order_by(SendRequestRow.id))
        return [_view(r) for r in rows]


def _locked(session: Session, app: App, campaign: Campaign, request_id: int) -> SendRequestRow:
    campaign_id = app.campaign_id(session, campaign)
    row = session.scalar(select(SendRequestRow).where(SendRequestRow.id == request_id,
                                                      SendRequestRow.campaign_id == campaign_id)
                         .with_for_update())
    if row is None:
        raise NotFound(f"no send request {request_id} in this campaign")
    return row


def approve(app: App, campaign: Campaign, request_id: int, *, approver: str, now: datetime,
            actor: str) -> DeliveryRef:
    """Approve a pending request (audited as "send.approve") and create its manual delivery,
    claimed for building by this process: then deliveries.build_and_send it unless `replayed`.
    StateConflict when `approver` asked for it, or it was cancelled, or another account approved it."""
    with transaction(app.engine) as session:
        row = _locked(session, app, campaign, request_id)
        if row.requested_by == approver:
            raise StateConflict("you asked for this send: another account must approve it")
        if row.status == CANCELLED:
            raise StateConflict(f"this send request was cancelled by {row.decided_by}: nothing was sent")
        if row.status == APPROVED and row.decided_by != approver:
            raise StateConflict(f"this send request was approved already by {row.decided_by}")
        if row.status == PENDING:
            _decide(row, APPROVED, by=approver, now=now)
            audit.record(session, at=now, actor=actor, action="send.approve", campaign_id=row.campaign_id,
                         subject=f"request {row.id}", requested_by=row.requested_by)
        key, to = row.request_key, json.loads(row.recipients)
    return deliveries.create_manual(app, campaign, now=now, to=to, actor=actor, request_key=key)


def cancel(app: App, campaign: Campaign, request_id: int, *, by: str, now: datetime, actor: str) -> bool:
    """Cancel a pending request (audited as "send.cancel") → False when it was cancelled already;
    StateConflict when it was approved."""
    with transaction(app.engine) as session:
        row = _locked(session, app, campaign, request_id)
        if row.status == CANCELLED:
            return False
        if row.status == APPROVED:
            raise StateConflict(f"this send request was approved by {row.decided_by}: see its delivery")
        _decide(row, CANCELLED, by=by, now=now)
        audit.record(session, at=now, actor=actor, action="send.cancel", campaign_id=row.campaign_id,
                     subject=f"request {row.id}", requested_by=row.requested_by)
    return True
