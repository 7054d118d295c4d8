"""Signers stored in the database → the delivery as `serve` and the CLI run it: tick, preview, dry run.

    .venv/bin/python bench/delivery.py [--signers 80000] [--more 1000,10000] [--no-reference]

The shipped campaign, both its editions (English and Armenian), with its milestones moved to
--signers and to each --more step after it, no hold, and a clock inside its send window. For each
step the synthetic signers of bench/dossier.py (many scripts) are stored through the service, then
measured:

- the tick `serve` runs (`deliveries.tick`, in this process): the milestone found, the delivery
  built (compose → each edition's volumes and front → join → sign → manifest), its e-mails made
  and queued, then written to the outbox folder (no SMTP server: nothing is sent);
- `petition-delivery preview --out DIR` and `petition-delivery send --dry-run`, run as commands,
  process start included; after the cold step, `status` and `--help` too (the median of 7 runs).

The tick and the commands each keep their own volume cache. Both start empty, and the database's
volume facts are cleared before each cold build; the later steps find what the step before left,
as the next milestone does. Printed: wall time, CPU time and peak memory (RSS summed over the
process tree, workers included, sampled from /proc), pages and bytes of the PDFs; for the tick,
its time per phase and per rendered document; and (unless --no-reference) bench/dossier.py's
naive single-table layout of 20,000 signers, with ratios against it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING

import _paths

if TYPE_CHECKING:
    from _measure import Result

    from delivery.campaigns.config import Campaign
    from delivery.services.app import App

# Render workers run this file's top level again (multiprocessing's forkserver): it imports
# nothing more, the work's modules are imported where they are used.
REPO = _paths.FOLDER.parent

CAMPAIGN = REPO / "schedules" / "salman-mukaev.toml"
BATCH = 20_000
STEP = timedelta(minutes=10)  # between one tick and the next


@dataclass
class Row:
    result: Result
    details: list[str] = field(default_factory=list)


def campaign_file(text: str, thresholds: list[int]) -> str:
    """The shipped campaign with a milestone at each of `thresholds`, delivered without a hold."""
    text, found = re.subn(r"(?m)^thresholds = \[.*\]$",
                          f"thresholds = [{', '.join(map(str, thresholds))}]", text)
    text, held = re.subn(r'(?m)^hold = "[^"]*"', 'hold = "0s"', text)
    if (found, held) != (1, 1):
        raise SystemExit(f"{CAMPAIGN}: no single `thresholds` and `hold` line to set")
    return text


def fill(app: App, campaign: Campaign, stored: int, n: int, *, now: datetime) -> int:
    """Store synthetic signers through the service until there are n (the same first ones for any n)."""
    from dossier import synthetic_signers

    from delivery.services import signers
    from delivery.signers.intake import SignerInput

    stream = islice(synthetic_signers(n), stored, None)
    while batch := list(islice(stream, BATCH)):
        signers.add_many(app, campaign, [
            SignerInput(f"{stored + i:064x}", s.name, s.city, s.country, s.signed_at, s.consent, "bench")
            for i, s in enumerate(batch)], now=now, actor="bench")
        stored += len(batch)
    return stored


def forget_volume_facts(app: App, campaign: Campaign) -> None:
    """What the database knows of each volume, gone: the next build reads every signer again."""
    from sqlalchemy import delete

    from delivery.storage.db import transaction
    from delivery.storage.models import VolumeFactsRow

    with transaction(app.engine) as session:
        session.execute(delete(VolumeFactsRow).where(
            VolumeFactsRow.campaign_id == app.campaign_id(session, campaign)))


def measure_tick(app: App, campaign: Campaign, label: str, *, now: datetime) -> Row:
    from _measure import measured
    from _phases import PHASES, Phases

    from delivery.services import deliveries, reports

    phases = Phases()
    sink: list[Result] = []
    with measured(label, sink) as record, phases.timing():
        t0 = time.perf_counter()
        report = deliveries.tick(app, campaign, now=now, progress=phases.progress)
        seconds = time.perf_counter() - t0
        record(phases.pages, phases.size)
    if report.build_failures or len(report.built) != 1 or not report.send.get("sent"):
        problems = [reports.delivery(app, campaign, d, now=now) for d in report.build_failures]
        raise SystemExit(f"{label}: the tick did not build and send one delivery: {report.to_dict()} "
                         + "; ".join(p.error or "" for p in problems if p))
    split = phases.split(seconds)
    return Row(sink[0], [
        "  phases  " + " · ".join(f"{name} {split[name]:.2f} s" for name in PHASES),
        "  drawn   " + phases.drawn_line()])


def measure_command(label: str, command: list[str], *, env: dict[str, str], cwd: Path) -> Row:
    from _measure import measured_command

    result, finished = measured_command(label, command, env=env, cwd=cwd)
    if finished.code != 0:
        raise SystemExit(f"{label}: exit {finished.code}\n{finished.stderr}")
    return Row(result)


def measure_quick(label: str, command: list[str], *, env: dict[str, str], cwd: Path,
                  runs: int = 7) -> Row:
    """A command that takes a fraction of a second, run `runs` times: the run of median wall
    time (one run is mostly the noise of the machine)."""
    results = sorted((measure_command(label, command, env=env, cwd=cwd).result for _ in range(runs)),
                     key=lambda r: r.wall)
    row = Row(results[len(results) // 2])
    row.result.label = f"{label} (median of {runs})"
    return row


def measure_preview(label: str, command: list[str], out: Path, *, env: dict[str, str],
                    cwd: Path) -> Row:
    row = measure_command(label, [*command, "preview", "--out", str(out)], env=env, cwd=cwd)
    files = json.loads((out / "manifest.json").read_text(encoding="utf-8"))["files"]
    row.result.pages = sum(f["pages"] for f in files)
    row.result.size = sum(f["size"] for f in files)
    shutil.rmtree(out)
    return row


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--signers", type=int, default=80_000, help="signers at the first (cold) step")
    parser.add_argument("--more", default="1000,10000",
                        help="signers added before each later step, comma-separated (default 1000,10000)")
    parser.add_argument("--reference", action=argparse.BooleanOptionalAction, default=True,
                        help="also render bench/dossier.py's naive single-table layout of 20,000 "
                             "signers (default; --no-reference skips it)")
    parser.add_argument("--folder", type=Path, default=None,
                        help="keep the database, the campaign file, the caches and the signing key "
                             "in this new or empty folder, to run other commands against them "
                             "afterwards (default: a temporary folder, removed at the end)")
    args = parser.parse_args()
    try:
        more = [int(m) for m in args.more.split(",") if m.strip()]
    except ValueError:
        parser.error(f"--more {args.more}: whole numbers, comma-separated (1000,10000)")
    if args.signers < 1 or any(m < 1 for m in more):
        parser.error("--signers and every --more step must be positive")
    counts = [args.signers]
    for m in more:
        counts.append(counts[-1] + m)

    from dossier import measure_reference

    from delivery.bundle.sign import ensure_demo_identity
    from delivery.cli.demo import demo_clock
    from delivery.services.app import init, open_app
    from delivery.settings import load_settings

    command = ([str(Path(sys.executable).with_name("petition-delivery"))]
               if Path(sys.executable).with_name("petition-delivery").exists()
               else [sys.executable, "-m", "delivery"])
    rows: list[Row] = []
    with ExitStack() as stack:
        if args.folder is None:
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="delivery-bench-")))
        elif args.folder.exists() and any(args.folder.iterdir()):
            parser.error(f"--folder {args.folder}: not empty")
        else:
            tmp = args.folder.resolve()
            tmp.mkdir(parents=True, exist_ok=True)
        home = tmp / "home"
        (home / "schedules").mkdir(parents=True)
        (home / "templates").symlink_to(REPO / "templates")
        (home / "schedules" / CAMPAIGN.name).write_text(
            campaign_file(CAMPAIGN.read_text(encoding="utf-8"), counts), encoding="utf-8")
        clock = demo_clock(datetime.now(UTC), "Asia/Yerevan")  # a weekday, 10:00 in Yerevan
        key, cert = ensure_demo_identity(tmp, "Petition dossier benchmark (self-signed)",
                                         now=clock - timedelta(days=1))
        shared = {"DELIVERY_HOME": str(home),
                  "DELIVERY_DATABASE_URL": f"sqlite:///{tmp / 'delivery.sqlite3'}",
                  "DELIVERY_SIGNER_KEY_FILE": str(tmp / "signer-key"),
                  "DELIVERY_SIGNING_KEY": str(key), "DELIVERY_SIGNING_CERT": str(cert)}
        serve_env = shared | {"DELIVERY_VAR_DIR": str(tmp / "serve"),
                              "DELIVERY_OUTBOX_DIR": str(tmp / "serve" / "outbox")}
        cli_env = {k: v for k, v in os.environ.items() if not k.startswith("DELIVERY_")} | shared | {
            "DELIVERY_VAR_DIR": str(tmp / "cli"), "DELIVERY_OUTBOX_DIR": str(tmp / "cli" / "outbox")}
        for folder in ("serve", "cli"):
            (tmp / folder).mkdir()
        if args.folder is not None:
            (tmp / "env").write_text("".join(f"{k}={v}\n" for k, v in (serve_env).items()),
                                     encoding="utf-8")
            say(f"the database and the caches stay in {tmp}; `set -a; . {tmp / 'env'}` sets the "
                "variables `serve` ran with")

        app = open_app(load_settings(serve_env))
        try:
            init(app)
            campaign = app.campaign(None)
            editions = ",".join(dict.fromkeys(r.language for r in campaign.recipients))
            stored = 0
            for step, count in enumerate(counts):
                now = clock + step * STEP
                t0 = time.perf_counter()
                stored = fill(app, campaign, stored, count, now=now - timedelta(minutes=1))
                say(f"{count:,} signers stored ({time.perf_counter() - t0:.1f} s)")
                if step == 0:
                    name = f"cold {count:,}"
                    labels = (f"tick {name} ({editions})", f"preview {name}")
                    forget_volume_facts(app, campaign)
                else:
                    name = f"+{more[step - 1]:,} → {count:,}"
                    labels = (f"tick {name}", f"preview {name}")
                rows.append(measure_tick(app, campaign, labels[0], now=now))
                say(rows[-1].result.line(None))
                if step == 0:
                    forget_volume_facts(app, campaign)
                rows.append(measure_preview(labels[1], command, tmp / "previews" / str(step),
                                            env=cli_env, cwd=tmp))
                say(rows[-1].result.line(None))
                rows.append(measure_command(f"send --dry-run {count:,}", [*command, "send", "--dry-run"],
                                            env=cli_env, cwd=tmp))
                say(rows[-1].result.line(None))
                if step == 0:
                    for label, words in ((f"status {count:,}", ["status"]), ("--help", ["--help"])):
                        rows.append(measure_quick(label, [*command, *words], env=cli_env, cwd=tmp))
                        say(rows[-1].result.line(None))
                # The e-mails written by the tick: only the disk would keep them.
                shutil.rmtree(tmp / "serve" / "outbox", ignore_errors=True)
        finally:
            app.close()

    reference = None
    if args.reference:
        say("rendering the reference (minutes)")
        references: list[Result] = []
        reference = measure_reference(references)
    for row in rows:
        print(row.result.line(reference))
        for line in row.details:
            print(line)
    if reference:
        print(reference.line(None))


if __name__ == "__main__":
    main()
