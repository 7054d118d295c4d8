"""Nothing → a whole campaign run on the embedded default: SQLite, sample signers, milestones
crossed, dossiers built, signed and written to a local outbox, with a summary of where they are.

The demo runs the real service tick with a simulated clock (office hours in Yerevan, the
campaign's hold respected), so what it shows is what `serve` would do over a day and a half.
"""

from __future__ import annotations

import json
import shutil
import sys
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from delivery.bundle.sign import ensure_demo_identity
from delivery.cli.progress import ProgressBar
from delivery.services import deliveries, reports, signers
from delivery.services.app import App, init, open_app
from delivery.services.reports import DeliveryReport
from delivery.settings import load_settings
from delivery.signers.intake import validate_signer
from delivery.signers.samples import sample_rows


def demo_clock(real_now: datetime, timezone: str) -> datetime:
    """The most recent past weekday at 10:00 in the campaign's zone, at least a day back."""
    zone = ZoneInfo(timezone)
    day = (real_now.astimezone(zone) - timedelta(days=2)).date()
    while day.weekday() >= 4:  # start Mon–Thu so that day 2 is a weekday too
        day -= timedelta(days=1)
    return datetime.combine(day, time(10, 0), zone).astimezone(UTC)


def run_demo(folder: Path, *, signers: int = 5500, json_output: bool = False) -> int:
    folder = folder.resolve()
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    real_now = datetime.now(UTC)
    campaign_zone = "Asia/Yerevan"
    # Valid from before the simulated clock starts, so the demo's back-dated ticks can sign.
    key, cert = ensure_demo_identity(folder.parent / "demo-signing", "Petition dossier demo (self-signed)",
                                     now=demo_clock(real_now, campaign_zone) - timedelta(days=1))
    env = {
        "DELIVERY_HOME": str(Path.cwd()),
        "DELIVERY_VAR_DIR": str(folder),
        "DELIVERY_DATABASE_URL": f"sqlite:///{folder / 'delivery.sqlite3'}",
        "DELIVERY_OUTBOX_DIR": str(folder / "outbox"),
        "DELIVERY_SIGNING_KEY": str(key),
        "DELIVERY_SIGNING_CERT": str(cert),
    }
    app = open_app(load_settings(env))
    try:
        return _run(app, folder, cert, signers, real_now, json_output)
    finally:
        app.close()


def _run(app: App, folder: Path, cert: Path, signers: int, real_now: datetime, json_output: bool) -> int:
    init(app)
    campaign = app.campaign(None)
    t0 = demo_clock(real_now, campaign.schedule.timezone)
    rows = list(sample_rows(signers, end=t0 - timedelta(hours=1)))
    first_batch = min(len(rows), campaign.thresholds[0] + 200)
    say = (lambda _m: None) if json_output else print
    say(f"demo: {campaign.title}; {len(rows):,} sample signers; signing certificate {cert} "
        "(self-signed, made for the demo: recipients cannot trust it, see README 'Signing')")
    steps = [(rows[:first_batch], t0), (rows[first_batch:], t0 + timedelta(days=1))]
    for batch, when in steps:
        _add(app, batch, when)
        for at in (when, when + campaign.schedule.hold + timedelta(minutes=1)):
            with ProgressBar("rendering volumes", enabled=not json_output) as bar:
                report = deliveries.tick(app, campaign, now=at, progress=bar.update)
            say(f"tick at {at.astimezone(ZoneInfo(campaign.schedule.timezone)):%a %Y-%m-%d %H:%M %Z}: "
                f"{report.signer_count:,} signers; milestones {report.milestones or '-'}; "
                f"created {report.created or '-'}; built {report.built or '-'}; "
                f"sent {report.send.get('sent', 0)}")
    data = reports.deliveries(app, campaign, now=datetime.now(UTC))
    reports.export_files(app, campaign, folder / "dossiers")
    outbox = sorted((folder / "outbox").glob("*.eml"))
    summary = {"folder": str(folder), "outbox": [str(p) for p in outbox],
               "deliveries": [d.to_dict() for d in data],
               "certificate": str(cert), "self_signed": True}
    if json_output:
        print(json.dumps(summary, indent=2, ensure_ascii=False))
    else:
        _print_summary(folder, data, outbox, cert)
    failed = [d for d in data if d.status != "done"]
    return 1 if failed or not outbox else 0


def _add(app: App, rows: list[dict[str, object]], now: datetime) -> None:
    batch = [validate_signer(r, now=now, source="demo") for r in rows]
    signers.add_many(app, app.campaign(None), batch, now=now, actor="demo")


def _print_summary(folder: Path, data: list[DeliveryReport], outbox: list[Path], cert: Path) -> None:
    print(f"\n{'delivery':<20} {'trigger':<17} {'signers':>7}  {'status':<7} recipients")
    for d in data:
        sent = sum(1 for m in d.dossier_messages if m.status == "sent")
        print(f"{d.id:<20} {'milestone ' + format(d.milestone or 0, ','):<17} {d.signer_count:>7,}  "
              f"{d.status:<7} {sent} sent")
        for f in d.files:
            pages = f"{f.pages:>5} pages" if f.pages else ""
            print(f"    {f.name:<44} {f.size:>10,} bytes {pages}")
    print(f"\ndossier files (as attached to the e-mails): {folder / 'dossiers'}")
    print(f"\ne-mails in the outbox ({len(outbox)}):")
    for p in outbox:
        print(f"    {p}")
    command = Path(sys.executable).with_name("petition-delivery")
    print(f"\nopen one with any mail program, or check it as a recipient would:\n"
          f"    {command if command.exists() else 'petition-delivery'} verify --trust {cert} {outbox[0]}"
          if outbox else "\nno e-mail was written: see the deliveries above")
