"""Settings + schedules/ → App: the one object every entry point (CLI, scheduler, web) starts from.

The CLI, the scheduler jobs and the web admin all call the service functions with an App; none of
them talks to the database or SMTP on its own.

The campaigns in force are the newest versions the database holds of each campaign's settings
and letters, once an owner has edited them in the web admin, else the campaign files
(`refresh_campaigns`, run at each tick, each web request and before each command): settings
changed in one `serve` instance's web admin are in force in every other at its next tick. A
campaign file changed after that is recorded by `init` as a new version, which is then in force
(delivery.services.campaign_settings).

The App also holds the installation's signer keys (its key file, see delivery.storage.keys). `init`
makes the file when none exists and nothing needs the old one: a new home, or a database whose
signer keys are not keyed hashes yet (migration 0005 then rewrites them with it). Once keyed
signers are stored, a missing key file is refused, by `init` too, naming the file to restore from
a backup: a new key would make every stored signer unrecognisable (re-imported as new, impossible
to withdraw), so none is ever made in its place.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from delivery.campaigns.config import Campaign, load_campaigns, parse_campaign
from delivery.campaigns.form import changed_keys
from delivery.campaigns.templates import check_campaigns
from delivery.errors import ConfigError, DeliveryError, NotFound, UsageError
from delivery.logs import safe_error
from delivery.settings import Settings
from delivery.storage import audit
from delivery.storage.db import (
    applied_revisions,
    make_engine,
    reading,
    schema_revisions,
    transaction,
    upgrade_schema,
)
from delivery.storage.keys import KEYED_REVISION, SETTING, SignerKeys, create_key_file, read_key_file
from delivery.storage.models import CampaignRow, CampaignSettingsRow, LetterVersionRow, SignerRow

log = logging.getLogger("delivery.services.app")


@dataclass
class App:
    settings: Settings
    engine: Engine
    campaigns: dict[str, Campaign]
    worker_id: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:"
                                                   f"{uuid.uuid4().hex[:6]}")
    _signer_keys: SignerKeys | None = field(default=None, init=False, repr=False, compare=False)
    # the campaigns as schedules/ defines them, before any version the database holds
    files: dict[str, Campaign] = field(default_factory=dict)
    # (newest settings id, newest letter id) the campaigns in force were read at
    _generation: tuple[int, int] | None = field(default=None, init=False, repr=False, compare=False)
    _refreshing: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False,
                                        compare=False)

    def __post_init__(self) -> None:
        self.files = self.files or dict(self.campaigns)

    @property
    def signer_keys(self) -> SignerKeys:
        """The installation's signer keys, read from its key file once; UsageError (naming the
        file, and what to do) when the file is missing or the schema is not upgraded yet."""
        if self._signer_keys is None:
            self._signer_keys = _load_signer_keys(self)
        return self._signer_keys

    def campaign(self, slug: str | None) -> Campaign:
        """The named campaign, or the only one when none is named."""
        if slug is None:
            if len(self.campaigns) == 1:
                return next(iter(self.campaigns.values()))
            names = ", ".join(sorted(self.campaigns)) or "none"
            raise UsageError(f"several campaigns exist ({names}): choose one with --campaign SLUG")
        try:
            return self.campaigns[slug]
        except KeyError:
            raise NotFound(f"no campaign '{slug}' in {self.settings.schedules_dir}") from None

    def campaign_id(self, session: Session, campaign: Campaign) -> int:
        row_id = session.scalar(select(CampaignRow.id).where(CampaignRow.slug == campaign.slug))
        if row_id is None:
            raise UsageError(f"campaign '{campaign.slug}' is not in the database yet: run "
                             "`petition-delivery init`")
        return row_id

    def campaign_by_id(self, session: Session, campaign_id: int) -> Campaign:
        slug = session.scalar(select(CampaignRow.slug).where(CampaignRow.id == campaign_id))
        if slug is None or slug not in self.campaigns:
            raise NotFound(f"campaign #{campaign_id} has no file in {self.settings.schedules_dir}")
        return self.campaigns[slug]

    def close(self) -> None:
        self.engine.dispose()


def open_app(settings: Settings) -> App:
    campaigns = load_campaigns(settings.schedules_dir)
    if not campaigns:
        raise ConfigError(str(settings.schedules_dir), "(folder)", "no campaign files (*.toml) found")
    check_campaigns(campaigns, settings.templates_dir)
    return App(settings=settings, engine=make_engine(settings.database_url), campaigns=campaigns)


def settings_source(slug: str, version: int) -> str:
    """What errors in a stored version of a campaign's settings name as their file."""
    return f"{slug} settings, version {version}"


