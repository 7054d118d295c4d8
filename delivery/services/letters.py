"""A cover letter's source edited in the web admin → its problems (with line numbers), a picture of
the dossier's first page as it would print, and new versions in letter_versions (audited
"letter.save" and "letter.restore"), in force in every `serve` instance at its next tick.

The letter is checked the way a delivery would use it: parsed by the dossier's own (sandboxed)
Jinja2 environment, then rendered inside the front page with the campaign's current count, so
that an unknown variable is found before saving rather than at the next milestone. A save names
the version it was made on; SettingsConflict-like LetterConflict when another was saved since.
"""

from __future__ import annotations

import subprocess
import tempfile
import traceback
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from jinja2 import TemplateSyntaxError
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from delivery.campaigns.config import Campaign
from delivery.campaigns.templates import edited_filename, letter_overrides, letter_template
from delivery.dossier import render
from delivery.dossier.compose import compose
from delivery.errors import DeliveryError, NotFound, RenderError, UsageError
from delivery.services.app import App, refresh_campaigns
from delivery.storage import audit
from delivery.storage.db import reading, transaction
from delivery.storage.models import LetterVersionRow, SignerRow

MAX_LETTER_CHARS = 20_000  # the shipped letters have 2,400 to 2,900
PREVIEW_DPI = 60  # a page of A4 at 60 dpi: 497 × 702 px, about 80 kB of PNG
ADMIN, RESTORE = "admin", "restore"


class LetterInvalid(DeliveryError):
    """The letter has problems (with their lines): nothing was saved."""

    def __init__(self, problems: list[LetterProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"line {p.line}: {p.message}" if p.line else p.message for p in problems))


class LetterConflict(DeliveryError):
    """The letter was saved by someone else since the editor was opened."""

    def __init__(self, version: LetterVersion) -> None:
        self.version = version
        super().__init__(f"version {version.version} was saved by {version.actor} in the meantime")


@dataclass(frozen=True)
class LetterProblem:
    line: int | None  # in the letter's source; None when no line can be named
    message: str


@dataclass(frozen=True)
class LetterVersion:
    version: int
    origin: str  # ADMIN or RESTORE
    actor: str
    created_at: datetime
    chars: int


@dataclass(frozen=True)
class LetterView:
    """The letter in force in one language: its source, and where it comes from."""

    language: str
    source: str
    version: int  # 0: the file under templates/
    file: str  # the template file it replaces, relative to templates/


def view(app: App, campaign: Campaign, language: str) -> LetterView:
    name = letter_template(campaign.letter, language)
    edited = dict(campaign.letters).get(language)
    with reading(app.engine) as session:
        version = _newest(session, app.campaign_id(session, campaign), language)
    if edited is not None:
        return LetterView(language, edited, version, name)
    path = app.settings.templates_dir / name
    source = path.read_text(encoding="utf-8") if path.is_file() else ""
    return LetterView(language, source, 0, name)


def history(app: App, campaign: Campaign, language: str) -> list[LetterVersion]:
    """Every stored version of the letter in `language`, newest first."""
    with reading(app.engine) as session:
        rows = session.scalars(select(LetterVersionRow).where(
            LetterVersionRow.campaign_id == app.campaign_id(session, campaign),
            LetterVersionRow.language == language).order_by(LetterVersionRow.version.desc()))
        return [LetterVersion(r.version, r.origin, r.actor, r.created_at, len(r.source)) for r in rows]


def _newest(session: Session, campaign_id: int, language: str) -> int:
    return session.scalar(select(func.max(LetterVersionRow.version)).where(
        LetterVersionRow.campaign_id == campaign_id, LetterVersionRow.language == language)) or 0


def problems(app: App, campaign: Campaign, language: str, source: str, *,
             now: datetime) -> list[LetterProblem]:
    """What stops `source` from being this campaign's letter in `language`; empty when nothing."""
    if language not in campaign.languages:
        return [LetterProblem(None, f"no recipient reads '{language}'")]
    if len(source) > MAX_LETTER_CHARS:
        return [LetterProblem(None, f"the letter is longer than {MAX_LETTER_CHARS:,} characters")]
    try:
        _front_html(app, campaign, language, source, now=now)
    except TemplateSyntaxError as exc:
        return [LetterProblem(exc.lineno, exc.message or "syntax error")]
    except Exception as exc:  # any error the template raises while rendering: show it, with its line
        return [LetterProblem(_line_in(exc, letter_template(campaign.letter, language)),
                              f"{type(exc).__name__}: {exc}")]
    return []


def _line_in(exc: BaseException, name: str) -> int | None:
    """The line of the template `name` where `exc` was raised (Jinja2 puts template lines in
    the traceback), or None."""
    lines = [frame.lineno for frame in traceback.extract_tb(exc.__traceback__)
             if frame.filename == edited_filename(name)]
    return lines[-1] if lines else None


