"""HTML document + templates folder → PDF bytes and page count: the one module importing WeasyPrint.

Rendering fetches nothing but files under the templates folder: `TemplateFetcher` refuses every
other URL (other schemes, `..`, symlinks that lead out) by raising, which stops the render, and
counts every request. WeasyPrint's warnings are collected per job and returned with the PDF.
Documents are written as PDF/A-3b (WeasyPrint's `pdf/a-3b` variant): their pages go into the
dossier's PDF/A parts (delivery.pdf.pdfa) as they are.
"""

from __future__ import annotations

import array
import gc
import io
import logging
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote, urlsplit

import weasyprint
from weasyprint.css import ColorProfile
from weasyprint.urls import FatalURLFetchingError, URLFetcher, URLFetcherResponse

from delivery.errors import RenderError
from delivery.pdf.jobs import PdfJob, RenderedPdf
from delivery.pdf.pdfa import PROFILE, srgb_profile
from delivery.pdf.text.fonts import tag_of

ENGINE = f"weasyprint-{weasyprint.__version__}"
PDF_VARIANT = "pdf/a-3b"
_LOGGER_NAME = "weasyprint"
# resource kinds WeasyPrint lists on every page even when empty: an empty one says nothing, and
# a PDF/A checker that allows only what it knows refuses a /Pattern entry whatever it holds
_OPTIONAL_RESOURCES = ("Pattern", "Shading")
# the variant's own "srgb" output intent opens WeasyPrint's copy of the same profile and never
# closes it; given by name, the profile is read from bytes
_PROFILE = "srgb-2014"


class FetchRefused(FatalURLFetchingError):  # type: ignore[misc]
    """A document asked for something outside the templates folder; the render stops."""


class TemplateFetcher(URLFetcher):  # type: ignore[misc]
    """Serves `file:` URLs that resolve inside `root`; refuses and counts everything else."""

    def __init__(self, root: Path) -> None:
        super().__init__(fail_on_errors=True)
        self.root = root.resolve()
        self.requests = 0
        self.refused = 0

    def fetch(self, url: str, headers: object = None) -> URLFetcherResponse:
        self.requests += 1
        path = self.allowed_path(url)
        if path is None:
            self.refused += 1
            raise FetchRefused(f"refused to fetch {url[:200]!r}: only files under the templates "
                               f"folder may be used")
        return URLFetcherResponse(url, path.read_bytes(), {"Content-Type": _mime(path)})

    def allowed_path(self, url: str) -> Path | None:
        parts = urlsplit(url)
        if parts.scheme != "file" or parts.netloc not in ("", "localhost"):
            return None
        raw = unquote(parts.path)
        if "\0" in raw or ".." in Path(raw).parts:
            return None
        path = Path(raw).resolve()
        if not path.is_relative_to(self.root) or not path.is_file():
            return None
        return path


def render_html(job: PdfJob, *, gc_off: bool, collect: bool = True) -> RenderedPdf:
    """Render one document. Raises RenderError naming the job on any failure.

    collect=False skips the final garbage collection (a fifth of a long render), for a process
    that exits right after.
    """
    fetcher = TemplateFetcher(Path(job.base_dir))
    base_url = Path(job.base_dir).resolve().as_uri() + "/"
    if gc_off:
        gc.disable()
    try:
        with _collect_warnings() as warnings:
            variant = {"pdf_variant": PDF_VARIANT, "output_intent": _PROFILE, "pdf_tags": job.tagged}
            document = weasyprint.HTML(string=job.html, base_url=base_url,
                                       url_fetcher=fetcher).render(
                color_profiles={_PROFILE: _srgb()}, **variant)
            pages = len(document.pages)
            data = document.write_pdf(pdf_identifier=job.identifier, finisher=_finish, **variant)
    except RenderError:
        raise
    except FatalURLFetchingError as exc:
        cause = exc.__cause__ or exc
        raise RenderError(f"{job.label}: {cause}") from None
    except MemoryError:
        raise RenderError(f"{job.label}: out of memory") from None
    except Exception as exc:
        raise RenderError(f"{job.label}: {type(exc).__name__}: {exc}") from exc
    finally:
        if gc_off:
            gc.enable()
        if gc_off and collect:
            # the document's objects, made with the collector off, are all in the youngest
            # generation: collecting it frees them without walking the caller's (perhaps a
            # million signer lines)
            gc.collect(0)
    if job.expected_pages is not None and pages != job.expected_pages:
        raise RenderError(f"{job.label}: {pages} pages instead of the planned "
                          f"{job.expected_pages}; the page geometry is broken")
    return RenderedPdf(job.label, bytes(data), pages, tuple(warnings), fetcher.requests)


