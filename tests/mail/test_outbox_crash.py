"""outbox under process death and concurrency: worker processes SIGKILLed at the worst moments,
and two workers racing over one database. Nothing is lost; nothing is sent twice except the one
case that cannot be told apart (the server said 250, we died before recording it), and that
resend carries the same bytes and Message-ID and is counted."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import selectinload

from delivery.storage.db import transaction
from delivery.storage.models import MessageRow
from tests.support.outbox_driver import T0, make_delivery, queue, run, settings_for
from tests.support.smtp_faults import faulty_server

REPO = Path(__file__).resolve().parents[2]
LEASE = timedelta(minutes=10)
PM = "prime-minister@example.org"


def driver(engine: Engine, port: int, tmp: Path, *, now: datetime, worker: str,
           crash_at: str | None = None, until_empty: bool = False) -> subprocess.Popen[str]:
    args = {"url": engine.url.render_as_string(hide_password=False), "port": port, "tmp": str(tmp),
            "now": now.isoformat(), "worker": worker, "crash_at": crash_at,
            "until_empty": until_empty, "limit": 1000}
    return subprocess.Popen([sys.executable, "-m", "tests.support.outbox_driver", json.dumps(args)],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def the_row(engine: Engine) -> MessageRow:
    with transaction(engine) as session:
        [row] = session.scalars(select(MessageRow).options(selectinload(MessageRow.body)))
        return row


@pytest.mark.parametrize("crash_at", ["claimed", "answered"])
def test_sigkill_then_restart(engine: Engine, tmp_path: Path, crash_at: str) -> None:
    queue(engine, make_delivery(engine), [PM])
    with faulty_server() as server:
        proc = driver(engine, server.port, tmp_path, now=T0, worker="doomed", crash_at=crash_at)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL, err
        row = the_row(engine)
        assert (row.status, row.attempts) == ("sending", 1)  # claimed, outcome never recorded
        assert len(server.received) == (1 if crash_at == "answered" else 0)

        settings = settings_for(tmp_path, server.port)
        early = asyncio.run(run(engine, settings, now=T0 + LEASE / 2, worker="restarted"))
        assert early.sent == 0  # the lease still holds: nobody else touches it
        report = asyncio.run(run(engine, settings, now=T0 + LEASE, worker="restarted"))
    assert (report.sent, report.crash_resends) == (1, 1)
    row = the_row(engine)
    assert (row.status, row.attempts, row.crash_resends) == ("sent", 2, 1)
    copies = server.received
    if crash_at == "claimed":
        assert len(copies) == 1  # it had not gone out: sent once
    else:
        assert len(copies) == 2  # the one unavoidable duplicate: same bytes, same Message-ID
        assert copies[0].data == copies[1].data == row.content
    assert {str(c.message["Message-ID"]) for c in copies} == {row.message_id}


def test_two_worker_processes_send_each_message_exactly_once(engine: Engine,
                                                             tmp_path: Path) -> None:
    recipients = [f"office-{n:03d}@example.org" for n in range(200)]
    queue(engine, make_delivery(engine), recipients)
    with faulty_server() as server:
        started = time.monotonic()
        procs = [driver(engine, server.port, tmp_path, now=T0, worker=f"w{n}", until_empty=True)
                 for n in (1, 2)]
        outputs = [p.communicate(timeout=120) for p in procs]
        elapsed = time.monotonic() - started
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
    reports = [json.loads(out) for out, _ in outputs]
    assert sum(r["sent"] for r in reports) == 200
    assert all(r["sent"] > 0 for r in reports), reports  # both really worked
    assert all(r["lease_lost"] == 0 and r["crash_resends"] == 0 for r in reports)
    per_recipient = Counter(rcpt for r in server.received for rcpt in r.rcpt_tos)
    assert per_recipient == Counter(recipients)  # each exactly once
    with transaction(engine) as session:
        assert set(session.scalars(select(MessageRow.status))) == {"sent"}
    print(f"200 messages, 2 workers, {engine.dialect.name}: {elapsed:.1f} s")
