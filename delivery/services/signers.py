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
from typing import Any

from delivery.campaigns.config import Campaign
from delivery.errors import NotFound
from delivery.services.app import App
from delivery.services.retention import refuse_while_building
from delivery.signers import options, store
from delivery.signers.intake import SignerInput, validate_signer
from delivery.signers.options import ImportOptions
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


def import_options(campaign: Campaign, **given: Any) -> ImportOptions:
    """Option texts as an organizer typed them (see delivery.signers.options.import_options) →
    ImportOptions under this campaign's defaults (its time zone, its `consent_missing`)."""
    return options.import_options(default_timezone=campaign.schedule.timezone,
                                  default_consent_missing=campaign.consent_missing, **given)


def import_file(app: App, campaign: Campaign, path: Path, *, now: datetime, actor: str,
                options: ImportOptions | None = None) -> ImportReport:
    """Import a CSV export (see delivery.signers.store.import_csv); audited unless a dry run.

    Signers changed by `options.update` make the volumes holding them be drawn again: their
    stored facts describe the old values. Such an import is refused (StateConflict, nothing
    stored) while a delivery is being built, as a purge is.
    """
    options = options or import_options(campaign)
    keys = app.signer_keys
    with reading(app.engine) as session:
        campaign_id = app.campaign_id(session, campaign)
    report = store.import_csv(app.engine, campaign_id, path, now=now, keys=keys, options=options,
                              before_update=lambda session: refuse_while_building(
                                  session, app, now=now, action="signers import --update"))
    if options.dry_run:
        return report
    with transaction(app.engine) as session:
        audit.record(session, at=now, actor=actor, action="signers.import", campaign_id=campaign_id,
                     subject=path.name, imported=report.imported, duplicates=report.duplicates,
                     rejected=report.rejected, excluded=report.excluded, named=report.named,
                     withheld=report.withheld, updated=report.updated,
                     format=options.format, update=options.update,
                     date_order=report.date_order.value if report.date_order else None,
                     timezone=report.timezone)
        if report.updated_ids:
            audit.record(session, at=now, actor=actor, action="signers.update",
                         campaign_id=campaign_id, subject=f"{report.updated} signers",
                         signer_ids=report.updated_ids[:1000], source=path.name)
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
