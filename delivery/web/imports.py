"""An uploaded signer CSV + the import's options → a dry run to look at, then the import itself.

GET  /c/{slug}/signers/import          the form: the file and every option `signers import` has
POST /c/{slug}/signers/import/check    saves the upload under a random token, runs a dry run and
                                       shows what would happen (counts, the first rows as read)
POST /c/{slug}/signers/import/confirm  imports the checked file with the checked options (audited
                                       by the service as "web:NAME") and deletes it
POST /c/{slug}/signers/import/discard  "Do not import": deletes it now

The upload waits in a private folder (0700, the file 0600) under the var dir, named by its token
(`secrets.token_urlsafe`, 192 bits), with a `meta.json` that binds it to the user and campaign
and says when it expires (an hour after its last check). It is deleted by its confirmation
(whatever the import's outcome), or, once expired, by the next visit to the form or the next
check; "Do not import" deletes it at once. Nothing here logs a signer's data or the file's contents.

A refusal (InputRefused) names the CLI option that settles it; the page shows it next to the
form field standing for that option, with the option reworded as the field's label.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from delivery.campaigns.config import Campaign
from delivery.errors import DeliveryError, InputRefused
from delivery.services import signers
from delivery.web.common import (
    MAX_FORM_FIELDS,
    actor,
    blocking,
    campaign_for,
    checked_form,
    error_page,
    flash,
    login_required,
    render,
    state,
)

if TYPE_CHECKING:
    from delivery.signers.options import ImportOptions
    from delivery.signers.store import ImportReport

UPLOAD_LIMIT = 200 * 1024 * 1024  # bytes: the largest CSV the page takes
UPLOAD_LIMIT_TEXT = "200 MB"
TOKEN_TTL = timedelta(hours=1)
TOKEN_BYTES = 24
FOLDER = "web-imports"
_TOKEN = re.compile(r"[A-Za-z0-9_-]{32}")
_BUSY = ".busy"
_META = "meta.json"
_CHUNK = 1 << 20
_TEXT_LIMIT = 64 * 1024  # characters of one text field
_CHECK_PATH = re.compile(r"/c/[^/]+/signers/import/check")

EXPIRED_FORM = ("This form has expired (or was not sent from this site). Go back, reload the page and "
                "try again.")
GONE = ("This upload is no longer here: it was imported already, or it was checked more than an hour "
        "ago (uploads are deleted after an hour). Choose the file again and check it.")

# The form's fields, in the page's order, and their labels (the refusals name these).
LABELS = {"file": "CSV file", "format": "Format", "maps": "Column map", "where": "Keep only rows",
          "encoding": "Encoding", "date_order": "Order of day and month", "timezone": "Time zone",
          "signed_at_missing": "Empty date", "consent_missing": "No consent column",
          "update": "Update signers already stored"}
DATE_ORDERS = {"dmy": "day first (27/11/2026)", "mdy": "month first (11/27/2026)",
               "ymd": "year first (2026/11/27)"}
SIGNED_AT_MISSING = {"reject": "reject the row", "import-time": "date it at the time of import"}
CONSENT_MISSING = {"withhold": "withhold every name (count everyone, name no one)",
                   "name": "name everyone"}
FIELD_WORDS = {"email": "e-mail", "city": "city", "country": "country", "signed_at": "date of signing",
               "consent": "consent to be named"}
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

# An InputRefused's source (an option) → the field; for a whole file's refusal, the first of
# these options its text names, in this order (the decision asked for before the column map).
_SOURCE_FIELDS = {"--consent-missing": "consent_missing", "campaign.consent_missing": "consent_missing",
                  "--date-order": "date_order", "--signed-at-missing": "signed_at_missing",
                  "--encoding": "encoding", "--where": "where", "--timezone": "timezone",
                  "schedule.timezone": "timezone", "--format": "format", "--map": "maps"}
_NAMED_IN_TEXT = ("--consent-missing", "--date-order", "--signed-at-missing", "--encoding", "--where",
                  "--timezone", "--format", "--map")
_REWORDING: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(p), r) for p, r in (
    (r"--date-order dmy or --date-order mdy", "“Order of day and month”: “day first” or “month first”"),
    (r"--date-order dmy", "“Order of day and month”: “day first”"),
    (r"--date-order mdy", "“Order of day and month”: “month first”"),
    (r"--date-order ymd", "“Order of day and month”: “year first”"),
    (r"--date-order", "“Order of day and month”"),
    (r"--consent-missing withhold", "“No consent column”: “withhold every name”"),
    (r"--consent-missing name", "“No consent column”: “name everyone”"),
    (r"--consent-missing", "“No consent column”"),
    (r"--signed-at-missing import-time", "“Empty date”: “date it at the time of import”"),
    (r"--signed-at-missing", "“Empty date”"),
    (r"--map ([a-z_]+|FIELD)=COLUMN", r"a line “\1=COLUMN” in “Column map”"),
    (r"--map (?=[A-Za-z_]+=)", "the “Column map” line "),
    (r"--map", "“Column map”"),
    (r"--where COLUMN=VALUE", "a line “COLUMN=VALUE” in “Keep only rows”"),
    (r"--where (?=\S)", "the “Keep only rows” line "),
    (r"--where", "“Keep only rows”"),
    (r"pass --encoding", "fill in “Encoding”"),
    (r"--encoding ([\w.-]+)", r"“Encoding”: \1"),
    (r"--encoding", "“Encoding”"),
    (r"--timezone", "“Time zone”"),
    (r"--format", "“Format”"),
    (r"--update", "“Update signers already stored”"),
))
_SPREADSHEETS = (b"PK\x03\x04", b"\xd0\xcf\x11\xe0")  # .xlsx/.ods (zip), .xls (OLE)
SPREADSHEET = ("This is a spreadsheet file, not a CSV file: open it in your spreadsheet program, choose "
               "File → Download (or Save as) → CSV, and upload that file.")


def body_limit(path: str) -> int | None:
    """The largest request body for this path when it takes an upload (FormSizeLimit asks)."""
    return UPLOAD_LIMIT + 64 * 1024 if _CHECK_PATH.fullmatch(path) else None


# --- the options as the form gives them ---------------------------------------------------------

def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


@dataclass(frozen=True)
class Choices:
    """The form's option fields as typed (normalized: a textarea keeps its non-empty lines)."""

    format: str = "generic"
    maps: str = ""
    where: str = ""
    encoding: str = ""
    date_order: str = ""
    timezone: str = ""
    signed_at_missing: str = "reject"
    consent_missing: str = ""
    update: bool = False

    @classmethod
    def from_form(cls, form: FormData) -> Choices:
        def text(name: str, default: str = "") -> str:
            value = form.get(name)
            return value[:_TEXT_LIMIT] if isinstance(value, str) else default

        return cls(format=text("format", "generic").strip() or "generic",
                   maps="\n".join(_lines(text("maps"))), where="\n".join(_lines(text("where"))),
                   encoding=text("encoding").strip(), date_order=text("date_order").strip(),
                   timezone=text("timezone").strip(),
                   signed_at_missing=text("signed_at_missing", "reject").strip() or "reject",
                   consent_missing=text("consent_missing").strip(), update=bool(text("update")))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Choices:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def options(self, campaign: Campaign, *, dry_run: bool) -> ImportOptions:
        """ImportOptions, through the service (InputRefused naming the option that is wrong)."""
        return signers.import_options(
            campaign, encoding=self.encoding or None,
            format=None if self.format == "generic" else self.format,
            maps=_lines(self.maps), where=_lines(self.where), date_order=self.date_order or None,
            timezone=self.timezone or None, signed_at_missing=self.signed_at_missing or None,
            consent_missing=self.consent_missing or None, update=self.update, dry_run=dry_run)


