"""App + campaign + signer fields, files or e-mails → the signer list changed and audited, or read.

The one place that adds, imports, counts, finds and withdraws signers: the CLI, the JSON API, the
web admin and the demo all call these, so "add one signer" is validated, stored and audited the
same way whoever asks. Signers are stored and found under the installation's keyed hashes
(`app.signer_keys`, see delivery.storage.keys): without its key file none of these run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from delivery.campaigns.config import Campaign
from delivery.errors import NotFound
from delivery.services.app import App
from delivery.signers import store
from delivery.signers.intake import SignerInput, parse_column_map, validate_signer
from delivery.signers.store import ImportReport
from delivery.storage import audit
from delivery.storage.db import reading, transaction


@dataclass(frozen=True)
class Added:
    stored: bool  # False: a signer with this key was on the list already
    signers: int  # the campaign's active signers afterwards


def add_signer(app: App, campaign: Campaign, fields: Mapping[str, object], *, now: datetime,
               actor: str) -> Added:
    """Validate one signer's fields (RowRejected names what is wrong), store them once, audit it."""
    signer = validate_signer(dict(fields), now=now, source=actor)
    keys = app.signer_keys
    with transaction(app.engine) as session:
        campaign_id = app.campaign_id(session, campaign)
        inserted, _ = store.add_signers(session, campaign_id, [signer], now=now, keys=keys)
        if inserted:
            audit.record(session, at=now, actor=actor, action="signers.add", campaign_id=campaign_id,
                         subject="1 signer")
        return Added(stored=bool(inserted), signers=store.count_signers(session, campaign_id))


def add_many(app: App, campaign: Campaign, signers: Sequence[SignerInput], *, now: datetime,
             actor: str) -> int:
    """Store already validated signers in one transaction → how many were new; audited once."""
    keys = app.signer_keys
    with transaction(app.engine) as session:
        campaign_id = app.campaign_id(session, campaign)
        inserted, _ = store.add_signers(session, campaign_id, signers, now=now, keys=keys)
        audit.record(session, at=now, actor=actor, action="signers.add", campaign_id=campaign_id,
                     subject=f"{inserted} signers")
        return inserted


def import_file(app: App, campaign: Campaign, path: Path, *, now: datetime, actor: str,
                encoding: str | None = None, column_map: str | None = None,
                dry_run: bool = False) -> ImportReport:
    """Import a CSV export (see delivery.signers.store.import_csv); audited unless a dry run."""
    columns = parse_column_map(column_map) if column_map else None
    keys = app.signer_keys
    with reading(app.engine) as session:
        campaign_id = app.campaign_id(session, campaign)
    report = store.import_csv(app.engine, campaign_id, path, now=now, keys=keys, encoding=encoding,
                              column_map=columns, dry_run=dry_run)
    if not dry_run:
        with transaction(app.engine) as session:
            audit.record(session, at=now, actor=actor, action="signers.import", campaign_id=campaign_id,
                         subject=path.name, imported=report.imported, duplicates=report.duplicates,
                         rejected=report.rejected)
    return report


def count(app: App, campaign: Campaign) -> int:
    """Active signers (withdrawn ones excluded)."""
    with reading(app.engine) as session:
        return store.count_signers(session, app.campaign_id(session, campaign))


def withdraw(app: App, campaign: Campaign, email: str, *, now: datetime, actor: str) -> None:
    """The signer with this e-mail leaves every later dossier (audited); NotFound when none has it."""
    keys = app.signer_keys
    with transaction(app.engine) as session:
        found = store.withdraw_signer(session, app.campaign_id(session, campaign), email, now=now,
                                      actor=actor, keys=keys)
    if not found:
        raise NotFound("no signer with that e-mail address in this campaign")
