"""`petition-delivery serve`: logs, /healthz, and the running service as a child process against
PostgreSQL and a real SMTP server: hold and send window, two instances, SIGKILL and SIGTERM."""

from __future__ import annotations

import asyncio
import functools
import gc
import json
import logging
import shutil
import signal
import socket
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from starlette.applications import Starlette
from starlette.routing import Mount

from delivery.campaigns.config import Campaign, load_campaigns
from delivery.errors import DeliveryError
from delivery.logs import JsonFormatter, TextFormatter, safe_error
from delivery.mail import outbox
from delivery.runtime.clock import FixedClock
from delivery.runtime.scheduler import TickRunner, build_scheduler
from delivery.runtime.serve import Service, bind, create_asgi_app, run_service
from delivery.services import deliveries as service_deliveries
from delivery.services.app import App, init
from delivery.services.deliveries import TickReport
from delivery.settings import load_settings
from delivery.storage.db import make_engine, transaction
from delivery.storage.models import CampaignRow, SignerRow
from tests.conftest import PG_ADMIN_URL
from tests.support.serve_harness import (
    RECIPIENTS,
    SLUG,
    WED_NOON,
    deliveries,
    fresh_database,
    init_database,
    make_home,
    messages,
    service_env,
    serving,
    set_clock,
    sign,
    wait_for,
)
from tests.support.smtpd import RecordingHandler, SmtpServer

SECRET_NAME = "Knownname Zzyzx"  # signers in these tests are called "Knownname Zzyzx <n>"


