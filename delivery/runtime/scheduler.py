"""Campaigns + a Clock → an APScheduler that runs one service tick per campaign, and what it saw.

Jobs are thin: each takes a campaign slug and awaits `deliveries.tick` in a worker thread (building
is CPU work and the web admin shares the event loop). Correctness never depends on there being one
scheduler: the tick is idempotent and safe on any number of instances.

Jobs live in APScheduler's memory job store, not in the database. Their whole definition comes from
`schedules/*.toml` and is rebuilt at every start, so a stored copy could only ever be stale (a
changed `check_every`, a removed campaign); and the work a job stands for is already persistent and
claimable in the deliveries and messages tables, which is what makes a restart lose nothing.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from apscheduler.executors.asyncio import AsyncIOExecutor
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from delivery.campaigns.config import Campaign
from delivery.errors import BuildStopped
from delivery.logs import safe_error
from delivery.runtime.clock import Clock
from delivery.services import deliveries
from delivery.services.app import App, refresh_campaigns

log = logging.getLogger("delivery.runtime.scheduler")
TickFn = Callable[..., deliveries.TickReport]
Job = Callable[[str], Awaitable[None]]


def job_id(slug: str) -> str:
    return f"tick:{slug}"


def add_tick_job(scheduler: AsyncIOScheduler, campaign: Campaign, job: Job, *,
                 every: timedelta | None = None, first_run: datetime | None = None) -> None:
    """One interval job per campaign. Stable id + replace_existing: re-adding never duplicates.
    coalesce: runs missed while a tick was busy become one run. A run later than one interval is
    dropped (misfire grace), as the next one is due anyway and does the same idempotent work."""
    interval = every or campaign.schedule.check_every
    seconds = interval.total_seconds()
    scheduler.add_job(
        job, IntervalTrigger(seconds=seconds, timezone=UTC), args=[campaign.slug],
        id=job_id(campaign.slug), name=f"tick {campaign.slug} every {interval}",
        replace_existing=True, coalesce=True, max_instances=1,
        misfire_grace_time=max(1, int(seconds)),
        next_run_time=first_run or datetime.now(UTC),  # tick at once: a restart resumes at once
    )


def build_scheduler(campaigns: Iterable[Campaign], job: Job, *,
                    every: timedelta | None = None) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(jobstores={"default": MemoryJobStore()},
                                 executors={"default": AsyncIOExecutor()}, timezone=UTC)
    for campaign in campaigns:
        add_tick_job(scheduler, campaign, job, every=every)
    return scheduler


@dataclass
class CampaignHealth:
    last_tick_at: datetime | None = None  # the service clock's time of the last finished tick
    last_finished: datetime | None = None  # wall-clock time it finished
    last_ok: bool | None = None
    last_error: str | None = None
    ticks: int = 0
    running: bool = False

    def to_dict(self) -> dict[str, object]:
        return {"last_tick_at": _iso(self.last_tick_at), "last_finished": _iso(self.last_finished),
                "last_ok": self.last_ok, "last_error": self.last_error, "ticks": self.ticks,
                "running": self.running}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value else None


class TickRunner:
    """The job body (`run`), the in-flight ticks, and how they stop."""

    def __init__(self, app: App, clock: Clock, *, tick: TickFn = deliveries.tick) -> None:
        self.app, self.clock, self.tick = app, clock, tick
        self.health = {slug: CampaignHealth() for slug in app.campaigns}
        # each campaign's check interval its job was scheduled with, and what is told when the
        # settings in force (delivery.services.app.refresh_campaigns) give it another
        self.intervals = {slug: c.schedule.check_every for slug, c in app.campaigns.items()}
        self.on_new_interval: Callable[[Campaign], None] | None = None
        self.abort = threading.Event()
        self.closed = False  # set at shutdown: a tick the scheduler starts after it does nothing
        self._in_flight: set[asyncio.Task[None]] = set()

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    async def run(self, slug: str) -> None:
        if self.closed:
            return
        task = asyncio.current_task()
        assert task is not None
        self._in_flight.add(task)
        health = self.health.setdefault(slug, CampaignHealth())
        health.running = True
        try:
            await self._run(slug, health)
        finally:
            health.running = False
            self._in_flight.discard(task)

    async def _run(self, slug: str, health: CampaignHealth) -> None:
        started = time.monotonic()
        now = None
        try:
            now = self.clock.now()
            report = await asyncio.to_thread(self._tick, slug, now)
        except BuildStopped:
            released = deliveries.release_own_leases(self.app, now=now or datetime.now(UTC))
            log.warning("tick %s stopped for shutdown; %d lease(s) released for another instance",
                        slug, released, extra={"campaign": slug})
            return
        except Exception as exc:
            health.last_ok, health.last_error = False, safe_error(exc)
            health.last_finished = datetime.now(UTC)
            log.error("tick %s failed: %s", slug, safe_error(exc), exc_info=exc, extra={"campaign": slug})
            return
        health.last_tick_at, health.last_finished = now, datetime.now(UTC)
        health.last_ok, health.last_error = True, None
        health.ticks += 1
        _log_report(report, now=now, seconds=time.monotonic() - started)
        self._follow_interval(slug)

    def _follow_interval(self, slug: str) -> None:
        campaign = self.app.campaigns[slug]
        interval = campaign.schedule.check_every
        if interval != self.intervals.get(slug) and self.on_new_interval is not None:
            log.info("campaign %s: checked every %s from now on", slug, interval, extra={"campaign": slug})
            self.intervals[slug] = interval
            self.on_new_interval(campaign)

    def _tick(self, slug: str, now: datetime) -> deliveries.TickReport:
        refresh_campaigns(self.app)  # settings saved through any instance are in force now
        return self.tick(self.app, self.app.campaigns[slug], now=now, progress=self._progress)

    def _progress(self, done: int, total: int) -> None:
        if self.abort.is_set():
            raise BuildStopped(f"stopped after {done} of {total} volumes")

    async def drain(self, deadline: float) -> bool:
        """Wait for in-flight ticks; near the deadline, stop builds between volumes. True if none is left."""
        await asyncio.sleep(0)  # let a tick the scheduler has just started register itself
        pending: set[asyncio.Task[None]] = set(self._in_flight)
        if not pending:
            return True
        grace = min(10.0, deadline / 2)  # time for the volumes being rendered to finish
        log.info("waiting up to %.0f s for %d tick(s) in flight", deadline, len(pending))
        _, pending = await asyncio.wait(pending, timeout=max(0.0, deadline - grace))
        if pending:
            self.abort.set()
            log.warning("shutdown deadline near: stopping builds in flight")
            _, pending = await asyncio.wait(pending, timeout=grace)
        return not pending


def _log_report(report: deliveries.TickReport, *, now: datetime, seconds: float) -> None:
    c = report.campaign
    milestone = max(report.milestones) if report.milestones else "?"
    for what, ids, level in ((f"created for milestone {milestone}", report.created, logging.INFO),
                             ("released from hold", report.released, logging.INFO),
                             ("built and queued for sending", report.built, logging.INFO),
                             ("failed to build", report.build_failures, logging.ERROR)):
        for public_id in ids:
            log.log(level, "delivery %s %s", public_id, what, extra={"campaign": c, "delivery": public_id})
    send = {k: v for k, v in report.send.items() if v}
    log.info("tick %s: %d signers, milestones %s, sent %d, retry %d, failed %d (%.1f s)", c,
             report.signer_count, ", ".join(map(str, report.milestones)) or "-", send.get("sent", 0),
             send.get("retried", 0), send.get("failed", 0), seconds,
             extra={"campaign": c, "signers": report.signer_count, "send": send,
                    "now": now.isoformat(), "seconds": round(seconds, 3)})
