"""Signer store (delivery.signers.store) on SQLite and PostgreSQL: imports, duplicates, dry runs,
interrupted imports, withdrawals."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text

from delivery.errors import DeliveryError, InputRefused, NotFound
from delivery.signers.intake import validate_signer
from delivery.signers.normalize import email_key
from delivery.signers.options import ConsentMissing, ImportOptions, SignedAtMissing
from delivery.signers.store import add_signers, count_signers, import_csv, withdraw_signer
from delivery.storage.db import transaction
from delivery.storage.models import AuditRow, SignerRow
from tests.support.imports import DECIDED, decided
from tests.support.keys import TEST_KEYS

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
HEADER = ["name", "email", "city", "country", "signed_at", "consent"]
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def files(tmp_path: Path) -> Path:
    """A folder of its own for the CSV files (the SQLite database lives in tmp_path)."""
    folder = tmp_path / "files"
    folder.mkdir()
    return folder


def write_csv(path: Path, rows: list[list[str]], header: list[str] | None = None) -> Path:
    with path.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(header or HEADER)
        writer.writerows(rows)
    return path


def stored(engine: Engine) -> list[SignerRow]:
    with transaction(engine) as session:
        return list(session.scalars(select(SignerRow).order_by(SignerRow.id)))


def many(count: int, start: int = 0) -> list[list[str]]:
    return [[f"Signer {i}", f"s{i}@example.org", "Yerevan", "AM", "2026-11-01", "yes"]
            for i in range(start, start + count)]


def test_import_stores_normalised_rows_and_writes_rejects(engine: Engine, campaign_id: int,
                                                           files: Path) -> None:
    path = write_csv(files / "in.csv", [
        ["Zoe\u0308  Ørsted", "ZOE@example.org", "Århus", "DK", "27/11/2026 10:30", "yes"],
        ["Արամ Սարգսյան", "", "Գյումրի", "ARM", "", "no"],
        ["", "x@example.org", "Paris", "FR", "", ""],
        ["Ann", "not-an-address", "Rome", "IT", "", ""],
        ["Future", "f@example.org", "Oslo", "NO", "2027-01-01", ""],
    ])
    report = import_csv(engine, campaign_id, path, now=NOW, keys=TEST_KEYS, options=DECIDED)
    assert (report.imported, report.duplicates, report.rejected) == (2, 0, 3)
    assert report.rejects_file == files / "in.csv.rejects.csv"
    zoe, aram = stored(engine)
    assert (zoe.name, zoe.city, zoe.country, zoe.consent) == ("Zoë Ørsted", "Århus", "Denmark", True)
    assert zoe.signed_at == datetime(2026, 11, 27, 10, 30, tzinfo=UTC)
    assert zoe.email_key == TEST_KEYS.stored_key(email_key("zoe@example.org"))
    assert zoe.source == "import:in.csv"
    assert zoe.created_at == NOW and zoe.withdrawn_at is None and zoe.campaign_id == campaign_id
    assert (aram.country, aram.consent, aram.signed_at) == ("Armenia", False, NOW)
    with report.rejects_file.open(encoding="utf-8-sig", newline="") as stream:
        lines = list(csv.reader(stream))
    assert lines[0] == ["line", "reason", *HEADER]
    assert lines[1:] == [
        ["4", "name is empty", "", "x@example.org", "Paris", "FR", "", ""],
        ["5", "invalid e-mail address", "Ann", "not-an-address", "Rome", "IT", "", ""],
        ["6", "signing date is in the future", "Future", "f@example.org", "Oslo", "NO",
         "2027-01-01", ""],
    ]
    assert report.to_dict()["sample_rejects"] == [
        {"line": 4, "reason": "name is empty"}, {"line": 5, "reason": "invalid e-mail address"},
        {"line": 6, "reason": "signing date is in the future"}]
    assert json.dumps(report.to_dict())


def test_duplicates_differing_in_case_and_unicode_form_count_once(engine: Engine, campaign_id: int,
                                                                   files: Path) -> None:
    path = write_csv(files / "in.csv", [
        ["Zoë", "zoë@example.org", "", "", "", ""],
        ["Zoë again", "ZOË@EXAMPLE.ORG", "", "", "", ""],
        ["Zoë NFD", "zoe\u0308@example.org", "", "", "", ""],
        ["Zoë spaced", "  Zoë@Example.Org ", "", "", "", ""],
        ["Jo Doe", "", "Lyon", "FR", "", ""],
        ["JO  DOE", "", "lyon", "France", "", ""],
        ["Jo Doe", "", "Paris", "FR", "", ""],
    ])
    report = import_csv(engine, campaign_id, path, now=NOW, keys=TEST_KEYS, options=DECIDED, batch_size=2)
    assert (report.imported, report.duplicates, report.rejected) == (3, 4, 0)
    assert [r.name for r in stored(engine)] == ["Zoë", "Jo Doe", "Jo Doe"]


def test_reimport_and_overlapping_import_add_nothing_twice(engine: Engine, campaign_id: int,
                                                           files: Path) -> None:
    first = write_csv(files / "a.csv", [*many(10), ["", "", "", "", "", ""], ["x", "bad", "", "", "", ""]])
    assert import_csv(engine, campaign_id, first, now=NOW, keys=TEST_KEYS, options=DECIDED).imported == 10
    again = import_csv(engine, campaign_id, first, now=NOW + timedelta(hours=1), keys=TEST_KEYS,
                        options=DECIDED)
    assert (again.imported, again.duplicates, again.rejected) == (0, 10, 1)
    overlap = write_csv(files / "b.csv", many(15, start=5))
    report = import_csv(engine, campaign_id, overlap, now=NOW, keys=TEST_KEYS, options=DECIDED, batch_size=4)
    assert (report.imported, report.duplicates, report.rejected) == (10, 5, 0)
    assert report.rejects_file is None
    with transaction(engine) as session:
        assert count_signers(session, campaign_id) == 20


def test_dry_run_writes_nothing_and_predicts_the_real_run(engine: Engine, campaign_id: int,
                                                          files: Path) -> None:
    import_csv(engine, campaign_id, write_csv(files / "old.csv", many(3)), now=NOW, keys=TEST_KEYS,
               options=DECIDED)
    rows = [*many(8), *many(2), ["", "x@example.org", "", "", "", ""], ["No Mail", "", "", "", "", ""]]
    path = write_csv(files / "in.csv", rows)
    dry = import_csv(engine, campaign_id, path, now=NOW, keys=TEST_KEYS,
                     options=decided(dry_run=True), batch_size=3)
    assert (dry.imported, dry.duplicates, dry.rejected, dry.dry_run) == (6, 5, 1, True)
    assert dry.rejects_file is None and dry.sample_rejects == [(12, "name is empty")]
    assert not (files / "in.csv.rejects.csv").exists()
    assert len(stored(engine)) == 3
    real = import_csv(engine, campaign_id, path, now=NOW, keys=TEST_KEYS, options=DECIDED, batch_size=3)
    assert (real.imported, real.duplicates, real.rejected) == (6, 5, 1)
    assert real.rejects_file is not None and real.rejects_file.exists()


def test_a_clean_rerun_removes_a_stale_rejects_file(engine: Engine, campaign_id: int,
                                                    files: Path) -> None:
    path = write_csv(files / "in.csv", [*many(2), ["", "x@example.org", "", "", "", ""]])
    assert import_csv(engine, campaign_id, path, now=NOW, keys=TEST_KEYS,
                      options=DECIDED).rejects_file is not None
    write_csv(path, many(3))
    report = import_csv(engine, campaign_id, path, now=NOW, keys=TEST_KEYS, options=DECIDED)
    assert report.rejects_file is None and not (files / "in.csv.rejects.csv").exists()
    assert not list(files.glob("*.partial"))


@pytest.mark.parametrize(("data", "match"), [
    (b"email,city\r\nzoe@example.org,Aarhus\r\n", "no name column"),
    ("name,city\r\nZoë Ørsted,Århus\r\n".encode("cp1252"), "--encoding"),
    (b"", "is empty"),
    (b"\x00\x01\x02binary", "NUL"),
])
def test_refused_files_write_nothing(engine: Engine, campaign_id: int, files: Path,
                                     data: bytes, match: str) -> None:
    path = files / "in.csv"
    path.write_bytes(data)
    with pytest.raises(InputRefused, match=match):
        import_csv(engine, campaign_id, path, now=NOW, keys=TEST_KEYS, options=DECIDED)
    assert stored(engine) == [] and sorted(p.name for p in files.iterdir()) == ["in.csv"]


def test_cp1252_with_encoding_imports_correct_text(engine: Engine, campaign_id: int,
                                                   files: Path) -> None:
    path = files / "in.csv"
    path.write_bytes("name;city;country\r\nZoë Ørsted;Århus;Danmark\r\n".encode("cp1252"))
    assert import_csv(engine, campaign_id, path, now=NOW, keys=TEST_KEYS, options=ImportOptions(
        encoding="cp1252", consent_missing=ConsentMissing.NAME,
        signed_at_missing=SignedAtMissing.IMPORT_TIME)).imported == 1
    [row] = stored(engine)
    assert (row.name, row.city, row.country) == ("Zoë Ørsted", "Århus", "Denmark")


def test_unknown_campaign_is_not_found(engine: Engine, files: Path) -> None:
    with pytest.raises(NotFound):
        import_csv(engine, 999, write_csv(files / "in.csv", many(1)), now=NOW, keys=TEST_KEYS,
                   options=DECIDED)


HOSTILE = ["<script>alert(1)</script>", "{{ config.items() }}", "{% include 'x' %}",
           "url(file:///etc/passwd)", "Robert'); DROP TABLE signers;--", "%s %(name)s ?"]


def test_hostile_names_are_stored_as_plain_text(engine: Engine, campaign_id: int,
                                                files: Path) -> None:
    rows = [[name, f"h{i}@example.org", name, "", "", ""] for i, name in enumerate(HOSTILE)]
    report = import_csv(engine, campaign_id, write_csv(files / "in.csv", rows), now=NOW, keys=TEST_KEYS,
                        options=DECIDED)
    assert report.imported == len(HOSTILE)
    assert [(r.name, r.city) for r in stored(engine)] == [(n, n) for n in HOSTILE]


def test_add_signers_deduplicates_within_the_batch_and_against_the_table(
        engine: Engine, campaign_id: int) -> None:
    def one(name: str, email: str, consent: bool = True) -> object:
        return validate_signer({"name": name, "email": email, "signed_at": "2026-11-01T08:00:00+04:00",
                                "consent": consent}, now=NOW, source="cli")

    first = [one("A", "a@example.org"), one("B", "b@example.org", False), one("A2", "A@EXAMPLE.ORG")]
    with transaction(engine) as session:
        added = add_signers(session, campaign_id, first, now=NOW, keys=TEST_KEYS)  # type: ignore[arg-type]
        assert added == (2, 1)
    with transaction(engine) as session:
        batch = [one("C", "c@example.org"), one("B again", "b@example.org")]
        added = add_signers(session, campaign_id, batch, now=NOW, keys=TEST_KEYS)  # type: ignore[arg-type]
        assert added == (1, 1)
        assert add_signers(session, campaign_id, [], now=NOW, keys=TEST_KEYS) == (0, 0)
    rows = stored(engine)
    assert [(r.name, r.consent) for r in rows] == [("A", True), ("B", False), ("C", True)]
    assert rows[0].signed_at == datetime(2026, 11, 1, 4, 0, tzinfo=UTC)
    assert rows[0].source == "cli" and rows[0].created_at == NOW


def test_withdraw_signer_marks_audits_and_keeps_them_out(engine: Engine, campaign_id: int,
                                                         files: Path) -> None:
    path = write_csv(files / "in.csv", [["Zoë Ørsted", "zoë@example.org", "", "", "", ""],
                                           *many(2)])
    import_csv(engine, campaign_id, path, now=NOW, keys=TEST_KEYS, options=DECIDED)
    later = NOW + timedelta(hours=1)
    with transaction(engine) as session:
        assert withdraw_signer(session, campaign_id, " ZOE\u0308@Example.org", now=later,
                               actor="cli:tester", keys=TEST_KEYS)
        assert count_signers(session, campaign_id) == 2
    with transaction(engine) as session:  # again: found, withdrawal time unchanged
        assert withdraw_signer(session, campaign_id, "zoë@example.org", now=later + timedelta(1),
                               actor="cli:tester", keys=TEST_KEYS)
        assert not withdraw_signer(session, campaign_id, "nobody@example.org", now=later, actor="x",
                                   keys=TEST_KEYS)
        assert not withdraw_signer(session, campaign_id, "not an address", now=later, actor="x",
                                   keys=TEST_KEYS)
        assert not withdraw_signer(session, campaign_id + 1, "zoë@example.org", now=later, actor="x",
                                   keys=TEST_KEYS)
    [zoe] = [row for row in stored(engine) if row.name == "Zoë Ørsted"]
    assert zoe.withdrawn_at == later
    with transaction(engine) as session:
        audits = list(session.scalars(select(AuditRow).order_by(AuditRow.id)))
    assert [(a.action, a.actor, a.campaign_id, a.at) for a in audits] == [
        ("signers.withdraw", "cli:tester", campaign_id, later),
        ("signers.withdraw", "cli:tester", campaign_id, later + timedelta(1))]
    for audit in audits:
        assert json.loads(audit.detail)["signer_id"] == zoe.id
        for secret in ("zoë", "zoe", "Ørsted", "example.org"):
            assert secret not in audit.detail.casefold() and secret not in audit.subject.casefold()
    # Importing the withdrawn signer again does not bring them back.
    again = import_csv(engine, campaign_id, path, now=later, keys=TEST_KEYS, options=DECIDED)
    assert (again.imported, again.duplicates) == (0, 3)
    with transaction(engine) as session:
        assert count_signers(session, campaign_id) == 2


def _install_failing_trigger(engine: Engine) -> None:
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(text("CREATE TRIGGER fail_boom BEFORE INSERT ON signers "
                              "WHEN NEW.name = 'Trigger Boom' BEGIN SELECT RAISE(ABORT, 'boom'); END"))
        else:
            conn.execute(text("CREATE FUNCTION fail_boom() RETURNS trigger LANGUAGE plpgsql AS $$ "
                              "BEGIN IF NEW.name = 'Trigger Boom' THEN RAISE EXCEPTION 'boom'; END IF; "
                              "RETURN NEW; END $$"))
            conn.execute(text("CREATE TRIGGER fail_boom BEFORE INSERT ON signers "
                              "FOR EACH ROW EXECUTE FUNCTION fail_boom()"))


def _drop_failing_trigger(engine: Engine) -> None:
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(text("DROP TRIGGER IF EXISTS fail_boom"))
        else:
            conn.execute(text("DROP TRIGGER IF EXISTS fail_boom ON signers"))
            conn.execute(text("DROP FUNCTION IF EXISTS fail_boom()"))


def test_an_import_failing_mid_way_stores_nothing_and_a_rerun_completes_it(
        engine: Engine, campaign_id: int, files: Path) -> None:
    rows = many(10)
    rows[4][0] = "Trigger Boom"  # the database refuses this row when it is stored
    path = write_csv(files / "in.csv", [*rows, ["", "", "x", "", "", ""]])
    _install_failing_trigger(engine)
    try:
        with pytest.raises(DeliveryError, match="nothing was stored") as caught:
            import_csv(engine, campaign_id, path, now=NOW, keys=TEST_KEYS, options=DECIDED, batch_size=3)
        assert "Signer" not in str(caught.value) and "example.org" not in str(caught.value)
        assert stored(engine) == []
        assert sorted(p.name for p in files.iterdir()) == ["in.csv"]
    finally:
        _drop_failing_trigger(engine)
    report = import_csv(engine, campaign_id, path, now=NOW, keys=TEST_KEYS, options=DECIDED, batch_size=3)
    assert (report.imported, report.duplicates, report.rejected) == (10, 0, 1)
    assert len(stored(engine)) == 10


KILLED_IMPORT = """
import sys
from datetime import datetime
from pathlib import Path
from delivery.storage.db import make_engine
from delivery.signers.store import import_csv
from tests.support.imports import DECIDED, decided
from tests.support.keys import TEST_KEYS
engine = make_engine(sys.argv[1])
print("ready", flush=True)
import_csv(engine, int(sys.argv[2]), Path(sys.argv[3]), now=datetime.fromisoformat(sys.argv[4]),
           keys=TEST_KEYS, options=DECIDED, batch_size=int(sys.argv[5]))
