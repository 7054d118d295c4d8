"""The scheduler wiring (job ids, replace_existing, coalesce, misfire grace, memory store), the
tick runner (real service ticks in a worker thread, health, failures, drain) and lease release."""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine, delete, select

from delivery.campaigns.config import load_campaigns, parse_campaign
from delivery.runtime.clock import FileClock, FixedClock
from delivery.runtime.scheduler import (
    TickRunner,
    add_tick_job,
    build_scheduler,
    job_id,
)
from delivery.services import deliveries
from delivery.services.app import App, init
from delivery.settings import load_settings
from delivery.storage.db import transaction
from delivery.storage.models import CampaignRow, DeliveryRow, MessageRow
from tests.support.serve_harness import CAMPAIGN, SLUG, WED_NOON, make_home

NOW = WED_NOON


def campaign(slug: str, check_every: str):  # type: ignore[no-untyped-def]
    return parse_campaign(CAMPAIGN.format(slug=slug, r0="a@example.org", r1="b@example.org", l1="hy",
                                          thresholds=[10], hold="0s", window="",
                                          check_every=check_every), f"{slug}.toml")


async def noop(slug: str) -> None:
    return None


def test_one_job_per_campaign_with_stable_id_and_explicit_policies() -> None:
    async def main() -> None:
        scheduler = build_scheduler([campaign("alpha", "5m"), campaign("beta", "30s")], noop)
        scheduler.start(paused=True)
        try:
            jobs = {job.id: job for job in scheduler.get_jobs()}
            assert set(jobs) == {"tick:alpha", "tick:beta"} == {job_id("alpha"), job_id("beta")}
            alpha, beta = jobs["tick:alpha"], jobs["tick:beta"]
            assert alpha.args == ("alpha",) and beta.args == ("beta",)  # a slug, never an object
            assert isinstance(alpha.trigger, IntervalTrigger)
            assert alpha.trigger.interval == timedelta(minutes=5)
            assert beta.trigger.interval == timedelta(seconds=30)
            assert alpha.coalesce is True and beta.coalesce is True
            assert alpha.misfire_grace_time == 300 and beta.misfire_grace_time == 30
            assert alpha.max_instances == 1
            assert alpha.func is noop
            assert isinstance(scheduler._lookup_jobstore("default"), MemoryJobStore)
            # the first tick is due at once, so a restart resumes pending work immediately
            assert alpha.next_run_time <= datetime.now(UTC) + timedelta(seconds=1)
        finally:
            scheduler.shutdown(wait=False)
            await asyncio.sleep(0)

    asyncio.run(main())


def test_adding_a_campaign_again_replaces_its_job() -> None:
    async def main() -> None:
        scheduler = build_scheduler([campaign("alpha", "5m")], noop)
        scheduler.start(paused=True)
        try:
            add_tick_job(scheduler, campaign("alpha", "1m"), noop)
            add_tick_job(scheduler, campaign("alpha", "1m"), noop, every=timedelta(seconds=2))
            jobs = scheduler.get_jobs()
            assert [j.id for j in jobs] == ["tick:alpha"]
            assert jobs[0].trigger.interval == timedelta(seconds=2)
            assert jobs[0].misfire_grace_time == 2
        finally:
            scheduler.shutdown(wait=False)
            await asyncio.sleep(0)

    asyncio.run(main())


