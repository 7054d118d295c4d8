"""An uploaded PDF, .eml or set of dossier files → the page saying, in plain words, what
`petition-delivery verify` finds: who signed, when, at which PAdES level, whether the dossier is
complete and which signer numbers it holds, and each check passed or failed; no login.

GET  /verify            the form (a file input: it works without JavaScript)
POST /verify            checks the files and shows the verdict, with the form again
GET  /static/verify.js  drag-and-drop onto the form and a size check before sending (optional)

The body is read as it streams, counted, and dropped once it passes DELIVERY_VERIFY_MAX_MB (a
declared Content-Length over it is refused before anything is read): the answer is 413 and the
connection is closed, so the rest is never read. Each address (an IPv6 one as its /64) gets
UPLOADS checks per WINDOW in this process, and at most SLOTS checks run at once. The files go to a
temporary folder that the service deletes before answering (delivery.services.verification);
nothing of them is stored or logged but the count of files and the outcome.

The page's own sentences are in the browser's language; the detail lines are verify's own
(English) words, shown as verify writes them.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict, deque
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import aclosing
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import anyio
import anyio.to_thread
from babel import Locale
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from delivery.campaigns.languages import N_
from delivery.errors import InputRefused
from delivery.services import verification
from delivery.services.accounts import attempt_address
from delivery.settings import VERIFY_PATH
from delivery.web.common import (
    admin_asset,
    client_ip,
    language,
    locale_of,
    number,
    state,
    translator,
    when_filter,
)
from delivery.web.ratelimit import wait_text

log = logging.getLogger("delivery.web")

PATH = VERIFY_PATH
SCRIPT_PATH = "/static/verify.js"
MAX_FILES = 20
UPLOADS = 10  # checks per address per WINDOW
WINDOW = 600.0  # seconds
SLOTS = 2  # checks at once: each holds its files in memory while verify reads them
_OVERHEAD = 64 * 1024  # the multipart framing around the files
_ADDRESSES = 10_000  # addresses remembered; the least recent are forgotten first
_HEADERS = {"cache-control": "no-store", "x-robots-tag": "noindex, nofollow"}
_CLOSE = {"connection": "close"}  # the unread rest of a refused body is never read

TITLE = N_("Check a petition dossier")
TOO_LARGE = N_("These files are larger than %(size)s in all, the most this page takes: check the "
               "e-mails, or the PDF files, a few at a time.")
TOO_MANY_UPLOADS = N_("Many files were checked from your address in the last minutes: try again in "
                      "%(wait)s.")
TOO_MANY_FILES = N_("At most %(n)s files are checked at once: check the others after these.")
NO_FILE = N_("Choose the files to check: the e-mail (.eml), or the PDF files of the dossier.")
WRONG_KIND = N_("“%(name)s” is not a file this page checks: give the e-mail (.eml), or the PDF "
                "files with manifest.json and manifest.json.p7s, named as they arrived.")
SAME_NAME = N_("Two files are named “%(name)s”: give each file once.")
NOT_UNDERSTOOD = N_("The upload was not understood (it was cut off, or not sent by this page's "
                    "form): choose the files and send them again.")
NOTHING_TO_CHECK = N_("These files hold nothing to check: no PDF and no manifest.json. An e-mail "
                      "whose attachments were removed, perhaps?")
CANNOT_CHECK = N_("This service cannot check signatures at the moment: its certificate file cannot "
                  "be read. Its operators find the reason in the service log.")

LEVELS = {
    "B-B": N_("the signature alone; its time is the one the signer's computer gave"),
    "B-T": N_("with a timestamp from a timestamp authority, which fixes the time of signing"),
    "B-LT": N_("with a timestamp, and the data that shows the certificates were valid when it "
               "was signed"),
    "B-LTA": N_("with a timestamp, the data that shows the certificates were valid, and an archive "
                "timestamp that keeps the signature checkable after the certificates expire"),
}
TIME_SOURCES = {"timestamp token": N_("from the timestamp of a timestamp authority"),
                "signer's clock": N_("as the signer's computer clock gave it: no timestamp")}


class BodyTooLarge(Exception):
    """The body grew past the limit while it streamed in."""


class TooManyFiles(Exception):
    """The form carries more than MAX_FILES files."""


class UploadLimiter:
    """At most `uploads` checks per client address (an IPv6 one as its /64) within `window`
    seconds, in this process: as the login limits, it is the address that waits."""

    def __init__(self, *, uploads: int = UPLOADS, window: float = WINDOW,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.uploads, self.window, self.clock = uploads, window, clock
        self._seen: OrderedDict[str, deque[float]] = OrderedDict()

    def take(self, ip: str) -> int:
        """0 when this address may check now (the check is counted), else the seconds to wait."""
        key, now = attempt_address(ip), self.clock()
        times = self._seen.pop(key, None) or deque()
        while times and times[0] <= now - self.window:
            times.popleft()
        self._seen[key] = times
        while len(self._seen) > _ADDRESSES:
            self._seen.popitem(last=False)
        if len(times) >= self.uploads:
            return max(1, int(times[0] + self.window - now + 0.999))
        times.append(now)
        return 0


@dataclass
class VerifyState:
    """The page's limits in this web app (app.state.verify; a test may put its own there)."""

    limiter: UploadLimiter = field(default_factory=UploadLimiter)
    slots: anyio.CapacityLimiter = field(default_factory=lambda: anyio.CapacityLimiter(SLOTS))


