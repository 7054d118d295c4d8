"""Row count + database kind → wall time, rows/s and peak RSS of `signers import` (a script).

    .venv/bin/python bench/intake.py --rows 1000000 --database sqlite|postgresql [--reimport]

Generates a CSV of signers in many scripts (Latin, Cyrillic, Armenian, Arabic, Persian with ZWNJ,
Devanagari, CJK, Greek, Georgian, emoji), mixed date forms and country codes/names, a few
duplicates and rejects, then imports it into a fresh database: a temporary SQLite file, or a
temporary PostgreSQL database created through DELIVERY_TEST_POSTGRES (default
postgresql+psycopg://postgres@127.0.0.1:5432/test) and dropped afterwards.
Peak RSS is the process's high-water mark (resource.getrusage), generation included. CPU time
is this process's only (the database server's work is not in it for PostgreSQL).
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import resource
import secrets
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import _paths  # noqa: F401 - before the package is imported
from sqlalchemy import create_engine, text

from delivery.signers.store import count_signers, import_csv
from delivery.storage.db import make_engine, transaction, upgrade_schema
from delivery.storage.keys import SignerKeys
from delivery.storage.models import CampaignRow

PG_ADMIN_URL = os.environ.get("DELIVERY_TEST_POSTGRES",
                              "postgresql+psycopg://postgres@127.0.0.1:5432/test")
GIVEN = ("Zoë", "Łukasz", "José", "Анна", "Дмитрий", "Արամ", "Անահիտ", "محمد", "فاطمة",
         "می\u200cنا", "आरव", "प्रिया", "伟", "美玲", "Γιώργος", "ნინო", "Seán", "Ayşe", "Alex 🏳️\u200d🌈")
FAMILY = ("Ørsted", "Kowalski", "García", "Иванова", "Петров", "Սարգսյան", "Պետրոսյան", "الحسن",
          "رضایی", "शर्मा", "王", "李", "Παπαδόπουλος", "ბერიძე", "Ó Briain", "Yılmaz", "O'Neil")
PLACES = (("Århus", "DK"), ("Yerevan", "ARM"), ("Gyumri", "Armenia"), ("Москва", "RU"),
          ("Paris", "France"), ("Tehran", "IR"), ("मुंबई", "IND"), ("北京", "CN"),
          ("Αθήνα", "gr"), ("თბილისი", "Georgia"), ("São Paulo", "BR"), ("Kraków", "Polska"))


def generate(path: Path, rows: int, now: datetime) -> None:
    rng = random.Random(2026)
    with path.open("w", encoding="utf-8", newline="") as stream:
        out = csv.writer(stream)
        out.writerow(["First Name", "Last Name", "E-mail", "City", "Country", "Zip",
                      "Signed On", "Consent"])
        for i in range(rows):
            when = now - timedelta(seconds=rng.randrange(90 * 86400))
            date = (when.isoformat() if i % 3 == 0 else when.strftime("%d/%m/%Y %H:%M")
                    if i % 3 == 1 else when.strftime("%d %b %Y"))
            city, country = PLACES[i % len(PLACES)]
            email = f"signer.{i}@example.org" if i % 500 else f"SIGNER.{i - 1}@Example.org"
            if i % 10007 == 0:
                email = "not-an-address"  # a reject
            out.writerow([rng.choice(GIVEN), rng.choice(FAMILY), email, city, country,
                          f"{rng.randrange(10000, 99999)}", date, "yes" if i % 20 else "no"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--reimport", action="store_true", help="import the same file again")
    args = parser.parse_args()
    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="bench-intake-") as tmp:
        csv_path = Path(tmp) / "signers.csv"
        started = time.perf_counter()
        generate(csv_path, args.rows, now)
        print(f"generated {args.rows:,} rows ({csv_path.stat().st_size / 1e6:.1f} MB) "
              f"in {time.perf_counter() - started:.1f} s")
        admin, db_name = None, ""
        if args.database == "sqlite":
            url = f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"
        else:
            db_name = f"bench_intake_{uuid.uuid4().hex[:8]}"
            admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{db_name}"'))
            url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{db_name}"
        engine = make_engine(url)
        keys = SignerKeys(secrets.token_bytes(32))  # each signer's key is an HMAC, as in the service
        try:
            upgrade_schema(engine)
            with transaction(engine) as session:
                campaign = CampaignRow(slug="bench", title="Bench", goal=80000, created_at=now)
                session.add(campaign)
                session.flush()
                campaign_id = campaign.id
            runs = 2 if args.reimport else 1
            for run in range(runs):
                started, cpu = time.perf_counter(), time.process_time()
                report = import_csv(engine, campaign_id, csv_path, now=now, keys=keys,
                                    batch_size=args.batch_size)
                wall, cpu = time.perf_counter() - started, time.process_time() - cpu
                peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                label = "re-import" if run else "import"
                print(f"{label} ({args.database}): {wall:.1f} s wall ({cpu:.1f} s CPU in this "
                      f"process), {args.rows / wall:,.0f} rows/s, peak RSS {peak_mb:.0f} MB; "
                      f"imported {report.imported:,}, "
                      f"duplicates {report.duplicates:,}, rejected {report.rejected:,}")
            with transaction(engine) as session:
                print(f"signers stored: {count_signers(session, campaign_id):,}")
        finally:
            engine.dispose()
            if admin is not None:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))
                admin.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
