"""Current signers → the bundle exactly as it would be sent now, written whole to a folder; no sending."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, select

from delivery.bundle.assemble import read_manifest
from delivery.bundle.verify import PREVIEW_ID_PREFIX, PREVIEW_TRIGGER
from delivery.campaigns.config import Campaign
from delivery.dossier.stored import Frozen
from delivery.errors import UsageError
from delivery.services.app import App
from delivery.services.deliveries import new_dossier_id
from delivery.services.pipeline import Progress, build_bundle
from delivery.services.reports import FileReport
from delivery.storage.db import transaction
from delivery.storage.models import SignerRow


@dataclass(frozen=True)
class PreviewResult:
    folder: str
    dossier_id: str
    signer_count: int
    files: list[FileReport]

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def preview(app: App, campaign: Campaign, *, out_dir: Path | None, now: datetime,
            progress: Progress | None = None) -> PreviewResult:
    """Build the bundle as it would go now into `out_dir` (a new or empty folder; by default one
    under var/preview). The folder appears whole or not at all: the files are written beside it
    and moved into place last."""
    with transaction(app.engine) as session:
        campaign_id = app.campaign_id(session, campaign)
        last = session.scalar(select(func.max(SignerRow.id)).where(SignerRow.campaign_id == campaign_id)) or 0
    # Marked on every page (the footer carries the id) so a preview can never pass for a delivery.
    dossier_id = PREVIEW_ID_PREFIX + new_dossier_id(campaign, now)
    folder = out_dir or app.settings.var_dir / "preview" / dossier_id
    _check_target(folder)  # before the build, which may take minutes
    # What a delivery created now would freeze.
    files = build_bundle(app, campaign, Frozen(campaign_id, last, now), dossier_id=dossier_id, created_at=now,
                         trigger=PREVIEW_TRIGGER, milestone=None, recipients=campaign.recipients, now=now,
                         progress=progress)
    _write_whole(folder, [(f.name, f.data) for f in files])
    manifest = read_manifest(next(f.data for f in files if f.kind == "manifest"))
    count = manifest.get("signer_count", 0)
    return PreviewResult(folder=str(folder), dossier_id=dossier_id,
                         signer_count=count if isinstance(count, int) else 0,
                         files=[FileReport(f.name, f.size, f.sha256, f.pages) for f in files])


def _check_target(folder: Path) -> None:
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"--out {folder}: a file of that name exists; name a new or empty folder")
    if folder.is_dir() and any(folder.iterdir()):
        raise UsageError(f"--out {folder}: the folder is not empty; name a new or empty folder")


def _write_whole(folder: Path, files: list[tuple[str, bytes]]) -> None:
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        for name, data in files:
            (staging / name).write_bytes(data)
        _check_target(folder)  # still new or empty now that the build is over
        if folder.is_dir():
            folder.rmdir()
        staging.rename(folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