def _srgb() -> ColorProfile:
    """The output intent's profile, delivery.pdf.pdfa's: new for each document, which marks it."""
    return ColorProfile(io.BytesIO(srgb_profile()), PROFILE.name, "relative-colorimetric",
                        (["r"], ["g"], ["b"]))


class _ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage()[:300])


@contextmanager
def _collect_warnings() -> Iterator[list[str]]:
    handler = _ListHandler()
    logger = logging.getLogger(_LOGGER_NAME)
    logger.addHandler(handler)
    try:
        yield handler.messages
    finally:
        logger.removeHandler(handler)


def _finish(document: object, pdf: object) -> None:
    """WeasyPrint finisher: some subset fonts carry the subsetting time in `head.modified`; set
    it to `head.created`, so the same document always gives the same bytes. Each subset is named
    by its own content (see _retag). And leave out the empty resource kinds."""
    programs: dict[bytes, bytes] = {}  # a font program's reference → its bytes
    for obj in getattr(pdf, "objects", ()):
        extra = getattr(obj, "extra", None)
        stream = getattr(obj, "stream", None)
        if isinstance(extra, dict) and "Length1" in extra and isinstance(stream, list) \
                and len(stream) == 1 and isinstance(stream[0], bytes):
            stream[0] = stable_font_date(stream[0])
            programs[obj.reference] = stream[0]
        for entries in (obj, extra, extra.get("Resources") if isinstance(extra, dict) else None):
            if isinstance(entries, dict) and "Font" in entries:
                for kind in _OPTIONAL_RESOURCES:
                    if entries.get(kind) == {}:
                        del entries[kind]
    _retag(getattr(pdf, "objects", ()), programs)


def _retag(objects: Iterable[object], programs: dict[bytes, bytes]) -> None:
    """WeasyPrint's subset tag comes from the font's name and style alone, so the front and each
    part's stamp name their different subsets of one font alike, which ISO 32000-1 §9.6.4 and
    readers that cache fonts by name do not allow. Tag each by a hash of its program instead."""
    names: dict[bytes, bytes] = {}  # /OLDTAG+Name → /NEWTAG+Name
    for obj in objects:
        if isinstance(obj, dict) and obj.get("Type") == "/FontDescriptor":
            program = programs.get(obj.get("FontFile2") or obj.get("FontFile3") or b"")
            name = obj.get("FontName")
            if program is not None and isinstance(name, bytes) and name[7:8] == b"+":
                names[name] = b"/" + tag_of(program).encode() + name[7:]
    for obj in objects:
        if isinstance(obj, dict):
            for key in ("BaseFont", "FontName"):
                if obj.get(key) in names:
                    obj[key] = names[obj[key]]


def stable_font_date(font: bytes) -> bytes:
    """A TrueType/OpenType font with head.modified := head.created and its checksums redone."""
    if len(font) < 12:
        return font
    data = bytearray(font)
    for i in range(int.from_bytes(data[4:6], "big")):
        record = 12 + 16 * i
        if data[record:record + 4] != b"head":
            continue
        offset = int.from_bytes(data[record + 8:record + 12], "big")
        length = int.from_bytes(data[record + 12:record + 16], "big")
        if length < 36 or offset + length > len(data):
            return font
        data[offset + 28:offset + 36] = data[offset + 20:offset + 28]
        data[offset + 8:offset + 12] = bytes(4)
        data[record + 4:record + 8] = _checksum(data[offset:offset + length]).to_bytes(4, "big")
        adjust = (0xB1B0AFBA - _checksum(data)) % 2**32
        data[offset + 8:offset + 12] = adjust.to_bytes(4, "big")
        return bytes(data)
    return font


def _checksum(data: bytes | bytearray) -> int:
    words = array.array("I", bytes(data) + bytes(-len(data) % 4))
    if sys.byteorder == "little":
        words.byteswap()
    return sum(words) % 2**32


def _mime(path: Path) -> str:
    return {".css": "text/css", ".svg": "image/svg+xml", ".png": "image/png",
            ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}.get(path.suffix.lower(),
                                                            "application/octet-stream")
