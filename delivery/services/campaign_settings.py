"""The web admin's settings form, or an earlier version to restore → a new version of the
campaign's settings in campaign_settings (audited "campaign.settings" with who, when and which
keys changed), in force in every `serve` instance at its next tick (delivery.services.app).

Versions are numbered per campaign from 1. The first change made in the admin records the campaign
file as it stood as version 1, then the change as version 2, so that the file's settings can be
restored too. A save names the version it was made on: when another owner saved a version in the
meantime, SettingsConflict is raised and nothing is written.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from delivery.campaigns.config import Campaign, parse_campaign
from delivery.campaigns.export import campaign_toml
from delivery.campaigns.form import FormInvalid, changed_keys, field_of, settings_document
from delivery.campaigns.languages import read_languages
from delivery.campaigns.templates import missing_pieces
from delivery.errors import ConfigError, DeliveryError, NotFound, UsageError
from delivery.services.app import App, refresh_campaigns, settings_source
from delivery.storage import audit
from delivery.storage.db import reading, transaction
from delivery.storage.models import CampaignSettingsRow

FILE, ADMIN, RESTORE = "file", "admin", "restore"

__all__ = ["FormInvalid", "SettingsConflict", "SettingsVersion", "file_digest", "history", "restore",
           "save"]


class SettingsConflict(DeliveryError):
    """The settings were saved by someone else since the form was opened."""

    def __init__(self, version: SettingsVersion) -> None:
        self.version = version
        super().__init__(f"version {version.version} was saved by {version.actor} in the meantime")


@dataclass(frozen=True)
class SettingsVersion:
    version: int
    origin: str  # FILE, ADMIN or RESTORE
    actor: str
    created_at: datetime
    changes: tuple[str, ...]  # the campaign file's keys changed from the version before


def file_digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _file_text(campaign: Campaign) -> tuple[str, str | None]:
    """The campaign file's text and its SHA-256; its settings as a file would write them (and
    no digest) when there is no such file to read."""
    try:
        text = Path(campaign.source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return campaign_toml(campaign), None
    return text, file_digest(text)


def _version(row: CampaignSettingsRow) -> SettingsVersion:
    return SettingsVersion(version=row.version, origin=row.origin, actor=row.actor,
                           created_at=row.created_at, changes=tuple(json.loads(row.changes)))


def _rows(session: Session, campaign_id: int) -> list[CampaignSettingsRow]:
    return list(session.scalars(select(CampaignSettingsRow)
                                .where(CampaignSettingsRow.campaign_id == campaign_id)
                                .order_by(CampaignSettingsRow.version.desc())))


def history(app: App, campaign: Campaign) -> list[SettingsVersion]:
    """Every stored version, newest first; empty while the campaign file is in force unedited."""
    with reading(app.engine) as session:
        return [_version(row) for row in _rows(session, app.campaign_id(session, campaign))]


def current_version(app: App, campaign: Campaign) -> int:
    """The version in force (0: the campaign file, never edited in the admin)."""
    with reading(app.engine) as session:
        return _newest(session, app.campaign_id(session, campaign))


def _newest(session: Session, campaign_id: int) -> int:
    return session.scalar(select(func.max(CampaignSettingsRow.version))
                          .where(CampaignSettingsRow.campaign_id == campaign_id)) or 0


def save(app: App, campaign: Campaign, posted: Mapping[str, str], *, based_on: int,
         languages: Sequence[str], actor: str, now: datetime) -> Campaign:
    """The posted form over the campaign in force → its new version, in force now; FormInvalid
    naming each field at fault, SettingsConflict when `based_on` is not the newest version."""
    with reading(app.engine) as session:
        newest = _newest(session, app.campaign_id(session, campaign))
    document, parsed = settings_document(campaign, posted, languages,
                                         source=settings_source(campaign.slug, newest + 1))
    _refuse_missing_texts(app, replace(parsed, letters=campaign.letters))
    return _store(app, campaign, document, origin=ADMIN, based_on=based_on, actor=actor, now=now)


def _refuse_missing_texts(app: App, campaign: Campaign) -> None:
    """FormInvalid on the recipient whose language lacks its letter, e-mail or fixed texts: a
    campaign file like it would not load either."""
    templates = app.settings.templates_dir
    try:
        pieces = list(missing_pieces(campaign, templates, read_languages(templates)))
    except ConfigError as exc:
        raise FormInvalid({"recipients": str(exc)}) from exc
    if pieces:
        raise FormInvalid({field_of(pieces[0].needed_by): "; ".join(str(p) for p in pieces[:3])})


def restore(app: App, campaign: Campaign, version: int, *, based_on: int, actor: str,
            now: datetime) -> Campaign:
    """An earlier version's settings → a new version with them, in force now."""
    with reading(app.engine) as session:
        row = session.scalar(select(CampaignSettingsRow).where(
            CampaignSettingsRow.campaign_id == app.campaign_id(session, campaign),
            CampaignSettingsRow.version == version))
        if row is None:
            raise NotFound(f"campaign {campaign.slug} has no settings version {version}")
        document = row.document
    parsed = parse_campaign(document, settings_source(campaign.slug, version))  # still valid, or ConfigError
    _refuse_missing_texts(app, replace(parsed, letters=campaign.letters))
    return _store(app, campaign, document, origin=RESTORE, based_on=based_on, actor=actor, now=now,
                  restored=version)


def _store(app: App, campaign: Campaign, document: str, *, origin: str, based_on: int, actor: str,
           now: datetime, restored: int | None = None) -> Campaign:
    base = app.files[campaign.slug]
    try:
        with transaction(app.engine) as session:
            campaign_id = app.campaign_id(session, campaign)
            rows = _rows(session, campaign_id)
            newest = rows[0].version if rows else 0
            if newest != based_on:
                if not rows:  # nothing saved yet: the form named a version that never was
                    raise UsageError(f"version {based_on} of {campaign.slug}'s settings does not exist")
                raise SettingsConflict(_version(rows[0]))
            file_text, digest = _file_text(base)
            before = rows[0].document if rows else file_text
            if not rows:  # the file as it stood, restorable like any other version
                session.add(CampaignSettingsRow(
                    campaign_id=campaign_id, version=1, document=file_text, origin=FILE,
                    file_digest=digest, changes="[]", actor=f"file:{base.source}", created_at=now))
                newest = 1
            changes = changed_keys(before, document)
            session.add(CampaignSettingsRow(
                campaign_id=campaign_id, version=newest + 1, document=document, origin=origin,
                file_digest=digest, changes=json.dumps(changes), actor=actor, created_at=now))
            audit.record(session, at=now, actor=actor, action="campaign.settings", subject=campaign.slug,
                         campaign_id=campaign_id, version=newest + 1, changed=changes,
                         **({"restored": restored} if restored is not None else {}))
    except IntegrityError:  # another instance stored the same version number first
        with reading(app.engine) as session:
            raise SettingsConflict(_version(_rows(session, app.campaign_id(session, campaign))[0])) \
                from None
    refresh_campaigns(app)
    return app.campaigns[campaign.slug]
