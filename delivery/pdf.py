"""HTML document + templates folder → PDF bytes and page count: the one module importing WeasyPrint.

Rendering fetches nothing but files under the templates folder: `TemplateFetcher` refuses every
other URL (other schemes, `..`, symlinks that lead out) by raising, which stops the render, and
counts every request. WeasyPrint's warnings are collected per job and returned with the PDF.

`render_many` renders tiny batches in this process; otherwise in worker processes forked from a
forkserver that has WeasyPrint loaded, at most `workers` at a time, largest jobs first, with a
memory cap (RLIMIT_AS) and a time limit enforced from outside: a worker that dies, overruns or
fails ends the whole batch with a RenderError naming its job. A worker renders with the garbage
collector off and exits instead of collecting (much of WeasyPrint's cost on long documents is
the collector); a worker takes small jobs one after another up to a cost budget, so memory stays
bounded by about one large document per worker.
"""

from __future__ import annotations

import array
import gc
import logging
import multiprocessing
import os
import resource
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

import weasyprint
from weasyprint.urls import FatalURLFetchingError, URLFetcher, URLFetcherResponse

from delivery.errors import RenderError

ENGINE = f"weasyprint-{weasyprint.__version__}"
_LOGGER_NAME = "weasyprint"


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


@dataclass(frozen=True)
class PdfJob:
    """One document to render; picklable, so a worker process can take it."""

    label: str  # e.g. "volume 3 (hy)": names the job in errors
    html: str = field(repr=False)
    base_dir: str  # the templates folder: relative links resolve here, nothing else is served
    identifier: bytes  # the PDF /ID: stable, so the same input gives the same bytes
    expected_pages: int | None = None
    cost: int = 1  # relative work (about one per signer line): schedules and batches jobs

    def job(self) -> PdfJob:
        return self


class Drawable(Protocol):
    """A job drawn without WeasyPrint (see delivery.typeset); picklable, like PdfJob."""

    @property
    def label(self) -> str: ...

    def draw(self) -> RenderedPdf: ...


class Renderable(Protocol):
    """A job, or a plan that makes its job (and its HTML) only when a worker is ready for it:
    the HTML of a million-signer dossier need never be in memory all at once."""

    @property
    def label(self) -> str: ...

    @property
    def cost(self) -> int: ...

    def job(self) -> PdfJob | Drawable: ...


@dataclass(frozen=True)
class RenderedPdf:
    label: str
    data: bytes = field(repr=False)
    pages: int
    warnings: tuple[str, ...]
    requests: int


def render_job(job: PdfJob | Drawable, *, collect: bool = True) -> RenderedPdf:
    """Render one document. Raises RenderError naming the job on any failure.

    collect=False skips the final garbage collection (a fifth of a long render), for a process
    that exits right after.
    """
    if not isinstance(job, PdfJob):
        return job.draw()
    fetcher = TemplateFetcher(Path(job.base_dir))
    base_url = Path(job.base_dir).resolve().as_uri() + "/"
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        with _collect_warnings() as warnings:
            document = weasyprint.HTML(string=job.html, base_url=base_url,
                                       url_fetcher=fetcher).render()
            pages = len(document.pages)
            data = document.write_pdf(pdf_identifier=job.identifier, finisher=_stable_fonts)
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
        if gc_was_enabled:
            gc.enable()
        if collect:
            # the document's objects, made with the collector off, are all in the youngest
            # generation: collecting it frees them without walking the caller's (perhaps a
            # million signer lines)
            gc.collect(0)
    if job.expected_pages is not None and pages != job.expected_pages:
        raise RenderError(f"{job.label}: {pages} pages instead of the planned "
                          f"{job.expected_pages}; the page geometry is broken")
    return RenderedPdf(job.label, bytes(data), pages, tuple(warnings), fetcher.requests)