def collect_leaked_engines() -> None:
    """tests/conftest.py's postgres_url leaves its migration engine undisposed; collect it here,
    quietly, rather than have its ResourceWarning fail whichever test the GC happens to run in."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


@pytest.fixture
def app(engine: Engine, tmp_path: Path) -> App:
    collect_leaked_engines()
    home = make_home(tmp_path / "home", thresholds=[3])
    settings = load_settings({"DELIVERY_HOME": str(home)})
    app = App(settings=settings, engine=engine, campaigns=load_campaigns(settings.schedules_dir))
    init(app)
    return app


def test_the_scheduler_runs_real_ticks_in_a_worker_thread(app: App) -> None:
    threads: list[int] = []

    def tick(*args, **kwargs):  # type: ignore[no-untyped-def]
        threads.append(threading.get_ident())
        return deliveries.tick(*args, **kwargs)  # the real service tick

    async def main() -> None:
        runner = TickRunner(app, FixedClock(NOW), tick=tick)
        scheduler = build_scheduler(app.campaigns.values(), runner.run, every=timedelta(seconds=0.2))
        scheduler.start()
        try:
            # every 0.2 s, skipped while one still runs: the first real tick imports what the
            # service first needs, so how many fit in a given time depends on the machine
            deadline = asyncio.get_running_loop().time() + 20
            while runner.health.get(SLUG) is None or runner.health[SLUG].ticks < 3:
                assert asyncio.get_running_loop().time() < deadline, "fewer than 3 ticks in 20 s"
                await asyncio.sleep(0.05)
        finally:
            scheduler.pause()
            runner.closed = True
            assert await runner.drain(5)
            scheduler.shutdown(wait=False)
            await asyncio.sleep(0)
        health = runner.health[SLUG]
        assert health.ticks >= 3
        assert health.last_ok is True and health.last_error is None
        assert health.last_tick_at == NOW  # the service clock's time, not the wall clock's
        assert threading.get_ident() not in threads  # never on the event loop's thread

    asyncio.run(main())


def test_a_failing_tick_is_recorded_and_logged(app: App, caplog: pytest.LogCaptureFixture) -> None:
    with transaction(app.engine) as session:  # the campaign was never registered by `init`
        session.execute(delete(CampaignRow))
    runner = TickRunner(app, FixedClock(NOW))
    with caplog.at_level(logging.ERROR, logger="delivery.runtime.scheduler"):
        asyncio.run(runner.run(SLUG))
    health = runner.health[SLUG]
    assert health.last_ok is False and health.ticks == 0
    assert "is not in the database yet" in (health.last_error or "")
    assert any("tick serve-test failed" in r.getMessage() for r in caplog.records)
    assert runner.in_flight == 0


def test_an_unreadable_clock_file_fails_the_tick_not_the_service(app: App, tmp_path: Path) -> None:
    runner = TickRunner(app, FileClock(tmp_path / "missing-clock"))
    asyncio.run(runner.run(SLUG))
    assert runner.health[SLUG].last_ok is False
    assert "missing-clock" in (runner.health[SLUG].last_error or "")


def test_a_closed_runner_starts_nothing(app: App) -> None:
    runner = TickRunner(app, FixedClock(NOW))
    runner.closed = True
    asyncio.run(runner.run(SLUG))
    assert runner.health[SLUG].ticks == 0 and runner.health[SLUG].last_ok is None


def test_drain_waits_for_a_tick_and_stops_a_build_near_the_deadline(app: App) -> None:
    """A build that would run for minutes is stopped between volumes when the deadline nears,
    and nothing of it is marked failed. (The tick here stands in for a long build loop; the real
    build is stopped the same way, through its progress callback, in tests/runtime/test_serve.py.)"""
    volumes: list[int] = []

    def long_build(app_: App, campaign, *, now, progress):  # type: ignore[no-untyped-def]
        for n in range(10_000):
            progress(n, 10_000)
            volumes.append(n)
            threading.Event().wait(0.01)
        raise AssertionError("the build was not stopped")

    async def main() -> bool:
        runner = TickRunner(app, FixedClock(NOW), tick=long_build)
        task = asyncio.create_task(runner.run(SLUG))
        await asyncio.sleep(0.1)
        assert runner.in_flight == 1
        clean = await runner.drain(1.0)
        await task
        return clean

    assert asyncio.run(main()) is True
    assert 10 < len(volumes) < 10_000


def test_release_own_leases_gives_back_only_this_workers_claims(app: App) -> None:
    with transaction(app.engine) as session:
        campaign_id = session.scalar(select(CampaignRow.id))
        assert campaign_id is not None
        rows = []
        for n, owner in enumerate((app.worker_id, "other-host:1:abc")):
            row = DeliveryRow(campaign_id=campaign_id, public_id=f"ST-{n}", trigger="milestone", milestone=3,
                              status="building", created_at=NOW, created_by="scheduler", last_signer_id=0,
                              signer_count=0, recipients="[]", lease_owner=owner,
                              lease_until=NOW + timedelta(minutes=30))
            session.add(row)
            session.flush()
            session.add(MessageRow(delivery_id=row.id, recipient="a@example.org", kind="dossier", part=1,
                                   parts=1, status="sending", message_id=f"<m{n}@example.org>", content=b"x",
                                   size=1, attempts=1, created_at=NOW, next_attempt_at=NOW,
                                   lease_owner=f"{owner}#0a0b0c", lease_until=NOW + timedelta(minutes=10),
                                   crash_resends=0))
            rows.append(row.id)
    assert deliveries.release_own_leases(app, now=NOW) == 2
    with transaction(app.engine) as session:
        mine, theirs = (session.get(DeliveryRow, i) for i in rows)
        assert mine is not None and theirs is not None
        assert (mine.status, mine.lease_owner) == ("queued", None)
        assert (theirs.status, theirs.lease_owner) == ("building", "other-host:1:abc")
        leases = {m.message_id: m.lease_until for m in session.scalars(select(MessageRow))}
    assert leases == {"<m0@example.org>": NOW, "<m1@example.org>": NOW + timedelta(minutes=10)}
