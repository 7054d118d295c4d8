"""Current signers → the bundle exactly as it would be sent now, written to a folder; no sending."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from delivery.bundle.assemble import read_manifest
from delivery.bundle.verify import PREVIEW_ID_PREFIX, PREVIEW_TRIGGER
from delivery.campaigns.config import Campaign
from delivery.dossier.stored import Frozen
from delivery.services.app import App
from delivery.services.deliveries import new_dossier_id
from delivery.services.pipeline import Progress, build_bundle
from delivery.storage.db import transaction
from delivery.storage.models import SignerRow


def preview(app: App, campaign: Campaign, *, out_dir: Path | None, now: datetime,
            progress: Progress | None = None) -> dict[str, Any]:
    with transaction(app.engine) as session:
        campaign_id = app.campaign_id(session, campaign)
        last = session.scalar(select(func.max(SignerRow.id)).where(SignerRow.campaign_id == campaign_id)) or 0
    # Marked on every page (the footer carries the id) so a preview can never pass for a delivery.
    dossier_id = PREVIEW_ID_PREFIX + new_dossier_id(campaign, now)
    # What a delivery created now would freeze.
    files = build_bundle(app, campaign, Frozen(campaign_id, last, now), dossier_id=dossier_id, created_at=now,
                         trigger=PREVIEW_TRIGGER, milestone=None, recipients=campaign.recipients, now=now,
                         progress=progress)
    folder = out_dir or app.settings.var_dir / "preview" / dossier_id
    folder.mkdir(parents=True, exist_ok=True)
    for f in files:
        (folder / f.name).write_bytes(f.data)
    manifest = read_manifest(next(f.data for f in files if f.kind == "manifest"))
    return {"folder": str(folder), "dossier_id": dossier_id, "signer_count": manifest.get("signer_count", 0),
            "files": [{"name": f.name, "size": f.size, "pages": f.pages, "sha256": f.sha256} for f in files]}