def _verify_state(request: Request) -> VerifyState:
    found = getattr(request.app.state, "verify", None)
    if not isinstance(found, VerifyState):
        found = VerifyState()
        request.app.state.verify = found
    return found


def limit_bytes(request: Request) -> int:
    """The most the page takes in all, in bytes (DELIVERY_VERIFY_MAX_MB)."""
    return state(request).app.settings.web.verify_upload_mb * 1024 * 1024


# ---------------------------------------------------------------- the page

def _render(request: Request, status_code: int = 200, headers: dict[str, str] | None = None,
            **context: Any) -> HTMLResponse:
    web = state(request)
    code = language(request)
    tr = translator(request)
    html = web.languages[code].templates.get_template("verify.html").render(
        lang=code, title=tr.gettext(TITLE), limit_bytes=limit_bytes(request), limit=_limit_text(request),
        max_files=MAX_FILES, **context)
    return HTMLResponse(html, status_code=status_code, headers={**_HEADERS, **(headers or {})})


def _refused(request: Request, status_code: int, message: str, *, close: bool = False,
             headers: dict[str, str] | None = None) -> HTMLResponse:
    return _render(request, status_code, headers={**(_CLOSE if close else {}), **(headers or {})},
                   error=message)


async def page(request: Request) -> Response:
    return _render(request)


async def check(request: Request) -> Response:
    tr = translator(request)
    limits = _verify_state(request)
    wait = limits.limiter.take(client_ip(request))
    if wait:
        return _refused(request, 429, tr.gettext(TOO_MANY_UPLOADS) % {"wait": wait_text(wait, tr)},
                        close=True, headers={"retry-after": str(wait)})
    limit = limit_bytes(request) + _OVERHEAD
    too_large = tr.gettext(TOO_LARGE) % {"size": _limit_text(request)}
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > limit):
        return _refused(request, 413, too_large, close=True)
    if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        return _refused(request, 400, tr.gettext(NOT_UNDERSTOOD), close=True)
    try:
        uploads = await _read_form(request, limit)
    except BodyTooLarge:
        return _refused(request, 413, too_large, close=True)
    except TooManyFiles:
        return _refused(request, 413, tr.gettext(TOO_MANY_FILES) % {"n": MAX_FILES}, close=True)
    except (MultiPartException, ClientDisconnect):
        return _refused(request, 400, tr.gettext(NOT_UNDERSTOOD), close=True)
    try:
        return await _check(request, uploads)
    finally:
        for upload in uploads:
            await upload.close()  # the spooled part goes now, not at garbage collection


async def _check(request: Request, uploads: list[UploadFile]) -> Response:
    tr = translator(request)
    files: list[tuple[str, Any]] = []
    seen: set[str] = set()
    for upload in uploads:
        name = _plain(upload.filename or "")
        if not name:
            continue
        if not verification.accepted_name(name):
            return _refused(request, 400, tr.gettext(WRONG_KIND) % {"name": _shown(name)[:200]})
        if name.lower().endswith(".eml") and name in seen:
            # e-mails are read for their attachments: their own names do not matter
            name = _unique(name, seen)
        if name in seen:
            return _refused(request, 400, tr.gettext(SAME_NAME) % {"name": _shown(name)[:200]})
        seen.add(name)
        files.append((name, upload.file))
    if not files:
        return _refused(request, 400, tr.gettext(NO_FILE))
    web = state(request)
    try:
        checked = await anyio.to_thread.run_sync(
            partial(verification.verify_uploads, web.app, files, now=web.clock()),
            limiter=_verify_state(request).slots)
    except InputRefused:
        return _refused(request, 400, tr.gettext(NOTHING_TO_CHECK))
    except verification.TrustUnavailable:
        return _refused(request, 503, tr.gettext(CANNOT_CHECK))
    return _render(request, result=_result(request, checked))