# --- uploads waiting for their confirmation -----------------------------------------------------

@dataclass
class Upload:
    token: str
    folder: Path
    user: str
    campaign: str
    name: str      # the file's name as uploaded (cleaned), shown and audited
    size: int
    expires: datetime
    choices: dict[str, Any] = field(default_factory=dict)
    checked: bool = False  # the last check with `choices` ran without a refusal

    @property
    def path(self) -> Path:
        return self.folder / self.name

    def meta(self) -> dict[str, Any]:
        return {"user": self.user, "campaign": self.campaign, "name": self.name, "size": self.size,
                "expires": self.expires.isoformat(), "choices": self.choices, "checked": self.checked}


class UploadRefused(Exception):
    """The upload itself cannot be taken (too large, a spreadsheet, empty)."""


def uploads_root(var_dir: Path) -> Path:
    """The folder of waiting uploads, made private (0700) if it is not yet."""
    root = var_dir / FOLDER
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    if root.is_symlink() or not root.is_dir():
        raise DeliveryError(f"{root} is not a folder of its own: uploads cannot be kept there")
    os.chmod(root, 0o700)
    return root


def safe_name(name: str) -> str:
    """An uploaded file's name → one safe as a file name in its folder (and in the audit log)."""
    base = re.split(r"[\\/]", name)[-1]
    cleaned = re.sub(r"[^\w.\- ()]+", "_", base).strip(" .")[:100]
    if not cleaned or cleaned == _META:
        return "upload.csv"
    return cleaned


