"""App + campaign + a time → the signers who signed before it erased, every copy of their names
that the service keeps for itself dropped, and one audit row; the campaign's `retention` applied
by the scheduler tick.

What a purge erases (delivery.signers.store.purge_signers): each such signer's name, city and
e-mail key, the time of day of signing, and the country unless at least COUNTRY_KEPT_FROM of the
campaign's signers share it (an ISO country: then it names no one). What stays: the row, so the
signer still counts and keeps their number; the date of signing; withdrawals. A later dossier lists
an erased signer as a withheld line at their number (or omits the line, with `withheld_names =
"omit"`), exactly as a signer who never consented to be named: the count, the numbering and the
summary of every later dossier stay consistent with the dossiers delivered before, and what the
government was sent is not contradicted by a smaller count.

What else the service holds that shows names, and what a purge does with it:
- the rendered volume cache (var/cache/volumes): every file is deleted. A volume is cached under
  the hash of what it shows, which cannot be told from its file name, and its stored facts
  (volume_facts) are looked up by which rows it holds, not by what they say: the facts of every
  volume holding an erased row are deleted too, or a later build would take the old, named,
  volume for the current one. The next build draws its volumes again.
- previews: the folders under var/preview whose manifest names this campaign, and the web
  admin's preview folders of this campaign in the temporary folder, are deleted; a folder under
  var/preview whose campaign cannot be read is reported, not deleted. A preview written with
  `--out` elsewhere is not known to the service.
- delivered dossiers are kept: their files in the database (so an earlier delivery can still be
  exported and verified, and its digests still match) and their e-mails (the outbox rows and the
  .eml files of DELIVERY_OUTBOX_DIR): they are what the recipients received, names included. The
  report counts them, so that an operator who needs no record of them knows where they are.

A purge refuses to start while any delivery is being built (a build reads names and writes the
shared volume cache), and on PostgreSQL holds the deliveries waiting to be built until it has
committed, so no build claimed meanwhile reads the names it is erasing.

Automatic retention (`apply_retention`, called by every tick): once `retention` has passed since
the campaign's last delivery (the last dossier e-mail sent) and no delivery is under way, every
signer who signed before that delivery is erased; from then on, once a day, the signers who signed
more than `retention` ago. So no name is kept longer than `retention` (and a day) after the later
of its signature and the campaign's last delivery; a new delivery starts the count again.
"""

from __future__ import annotations

import contextlib
import logging
import re
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time
from pathlib import Path

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from delivery.campaigns.config import Campaign
from delivery.errors import DeliveryError, StateConflict, UsageError
from delivery.pdf.cache import drop_all
from delivery.services.app import App
from delivery.services.states import DeliveryState
from delivery.signers import store
from delivery.storage import audit
from delivery.storage.db import is_postgres, reading, transaction
from delivery.storage.models import DeliveryFileRow, DeliveryRow, MessageRow, VolumeFactsRow

log = logging.getLogger("delivery.services.retention")

# A country shared by fewer of the campaign's signers than this is erased with the name.
COUNTRY_KEPT_FROM = 20
# While a delivery is in one of these states, the automatic purge waits.
UNDER_WAY = (DeliveryState.HELD, DeliveryState.QUEUED, DeliveryState.BUILDING, DeliveryState.SENDING)
# The web admin's preview folders (delivery.web.actions.preview_start: mkdtemp's 8 characters).
_WEB_PREVIEW = "pd-preview-{slug}-"
_MKDTEMP_TAIL = re.compile(r"[a-z0-9_]{8}")


@dataclass(frozen=True)
class PurgeReport:
    campaign: str
    before: str  # ISO time, UTC: signers who signed before it
    trigger: str  # manual | retention
    dry_run: bool
    erased: int  # signers erased now (a dry run: that would be)
    cache_files_deleted: int  # (a dry run: cached volume files now)
    previews_deleted: list[str] = field(default_factory=list)
    previews_not_identified: list[str] = field(default_factory=list)  # left alone: say so
    delivered_dossiers_kept: int = 0
    outbox_dir: str = ""
    outbox_files_kept: int = 0

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def cutoff_of(day: date) -> datetime:
    """`--before DATE`: the start of that day, UTC (the dates dossiers print are UTC dates)."""
    return datetime.combine(day, time(), UTC)


def purge_before(app: App, campaign: Campaign, day: date, *, now: datetime, actor: str,
                 dry_run: bool = False) -> PurgeReport:
    """Erase the signers who signed before `day` (the CLI's `signers purge --before DATE`)."""
    if day > now.astimezone(UTC).date():
        raise UsageError(f"--before {day.isoformat()}: a date in the future; a purge erases signers "
                         "who signed before a day that has begun")
    return purge(app, campaign, before=cutoff_of(day), now=now, actor=actor, dry_run=dry_run)


