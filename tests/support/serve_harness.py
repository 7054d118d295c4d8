"""`petition-delivery serve` as a child process for tests: its home folder, a clock file it reads,
its JSON log, and a kill that always happens."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
from sqlalchemy import Engine, create_engine, select, text

from delivery.runtime.clock import write_clock
from delivery.services.app import init, open_app
from delivery.settings import load_settings
from delivery.signers.intake import validate_signer
from delivery.signers.store import add_signers
from delivery.storage.db import make_engine, transaction
from delivery.storage.models import CampaignRow, DeliveryRow, MessageRow
from tests.support.keys import TEST_KEYS

REPO = Path(__file__).resolve().parents[2]
BIN = REPO / ".venv" / "bin" / "petition-delivery"
SLUG = "serve-test"
RECIPIENTS = ("prime-minister@example.org", "migration-service@example.org")
# Wednesday 25 November 2026, 12:00 in Yerevan (UTC+4): inside "Mon-Fri 09:00-18:00".
WED_NOON = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
T = TypeVar("T")

CAMPAIGN = """\
[campaign]
slug = "{slug}"
title = "Serve test petition"
goal = 100
letter = "letters/salman-mukaev"
sender = "Test campaign <campaign@example.org>"
organizers = ["organizers@example.org"]
signing = "off"

[[recipients]]
name = "Nikol Pashinyan"
title = "Prime Minister of the Republic of Armenia"
email = "{r0}"
language = "en"

[[recipients]]
name = "Migration Service of Armenia"
email = "{r1}"
language = "{l1}"

[milestones]
thresholds = {thresholds}

[schedule]
check_every = "{check_every}"
timezone = "Asia/Yerevan"
send_window = "{window}"
hold = "{hold}"
"""


def make_home(root: Path, *, thresholds: Sequence[int], hold: str = "0s", window: str = "",
              check_every: str = "10s", second_language: str = "hy") -> Path:
    """A DELIVERY_HOME with one test campaign and the repository's templates."""
    (root / "schedules").mkdir(parents=True)
    (root / "templates").symlink_to(REPO / "templates")
    (root / "schedules" / f"{SLUG}.toml").write_text(CAMPAIGN.format(
        slug=SLUG, r0=RECIPIENTS[0], r1=RECIPIENTS[1], l1=second_language, thresholds=list(thresholds),
        hold=hold, window=window, check_every=check_every), encoding="utf-8")
    return root


@contextmanager
def fresh_database(admin_url: str) -> Iterator[str]:
    """A PostgreSQL database of this test's own, dropped afterwards."""
    name = f"petition_delivery_serve_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def service_env(home: Path, database_url: str, clock_file: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DELIVERY_")}
    env.update(DELIVERY_HOME=str(home), DELIVERY_DATABASE_URL=database_url,
               DELIVERY_VAR_DIR=str(home / "var"), DELIVERY_CLOCK_FILE=str(clock_file),
               DELIVERY_CHECK_EVERY="1s", DELIVERY_SHUTDOWN_DEADLINE="20")
    env.update(extra)
    return env


def init_database(env: dict[str, str]) -> Engine:
    app = open_app(load_settings(env))
    try:
        init(app)
    finally:
        app.close()
    return make_engine(env["DELIVERY_DATABASE_URL"])


def sign(engine: Engine, first: int, count: int, *, now: datetime, name: str = "Signer") -> None:
    """Signers number `first`..`first+count-1`, named `{name} {n}`, mailed signer{n}@example.net
    (keyed with the tests' fixed key, not the installation's: these tests never look one up)."""
    signers = [validate_signer({"name": f"{name} {n}", "email": f"signer{n}@example.net", "city": "Yerevan",
                                "country": "Armenia", "consent": True}, now=now, source="test")
               for n in range(first, first + count)]
    with transaction(engine) as session:
        campaign_id = session.scalar(select(CampaignRow.id).where(CampaignRow.slug == SLUG))
        assert campaign_id is not None
        add_signers(session, campaign_id, signers, now=now, keys=TEST_KEYS)


def deliveries(engine: Engine) -> list[DeliveryRow]:
    with transaction(engine) as session:
        return list(session.scalars(select(DeliveryRow).order_by(DeliveryRow.id)))


def messages(engine: Engine) -> list[MessageRow]:
    with transaction(engine) as session:
        return list(session.scalars(select(MessageRow).order_by(MessageRow.id)))


def wait_for(check: Callable[[], T | None], *, timeout: float, what: str, every: float = 0.05) -> T:
    end = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


class Serve:
    """One `serve` child in its own process group, logging JSON to a file."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen([str(BIN), "serve", "--host", "127.0.0.1", "--port", "0",
                                      "--log-format", "json"], env=env, stdout=self._log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        self.port = 0

    def records(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log_path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                out.append({"message": line, "level": "RAW"})
        return out

    def wait_ready(self, timeout: float = 30) -> int:
        def ready() -> int | None:
            if self.proc.poll() is not None:
                raise AssertionError(f"serve exited with {self.proc.returncode}:\n{self.log_text()}")
            return next((r["port"] for r in self.records() if "port" in r
                         and str(r.get("message", "")).startswith("serving on")), None)

        self.port = wait_for(ready, timeout=timeout, what="serve to listen")
        return self.port

    def ticks(self) -> int:
        return sum(1 for r in self.records() if str(r.get("message", "")).startswith("tick "))

    def wait_ticks(self, more: int, timeout: float = 20) -> None:
        target = self.ticks() + more
        wait_for(lambda: self.ticks() >= target, timeout=timeout, what=f"{more} more tick(s)")

    def health(self) -> tuple[int, dict[str, Any]]:
        response = httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=10)
        return response.status_code, response.json()

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def signal(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    def kill(self) -> None:
        """SIGKILL the whole process group (the service and any render workers), as a crash would."""
        with suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout=timeout)

    def close(self) -> None:
        try:
            self.kill()
        finally:
            self._log.close()


@contextmanager
def serving(env: dict[str, str], log_path: Path) -> Iterator[Serve]:
    child = Serve(env, log_path)
    try:
        child.wait_ready()
        yield child
    finally:
        child.close()


def set_clock(path: Path, at: datetime) -> None:
    write_clock(path, at)