def save_upload(root: Path, source: IO[bytes], name: str, *, user: str, campaign: str,
                now: datetime) -> Upload:
    """Copy an uploaded file into a new private folder under a new token (blocking)."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    folder = root / token
    folder.mkdir(mode=0o700)
    try:
        os.chmod(folder, 0o700)
        upload = Upload(token=token, folder=folder, user=user, campaign=campaign, name=safe_name(name),
                        size=0, expires=now + TOKEN_TTL)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        with os.fdopen(os.open(upload.path, flags, 0o600), "wb") as out:
            os.chmod(upload.path, 0o600)
            while chunk := source.read(_CHUNK):
                if upload.size == 0 and chunk.startswith(_SPREADSHEETS):
                    raise UploadRefused(SPREADSHEET)
                upload.size += len(chunk)
                if upload.size > UPLOAD_LIMIT:
                    raise UploadRefused(f"The file is larger than {UPLOAD_LIMIT_TEXT}: split it into "
                                        "smaller files and import them one after the other.")
                out.write(chunk)
        if upload.size == 0:
            raise UploadRefused("The file is empty: choose the CSV file your platform exported.")
        write_meta(upload)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return upload


def write_meta(upload: Upload) -> None:
    target = upload.folder / _META
    partial = upload.folder / f".{_META}.{secrets.token_hex(4)}"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    with os.fdopen(os.open(partial, flags, 0o600), "w", encoding="utf-8") as out:
        json.dump(upload.meta(), out)
    os.replace(partial, target)


def _read(folder: Path, token: str) -> Upload | None:
    try:
        meta = json.loads((folder / _META).read_text(encoding="utf-8"))
        return Upload(token=token, folder=folder, user=str(meta["user"]), campaign=str(meta["campaign"]),
                      name=safe_name(str(meta["name"])), size=int(meta["size"]),
                      expires=datetime.fromisoformat(str(meta["expires"])),
                      choices=dict(meta.get("choices") or {}), checked=bool(meta.get("checked")))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def find_upload(root: Path, token: object, *, user: str, campaign: str, now: datetime) -> Upload | None:
    """The waiting upload of this token, when it is this user's, for this campaign, and not
    expired (an expired one is deleted); None otherwise (blocking)."""
    if not isinstance(token, str) or not _TOKEN.fullmatch(token):
        return None
    upload = _read(root / token, token)
    if upload is None or upload.user != user or upload.campaign != campaign:
        return None
    if upload.expires <= now:
        shutil.rmtree(upload.folder, ignore_errors=True)
        return None
    return upload


def claim_upload(root: Path, upload: Upload) -> Upload | None:
    """Take the upload for its import: one confirmation only (a second one finds it gone)."""
    busy = root / f"{upload.token}{_BUSY}"
    try:
        os.rename(upload.folder, busy)
    except FileNotFoundError:
        return None
    upload.folder = busy
    return upload


def discard(upload: Upload) -> None:
    shutil.rmtree(upload.folder, ignore_errors=True)


def clean_expired(root: Path, now: datetime) -> int:
    """Delete the folders of expired uploads (and of confirmations that died half-way) → how many."""
    removed = 0
    for entry in root.iterdir():
        token = entry.name.removesuffix(_BUSY)
        if not _TOKEN.fullmatch(token) or not entry.is_dir() or entry.is_symlink():
            continue
        upload = _read(entry, token)
        if upload is None:  # no readable meta: judged by its age on disk
            with contextlib.suppress(OSError):
                expired = entry.stat().st_mtime < time.time() - TOKEN_TTL.total_seconds()
                if expired:
                    shutil.rmtree(entry, ignore_errors=True)
                    removed += 1
            continue
        # A busy folder is being imported: give its confirmation another hour.
        if upload.expires + (TOKEN_TTL if entry.name.endswith(_BUSY) else timedelta()) <= now:
            shutil.rmtree(entry, ignore_errors=True)
            removed += 1
    return removed


# --- refusals → fields --------------------------------------------------------------------------

def reword(text: str) -> str:
    """A message naming CLI options → the same naming the form's fields."""
    for pattern, replacement in _REWORDING:
        text = pattern.sub(replacement, text)
    return text