def refresh_campaigns(app: App) -> bool:
    """Put the newest stored settings and letters of each campaign in force; True when any
    changed since the last call. One query when nothing changed."""
    with app._refreshing, reading(app.engine) as session:
        generation = (session.scalar(select(func.max(CampaignSettingsRow.id))) or 0,
                      session.scalar(select(func.max(LetterVersionRow.id))) or 0)
        if generation == app._generation:
            return False
        rows = session.execute(select(CampaignRow.slug, CampaignRow.id))
        ids = {slug: campaign_id for slug, campaign_id in rows}
        for slug in app.files:
            campaign_id = ids.get(slug)
            if campaign_id is None:
                continue
            stored = _stored_settings(session, campaign_id, slug)
            letters = _stored_letters(session, campaign_id)
            if stored is None and not letters:  # never edited: the file is in force
                continue
            app.campaigns[slug] = replace(stored or app.campaigns[slug], letters=letters)
        app._generation = generation
        return True


def put_in_force(app: App) -> None:
    """refresh_campaigns where the database has settings to read; the files' campaigns stay in
    force before `init` made the tables (or with no database: the command's own call says so)."""
    try:
        refresh_campaigns(app)
    except SQLAlchemyError as exc:
        log.debug("campaign settings not read: %s", safe_error(exc))


def _stored_settings(session: Session, campaign_id: int, slug: str) -> Campaign | None:
    row = session.scalars(select(CampaignSettingsRow).where(CampaignSettingsRow.campaign_id == campaign_id)
                          .order_by(CampaignSettingsRow.version.desc()).limit(1)).first()
    if row is None:
        return None
    try:
        return parse_campaign(row.document, settings_source(slug, row.version))
    except ConfigError as exc:  # saved by an older version with other rules: the file's stays
        log.error("campaign %s: its stored settings are not valid any more, the file's are used: %s",
                  slug, exc)
        return None


def _stored_letters(session: Session, campaign_id: int) -> tuple[tuple[str, str], ...]:
    newest = (select(LetterVersionRow.language, func.max(LetterVersionRow.version).label("version"))
              .where(LetterVersionRow.campaign_id == campaign_id)
              .group_by(LetterVersionRow.language).subquery())
    rows = session.execute(
        select(LetterVersionRow.language, LetterVersionRow.source)
        .join(newest, (LetterVersionRow.language == newest.c.language)
              & (LetterVersionRow.version == newest.c.version))
        .where(LetterVersionRow.campaign_id == campaign_id)
        .order_by(LetterVersionRow.language)).all()
    return tuple((language, source) for language, source in rows)


def _stored_signers(engine: Engine) -> int:
    with reading(engine) as session:
        return session.scalar(select(func.count()).select_from(SignerRow)) or 0


def _key_lost(app: App, signers: int) -> UsageError:
    path = app.settings.signer_key_path
    return UsageError(
        f"the signer key file {path} is missing, but the database holds {signers:,} signers keyed "
        f"with it: restore {path} from your backup (or set {SETTING} to where it is); a new key "
        "would make every stored signer unrecognisable, so none is made")


def _load_signer_keys(app: App) -> SignerKeys:
    current, newest = schema_revisions(app.engine)
    if current != newest:  # old keys are not keyed hashes yet: `init` rewrites them first
        raise UsageError(f"the database schema is at revision {current or '(none)'} and this "
                         f"version needs {newest}: run `petition-delivery init` to upgrade it")
    keys = read_key_file(app.settings.signer_key_path)
    if keys is None:
        signers = _stored_signers(app.engine)
        if signers:
            raise _key_lost(app, signers)
        raise UsageError(f"the signer key file {app.settings.signer_key_path} does not exist: run "
                         "`petition-delivery init` to make it")
    return keys