async def _read_form(request: Request, limit: int) -> list[UploadFile]:
    """The posted files, the body counted as it streams (BodyTooLarge past `limit`)."""
    async with aclosing(_bounded(request.stream(), limit)) as body:
        parser = MultiPartParser(request.headers, body, max_files=MAX_FILES, max_fields=5,
                                 max_part_size=1024)
        try:
            form = await parser.parse()
        except MultiPartException as exc:
            if "Too many files" in exc.message:
                raise TooManyFiles from exc
            raise
    return [value for _, value in form.multi_items() if isinstance(value, UploadFile)]


async def _bounded(stream: AsyncIterator[bytes], limit: int) -> AsyncGenerator[bytes, None]:
    seen = 0
    async for chunk in stream:
        seen += len(chunk)
        if seen > limit:
            raise BodyTooLarge
        yield chunk


def _plain(filename: str) -> str:
    """The file's own name, as a browser sends it (some send a whole path)."""
    name = filename.replace("\\", "/").rsplit("/", 1)[-1].strip()
    return "" if name in ("", ".", "..") else name


def _unique(name: str, seen: set[str]) -> str:
    stem, suffix = name[:-4], name[-4:]
    n = 2
    while f"{stem} ({n}){suffix}" in seen:
        n += 1
    return f"{stem} ({n}){suffix}"


def _limit_text(request: Request) -> str:
    """The limit as the page's language writes it: "60 MB"."""
    megabytes = number(state(request).app.settings.web.verify_upload_mb, locale_of(request))
    unit = translator(request).gettext("MB")
    return f"{megabytes} {unit}"


def _shown(text: str) -> str:
    """`text` with control and format characters escaped, as verify prints them: no file name can
    reorder or hide what the page says."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


# ---------------------------------------------------------------- what the verdict shows

def _language_name(code: str, locale: str) -> str:
    try:
        return Locale.parse(code).get_display_name(locale) or code
    except (ValueError, TypeError):
        return code


def _result(request: Request, checked: verification.Verification) -> dict[str, Any]:
    tr = translator(request)
    when = when_filter(request)
    locale = locale_of(request)
    report = checked.report
    timed = checked.signing_time
    level = report.level
    facts = checked.facts
    return {
        "state": "preview" if checked.preview else "ok" if checked.ok else "failed",
        "signer": _shown(report.signer) if report.signer else None,
        "trusted": report.trusted,
        "trust": checked.trust,
        "own_certificate": checked.own_certificate,
        "fingerprint": next(iter(checked.fingerprints.values()), None),
        "mixed": checked.mixed,
        "when": when(timed.signing_time) if timed and timed.signing_time else None,
        "time_source": tr.gettext(TIME_SOURCES[timed.time_source])
        if timed and timed.time_source in TIME_SOURCES else None,
        "level": level,
        "level_text": tr.gettext(LEVELS[level]) if level in LEVELS else None,
        "facts": facts,
        "editions": _editions(facts, tr, locale) if facts else [],
        "withdrawn": max(facts.last_number - facts.signer_count, 0) if facts else 0,
        "files": [{"name": _shown(v.name), "ok": v.ok, "level": v.level,
                   "when": when(v.signing_time) if v.signing_time else None,
                   "checks": [_shown(c) for c in v.reason.split("; ") if c]}
                  for v in report.verdicts],
        "lines": report.lines(),
    }


def _editions(facts: verification.Facts, tr: Any, locale: str) -> list[dict[str, Any]]:
    """Each edition given: its language, the parts given of how many, and those missing."""
    out = []
    for code in facts.languages:
        parts = [p for p in facts.parts if p.language == code]
        total = max(p.parts for p in parts)
        missing = facts.missing.get(code, [])
        text = tr.ngettext("%(given)s of %(n)s part", "%(given)s of %(n)s parts", total) % {
            "given": number(len(parts), locale), "n": number(total, locale)}
        if missing:
            text += "; " + tr.gettext("missing: %(parts)s") % {
                "parts": ", ".join(number(m, locale) for m in missing)}
        out.append({"language": _language_name(code, locale), "complete": not missing, "text": text,
                    "parts": parts})
    return out


async def script(request: Request) -> Response:
    path = admin_asset(state(request).app, "verify.js")
    body = path.read_bytes() if path else b""
    return Response(body, media_type="text/javascript", headers={"cache-control": "max-age=3600"})


routes = [
    Route(PATH, page, methods=["GET"]),
    Route(PATH, check, methods=["POST"]),
    Route(SCRIPT_PATH, script, methods=["GET"]),
]