def refusal(exc: InputRefused, upload: Upload | None) -> tuple[str, str]:
    """An InputRefused → (the form field it concerns, its message in the form's words)."""
    source, problem = exc.source, exc.problem
    if source in _SOURCE_FIELDS:
        option_field = _SOURCE_FIELDS[source]
        label = "The campaign file's consent_missing" if source == "campaign.consent_missing" else \
            "The campaign file's time zone" if source == "schedule.timezone" else LABELS[option_field]
        return option_field, f"{label}: {reword(problem)}"
    name = next((_SOURCE_FIELDS[o] for o in _NAMED_IN_TEXT if o in problem), None)
    if name is None and re.match(r"(unknown encoding|does not decode as)", problem):
        name = "encoding"
    shown = upload.name if upload else "The file"
    problem = _hide_paths(problem, upload)
    joined = f"{shown} {problem}" if re.match(r"(is|does|contains|changed) ", problem) else \
        f"{shown}: {problem}"
    return name or "file", reword(joined)


def _hide_paths(text: str, upload: Upload | None) -> str:
    """The private folder's path never reaches a page: the file's own name stands for it."""
    if upload is not None:
        for folder in (upload.folder, upload.folder.with_name(upload.token),
                       upload.folder.with_name(upload.token + _BUSY)):
            text = text.replace(str(folder / upload.name), upload.name).replace(str(folder), "")
    return text


# --- what the pages show ------------------------------------------------------------------------

def when_signed(moment: datetime, zone: str) -> str:
    local = moment.astimezone(ZoneInfo(zone))
    return f"{local.day} {MONTHS[local.month - 1]} {local.year}, {local:%H:%M}"