def render_many(jobs: Sequence[Renderable], *, workers: int, time_limit: float,
                memory_limit: int | None,
                on_done: Callable[[int, RenderedPdf], None],
                worker_budget: int = 0, inline_budget: int = 0) -> None:
    """Render every job; `on_done(index, pdf)` as each one finishes.

    Jobs whose costs add up to at most `inline_budget` render here, one after the other (a
    worker process would cost more than the work). Otherwise up to `workers` processes render
    them, largest first; a worker takes further jobs while the costs it has rendered stay under
    `worker_budget`, then exits (so memory stays bounded by about one budget's document).

    The first failure (an error, a dead worker, a job over `time_limit` seconds) kills every
    worker and raises RenderError naming that job; nothing after it is reported.
    """
    if not jobs:
        return
    if sum(job.cost for job in jobs) <= inline_budget:
        for index, job in enumerate(jobs):
            started = time.monotonic()
            result = render_job(job.job())
            if time.monotonic() - started >= time_limit:
                raise RenderError(f"{job.label}: took longer than the limit of {time_limit:g} s")
            on_done(index, result)
        return
    ctx = multiprocessing.get_context("forkserver")
    # A forkserver child runs the main script again before its target: Python 3.11 never
    # preloads "__main__" (CPython gh-126631, fixed in 3.13). With the program's modules in the
    # server already, that takes milliseconds instead of importing delivery.cli (0.6 s) anew
    # in every worker.
    ctx.set_forkserver_preload(["delivery.cli", "delivery.pdf", "delivery.typeset",
                                "delivery.join"])
    # popped from the end: the largest jobs start first, the small ones fill the gaps
    pending = sorted(enumerate(jobs), key=lambda item: (item[1].cost, -item[0]))
    running: list[_Worker] = []
    try:
        while pending or running:
            while pending and len(running) < max(1, workers):
                running.append(_Worker(ctx, memory_limit, *pending.pop()))
            deadline = min(w.started for w in running) + time_limit
            ready = wait([c for w in running for c in (w.conn, w.process.sentinel)],
                         timeout=max(0.0, deadline - time.monotonic()))
            for worker in list(running):
                if worker.conn in ready or worker.process.sentinel in ready:
                    index, result = worker.index, worker.receive()
                    if pending and worker.spent + pending[-1][1].cost <= worker_budget:
                        worker.give(*pending.pop())
                    else:
                        running.remove(worker)
                        worker.stop()
                    on_done(index, result)
                elif time.monotonic() - worker.started >= time_limit:
                    raise RenderError(f"{worker.label}: took longer than the limit of "
                                      f"{time_limit:g} s")
    finally:
        for worker in running:
            worker.stop(grace=0.0)


class _Worker:
    """One worker process and the job it is on: the parent knows which job a death belongs to."""

    def __init__(self, ctx: multiprocessing.context.ForkServerContext,
                 memory_limit: int | None, index: int, job: Renderable) -> None:
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_worker_main, args=(child, memory_limit), daemon=True)
        self.process.start()
        child.close()
        self.spent = 0
        self.give(index, job)

    def give(self, index: int, job: Renderable) -> None:
        self.index, self.label = index, job.label
        self.spent += job.cost
        try:
            self.conn.send(job.job())
        except OSError:  # it died before or while taking the job (killed, out of memory)
            raise self._died() from None
        self.started = time.monotonic()

    def receive(self) -> RenderedPdf:
        try:
            status, value = self.conn.recv()
        except (EOFError, OSError):
            raise self._died() from None
        if status != "ok":
            self.stop()
            raise RenderError(str(value))
        assert isinstance(value, RenderedPdf)
        return value

    def _died(self) -> RenderError:
        self.process.join(5)
        code = self.process.exitcode
        self.stop()
        return RenderError(f"{self.label}: the worker process died"
                           + (f" (exit code {code})" if code is not None else ""))

    def stop(self, grace: float = 1.0) -> None:
        if self.process.is_alive() and not self.conn.closed:
            with suppress(OSError):  # it may have died already
                self.conn.send(None)
        self.process.join(grace)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()


def _worker_main(conn: Connection, memory_limit: int | None) -> None:
    # A Ctrl+C or a group-wide SIGTERM goes to the service, which decides when to stop its
    # workers; a worker dying on it would fail the build instead of letting it drain.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    limit_memory(memory_limit)
    try:
        rendered = False
        while (job := conn.recv()) is not None:
            if rendered:
                gc.collect()  # only when reused: the last document's cycles are garbage now
            try:
                reply: tuple[str, object] = ("ok", render_job(job, collect=False))
            except RenderError as exc:
                reply = ("error", str(exc))
            except BaseException as exc:
                reply = ("error", f"{job.label}: {type(exc).__name__}: {exc}")
            conn.send(reply)
            rendered = True
        conn.close()
    except (EOFError, OSError):
        pass  # the parent went away or gave up on this worker
    finally:
        # Exit without tearing down the last document's object graph: the OS frees it at once.
        os._exit(0)


def limit_memory(max_bytes: int | None) -> None:
    """Cap this worker's address space, so a runaway render fails alone."""
    if max_bytes:
        _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = max_bytes if hard == resource.RLIM_INFINITY else min(max_bytes, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


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


def _stable_fonts(document: object, pdf: object) -> None:
    """WeasyPrint finisher: some subset fonts carry the subsetting time in `head.modified`;
    set it to `head.created`, so the same document always gives the same bytes."""
    for obj in getattr(pdf, "objects", ()):
        extra = getattr(obj, "extra", None)
        stream = getattr(obj, "stream", None)
        if isinstance(extra, dict) and "Length1" in extra and isinstance(stream, list) \
                and len(stream) == 1 and isinstance(stream[0], bytes):
            stream[0] = stable_font_date(stream[0])


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