def _front_html(app: App, campaign: Campaign, language: str, source: str, *, now: datetime) -> str:
    """The front document of a dossier of the campaign's current count, with `source` as the
    letter in `language`."""
    edited = replace(campaign, letters=(*[(lang, s) for lang, s in campaign.letters if lang != language],
                                        (language, source)))
    with reading(app.engine) as session:
        count = session.scalar(select(func.count()).select_from(SignerRow).where(
            SignerRow.campaign_id == app.campaign_id(session, campaign))) or 0
    dossier = compose(edited, [], dossier_id="preview", created_at=now, trigger="preview",
                      milestone=None, addressees=campaign.recipients,
                      signed=campaign.signing == "required")
    dossier = replace(dossier, signer_count=count, verify_url=app.settings.verify_url)
    templates = app.settings.templates_dir
    texts = render.load_texts(templates, language)
    env = render.make_environment(templates, texts, overrides=letter_overrides(edited.letter, edited.letters))
    env.parse(source, letter_template(campaign.letter, language))  # syntax errors with their line
    return render.front_html(env, texts, dossier, volume_pages=0)


def preview_png(app: App, campaign: Campaign, language: str, source: str, *, now: datetime) -> bytes:
    """The first page of the dossier with `source` as its letter, as a PNG; RenderError when the
    letter cannot be rendered (problems() says why, with the line)."""
    from delivery.pdf.jobs import PdfJob
    from delivery.pdf.weasy import render_html

    html = _front_html(app, campaign, language, source, now=now)
    pdf = render_html(PdfJob(f"letter preview ({language})", html, str(app.settings.templates_dir),
                             b"\0" * 16), gc_off=False)
    with tempfile.TemporaryDirectory(prefix="letter-preview-") as folder:
        path = Path(folder) / "front.pdf"
        path.write_bytes(pdf.data)
        command = ["pdftoppm", "-png", "-r", str(PREVIEW_DPI), "-f", "1", "-l", "1", "-singlefile",
                   str(path), str(Path(folder) / "page")]  # our own file names only
        try:
            subprocess.run(command, check=True, capture_output=True, timeout=60)  # noqa: S603
        except (OSError, subprocess.SubprocessError) as exc:
            raise RenderError(f"the preview picture cannot be made (poppler's pdftoppm): {exc}") from exc
        return (Path(folder) / "page.png").read_bytes()


def save(app: App, campaign: Campaign, language: str, source: str, *, based_on: int, actor: str,
         now: datetime, origin: str = ADMIN, restored: int | None = None) -> Campaign:
    """A new version of the letter in `language`, in force now; LetterInvalid (nothing saved)
    when it has problems(), LetterConflict when `based_on` is not the newest."""
    found = problems(app, campaign, language, source, now=now)
    if found:
        raise LetterInvalid(found)
    try:
        with transaction(app.engine) as session:
            campaign_id = app.campaign_id(session, campaign)
            newest = _newest(session, campaign_id, language)
            if newest != based_on:
                if newest == 0:  # nothing saved yet: the form named a version that never was
                    raise UsageError(f"version {based_on} of the {language} letter does not exist")
                raise LetterConflict(_version_of(session, campaign_id, language, newest))
            session.add(LetterVersionRow(campaign_id=campaign_id, language=language, version=newest + 1,
                                         source=source, origin=origin, actor=actor, created_at=now))
            action = "letter.save" if origin == ADMIN else "letter.restore"
            audit.record(session, at=now, actor=actor, action=action, subject=campaign.slug,
                         campaign_id=campaign_id, language=language, version=newest + 1, chars=len(source),
                         **({"restored": restored} if restored is not None else {}))
    except IntegrityError:  # another instance stored the same version number first
        with reading(app.engine) as session:
            campaign_id = app.campaign_id(session, campaign)
            raise LetterConflict(_version_of(session, campaign_id, language,
                                             _newest(session, campaign_id, language))) from None
    refresh_campaigns(app)
    return app.campaigns[campaign.slug]


def version_source(app: App, campaign: Campaign, language: str, version: int) -> str:
    """The source of a stored version of the letter (0: the file under templates/); NotFound."""
    path = app.settings.templates_dir / letter_template(campaign.letter, language)
    if version == 0 and path.is_file():  # the file, as before any edit
        return path.read_text(encoding="utf-8")
    with reading(app.engine) as session:
        source = session.scalar(select(LetterVersionRow.source).where(
            LetterVersionRow.campaign_id == app.campaign_id(session, campaign),
            LetterVersionRow.language == language, LetterVersionRow.version == version))
    if source is None:
        raise NotFound(f"the {language} letter has no version {version}")
    return source


def restore(app: App, campaign: Campaign, language: str, version: int, *, based_on: int, actor: str,
            now: datetime) -> Campaign:
    """An earlier version of the letter (0: the file) → a new version with its source, in force now."""
    source = version_source(app, campaign, language, version)
    return save(app, campaign, language, source, based_on=based_on, actor=actor, now=now,
                origin=RESTORE, restored=version)


def _version_of(session: Session, campaign_id: int, language: str, version: int) -> LetterVersion:
    row = session.scalar(select(LetterVersionRow).where(
        LetterVersionRow.campaign_id == campaign_id, LetterVersionRow.language == language,
        LetterVersionRow.version == version))
    assert row is not None
    return LetterVersion(row.version, row.origin, row.actor, row.created_at, len(row.source))
