"""The stage functions a delivery's build calls → the wall time spent in each, and in each document.

`Phases.timing()` wraps, in this process and for the time of the block, the functions through
which the service's stages call each other (compose, PDF build, render, join, sign, manifest,
queueing the e-mails, sending them): the product runs unchanged, each wrapper costs two clock
reads per call. A phase's time is the wall time during which at least one of its calls runs: two
editions signed at once, in two threads, count once. Each rendered document (a volume, a front, a
stamp, per edition) is timed from the moment it is handed to a worker (its signer lines read then)
to its result: summed, these are worker-seconds, so two workers rendering at once count twice.
"""

from __future__ import annotations

import re
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

PHASES = ("compose", "plan", "render", "join", "sign", "manifest", "messages", "send", "other")
_LABEL = re.compile(r"^(\w+)\b.*\((\w+)\)$")  # "volume 3 (hy)", "front (en)", "stamp (en)"


@dataclass
class Drawn:
    documents: int = 0
    seconds: float = 0.0


class Phases:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.drawn: dict[tuple[str, str], Drawn] = defaultdict(Drawn)
        self.volumes = 0  # in the dossier, from the build's first progress report
        self.cached = 0  # of those, found in the cache
        self.pages = 0
        self.size = 0
        self._started: dict[str, float] = {}
        self._received: dict[str, float] = {}
        self._lock = threading.Lock()
        self._running: dict[str, int] = defaultdict(int)
        self._since: dict[str, float] = {}

    def progress(self, done: int, total: int) -> None:
        """The build's progress callback, as the scheduler passes one."""
        if not self.volumes:
            self.volumes, self.cached = total, done

    def split(self, total: float) -> dict[str, float]:
        """`total` (the whole call's wall time) → seconds per phase, `other` the rest."""
        s = self.seconds
        phases = {"compose": s["compose"], "plan": s["pdf"] - s["render"] - s["join"],
                  "render": s["render"], "join": s["join"], "sign": s["sign"],
                  "manifest": s["manifest"], "messages": s["messages"], "send": s["send"]}
        phases["other"] = total - sum(phases.values())
        return phases

    def drawn_line(self) -> str:
        parts = []
        for (kind, language), d in sorted(self.drawn.items(), key=lambda item: (item[0][0] != "volume",
                                                                                item[0])):
            what = f"{kind}s {language} {d.documents}/{self.volumes}" if kind == "volume" else \
                f"{kind} {language}"
            parts.append(f"{what} {d.seconds:.2f} s")
        return " · ".join(parts) or "nothing drawn"

    @contextmanager
    def timing(self) -> Iterator[None]:
        from delivery.bundle import assemble
        from delivery.pdf import build, pool
        from delivery.services import deliveries, pipeline

        with ExitStack() as undo:
            for module, name, phase in (
                    (pipeline, "compose_stored", "compose"), (pipeline, "build_dossier_pdfs", "pdf"),
                    (build, "join_parts", "join"), (assemble, "sign_pdf", "sign"),
                    (assemble, "embed_dossier_json", "sign"), (assemble, "manifest_json", "manifest"),
                    (assemble, "sign_detached", "manifest"), (deliveries, "_enqueue_built", "messages"),
                    (deliveries, "send_due", "send")):
                self._wrap(undo, module, name, self._timed(phase, getattr(module, name)))
            self._wrap(undo, build, "render_many", self._rendering(pool.render_many))
            self._wrap(undo, pipeline, "assemble_bundle", self._counting(assemble.assemble_bundle))
            # When a worker takes a document and when its result comes back.
            worker = pool._Worker
            self._wrap(undo, worker, "give", self._giving(worker.give))
            self._wrap(undo, worker, "receive", self._receiving(worker.receive))
            yield

    @staticmethod
    def _wrap(undo: ExitStack, owner: object, name: str, wrapper: object) -> None:
        original = getattr(owner, name)
        setattr(owner, name, wrapper)
        undo.callback(setattr, owner, name, original)

    def _timed(self, phase: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            self._enter(phase)
            try:
                return fn(*args, **kwargs)
            finally:
                self._leave(phase)
        return timed

    def _enter(self, phase: str) -> None:
        with self._lock:
            if not self._running[phase]:
                self._since[phase] = time.perf_counter()
            self._running[phase] += 1

    def _leave(self, phase: str) -> None:
        with self._lock:
            self._running[phase] -= 1
            if not self._running[phase]:
                self.seconds[phase] += time.perf_counter() - self._since[phase]

    def _counting(self, fn: Callable[..., Sequence[Any]]) -> Callable[..., Sequence[Any]]:
        def counted(*args: Any, **kwargs: Any) -> Sequence[Any]:
            files = fn(*args, **kwargs)
            for f in files:
                if f.kind == "pdf":
                    self.pages += f.pages or 0
                    self.size += f.size
            return files
        return counted

    def _rendering(self, fn: Callable[..., None]) -> Callable[..., None]:
        def render_many(jobs: Sequence[Any], *, on_done: Callable[[int, Any], None], **kwargs: Any) -> None:
            t0 = last = time.perf_counter()

            def done(index: int, pdf: Any) -> None:
                nonlocal last
                now = time.perf_counter()
                # Rendered here, one after another, a document starts when the one before ends.
                end = self._received.pop(pdf.label, now)
                self._record(pdf.label, end - self._started.pop(pdf.label, last))
                last = now
                on_done(index, pdf)

            try:
                fn(jobs, on_done=done, **kwargs)
            finally:
                self.seconds["render"] += time.perf_counter() - t0
        return render_many

    def _giving(self, fn: Callable[..., None]) -> Callable[..., None]:
        def give(worker: Any, index: int, job: Any) -> None:
            self._started[job.label] = time.perf_counter()
            fn(worker, index, job)
        return give

    def _receiving(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def receive(worker: Any) -> Any:
            result = fn(worker)
            self._received[result.label] = time.perf_counter()
            return result
        return receive

    def _record(self, label: str, seconds: float) -> None:
        match = _LABEL.match(label)
        kind, language = match.groups() if match else (label, "")
        drawn = self.drawn[(kind, language)]
        drawn.documents += 1
        drawn.seconds += seconds
