"""App + host/port → the long-running service: scheduled ticks, `/healthz` and the web admin on one
asyncio loop, until SIGTERM or SIGINT; → an exit code.

Shutdown is ours, not uvicorn's (its signal handlers are switched off): on a signal the scheduler
stops starting ticks, `/healthz` turns 503, the tick in flight gets until the deadline to finish
(near it, a build stops between volumes and gives its lease back), and only then does the web
server stop. A crash at any point loses nothing: every claim is a lease that expires.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
import signal
import socket
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import uvicorn
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.schedulers.base import STATE_RUNNING
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Mount, Route

from delivery.campaigns.config import Campaign
from delivery.errors import DeliveryError
from delivery.logs import configure_logging
from delivery.runtime.clock import Clock, clock_for
from delivery.runtime.scheduler import (
    TickRunner,
    add_tick_job,
    build_scheduler,
    job_id,
)
from delivery.services import accounts, deliveries, reports
from delivery.services.app import App, check_ready, database_problem

log = logging.getLogger("delivery.runtime.serve")
DB_PROBE_TIMEOUT = 5.0


@dataclass
class Service:
    """What `/healthz` reports on."""

    app: App
    runner: TickRunner
    scheduler: AsyncIOScheduler
    stopping: bool = False


def health_report(service: Service, db_error: str | None,
                  attention: reports.Attention | None = None) -> tuple[int, dict[str, Any]]:
    """200 when the database answers, the scheduler runs and no stop is under way; else 503.
    "degraded" (still 200: a restart would not help) when a delivery or an SMTP account needs a person."""
    running = service.scheduler.state == STATE_RUNNING
    campaigns = {}
    for slug, health in service.runner.health.items():
        job = service.scheduler.get_job(job_id(slug))
        next_run = getattr(job, "next_run_time", None) if job else None
        campaigns[slug] = {**health.to_dict(),
                           "next_tick": next_run.isoformat(timespec="seconds") if next_run else None}
    ok = db_error is None and running and not service.stopping
    problems = attention.problems if attention else []
    body = {"status": ("degraded" if problems else "ok") if ok else
                      "stopping" if service.stopping else "unhealthy",
            "database": {"ok": db_error is None, "error": db_error},
            "scheduler": {"running": running, "ticks_in_flight": service.runner.in_flight},
            "campaigns": campaigns,
            "problems": problems}
    if attention is not None:
        body["attention"] = attention.to_dict()
    return (200 if ok else 503), body


async def probe_database(service: Service) -> str | None:
    """None when `SELECT 1` answers in time; else the error's kind (details go to the log only)."""
    try:
        return await asyncio.wait_for(asyncio.to_thread(database_problem, service.app),
                                      timeout=DB_PROBE_TIMEOUT)
    except TimeoutError:
        log.warning("health: the database did not answer within %.0f s", DB_PROBE_TIMEOUT)
        return "timeout"


async def probe_attention(service: Service) -> reports.Attention | None:
    """Stuck builds and SMTP pauses, or None when the database cannot say in time."""
    try:
        return await asyncio.wait_for(asyncio.to_thread(reports.attention, service.app,
                                                        now=service.runner.clock.now()),
                                      timeout=DB_PROBE_TIMEOUT)
    except Exception:  # the database probe reports the reason; health must answer regardless
        log.warning("health: could not read stuck deliveries and SMTP pauses", exc_info=True)
        return None


def create_asgi_app(service: Service) -> Starlette:
    async def healthz(request: Request) -> JSONResponse:
        db_error = await probe_database(service)
        attention = await probe_attention(service) if db_error is None else None
        status, body = health_report(service, db_error, attention)
        return JSONResponse(body, status_code=status)

    routes: list[BaseRoute] = [Route("/healthz", healthz)]
    admin = web_admin(service.app)
    if admin is not None:
        routes.append(Mount("/", app=admin))

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        # A mounted app's own start-up and shutdown (the admin's: its jobs' temporary files) run
        # only when the outer app runs them.
        if admin is None:
            yield
            return
        async with admin.router.lifespan_context(admin):
            yield

    return Starlette(routes=routes, lifespan=lifespan)


def web_admin(app: App) -> Any | None:
    """delivery.web's admin app when that module exists (a broken one still fails loudly)."""
    try:
        module = importlib.import_module("delivery.web")
    except ModuleNotFoundError as exc:
        if exc.name != "delivery.web":
            raise
        module = None
    factory = getattr(module, "create_web_app", None)
    if factory is None:
        log.info("no web admin (delivery.web.create_web_app is missing): serving /healthz only")
        return None
    return factory(app)


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers: `run_service` decides when it stops."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound before anything starts, so a taken port fails at once, and
    listening at once: a request that comes before the web server accepts (right after
    "serving on") waits in the backlog instead of being refused."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise DeliveryError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    sock.listen(2048)  # uvicorn's own backlog
    sock.set_inheritable(True)
    return sock


