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
form field standing for that option, with the option reworded as the field's label. The refusals
themselves come from the service in English; the labels and choices put into them are in the
page's language, as the form shows them.
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

from babel.numbers import format_decimal
from babel.support import NullTranslations
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from delivery.campaigns.config import Campaign
from delivery.campaigns.languages import N_
from delivery.errors import DeliveryError, InputRefused
from delivery.services import signers
from delivery.signers.options import FIELDS
from delivery.web.common import (
    EXPIRED,
    MAX_FORM_FIELDS,
    actor,
    blocking,
    campaign_for,
    campaign_title,
    checked_form,
    error_page,
    flash,
    language,
    locale_of,
    login_required,
    moment,
    page_title,
    render,
    state,
    translator,
)

if TYPE_CHECKING:
    from delivery.signers.options import ImportOptions
    from delivery.signers.store import ImportReport

UPLOAD_LIMIT_MB = 200
UPLOAD_LIMIT = UPLOAD_LIMIT_MB * 1024 * 1024  # bytes: the largest CSV the page takes
TOKEN_TTL = timedelta(hours=1)
TOKEN_BYTES = 24
FOLDER = "web-imports"
_TOKEN = re.compile(r"[A-Za-z0-9_-]{32}")
_BUSY = ".busy"
_META = "meta.json"
_CHUNK = 1 << 20
_TEXT_LIMIT = 64 * 1024  # characters of one text field
_CHECK_PATH = re.compile(r"/c/[^/]+/signers/import/check")

GONE = N_("This upload is no longer here: it was imported already, or it was checked more than an hour "
          "ago (uploads are deleted after an hour). Choose the file again and check it.")

# The form's fields, in the page's order, and their labels (the refusals name these).
LABELS = {"file": N_("CSV file"), "format": N_("Format"), "maps": N_("Column map"),
          "where": N_("Keep only rows"), "encoding": N_("Encoding"),
          "date_order": N_("Order of day and month"), "timezone": N_("Time zone"),
          "signed_at_missing": N_("Empty date"), "consent_missing": N_("No consent column"),
          "update": N_("Update signers already stored")}
DATE_ORDERS = {"dmy": N_("day first (27/11/2026)"), "mdy": N_("month first (11/27/2026)"),
               "ymd": N_("year first (2026/11/27)")}
SIGNED_AT_MISSING = {"reject": N_("reject the row"), "import-time": N_("date it at the time of import")}
CONSENT_MISSING = {"withhold": N_("withhold every name (count everyone, name no one)"),
                   "name": N_("name everyone")}
FIELD_WORDS = {"email": N_("e-mail"), "city": N_("city"), "country": N_("country"),
               "signed_at": N_("date of signing"), "consent": N_("consent to be named")}
# The generic format's column names, which the file's header writes as they are (in any language).
GENERIC_COLUMNS = "name, email, city, country, signed_at, consent…"
# The choices as the refusals name them (the options' values, shorter than the form's texts).
CHOICE_WORDS = {"dmy": N_("day first"), "mdy": N_("month first"), "ymd": N_("year first"),
                "withhold": N_("withhold every name"), "name": N_("name everyone"),
                "import-time": N_("date it at the time of import")}

# An InputRefused's source (an option) → the field; for a whole file's refusal, the first of
# these options its text names, in this order (the decision asked for before the column map).
_SOURCE_FIELDS = {"--consent-missing": "consent_missing", "campaign.consent_missing": "consent_missing",
                  "--date-order": "date_order", "--signed-at-missing": "signed_at_missing",
                  "--encoding": "encoding", "--where": "where", "--timezone": "timezone",
                  "schedule.timezone": "timezone", "--format": "format", "--map": "maps"}
_NAMED_IN_TEXT = ("--consent-missing", "--date-order", "--signed-at-missing", "--encoding", "--where",
                  "--timezone", "--format", "--map")
