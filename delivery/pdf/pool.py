"""Renderable jobs → RenderedPdf results, in this process or in a pool of worker processes.

`render_many` renders tiny batches in this process; otherwise in worker processes forked from a
forkserver that has the renderers loaded, at most `workers` at a time, largest jobs first, with a
memory cap (RLIMIT_AS) and a time limit enforced from outside: a worker that dies, overruns or
fails ends the whole batch with a RenderError naming its job. A worker renders with the garbage
collector off and exits instead of collecting (much of WeasyPrint's cost on long documents is
the collector); the service's own process never switches the collector off. A worker takes
small jobs one after another up to a cost budget, so memory stays bounded by about one large
document per worker.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import multiprocessing
import os
import resource
import signal
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from multiprocessing.connection import Connection, wait

from delivery.errors import RenderError
from delivery.pdf.jobs import Drawable, PdfJob, Renderable, RenderedPdf


def render_job(job: PdfJob | Drawable, *, gc_off: bool = False, collect: bool = True) -> RenderedPdf:
    """Render one document. Raises RenderError naming the job on any failure.

    gc_off switches the garbage collector off for the render (workers only: in the service's
    process other threads allocate too); collect=False skips the final collection, for a
    process that exits right after.
    """
    if not isinstance(job, PdfJob):
        return job.draw()
    from delivery.pdf.weasy import render_html  # WeasyPrint loads only when HTML is rendered

    return render_html(job, gc_off=gc_off, collect=collect)


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
        # The collector stays on here (other threads of the service allocate too), but what the
        # caller holds (perhaps a million signer lines) is frozen out of the collections the
        # render sets off: measured on the next milestone of 80,000 signers, 1.03 s → 0.9 s.
        gc.freeze()
        try:
            for index, job in enumerate(jobs):
                started = time.monotonic()
                result = render_job(job.job())
                if time.monotonic() - started >= time_limit:
                    raise RenderError(f"{job.label}: took longer than the limit of {time_limit:g} s")
                on_done(index, result)
        finally:
            gc.unfreeze()
        return
    ctx = multiprocessing.get_context("forkserver")
    # A forkserver child runs the main script again before its target: Python 3.11 never
    # preloads "__main__" (CPython gh-126631, fixed in 3.13). With the program's modules in the
    # server already, that takes milliseconds instead of importing delivery.cli.main (0.6 s) anew
    # in every worker. SQLAlchemy and the models too: a main script that imports them at its top
    # (bench/dossier.py, a deployment's own script) would have each worker import them again
    # (bench, cold 80,000 signers: 7.04 s of CPU without, 6.52 s with).
    ctx.set_forkserver_preload(["delivery.cli.main", "delivery.storage.models", "delivery.pdf.pool",
                                "delivery.pdf.weasy", "delivery.pdf.typeset", "delivery.pdf.join"])
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
    load_fontconfig()
    limit_memory(memory_limit)
    try:
        rendered = False
        while (job := conn.recv()) is not None:
            if rendered:
                gc.collect()  # only when reused: the last document's cycles are garbage now
            try:
                reply: tuple[str, object] = ("ok", render_job(job, gc_off=True, collect=False))
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


def load_fontconfig() -> None:
    """Fontconfig's configuration and font caches loaded before the memory cap is set.

    Under the cap, fontconfig cannot map its caches, takes them for stale, scans the font folders
    with too little memory, and (the service running as root) writes the system cache with the
    few fonts it could open: every later process then sees those only (seen: 321 fonts → 1, and
    WeasyPrint crashing in the next process)."""
    name = ctypes.util.find_library("fontconfig")
    if name:
        ctypes.CDLL(name).FcInit()


def limit_memory(max_bytes: int | None) -> None:
    """Cap this worker's address space, so a runaway render fails alone."""
    if max_bytes:
        _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = max_bytes if hard == resource.RLIM_INFINITY else min(max_bytes, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
