"""Action → audit_log row: who did what to which campaign, written in the caller's transaction.

Details hold ids and counts, never signer names or e-mail addresses.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from delivery.storage.models import AuditRow


def record(
    session: Session,
    *,
    at: datetime,
    actor: str,
    action: str,
    subject: str,
    campaign_id: int | None = None,
    **detail: Any,
) -> None:
    session.add(AuditRow(at=at, actor=actor, action=action, campaign_id=campaign_id,
                         subject=subject, detail=json.dumps(detail, sort_keys=True, default=str)))