async def run_service(app: App, campaigns: Sequence[Campaign], sock: socket.socket, *, clock: Clock,
                      deadline: float, every: timedelta | None = None,
                      hard_exit: Callable[[int], None] = os._exit) -> int:
    host, port = sock.getsockname()[:2] if sock.fileno() >= 0 else ("?", 0)
    runner = TickRunner(app, clock)
    scheduler = build_scheduler(campaigns, runner.run, every=every)
    if every is None:  # a campaign's own check_every, changed in the web admin: its job follows
        runner.on_new_interval = lambda campaign: add_tick_job(
            scheduler, campaign, runner.run, first_run=datetime.now(UTC) + campaign.schedule.check_every)
    service = Service(app, runner, scheduler)
    # proxy_headers off: uvicorn would otherwise take X-Forwarded-For/-Proto from any loopback
    # peer; the web admin's middleware reads them from DELIVERY_TRUSTED_PROXIES only.
    server = _Server(uvicorn.Config(create_asgi_app(service), log_config=None, lifespan="auto",
                                    timeout_graceful_shutdown=5, proxy_headers=False,
                                    forwarded_allow_ips=[]))
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def on_signal(sig: signal.Signals) -> None:
        if stop.is_set():  # a second signal: stop builds now rather than near the deadline
            runner.abort.set()
            log.warning("%s received again: stopping builds in flight now", sig.name)
            return
        log.info("%s received: stopping", sig.name, extra={"signal": sig.name})
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    scheduler.start()
    http = asyncio.create_task(_serve_http(server, sock))
    log.info("serving on http://%s:%d (%d campaign(s), shutdown deadline %.0f s)", host, port,
             len(campaigns), deadline, extra={"port": port, "worker": app.worker_id})
    waiter = asyncio.create_task(stop.wait())
    await asyncio.wait({http, waiter}, return_when=asyncio.FIRST_COMPLETED)
    http_failed = http.done() and not stop.is_set()
    if http_failed:
        log.error("the web server stopped on its own: stopping the service")

    service.stopping = True
    scheduler.pause()
    runner.closed = True
    clean = await runner.drain(deadline)
    if clean:
        scheduler.shutdown(wait=False)  # (it cancels the tasks of ticks still running)
    else:
        released = deliveries.release_own_leases(app, now=clock.now())
        log.error("shutdown deadline passed with %d tick(s) still running: %d lease(s) expired for "
                  "another instance to take over", runner.in_flight, released)
    server.should_exit = True
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(http, timeout=10)
    waiter.cancel()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.remove_signal_handler(sig)
    if not clean:
        # A stuck worker thread would block the interpreter's exit: leave at once.
        logging.shutdown()
        hard_exit(1)
        return 1
    if http_failed:
        return 1
    log.info("stopped cleanly")
    return 0


async def _serve_http(server: uvicorn.Server, sock: socket.socket) -> None:
    try:
        await server.serve(sockets=[sock])
    except SystemExit as exc:  # uvicorn exits this way when its startup fails
        log.error("the web server could not start (uvicorn exit %s)", exc.code)
    except OSError as exc:
        log.error("the web server could not start: %s", exc.strerror or exc)


def _console(text: str) -> None:
    print(text, flush=True)


def announce_setup(app: App, sock: socket.socket,
                   out: Callable[[str], None] | None = _console) -> str | None:
    """While no account exists: a new one-time setup link, on the console (`out`; None: the log
    alone, as with JSON logs, where every line must be one record) and in the log → the link, or
    None once an account exists."""
    # The web admin checks a link's expiry on the system clock, not DELIVERY_CLOCK_FILE's.
    token = accounts.issue_setup_token(app, now=datetime.now(UTC), actor="serve")
    if token is None:
        return None
    host, port = sock.getsockname()[:2]
    if host in ("0.0.0.0", "::"):  # noqa: S104 - listening everywhere: this machine answers too
        host = "127.0.0.1" if host == "0.0.0.0" else "::1"  # noqa: S104
    shown = f"[{host}]" if ":" in host else host
    base = app.settings.public_url or f"http://{shown}:{port}"
    link = f"{base.rstrip('/')}/setup?token={token}"
    valid = int(accounts.SETUP_VALID.total_seconds() // 60)
    if out is not None:
        out(f"No account exists yet. Open this link within {valid} minutes to create the owner's account "
            f"(it works once):\n  {link}")
    log.warning("no account exists yet: create the owner's account within %d minutes at %s", valid, link)
    return link


def serve(app: App, *, host: str, port: int, log_format: str, campaign: str | None = None) -> int:
    """`petition-delivery serve`: the clock, the stop deadline and a tick interval for every
    campaign come from the app's Settings."""
    settings = app.settings
    configure_logging(log_format, level=settings.log_level)
    clock = clock_for(settings.clock_file)
    deadline = settings.shutdown_deadline
    every = settings.check_every
    campaigns = [app.campaign(campaign)] if campaign else list(app.campaigns.values())
    check_ready(app, campaigns)
    sock = bind(host, port)
    announce_setup(app, sock, out=None if log_format == "json" else _console)
    try:
        return asyncio.run(run_service(app, campaigns, sock, clock=clock, deadline=deadline, every=every))
    finally:
        sock.close()