# An option as the service's (English) refusals name it → the same naming the field: "{x}" is
# the label of field x, "{=v}" the word for choice v, both quoted, in the page's language.
_REWORDING: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(p), r) for p, r in (
    (r"--date-order dmy or --date-order mdy", "{date_order}: {=dmy} or {=mdy}"),
    (r"--date-order dmy", "{date_order}: {=dmy}"),
    (r"--date-order mdy", "{date_order}: {=mdy}"),
    (r"--date-order ymd", "{date_order}: {=ymd}"),
    (r"--date-order", "{date_order}"),
    (r"--consent-missing withhold", "{consent_missing}: {=withhold}"),
    (r"--consent-missing name", "{consent_missing}: {=name}"),
    (r"--consent-missing", "{consent_missing}"),
    (r"--signed-at-missing import-time", "{signed_at_missing}: {=import-time}"),
    (r"--signed-at-missing", "{signed_at_missing}"),
    (r"--map ([a-z_]+|FIELD)=COLUMN", r"a line “\1=COLUMN” in {maps}"),
    (r"--map (?=[A-Za-z_]+=)", "the {maps} line "),
    (r"--map", "{maps}"),
    (r"--where COLUMN=VALUE", "a line “COLUMN=VALUE” in {where}"),
    (r"--where (?=\S)", "the {where} line "),
    (r"--where", "{where}"),
    (r"pass --encoding", "fill in {encoding}"),
    (r"--encoding ([\w.-]+)", r"{encoding}: \1"),
    (r"--encoding", "{encoding}"),
    (r"--timezone", "{timezone}"),
    (r"--format", "{format}"),
    (r"--update", "{update}"),
))
_WORD = re.compile(r"\{(=?)([a-z_-]+)\}")
TOO_LARGE = N_("The file is larger than %(n)s MB: split it into smaller files and import them one "
                "after the other.")
_SPREADSHEETS = (b"PK\x03\x04", b"\xd0\xcf\x11\xe0")  # .xlsx/.ods (zip), .xls (OLE)
SPREADSHEET = N_("This is a spreadsheet file, not a CSV file: open it in your spreadsheet program, "
                 "choose File → Download (or Save as) → CSV, and upload that file.")


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
    """The upload itself cannot be taken (too large, a spreadsheet, empty): `message` (English,
    the msgid) with its `values`, translated where it is shown."""

    def __init__(self, message: str, **values: object) -> None:
        super().__init__(message % values if values else message)
        self.message, self.values = message, values

    def text(self, tr: NullTranslations) -> str:
        translated = tr.gettext(self.message)
        return translated % self.values if self.values else translated


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
                    raise UploadRefused(TOO_LARGE, n=UPLOAD_LIMIT_MB)
                out.write(chunk)
        if upload.size == 0:
            raise UploadRefused(N_("The file is empty: choose the CSV file your platform exported."))
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

def _quoted(match: re.Match[str], tr: NullTranslations) -> str:
    words = CHOICE_WORDS if match.group(1) else LABELS
    return "“" + tr.gettext(words[match.group(2)]).replace("\\", "\\\\") + "”"


def reword(text: str, tr: NullTranslations | None = None) -> str:
    """A message naming CLI options → the same naming the form's fields (in `tr`'s language)."""
    tr = tr or NullTranslations()
    for pattern, replacement in _REWORDING:
        text = pattern.sub(_WORD.sub(lambda m: _quoted(m, tr), replacement), text)
    return text


def refusal(exc: InputRefused, upload: Upload | None,
            tr: NullTranslations | None = None) -> tuple[str, str]:
    """An InputRefused → (the form field it concerns, its message in the form's words)."""
    tr = tr or NullTranslations()
    source, problem = exc.source, exc.problem
    if source in _SOURCE_FIELDS:
        option_field = _SOURCE_FIELDS[source]
        label = tr.gettext("The campaign file's consent_missing") if source == "campaign.consent_missing" \
            else tr.gettext("The campaign file's time zone") if source == "schedule.timezone" \
            else tr.gettext(LABELS[option_field])
        return option_field, f"{label}: {reword(problem, tr)}"
    name = next((_SOURCE_FIELDS[o] for o in _NAMED_IN_TEXT if o in problem), None)
    if name is None and re.match(r"(unknown encoding|does not decode as)", problem):
        name = "encoding"
    # the subject of the service's own (English) sentence, which is left in English
    shown = upload.name if upload else "The file"
    problem = _hide_paths(problem, upload)
    joined = f"{shown} {problem}" if re.match(r"(is|does|contains|changed) ", problem) else \
        f"{shown}: {problem}"
    return name or "file", reword(joined, tr)


