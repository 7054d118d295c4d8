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
from datetime import timedelta
from typing import Any

import uvicorn
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.schedulers.base import STATE_RUNNING
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Mount, Route

from delivery.campaigns.config import Campaign
from delivery.errors import ConfigError, DeliveryError, UsageError
from delivery.runtime.clock import Clock, clock_from_env
from delivery.runtime.logs import configure_logging, safe_error
from delivery.runtime.scheduler import (
    TickRunner,
    build_scheduler,
    check_every_override,
    job_id,
    release_own_leases,
)
from delivery.services.app import App
from delivery.storage.db import schema_revisions, transaction

log = logging.getLogger("delivery.runtime.serve")
DEADLINE_ENV = "DELIVERY_SHUTDOWN_DEADLINE"
DEFAULT_DEADLINE = 30.0
DB_PROBE_TIMEOUT = 5.0


def shutdown_deadline(env: dict[str, str] | None = None) -> float:
    """Seconds a stop may take (DELIVERY_SHUTDOWN_DEADLINE, default 30)."""
    raw = (os.environ if env is None else env).get(DEADLINE_ENV) or str(DEFAULT_DEADLINE)
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value <= 3600:
        raise ConfigError("environment", DEADLINE_ENV, f"'{raw}' is not a number of seconds (0-3600]")
    return value


@dataclass
class Service:
    """What `/healthz` reports on."""

    app: App
    runner: TickRunner
    scheduler: AsyncIOScheduler
    stopping: bool = False


def health_report(service: Service, db_error: str | None) -> tuple[int, dict[str, Any]]:
    """200 when the database answers, the scheduler runs and no stop is under way; else 503."""
    running = service.scheduler.state == STATE_RUNNING
    campaigns = {}
    for slug, health in service.runner.health.items():
        job = service.scheduler.get_job(job_id(slug))
        next_run = getattr(job, "next_run_time", None) if job else None
        campaigns[slug] = {**health.to_dict(),
                           "next_tick": next_run.isoformat(timespec="seconds") if next_run else None}
    ok = db_error is None and running and not service.stopping
    body = {"status": "ok" if ok else "stopping" if service.stopping else "unhealthy",
            "database": {"ok": db_error is None, "error": db_error},
            "scheduler": {"running": running, "ticks_in_flight": service.runner.in_flight},
            "campaigns": campaigns}
    return (200 if ok else 503), body


async def probe_database(service: Service) -> str | None:
    """None when `SELECT 1` answers in time; else the error's kind (details go to the log only)."""
    def probe() -> None:
        with service.app.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    try:
        await asyncio.wait_for(asyncio.to_thread(probe), timeout=DB_PROBE_TIMEOUT)
    except TimeoutError:
        log.warning("health: the database did not answer within %.0f s", DB_PROBE_TIMEOUT)
        return "timeout"
    except SQLAlchemyError as exc:
        log.warning("health: the database is unreachable: %s", safe_error(exc))
        return type(exc).__name__
    return None


def create_asgi_app(service: Service) -> Starlette:
    async def healthz(request: Request) -> JSONResponse:
        status, body = health_report(service, await probe_database(service))
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
    """The listening socket, bound before anything starts, so a taken port fails at once."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise DeliveryError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    sock.set_inheritable(True)
    return sock


async def run_service(app: App, campaigns: Sequence[Campaign], sock: socket.socket, *, clock: Clock,
                      deadline: float, every: timedelta | None = None,
                      hard_exit: Callable[[int], None] = os._exit) -> int:
    host, port = sock.getsockname()[:2] if sock.fileno() >= 0 else ("?", 0)
    runner = TickRunner(app, clock)
    scheduler = build_scheduler(campaigns, runner.run, every=every)
    service = Service(app, runner, scheduler)
    server = _Server(uvicorn.Config(create_asgi_app(service), log_config=None, lifespan="auto",
                                    timeout_graceful_shutdown=5))
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
        released = release_own_leases(app, now=clock.now())
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


def serve(app: App, *, host: str, port: int, log_format: str, campaign: str | None = None) -> int:
    """`petition-delivery serve`. Environment: DELIVERY_CLOCK_FILE (a test clock),
    DELIVERY_SHUTDOWN_DEADLINE (seconds), DELIVERY_CHECK_EVERY (one interval for all campaigns)."""
    configure_logging(log_format)
    clock = clock_from_env()
    deadline = shutdown_deadline()
    every = check_every_override()
    campaigns = [app.campaign(campaign)] if campaign else list(app.campaigns.values())
    try:
        current, newest = schema_revisions(app.engine)
        if current != newest:
            raise UsageError(f"the database schema is at revision {current or '(none)'} and this "
                             f"version needs {newest}: run `petition-delivery init` to upgrade it")
        with transaction(app.engine) as session:
            for c in campaigns:
                app.campaign_id(session, c)  # registered by `init`, or a clear UsageError now
    except SQLAlchemyError as exc:
        raise DeliveryError(f"the database is unreachable or not initialised (run `petition-delivery "
                            f"init`): {safe_error(exc)}") from exc
    sock = bind(host, port)
    try:
        return asyncio.run(run_service(app, campaigns, sock, clock=clock, deadline=deadline, every=every))
    finally:
        sock.close()