def _init_signer_keys(app: App) -> SignerKeys:
    """The key file's keys; a new key file when none exists and no stored signer needs the old one."""
    path = app.settings.signer_key_path
    keys = read_key_file(path)
    if keys is not None:
        return keys
    if KEYED_REVISION in applied_revisions(app.engine):
        signers = _stored_signers(app.engine)
        if signers:
            raise _key_lost(app, signers)
    keys = create_key_file(path)
    log.warning("made the signer key file %s (fingerprint %s): back it up with the database",
                path, keys.fingerprint)
    return keys


def init(app: App, *, now: datetime | None = None) -> list[str]:
    """Create or upgrade the schema and register every campaign; safe to rerun. Makes the signer
    key file when none exists and no stored signer needs it (see the module's docstring)."""
    now = now or datetime.now(UTC)
    keys = _init_signer_keys(app)
    upgrade_schema(app.engine, signer_keys=keys)
    app._signer_keys = keys
    with transaction(app.engine) as session:
        existing = {row.slug: row for row in session.scalars(select(CampaignRow))}
        for campaign in app.files.values():
            row = existing.get(campaign.slug)
            if row is None:
                session.add(CampaignRow(slug=campaign.slug, title=campaign.title, goal=campaign.goal,
                                        created_at=now))
            else:
                _record_changed_file(session, row.id, campaign, now=now)
                row.title, row.goal = campaign.title, campaign.goal
    refresh_campaigns(app)
    return sorted(app.campaigns)


def _record_changed_file(session: Session, campaign_id: int, campaign: Campaign, *,
                         now: datetime) -> None:
    """A campaign file changed since the newest stored version was made → a new version from
    it (the file's own changes win over earlier ones from the web admin, and say so)."""
    newest = session.scalars(select(CampaignSettingsRow)
                             .where(CampaignSettingsRow.campaign_id == campaign_id)
                             .order_by(CampaignSettingsRow.version.desc()).limit(1)).first()
    if newest is None:
        return  # never edited in the admin: the file is in force as it is
    try:
        text = Path(campaign.source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return  # loaded from elsewhere than a file
    digest = hashlib.sha256(text.encode()).hexdigest()
    if newest.file_digest is None or digest == newest.file_digest:
        return
    changes = changed_keys(newest.document, text)
    session.add(CampaignSettingsRow(campaign_id=campaign_id, version=newest.version + 1, document=text,
                                    origin="file", file_digest=digest, changes=json.dumps(changes),
                                    actor=f"file:{campaign.source}", created_at=now))
    audit.record(session, at=now, actor="init", action="campaign.settings", subject=campaign.slug,
                 campaign_id=campaign_id, version=newest.version + 1, changed=changes,
                 file=campaign.source)
    log.warning("campaign %s: %s changed since version %d; it is now version %d, in force in place "
                "of the settings edited in the web admin", campaign.slug, campaign.source,
                newest.version, newest.version + 1)


def check_ready(app: App, campaigns: Sequence[Campaign]) -> None:
    """Refuse to run on a database that is unreachable, older than the code, or lacks a campaign:
    UsageError (run `init`) or DeliveryError, each saying what to do."""
    try:
        current, newest = schema_revisions(app.engine)
        if current != newest:
            raise UsageError(f"the database schema is at revision {current or '(none)'} and this "
                             f"version needs {newest}: run `petition-delivery init` to upgrade it")
        _ = app.signer_keys  # the key file is there, or a UsageError naming it now
        with reading(app.engine) as session:
            for campaign in campaigns:
                app.campaign_id(session, campaign)  # registered by `init`, or a clear UsageError now
        refresh_campaigns(app)
    except SQLAlchemyError as exc:
        raise DeliveryError(f"the database is unreachable or not initialised (run `petition-delivery "
                            f"init`): {safe_error(exc)}") from exc


def database_problem(app: App) -> str | None:
    """None when the database answers `SELECT 1`; else the error's kind (details to the log only)."""
    try:
        with app.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        log.warning("health: the database is unreachable: %s", safe_error(exc))
        return type(exc).__name__
    return None


def database_error(exc: BaseException) -> str | None:
    """The first line of a database error, without its parameters; None for any other error."""
    return safe_error(exc) if isinstance(exc, SQLAlchemyError) else None