def quiet_gc() -> None:
    """Collect the engine tests/conftest.py's postgres_url leaves undisposed, without its warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


# --- logs -------------------------------------------------------------------------------------

def record(msg: str, *args: object, exc: BaseException | None = None, **extra: object) -> logging.LogRecord:
    rec = logging.LogRecord("delivery.test", logging.INFO, __file__, 1, msg, args,
                            (type(exc), exc, exc.__traceback__) if exc else None)
    rec.__dict__.update(extra)
    return rec


def test_json_lines_carry_time_level_logger_message_and_extras() -> None:
    line = JsonFormatter().format(record("delivery %s built", "SM-1", campaign="c", delivery="SM-1"))
    assert "\n" not in line
    data = json.loads(line)
    assert data["level"] == "INFO" and data["logger"] == "delivery.test"
    assert data["message"] == "delivery SM-1 built"
    assert data["campaign"] == "c" and data["delivery"] == "SM-1"
    assert data["time"].endswith("+00:00")


def test_text_lines_append_extras_as_key_value() -> None:
    line = TextFormatter().format(record("tick %s", "c", campaign="c", send={"sent": 2}, note="two words"))
    assert line.endswith(' INFO delivery.test: tick c  campaign=c send={"sent":2} note="two words"')


@pytest.fixture
def app(engine: Engine, tmp_path: Path) -> App:
    quiet_gc()
    home = make_home(tmp_path / "home", thresholds=[3])
    settings = load_settings({"DELIVERY_HOME": str(home), "DELIVERY_VAR_DIR": str(tmp_path / "var"),
                              "DELIVERY_OUTBOX_DIR": str(tmp_path / "outbox")})
    app = App(settings=settings, engine=engine, campaigns=load_campaigns(settings.schedules_dir))
    init(app)
    return app


def test_a_database_error_is_logged_without_the_signer_in_its_parameters(app: App) -> None:
    """SQLAlchemy puts a failed statement's parameters (here a signer's name) into its message."""
    def insert() -> None:
        with transaction(app.engine) as session:
            campaign_id = session.scalar(select(CampaignRow.id))
            assert campaign_id is not None
            session.add(SignerRow(campaign_id=campaign_id, email_key="k" * 64, name=SECRET_NAME,
                                  city="Yerevan", country="Armenia", signed_at=WED_NOON, consent=True,
                                  source="test", created_at=WED_NOON))

    insert()
    with pytest.raises(IntegrityError) as caught:
        insert()
    assert SECRET_NAME in str(caught.value)  # what would leak without safe_error
    for formatter in (JsonFormatter(), TextFormatter()):
        out = formatter.format(record("tick failed: %s", safe_error(caught.value), exc=caught.value))
        assert SECRET_NAME not in out
        assert "IntegrityError" in out or "UniqueViolation" in out


def test_a_tick_over_named_signers_logs_no_signer_data(app: App, caplog: pytest.LogCaptureFixture) -> None:
    """A whole tick: milestone, delivery built from named signers, messages written: no name or
    e-mail of a signer in any log line, in either format."""
    sign(app.engine, 1, 3, now=WED_NOON, name=SECRET_NAME)
    runner = TickRunner(app, FixedClock(WED_NOON))
    with caplog.at_level(logging.DEBUG):
        asyncio.run(runner.run(SLUG))
    assert runner.health[SLUG].last_ok, runner.health[SLUG].last_error
    assert [d.status for d in deliveries(app.engine)] == ["done"]
    lines = [f.format(r) for r in caplog.records for f in (JsonFormatter(), TextFormatter())]
    assert any("delivery" in line and "built" in line for line in lines)
    text = "\n".join(lines)
    assert SECRET_NAME not in text and "example.net" not in text


# --- health, settings, binding ----------------------------------------------------------------

def test_healthz_is_200_when_database_and_scheduler_are_up_and_503_otherwise(app: App) -> None:
    async def main() -> list[tuple[int, dict[str, Any]]]:
        runner = TickRunner(app, FixedClock(WED_NOON))
        scheduler = build_scheduler(app.campaigns.values(), runner.run, every=timedelta(seconds=60))
        service = Service(app, runner, scheduler)
        asgi = create_asgi_app(service)
        answers = []
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=asgi), base_url="http://t") as client:
            async def get() -> None:
                response = await client.get("/healthz")
                answers.append((response.status_code, response.json()))

            await get()  # scheduler not started
            scheduler.start()
            await asyncio.sleep(0.3)  # the first tick runs at once
            await get()
            service.stopping = True
            await get()
            service.stopping = False
            real_engine = app.engine
            app.engine = make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
            try:
                await get()
            finally:
                app.engine.dispose()
                app.engine = real_engine
            scheduler.shutdown(wait=False)
            await asyncio.sleep(0)
        return answers

    (s0, b0), (s1, b1), (s2, b2), (s3, b3) = asyncio.run(main())
    assert (s0, b0["status"], b0["scheduler"]["running"]) == (503, "unhealthy", False)
    assert (s1, b1["status"], b1["database"], b1["scheduler"]["running"]) == (
        200, "ok", {"ok": True, "error": None}, True)
    tick = b1["campaigns"][SLUG]
    assert tick["last_tick_at"] == WED_NOON.isoformat() and tick["last_ok"] is True
    assert tick["next_tick"] is not None
    assert (s2, b2["status"]) == (503, "stopping")
    assert (s3, b3["status"], b3["database"]["ok"]) == (503, "unhealthy", False)
    assert "nobody" not in json.dumps(b3)  # connection details stay in the log


def test_healthz_names_a_stuck_build_and_a_paused_smtp_account_with_their_remedies(app: App) -> None:
    campaign = app.campaigns[SLUG]
    # A builder that claimed this delivery an hour ago and died: its lease has run out.
    ref = service_deliveries.create_manual(app, campaign, now=WED_NOON - timedelta(hours=1), actor="test")
    with transaction(app.engine) as session:
        outbox.pause_account(session, "organizer@smtp.example.org:587", reason="535 5.7.8 bad credentials",
                             now=WED_NOON)

    def no_tick(app: App, campaign: Campaign, **_: object) -> TickReport:  # leaves the stuck build be
        return TickReport(campaign=campaign.slug, signer_count=0)

    async def main() -> tuple[int, dict[str, Any]]:
        runner = TickRunner(app, FixedClock(WED_NOON), tick=no_tick)
        scheduler = build_scheduler(app.campaigns.values(), runner.run, every=timedelta(seconds=60))
        scheduler.start()
        try:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_asgi_app(
                    Service(app, runner, scheduler))), base_url="http://t") as client:
                response = await client.get("/healthz")
                return response.status_code, response.json()
        finally:
            scheduler.shutdown(wait=False)
            await asyncio.sleep(0)

    status, body = asyncio.run(main())
    assert (status, body["status"]) == (200, "degraded")
    assert [b["delivery"] for b in body["attention"]["stuck_builds"]] == [ref.public_id]
    assert [p["account"] for p in body["attention"]["smtp_paused"]] == ["organizer@smtp.example.org:587"]
    stuck, paused = body["problems"]
    assert ref.public_id in stuck and "takes it over" in stuck
    assert "535 5.7.8" in paused and "petition-delivery smtp resume" in paused


def test_stopping_the_server_runs_the_admins_shutdown_which_removes_job_files(
        app: App, tmp_path: Path) -> None:
    runner = TickRunner(app, FixedClock(WED_NOON))
    service = Service(app, runner, build_scheduler(app.campaigns.values(), runner.run,
                                                   every=timedelta(seconds=60)))
    asgi = create_asgi_app(service)
    [admin] = [r.app for r in asgi.routes if isinstance(r, Mount)]
    assert isinstance(admin, Starlette)
    left_behind = tmp_path / "preview-files"
    left_behind.mkdir()

    async def main() -> None:
        async with asgi.router.lifespan_context(asgi):
            job = admin.state.web.jobs.start("preview", SLUG, "test", lambda job: None)
            job.cleanup = lambda: shutil.rmtree(left_behind)
            job.thread.join()
            assert left_behind.exists()

    asyncio.run(main())
    assert not left_behind.exists()


def test_a_web_server_that_cannot_start_stops_the_service_with_exit_1(
        app: App, caplog: pytest.LogCaptureFixture) -> None:
    sock = bind("127.0.0.1", 0)
    sock.close()  # uvicorn cannot serve on it
    with caplog.at_level(logging.INFO):
        code = asyncio.run(run_service(app, list(app.campaigns.values()), sock, clock=FixedClock(WED_NOON),
                                       deadline=5))
    assert code == 1
    assert any("could not start" in r.getMessage() for r in caplog.records)


def test_a_taken_port_fails_at_once_with_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(DeliveryError, match=f"cannot listen on 127.0.0.1:{port}"):
            bind("127.0.0.1", port)


def test_a_request_before_the_web_server_accepts_waits_instead_of_being_refused() -> None:
    sock = bind("127.0.0.1", 0)
    try:
        with socket.create_connection(sock.getsockname()[:2], timeout=5) as early:
            accepted, _ = sock.accept()  # what the web server does once it runs
            with accepted:
                early.sendall(b"GET / HTTP/1.0\r\n\r\n")
                assert accepted.recv(100).startswith(b"GET / ")
    finally:
        sock.close()


# --- the service as a child process -----------------------------------------------------------

@dataclass
class SlowHandler(RecordingHandler):
    """Records each message as it arrives, then waits before answering (for the first `slow` ones)."""

    delay: float = 0.0
    slow: int = 1_000_000
    seen: int = field(default=0)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        answer = await super().handle_DATA(server, session, envelope)
        self.seen += 1
        if self.seen <= self.slow:
            await asyncio.sleep(self.delay)
        return answer


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer(SlowHandler())
    server.start()
    yield server
    server.stop()


def arrivals(smtp: SmtpServer) -> Counter[tuple[str, str]]:
    """(recipient, Message-ID) → how many times the server accepted it."""
    return Counter((r.rcpt_tos[0], str(r.message["Message-ID"])) for r in smtp.received)


def assert_no_signer_data(*logs: str) -> None:
    for text in logs:
        assert SECRET_NAME not in text and "example.net" not in text


@pytest.mark.slow
def test_a_milestone_is_held_then_waits_for_the_window_then_arrives_once(
        tmp_path: Path, pg_url: str, smtp: SmtpServer) -> None:
    # 17:30 in Yerevan: the window (Mon-Fri 09:00-18:00) is open, the hold (1 h) is not over.
    t0 = WED_NOON + timedelta(hours=5, minutes=30)
    home = make_home(tmp_path / "home", thresholds=[3, 50], hold="1h", window="Mon-Fri 09:00-18:00")
    clock = tmp_path / "clock"
    set_clock(clock, t0)
    env = service_env(home, pg_url, clock, **smtp.env())
    engine = init_database(env)
    try:
        with serving(env, tmp_path / "serve.log") as child:
            sign(engine, 1, 3, now=t0, name=SECRET_NAME)
            wait_for(lambda: [d.status for d in deliveries(engine)] == ["held"], timeout=20,
                     what="a held delivery")
            # The delivery is committed inside the tick; the health report counts a tick once it ends.
            child.wait_ticks(1)
            status, body = child.health()
            assert status == 200 and body["status"] == "ok" and body["database"]["ok"]
            assert body["campaigns"][SLUG]["last_tick_at"] == t0.isoformat()
            child.wait_ticks(2)
            assert smtp.received == [] and deliveries(engine)[0].status == "held"

            set_clock(clock, t0 + timedelta(minutes=65))  # hold over; 18:35 in Yerevan: window shut
            wait_for(lambda: deliveries(engine)[0].status == "sending", timeout=60, what="the build")
            queued = messages(engine)
            assert sorted(m.recipient for m in queued) == sorted(RECIPIENTS)
            opens = WED_NOON + timedelta(days=1, hours=-3)  # Thursday 09:00 in Yerevan
            assert {m.next_attempt_at for m in queued} == {opens}
            child.wait_ticks(2)
            assert smtp.received == []

            set_clock(clock, opens + timedelta(minutes=1))
            wait_for(lambda: deliveries(engine)[0].status == "done", timeout=30, what="the sending")
            child.wait_ticks(2)  # and nothing more goes out on later ticks
            got = arrivals(smtp)
            assert sorted(r for r, _ in got) == sorted(RECIPIENTS)
            assert set(got.values()) == {1}
            pdfs = [p for r in smtp.received for p in r.message.iter_attachments()
                    if p.get_content_type() == "application/pdf"]
            assert pdfs
            child.signal(signal.SIGTERM)
            assert child.wait(timeout=30) == 0
            log = child.log_text()
        records = [json.loads(line) for line in log.splitlines()]  # every line is one JSON object
        assert {"time", "level", "logger", "message"} <= set(records[0])
        delivery_id = deliveries(engine)[0].public_id
        assert any(r.get("delivery") == delivery_id and "released" in r["message"] for r in records)
        assert any(r["logger"] == "delivery.mail.outbox" and "sent" in r["message"] for r in records)
        assert_no_signer_data(log)
    finally:
        engine.dispose()


@pytest.mark.slow
def test_two_instances_deliver_each_of_three_milestones_once(
        tmp_path: Path, pg_url: str, smtp: SmtpServer) -> None:
    home = make_home(tmp_path / "home", thresholds=[3, 6, 9])
    clock = tmp_path / "clock"
    set_clock(clock, WED_NOON)
    env = service_env(home, pg_url, clock, **smtp.env())
    engine = init_database(env)
    try:
        with serving(env, tmp_path / "a.log") as a, serving(env, tmp_path / "b.log") as b:
            for milestone in (1, 2, 3):  # one milestone per tick; their builds may overlap
                sign(engine, 3 * milestone - 2, 3, now=WED_NOON, name=SECRET_NAME)
                wait_for(functools.partial(lambda m: len(deliveries(engine)) == m, milestone), timeout=30,
                         what=f"milestone {milestone} detected")
            wait_for(lambda: [d.status for d in deliveries(engine)] == ["done"] * 3, timeout=90,
                     what="three deliveries done")
            a.wait_ticks(2)
            b.wait_ticks(2)
            logs = a.log_text(), b.log_text()
            built = [r["delivery"] for r in a.records() + b.records()
                     if str(r.get("message", "")).endswith("built and queued for sending")]
        assert [d.milestone for d in deliveries(engine)] == [3, 6, 9]
        assert sorted(built) == sorted(d.public_id for d in deliveries(engine))  # each built once
        got = arrivals(smtp)
        assert len(got) == 3 * len(RECIPIENTS) and set(got.values()) == {1}
        assert all(m.status == "sent" and m.crash_resends == 0 for m in messages(engine))
        assert_no_signer_data(*logs)
    finally:
        engine.dispose()


@pytest.mark.slow
def test_sigkill_during_a_render_then_a_restart_delivers_once(
        tmp_path: Path, pg_url: str, smtp: SmtpServer) -> None:
    home = make_home(tmp_path / "home", thresholds=[300])
    clock = tmp_path / "clock"
    set_clock(clock, WED_NOON)
    env = service_env(home, pg_url, clock, **smtp.env())
    engine = init_database(env)
    try:
        with serving(env, tmp_path / "first.log") as first:
            sign(engine, 1, 300, now=WED_NOON, name=SECRET_NAME)
            wait_for(lambda: [d.status for d in deliveries(engine)] == ["building"], timeout=30,
                     what="a build in progress", every=0.01)
            first.kill()
        assert [d.status for d in deliveries(engine)] == ["building"] and messages(engine) == []

        set_clock(clock, WED_NOON + timedelta(minutes=4))  # the dead build's 3-minute lease has expired
        with serving(env, tmp_path / "second.log") as second:
            wait_for(lambda: deliveries(engine)[0].status == "done", timeout=90, what="the delivery")
            second.wait_ticks(1)
        got = arrivals(smtp)
        assert sorted(r for r, _ in got) == sorted(RECIPIENTS) and set(got.values()) == {1}
        assert all(m.crash_resends == 0 for m in messages(engine))
    finally:
        engine.dispose()


@pytest.mark.slow
def test_sigkill_during_a_send_then_a_restart_resends_only_the_counted_message(
        tmp_path: Path, pg_url: str) -> None:
    smtp = SmtpServer(SlowHandler(delay=30, slow=1))
    smtp.start()
    home = make_home(tmp_path / "home", thresholds=[3])
    clock = tmp_path / "clock"
    set_clock(clock, WED_NOON)
    env = service_env(home, pg_url, clock, **smtp.env())
    engine = init_database(env)
    try:
        with serving(env, tmp_path / "first.log") as first:
            sign(engine, 1, 3, now=WED_NOON, name=SECRET_NAME)
            # the server has the message and has not answered: the crash window
            wait_for(lambda: len(smtp.received) == 1, timeout=60, what="the first message to arrive")
            assert [m.status for m in messages(engine)].count("sending") == 1
            first.kill()

        set_clock(clock, WED_NOON + timedelta(minutes=11))  # the outbox lease (10 min) has expired
        with serving(env, tmp_path / "second.log") as second:
            wait_for(lambda: deliveries(engine)[0].status == "done", timeout=60, what="the delivery")
            second.wait_ticks(1)
        got = arrivals(smtp)
        rows = {m.message_id: m for m in messages(engine)}
        assert sorted(r for r, _ in got) == sorted(RECIPIENTS)
        expected = {mid: 1 + m.crash_resends for mid, m in rows.items()}
        assert {mid: n for (_, mid), n in got.items()} == expected
        assert sorted(m.crash_resends for m in rows.values()) == [0, 1]
    finally:
        engine.dispose()
        smtp.stop()


@pytest.mark.slow
def test_sigterm_finishes_the_send_in_flight_and_exits_0(tmp_path: Path, pg_url: str) -> None:
    smtp = SmtpServer(SlowHandler(delay=2))
    smtp.start()
    home = make_home(tmp_path / "home", thresholds=[3])
    clock = tmp_path / "clock"
    set_clock(clock, WED_NOON)
    env = service_env(home, pg_url, clock, DELIVERY_SHUTDOWN_DEADLINE="15", **smtp.env())
    engine = init_database(env)
    try:
        with serving(env, tmp_path / "serve.log") as child:
            sign(engine, 1, 3, now=WED_NOON, name=SECRET_NAME)
            wait_for(lambda: "sending" in [m.status for m in messages(engine)], timeout=60,
                     what="a message being sent")
            started = time.monotonic()
            child.signal(signal.SIGTERM)
            assert child.wait(timeout=30) == 0
            took = time.monotonic() - started
            log = child.log_text()
        assert took < 15
        assert [m.status for m in messages(engine)] == ["sent", "sent"]
        assert set(arrivals(smtp).values()) == {1}
        assert "stopped cleanly" in log
    finally:
        engine.dispose()
        smtp.stop()


@pytest.mark.slow
def test_healthz_turns_503_when_the_database_goes_away(tmp_path: Path) -> None:
    home = make_home(tmp_path / "home", thresholds=[3])
    clock = tmp_path / "clock"
    set_clock(clock, WED_NOON)
    with fresh_database(PG_ADMIN_URL) as url:
        env = service_env(home, url, clock)
        init_database(env).dispose()
        with serving(env, tmp_path / "serve.log") as child:
            child.wait_ticks(1)
            assert child.health()[0] == 200
            from sqlalchemy import create_engine, text

            admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE "{url.rsplit("/", 1)[1]}" WITH (FORCE)'))
            admin.dispose()
            status, body = child.health()
            assert status == 503 and body["database"]["ok"] is False and body["status"] == "unhealthy"
            child.signal(signal.SIGTERM)
            assert child.wait(timeout=30) == 0


def test_a_token_or_password_in_a_query_string_never_reaches_the_log(tmp_path: Path) -> None:
    home = make_home(tmp_path / "home", thresholds=[3])
    clock = tmp_path / "clock"
    set_clock(clock, WED_NOON)
    with fresh_database(PG_ADMIN_URL) as url:
        env = service_env(home, url, clock, DELIVERY_SECRET_KEY="k" * 40)
        init_database(env).dispose()
        with serving(env, tmp_path / "serve.log") as child:
            base = f"http://127.0.0.1:{child.port}"
            refused = httpx.get(f"{base}/api/v1/campaigns/{SLUG}/status?token=Sekrit-Token-4242", timeout=10)
            assert refused.status_code in (400, 401), refused.text
            httpx.get(f"{base}/login?user=admin&password=Sekrit-Password-4242", timeout=10)
            child.signal(signal.SIGTERM)
            assert child.wait(timeout=30) == 0
        log = child.log_text()
    assert "Sekrit" not in log
    assert f"/api/v1/campaigns/{SLUG}/status?…" in log  # the access line itself is kept


@pytest.mark.slow
def test_a_second_signal_stops_a_build_and_gives_it_back(
        tmp_path: Path, pg_url: str, smtp: SmtpServer) -> None:
    """SIGTERM, then SIGINT (an impatient operator): the build stops between volumes, its lease is
    released (not failed), the process exits 0, and the next start builds it at once, without
    waiting for the lease to expire. (Near the deadline the same happens on its own.)"""
    home = make_home(tmp_path / "home", thresholds=[4000], second_language="en")  # 2 volumes
    clock = tmp_path / "clock"
    set_clock(clock, WED_NOON)
    env = service_env(home, pg_url, clock, DELIVERY_SHUTDOWN_DEADLINE="120", **smtp.env())
    engine = init_database(env)
    try:
        with serving(env, tmp_path / "first.log") as first:
            sign(engine, 1, 4000, now=WED_NOON, name=SECRET_NAME)
            wait_for(lambda: [d.status for d in deliveries(engine)] == ["building"], timeout=30,
                     what="a build in progress", every=0.01)
            first.signal(signal.SIGTERM)
            time.sleep(0.2)
            first.signal(signal.SIGINT)
            assert first.wait(timeout=60) == 0
            log = first.log_text()
        assert "stopped for shutdown" in log and "stopped cleanly" in log, log[-3000:]
        [delivery] = deliveries(engine)
        assert (delivery.status, delivery.lease_owner, delivery.error) == ("queued", None, None)
        assert messages(engine) == [] and smtp.received == []

        with serving(env, tmp_path / "second.log") as second:  # same clock: no lease to wait out
            wait_for(lambda: deliveries(engine)[0].status == "done", timeout=120, what="the delivery")
            second.wait_ticks(1)
        got = arrivals(smtp)
        assert sorted(r for r, _ in got) == sorted(RECIPIENTS) and set(got.values()) == {1}
    finally:
        engine.dispose()
