"""A long task (preview, send now) → a background thread with a progress record the pages poll.

The web request starts the job and redirects at once; the page it lands on refreshes itself
(a meta refresh, no JavaScript) until the job is done. Jobs live in this process's memory.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from delivery.errors import DeliveryError

log = logging.getLogger("delivery.web")
KEEP_SECONDS = 6 * 3600


@dataclass
class Job:
    id: str
    kind: str
    campaign: str
    actor: str
    started: float = field(default_factory=time.time)
    done: int = 0
    total: int = 0
    finished: bool = False
    error: str | None = None
    # the exception's class when the job failed on a bug rather than a DeliveryError: the pages
    # then say so in their own language (`error` is the service's English words otherwise)
    internal: str | None = None
    result: Any = None
    thread: threading.Thread | None = None
    cleanup: Callable[[], None] | None = None

    def progress(self, done: int, total: int) -> None:
        self.done, self.total = done, total

    @property
    def percent(self) -> int:
        return int(100 * self.done / self.total) if self.total else 0


class Jobs:
    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def start(self, kind: str, campaign: str, actor: str, work: Callable[[Job], Any],
              on_end: Callable[[Job], None] | None = None) -> Job:
        job, _ = self._start(kind, campaign, actor, work, on_end, once=False)
        return job

    def start_once(self, kind: str, campaign: str, actor: str,
                   work: Callable[[Job], Any]) -> tuple[Job, bool]:
        """A new job, or the one of this kind and campaign still running (then False)."""
        return self._start(kind, campaign, actor, work, None, once=True)

    def _start(self, kind: str, campaign: str, actor: str, work: Callable[[Job], Any],
               on_end: Callable[[Job], None] | None, *, once: bool) -> tuple[Job, bool]:
        job = Job(id=secrets.token_urlsafe(12), kind=kind, campaign=campaign, actor=actor)

        def run() -> None:
            try:
                job.result = work(job)
            except DeliveryError as exc:
                job.error = str(exc)
            except Exception as exc:  # a background thread has no caller to raise to: record and log
                log.exception("web %s job failed", kind)
                job.internal = type(exc).__name__
                job.error = f"internal error ({job.internal}); see the service log"
            finally:
                job.finished = True
                if on_end is not None:
                    on_end(job)

        job.thread = threading.Thread(target=run, name=f"web-{kind}-{job.id[:6]}", daemon=True)
        with self._lock:
            self._prune()
            if once:
                running = next((j for j in self._jobs.values() if j.kind == kind
                                and j.campaign == campaign and not j.finished), None)
                if running is not None:
                    return running, False
            self._jobs[job.id] = job
        job.thread.start()
        return job, True

    def get(self, job_id: str, kind: str, campaign: str) -> Job | None:
        with self._lock:
            job = self._jobs.get(job_id)
        return job if job and job.kind == kind and job.campaign == campaign else None

    def running(self) -> list[Job]:
        with self._lock:
            return [j for j in self._jobs.values() if not j.finished]

    def _prune(self) -> None:
        cutoff = time.time() - KEEP_SECONDS
        for job_id in [k for k, j in self._jobs.items() if j.finished and j.started < cutoff]:
            job = self._jobs.pop(job_id)
            if job.cleanup is not None:
                job.cleanup()

    def close(self) -> None:
        """Wait briefly for running jobs, then remove what finished jobs left behind."""
        self.join_all(timeout=5.0)
        with self._lock:
            jobs, self._jobs = list(self._jobs.values()), {}
        for job in jobs:
            if job.finished and job.cleanup is not None:
                job.cleanup()

    def join_all(self, timeout: float = 60.0) -> None:
        """Wait for running jobs (tests, shutdown)."""
        deadline = time.time() + timeout
        for job in self.running():
            if job.thread is not None:
                job.thread.join(max(0.0, deadline - time.time()))