"""


@pytest.mark.parametrize("delay", [0.3, 1.2])
def test_a_killed_import_stores_nothing_and_a_rerun_stores_it_all(
        engine: Engine, campaign_id: int, files: Path, delay: float) -> None:
    total, batch = 99_000, 5000  # read, checked and staged in about 3 s before one commit
    path = write_csv(files / "in.csv", many(total))
    url = engine.url.render_as_string(hide_password=False)
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_IMPORT, url, str(campaign_id), str(path), NOW.isoformat(),
         str(batch)], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        time.sleep(delay)  # in the first pass over the file, then while staging
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
    assert child.returncode == -signal.SIGKILL, "the import ended before it could be killed"
    assert stored(engine) == []
    report = import_csv(engine, campaign_id, path, now=NOW, keys=TEST_KEYS, options=DECIDED, batch_size=batch)
    assert (report.imported, report.duplicates) == (total, 0)
    with transaction(engine) as session:
        assert count_signers(session, campaign_id) == total


FULL_DISK_IMPORT = """
import resource, signal, sys
from datetime import datetime
from pathlib import Path
from delivery.errors import DeliveryError
from delivery.signers.store import import_csv
from delivery.storage.db import make_engine
from tests.support.imports import DECIDED, decided
from tests.support.keys import TEST_KEYS

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG, as on a full disk
engine = make_engine(sys.argv[1])
with engine.connect() as conn:
    conn.exec_driver_sql("SELECT 1")
limit = Path(sys.argv[1].removeprefix("sqlite:///")).stat().st_size + 65536
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
try:
    import_csv(engine, int(sys.argv[2]), Path(sys.argv[3]), now=datetime.fromisoformat(sys.argv[4]),
               keys=TEST_KEYS, options=DECIDED, batch_size=5000)
except DeliveryError as exc:
    print(exc)
"""


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # a full disk, as SQLite meets one
def test_a_batch_whose_commit_fails_on_a_full_disk_is_not_counted_as_saved(
        engine: Engine, campaign_id: int, files: Path) -> None:
    source = write_csv(files / "in.csv", many(5000))
    url = engine.url.render_as_string(hide_password=False)
    engine.dispose()
    result = subprocess.run([sys.executable, "-c", FULL_DISK_IMPORT, url, str(campaign_id), str(source),
                             NOW.isoformat()], cwd=REPO, capture_output=True, text=True, check=False)
    assert "import stopped by a database error; nothing was stored" in result.stdout, (
        result.stdout + result.stderr)
    assert stored(engine) == []