def purge(app: App, campaign: Campaign, *, before: datetime, now: datetime, actor: str,
          dry_run: bool = False, trigger: str = "manual") -> PurgeReport:
    """Erase the campaign's signers who signed before `before`, drop what holds their names
    (see the module docstring) and audit it, in one transaction: a file that cannot be deleted
    undoes the purge (DeliveryError), so running it again does all of it. StateConflict while a
    delivery is being built. A dry run changes nothing and says what would be done."""
    if before > now:
        raise UsageError(f"{before.isoformat()} is in the future: only signatures made already "
                         "can be erased")
    cache_dir = _cache_dir(app)
    if dry_run:
        with reading(app.engine) as session:
            campaign_id = app.campaign_id(session, campaign)
            found = store.purgeable_signers(session, campaign_id, before=before)
            kept = _delivered(session, campaign_id)
        mine, unknown = _previews(app, campaign)
        return _report(app, campaign, before, trigger, dry_run=True, erased=found.signers,
                       cache_files=_count_files(cache_dir), previews=[str(p) for p in mine],
                       unknown=unknown, delivered=kept)
    with transaction(app.engine) as session:
        campaign_id = app.campaign_id(session, campaign)
        refuse_while_building(session, app, now=now)
        erased = store.purge_signers(session, campaign_id, before=before,
                                     country_kept_from=COUNTRY_KEPT_FROM)
        if not erased.signers:  # nothing changed: no files to drop, nothing to audit
            kept = _delivered(session, campaign_id)
            return _report(app, campaign, before, trigger, dry_run=False, erased=0, cache_files=0,
                           previews=[], unknown=[], delivered=kept)
        assert erased.first_id is not None and erased.last_id is not None
        # Facts of volumes holding an erased row describe the names: a build must read them anew.
        session.execute(delete(VolumeFactsRow).where(
            VolumeFactsRow.campaign_id == campaign_id, VolumeFactsRow.first_id <= erased.last_id,
            VolumeFactsRow.last_id >= erased.first_id))
        cache_files = drop_all(cache_dir)
        deleted = _drop_previews(app, campaign)
        _, unknown = _previews(app, campaign)
        audit.record(session, at=now, actor=actor, action="signers.purge", campaign_id=campaign_id,
                     subject=f"{erased.signers} signers", before=before.isoformat(),
                     erased=erased.signers, trigger=trigger, cache_files_deleted=cache_files,
                     previews_deleted=len(deleted))
        kept = _delivered(session, campaign_id)
    store.forget_erased(app.engine)
    log.info("%s: %d signers who signed before %s erased (%s); %d cached volumes and %d previews "
             "deleted", campaign.slug, erased.signers, before.isoformat(), trigger, cache_files,
             len(deleted), extra={"campaign": campaign.slug})
    return _report(app, campaign, before, trigger, dry_run=False, erased=erased.signers,
                   cache_files=cache_files, previews=deleted, unknown=unknown, delivered=kept)


def retention_cutoff(app: App, campaign: Campaign, *, now: datetime) -> datetime | None:
    """The time before which the campaign's `retention` says signers are erased now; None when
    it says nothing yet (no retention, no delivery sent, one under way, or not long enough)."""
    if campaign.retention is None:
        return None
    with reading(app.engine) as session:
        campaign_id = app.campaign_id(session, campaign)
        if session.scalar(select(func.count()).select_from(DeliveryRow).where(
                DeliveryRow.campaign_id == campaign_id, DeliveryRow.status.in_(UNDER_WAY))):
            return None
        last = session.scalar(select(func.max(MessageRow.sent_at))
                              .join(DeliveryRow, DeliveryRow.id == MessageRow.delivery_id)
                              .where(DeliveryRow.campaign_id == campaign_id,
                                     MessageRow.kind == "dossier"))
    if last is None or now < last + campaign.retention:
        return None
    # Signers since the last delivery go once a day, each `retention` after signing.
    return max(last, cutoff_of((now - campaign.retention).astimezone(UTC).date()))


def apply_retention(app: App, campaign: Campaign, *, now: datetime) -> PurgeReport | None:
    """The tick's retention step: purge what `retention_cutoff` says is due → its report, or None
    when nothing was (idempotent: once erased, a signer is not found again). A purge that cannot
    run now (a build under way, a file that cannot be deleted) is logged and tried next tick."""
    before = retention_cutoff(app, campaign, now=now)
    if before is None:
        return None
    with reading(app.engine) as session:
        if not store.purgeable_signers(session, app.campaign_id(session, campaign),
                                       before=before).signers:
            return None
    try:
        return purge(app, campaign, before=before, now=now, actor="scheduler", trigger="retention")
    except StateConflict as exc:
        log.info("%s: retention purge waits: %s", campaign.slug, exc, extra={"campaign": campaign.slug})
    except DeliveryError as exc:
        log.error("%s: retention purge failed, tried again next tick: %s", campaign.slug, exc,
                  extra={"campaign": campaign.slug})
    return None


