"""Files that hold signers or their key are readable by the service's user only: the SQLite
database and its -wal/-shm/-journal files, the signer key file, an import's rejects file, whatever
the umask."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from delivery.campaigns.config import load_campaigns
from delivery.services import signers
from delivery.services.app import App, init
from delivery.settings import load_settings
from delivery.storage.db import make_engine

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def lax_umask() -> Iterator[None]:
    """The common default, under which files are made world-readable unless made otherwise."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_init_makes_the_database_and_the_key_file_owner_only(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DELIVERY_")}
    env.update({"DELIVERY_HOME": str(REPO), "DELIVERY_VAR_DIR": str(tmp_path / "var")})
    done = subprocess.run([sys.executable, "-m", "delivery", "init"], cwd=tmp_path, env=env, text=True,
                          capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    var = tmp_path / "var"
    database, key_file = var / "delivery.sqlite3", var / "signer-key"
    assert (mode(var), mode(database), mode(key_file)) == (0o700, 0o600, 0o600)
    assert str(key_file) in done.stdout

    engine = make_engine(f"sqlite:///{database}")
    try:
        with engine.connect() as conn:  # WAL mode: -wal and -shm exist while a connection is open
            conn.exec_driver_sql("SELECT count(*) FROM signers")
            assert {p.name: mode(p) for p in var.glob("delivery.sqlite3-*")} == {
                "delivery.sqlite3-wal": 0o600, "delivery.sqlite3-shm": 0o600}
    finally:
        engine.dispose()
    plain = sqlite3.connect(database, isolation_level=None)  # a rollback journal takes the same mode
    try:
        plain.execute("PRAGMA journal_mode=DELETE")
        plain.execute("BEGIN IMMEDIATE")
        plain.execute("DELETE FROM audit_log")
        assert mode(var / "delivery.sqlite3-journal") == 0o600
        plain.execute("ROLLBACK")
    finally:
        plain.close()


def test_init_takes_other_users_off_a_database_made_before(tmp_path: Path) -> None:
    var = tmp_path / "var"
    var.mkdir()
    database = var / "delivery.sqlite3"
    sqlite3.connect(database).close()
    database.chmod(0o644)
    settings = load_settings({"DELIVERY_HOME": str(REPO), "DELIVERY_VAR_DIR": str(var)})
    app = App(settings=settings, engine=make_engine(settings.database_url),
              campaigns=load_campaigns(REPO / "schedules"))
    try:
        assert mode(database) == 0o644
        init(app)
        assert mode(database) == 0o600 and mode(settings.signer_key_path) == 0o600
    finally:
        app.close()


def test_an_imports_rejects_file_is_owner_only(tmp_path: Path) -> None:
    settings = load_settings({"DELIVERY_HOME": str(REPO), "DELIVERY_VAR_DIR": str(tmp_path / "var")})
    app = App(settings=settings, engine=make_engine(settings.database_url),
              campaigns=load_campaigns(REPO / "schedules"))
    try:
        init(app)
        export = tmp_path / "export.csv"
        export.write_text("name,email,city,country,signed_at,consent\n"
                          ",someone@example.org,Yerevan,AM,2026-03-04,yes\n"
                          "Ann Lee,ann@example.org,Yerevan,AM,2026-03-04,yes\n"
                          "Ann Lee,ANN@example.org,Yerevan,AM,2026-03-05,yes\n", encoding="utf-8")
        report = signers.import_file(app, app.campaign(None), export, now=NOW, actor="cli:test")
        assert report.rejected == 1 and report.rejects_file is not None
        assert mode(report.rejects_file) == 0o600
        assert report.duplicates == 1 and report.duplicates_file is not None
        assert mode(report.duplicates_file) == 0o600
    finally:
        app.close()