def report_view(report: ImportReport, campaign: Campaign, choices: Choices,
                upload: Upload | None) -> dict[str, Any]:
    zone = campaign.schedule.timezone
    order = report.date_order.value if report.date_order else None
    return {
        "r": report,
        "date_order": DATE_ORDERS.get(order or "", ""),
        "date_order_chosen": bool(choices.date_order),
        "rejects": [(line, reword(_hide_paths(reason, upload))) for line, reason in report.sample_rejects],
        "warnings": [reword(_hide_paths(w, upload)) for w in report.warnings],
        "missing": [FIELD_WORDS.get(f, f) for f in report.missing_fields],
        "zone": zone,
        "rows": [{"line": row.line, "name": row.name, "signed": when_signed(row.signed_at, zone),
                  "iso": row.signed_at.isoformat(), "country": row.country, "named": row.named}
                 for row in report.preview],
        "changes": bool(report.imported or report.updated),
    }


def _formats() -> list[tuple[str, str]]:
    from delivery.signers.formats import FORMATS

    return [("generic", "Generic: columns named name, email, city, country, signed_at, consent…"),
            *sorted(((f.name, f.title) for f in FORMATS.values()), key=lambda item: item[1].lower())]


def _page(request: Request, campaign: Campaign, *, stage: str, choices: Choices,
          errors: Mapping[str, str] | None = None, upload: Upload | None = None,
          status_code: int = 200, **context: Any) -> Response:
    titles = {"form": "Import signers", "checked": "Check the import", "done": "Signers imported"}
    consent_default = CONSENT_MISSING.get(campaign.consent_missing)
    return render(request, "import.html", status_code=status_code,
                  title=f"{titles[stage]} · {campaign.title}", campaign=campaign, stage=stage,
                  choices=choices, errors=dict(errors or {}), upload=upload, labels=LABELS,
                  formats=_formats(), date_orders=DATE_ORDERS, signed_at_missing=SIGNED_AT_MISSING,
                  consent_missing=CONSENT_MISSING, consent_default=consent_default,
                  limit=UPLOAD_LIMIT_TEXT, ttl_minutes=int(TOKEN_TTL.total_seconds() // 60), **context)


# --- the pages ----------------------------------------------------------------------------------

async def import_page(request: Request, user: str) -> Response:
    web = state(request)
    campaign = campaign_for(request)
    root = await blocking(uploads_root, web.app.settings.var_dir)
    await blocking(clean_expired, root, web.clock())
    return _page(request, campaign, stage="form", choices=Choices())


async def _upload_form(request: Request) -> FormData | None:
    """The posted multipart form (one file at most) when its CSRF token matches the session's."""
    await request.form(max_files=1, max_fields=MAX_FORM_FIELDS, max_part_size=_TEXT_LIMIT)
    return await checked_form(request)  # the form parsed above: this checks its CSRF token


async def import_check(request: Request, user: str) -> Response:
    campaign = campaign_for(request)
    try:
        form = await _upload_form(request)
        if form is None:
            return error_page(request, 403, EXPIRED_FORM)
        return await _check(request, user, campaign, form)
    finally:
        await request.close()  # the spooled upload's temporary file goes now, not at GC


async def _check(request: Request, user: str, campaign: Campaign, form: FormData) -> Response:
    web = state(request)
    now = web.clock()
    choices = Choices.from_form(form)
    root = await blocking(uploads_root, web.app.settings.var_dir)
    await blocking(clean_expired, root, now)
    previous = await blocking(find_upload, root, form.get("token"), user=user, campaign=campaign.slug,
                              now=now)
    file = form.get("file")
    if isinstance(file, UploadFile) and (file.filename or file.size):
        if previous is not None:
            await blocking(discard, previous)
            previous = None
        try:
            upload = await blocking(save_upload, root, file.file, file.filename or "", user=user,
                                    campaign=campaign.slug, now=now)
        except UploadRefused as exc:
            return _page(request, campaign, stage="form", choices=choices, errors={"file": str(exc)},
                         status_code=400)
    elif previous is not None:
        upload = previous
    else:
        gone = GONE if form.get("token") else "Choose the CSV file to import."
        return _page(request, campaign, stage="form", choices=choices, errors={"file": gone},
                     status_code=400)
    upload.choices, upload.checked, upload.expires = asdict(choices), False, now + TOKEN_TTL
    try:
        options = choices.options(campaign, dry_run=True)
        report = await blocking(signers.import_file, web.app, campaign, upload.path, now=now,
                                actor=actor(user), options=options)
    except InputRefused as exc:
        await blocking(write_meta, upload)
        name, message = refusal(exc, upload)
        return _page(request, campaign, stage="form", choices=choices, errors={name: message}, upload=upload,
                     status_code=400)
    except DeliveryError as exc:
        await blocking(write_meta, upload)
        return _page(request, campaign, stage="form", choices=choices, upload=upload, status_code=400,
                     errors={"file": _hide_paths(str(exc), upload)})
    upload.checked = True
    await blocking(write_meta, upload)
    return _page(request, campaign, stage="checked", choices=choices, upload=upload,
                 **report_view(report, campaign, choices, upload))


async def import_confirm(request: Request, user: str) -> Response:
    web = state(request)
    campaign = campaign_for(request)
    form = await checked_form(request)
    if form is None:
        return error_page(request, 403, EXPIRED_FORM)
    now = web.clock()
    choices = Choices.from_form(form)
    root = await blocking(uploads_root, web.app.settings.var_dir)
    found = await blocking(find_upload, root, form.get("token"), user=user, campaign=campaign.slug, now=now)
    if found is None:
        return _page(request, campaign, stage="form", choices=choices, errors={"file": GONE}, status_code=410)
    if not found.checked or Choices.from_dict(found.choices) != choices:
        return _page(request, campaign, stage="form", choices=choices, upload=found, status_code=409,
                     errors={"file": "The options changed after the check (or the check found a problem): "
                                     "check the file with these options before importing it."})
    upload = await blocking(claim_upload, root, found)
    if upload is None:
        return _page(request, campaign, stage="form", choices=choices, errors={"file": GONE}, status_code=410)
    try:
        options = choices.options(campaign, dry_run=False)
        report = await blocking(signers.import_file, web.app, campaign, upload.path, now=now,
                                actor=actor(user), options=options)
    except InputRefused as exc:
        name, message = refusal(exc, upload)
        return _page(request, campaign, stage="form", choices=choices, status_code=400,
                     errors={name: message + " Nothing was imported; choose the file again."})
    except DeliveryError as exc:
        return _page(request, campaign, stage="form", choices=choices, status_code=400,
                     errors={"file": _hide_paths(str(exc), upload) + " Choose the file again."})
    finally:
        await blocking(discard, upload)  # the upload never outlives its confirmation
    return _page(request, campaign, stage="done", choices=choices, upload=upload,
                 **report_view(report, campaign, choices, upload))


async def import_discard(request: Request, user: str) -> Response:
    """"Do not import": the upload is deleted now rather than when it expires."""
    web = state(request)
    campaign = campaign_for(request)
    form = await checked_form(request)
    if form is None:
        return error_page(request, 403, EXPIRED_FORM)
    root = await blocking(uploads_root, web.app.settings.var_dir)
    found = await blocking(find_upload, root, form.get("token"), user=user, campaign=campaign.slug,
                           now=web.clock())
    if found is not None:
        await blocking(discard, found)
    flash(request, "ok" if found else "info", "Nothing was imported; the uploaded file was deleted."
          if found else "Nothing was imported, and that upload is gone already.")
    return RedirectResponse(f"/c/{campaign.slug}/signers", status_code=303)


routes = [
    Route("/c/{slug}/signers/import", login_required(import_page), methods=["GET"]),
    Route("/c/{slug}/signers/import/check", login_required(import_check), methods=["POST"]),
    Route("/c/{slug}/signers/import/confirm", login_required(import_confirm), methods=["POST"]),
    Route("/c/{slug}/signers/import/discard", login_required(import_discard), methods=["POST"]),
]