def refuse_while_building(session: Session, app: App, *, now: datetime,
                          action: str = "purge") -> None:
    """StateConflict while a delivery of any campaign (the volume cache is shared) is being
    built; on PostgreSQL, the deliveries waiting to be built are held until the caller's
    transaction commits (claims skip locked rows), as SQLite's write lock does there."""
    if is_postgres(app.engine):
        session.execute(select(DeliveryRow.id).where(DeliveryRow.status.in_(
            (DeliveryState.HELD, DeliveryState.QUEUED, DeliveryState.BUILDING))).with_for_update())
    building = session.scalar(select(DeliveryRow.public_id).where(
        DeliveryRow.status == DeliveryState.BUILDING, DeliveryRow.lease_until >= now).limit(1))
    if building is not None:
        raise StateConflict(f"delivery {building} is being built: {action} when its build is "
                            "done (`petition-delivery deliveries` shows it)")


def _cache_dir(app: App) -> Path:
    return app.settings.var_dir / "cache" / "volumes"  # as delivery.services.pipeline builds


def _count_files(folder: Path) -> int:
    try:
        return sum(1 for p in folder.iterdir() if p.is_file())
    except OSError:
        return 0


def _previews(app: App, campaign: Campaign) -> tuple[list[Path], list[str]]:
    """(this campaign's preview folders, folders under var/preview whose campaign is unknown)."""
    mine: list[Path] = []
    unknown: list[str] = []
    root = app.settings.var_dir / "preview"
    try:
        folders = sorted(p for p in root.iterdir() if p.is_dir())
    except OSError:
        folders = []
    for folder in folders:
        slug = _preview_campaign(folder)
        if slug == campaign.slug:
            mine.append(folder)
        elif slug is None:
            unknown.append(str(folder))
    temp = Path(tempfile.gettempdir())
    prefix = _WEB_PREVIEW.format(slug=campaign.slug)
    with contextlib.suppress(OSError):
        mine += sorted(p for p in temp.glob(prefix + "*") if p.is_dir()
                       and _MKDTEMP_TAIL.fullmatch(p.name[len(prefix):]))
    return mine, unknown


def _preview_campaign(folder: Path) -> str | None:
    # Here, not at the top: the bundle stage loads pyHanko and pikepdf (0.3 s), which every
    # command that merely reaches deliveries (send, run-due, deliveries) would pay at start.
    from delivery.bundle.assemble import read_manifest

    try:
        manifest = read_manifest((folder / "manifest.json").read_bytes())
    except (OSError, ValueError, DeliveryError):
        return None
    campaign = manifest.get("campaign")
    slug = campaign.get("slug") if isinstance(campaign, dict) else None
    return slug if isinstance(slug, str) else None


def _drop_previews(app: App, campaign: Campaign) -> list[str]:
    deleted = []
    for folder in _previews(app, campaign)[0]:
        try:
            shutil.rmtree(folder)
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise DeliveryError(f"cannot delete the preview folder {folder}: {exc}; nothing was "
                                "erased, run the purge again once it can be deleted") from exc
        deleted.append(str(folder))
    return deleted


def _delivered(session: Session, campaign_id: int) -> int:
    return session.scalar(select(func.count(func.distinct(DeliveryFileRow.delivery_id)))
                          .join(DeliveryRow, DeliveryRow.id == DeliveryFileRow.delivery_id)
                          .where(DeliveryRow.campaign_id == campaign_id)) or 0


def _report(app: App, campaign: Campaign, before: datetime, trigger: str, *, dry_run: bool,
            erased: int, cache_files: int, previews: list[str], unknown: list[str],
            delivered: int) -> PurgeReport:
    outbox = app.settings.outbox_dir
    try:
        eml = sum(1 for p in outbox.glob("*.eml") if p.is_file())
    except OSError:
        eml = 0
    return PurgeReport(campaign=campaign.slug, before=before.isoformat(), trigger=trigger,
                       dry_run=dry_run, erased=erased, cache_files_deleted=cache_files,
                       previews_deleted=previews, previews_not_identified=unknown,
                       delivered_dossiers_kept=delivered, outbox_dir=str(outbox),
                       outbox_files_kept=eml)


__all__ = ["COUNTRY_KEPT_FROM", "PurgeReport", "apply_retention", "cutoff_of", "purge", "purge_before",
           "retention_cutoff"]