def _hide_paths(text: str, upload: Upload | None) -> str:
    """The private folder's path never reaches a page: the file's own name stands for it."""
    if upload is not None:
        for folder in (upload.folder, upload.folder.with_name(upload.token),
                       upload.folder.with_name(upload.token + _BUSY)):
            text = text.replace(str(folder / upload.name), upload.name).replace(str(folder), "")
    return text


# --- what the pages show ------------------------------------------------------------------------

def when_signed(signed_at: datetime, zone: str, locale: str = "en_GB") -> str:
    """A time of signing in the campaign's zone, as the page's locale writes it: "4 Mar 2026, 14:05"."""
    return moment(signed_at, locale, ZoneInfo(zone))


def report_view(report: ImportReport, campaign: Campaign, choices: Choices, upload: Upload | None,
                tr: NullTranslations | None = None, locale: str = "en_GB") -> dict[str, Any]:
    tr = tr or NullTranslations()
    zone = campaign.schedule.timezone
    order = report.date_order.value if report.date_order else None
    return {
        "r": report,
        "date_order": tr.gettext(DATE_ORDERS[order]) if order in DATE_ORDERS else "",
        "date_order_chosen": bool(choices.date_order),
        "rejects": [(line, reword(_hide_paths(reason, upload), tr))
                    for line, reason in report.sample_rejects],
        "warnings": [reword(_hide_paths(w, upload), tr) for w in report.warnings],
        "missing": [tr.gettext(FIELD_WORDS[f]) if f in FIELD_WORDS else f for f in report.missing_fields],
        "zone": zone,
        "rows": [{"line": row.line, "name": row.name, "signed": when_signed(row.signed_at, zone, locale),
                  "iso": row.signed_at.isoformat(), "country": row.country, "named": row.named}
                 for row in report.preview],
        "changes": bool(report.imported or report.updated),
        "excluded": [(n, tr.gettext(reason)) for reason, n in report.excluded_reasons.items()],
    }


def _formats(tr: NullTranslations) -> list[tuple[str, str]]:
    from delivery.signers.formats import FORMATS

    return [("generic", tr.gettext("Generic: columns named %(columns)s") % {"columns": GENERIC_COLUMNS}),
            *sorted(((f.name, tr.gettext(f.title)) for f in FORMATS.values()),
                    key=lambda item: item[1].casefold())]


def _translated(words: Mapping[str, str], tr: NullTranslations) -> dict[str, str]:
    return {key: tr.gettext(text) for key, text in words.items()}


def _page(request: Request, campaign: Campaign, *, stage: str, choices: Choices,
          errors: Mapping[str, str] | None = None, upload: Upload | None = None,
          status_code: int = 200, **context: Any) -> Response:
    tr = translator(request)
    titles = {"form": tr.gettext("Import signers"), "checked": tr.gettext("Check the import"),
              "done": tr.gettext("Signers imported")}
    consent_missing = _translated(CONSENT_MISSING, tr)
    megabytes = tr.gettext("MB")
    limit = f"{format_decimal(UPLOAD_LIMIT_MB, locale=locale_of(request))} {megabytes}"
    return render(request, "import.html", status_code=status_code,
                  title=page_title(titles[stage], campaign_title(campaign, language(request))),
                  campaign=campaign, stage=stage, choices=choices, errors=dict(errors or {}),
                  upload=upload, labels=_translated(LABELS, tr), formats=_formats(tr),
                  date_orders=_translated(DATE_ORDERS, tr),
                  signed_at_missing=_translated(SIGNED_AT_MISSING, tr), consent_missing=consent_missing,
                  consent_default=consent_missing.get(campaign.consent_missing), limit=limit,
                  fields=", ".join(FIELDS),
                  ttl_minutes=int(TOKEN_TTL.total_seconds() // 60), **context)


def _view(request: Request, report: ImportReport, campaign: Campaign, choices: Choices,
          upload: Upload | None) -> dict[str, Any]:
    return report_view(report, campaign, choices, upload, translator(request), locale_of(request))


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
            return error_page(request, 403, translator(request).gettext(EXPIRED))
        return await _check(request, user, campaign, form)
    finally:
        await request.close()  # the spooled upload's temporary file goes now, not at GC


async def _check(request: Request, user: str, campaign: Campaign, form: FormData) -> Response:
    web = state(request)
    tr = translator(request)
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
            return _page(request, campaign, stage="form", choices=choices, errors={"file": exc.text(tr)},
                         status_code=400)
    elif previous is not None:
        upload = previous
    else:
        gone = tr.gettext(GONE) if form.get("token") else tr.gettext("Choose the CSV file to import.")
        return _page(request, campaign, stage="form", choices=choices, errors={"file": gone},
                     status_code=400)
    upload.choices, upload.checked, upload.expires = asdict(choices), False, now + TOKEN_TTL
    try:
        options = choices.options(campaign, dry_run=True)
        report = await blocking(signers.import_file, web.app, campaign, upload.path, now=now,
                                actor=actor(user), options=options)
    except InputRefused as exc:
        await blocking(write_meta, upload)
        name, message = refusal(exc, upload, tr)
        return _page(request, campaign, stage="form", choices=choices, errors={name: message}, upload=upload,
                     status_code=400)
    except DeliveryError as exc:
        await blocking(write_meta, upload)
        return _page(request, campaign, stage="form", choices=choices, upload=upload, status_code=400,
                     errors={"file": _hide_paths(str(exc), upload)})
    upload.checked = True
    await blocking(write_meta, upload)
    return _page(request, campaign, stage="checked", choices=choices, upload=upload,
                 **_view(request, report, campaign, choices, upload))


async def import_confirm(request: Request, user: str) -> Response:
    web = state(request)
    campaign = campaign_for(request)
    tr = translator(request)
    form = await checked_form(request)
    if form is None:
        return error_page(request, 403, tr.gettext(EXPIRED))
    now = web.clock()
    choices = Choices.from_form(form)
    root = await blocking(uploads_root, web.app.settings.var_dir)
    found = await blocking(find_upload, root, form.get("token"), user=user, campaign=campaign.slug, now=now)
    if found is None:
        return _page(request, campaign, stage="form", choices=choices, errors={"file": tr.gettext(GONE)},
                     status_code=410)
    if not found.checked or Choices.from_dict(found.choices) != choices:
        return _page(request, campaign, stage="form", choices=choices, upload=found, status_code=409,
                     errors={"file": tr.gettext("The options changed after the check (or the check found a "
                                                "problem): check the file with these options before "
                                                "importing it.")})
    upload = await blocking(claim_upload, root, found)
    if upload is None:
        return _page(request, campaign, stage="form", choices=choices, errors={"file": tr.gettext(GONE)},
                     status_code=410)
    try:
        options = choices.options(campaign, dry_run=False)
        report = await blocking(signers.import_file, web.app, campaign, upload.path, now=now,
                                actor=actor(user), options=options)
    except InputRefused as exc:
        name, message = refusal(exc, upload, tr)
        again = tr.gettext("Nothing was imported; choose the file again.")
        return _page(request, campaign, stage="form", choices=choices, status_code=400,
                     errors={name: f"{message} {again}"})
    except DeliveryError as exc:
        again = tr.gettext("Choose the file again.")
        return _page(request, campaign, stage="form", choices=choices, status_code=400,
                     errors={"file": f"{_hide_paths(str(exc), upload)} {again}"})
    finally:
        await blocking(discard, upload)  # the upload never outlives its confirmation
    return _page(request, campaign, stage="done", choices=choices, upload=upload,
                 **_view(request, report, campaign, choices, upload))


async def import_discard(request: Request, user: str) -> Response:
    """"Do not import": the upload is deleted now rather than when it expires."""
    web = state(request)
    campaign = campaign_for(request)
    tr = translator(request)
    form = await checked_form(request)
    if form is None:
        return error_page(request, 403, tr.gettext(EXPIRED))
    root = await blocking(uploads_root, web.app.settings.var_dir)
    found = await blocking(find_upload, root, form.get("token"), user=user, campaign=campaign.slug,
                           now=web.clock())
    if found is not None:
        await blocking(discard, found)
        flash(request, "ok", tr.gettext("Nothing was imported; the uploaded file was deleted."))
    else:
        flash(request, "info", tr.gettext("Nothing was imported, and that upload is gone already."))
    return RedirectResponse(f"/c/{campaign.slug}/signers", status_code=303)


routes = [
    Route("/c/{slug}/signers/import", login_required(import_page), methods=["GET"]),
    Route("/c/{slug}/signers/import/check", login_required(import_check), methods=["POST"]),
    Route("/c/{slug}/signers/import/confirm", login_required(import_confirm), methods=["POST"]),
    Route("/c/{slug}/signers/import/discard", login_required(import_discard), methods=["POST"]),
]
