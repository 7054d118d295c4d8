"""Signer keys as keyed hashes (delivery.storage.keys) on SQLite and PostgreSQL: a copy of the
database does not tell whether an address signed; the installation's key finds duplicates and
withdrawals; migration 0005 rewrites old keys so that the same people are still recognised; a
lost key file is refused, never replaced."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert, select, text

from delivery.errors import ConfigError, DeliveryError, NotFound, UsageError
from delivery.services import signers
from delivery.services.app import App, check_ready, init
from delivery.settings import load_settings
from delivery.signers.intake import validate_signer
from delivery.signers.normalize import anonymous_key, email_key, normalize_email
from delivery.signers.store import add_signers, withdraw_signer
from delivery.storage.db import MIGRATIONS, make_engine, schema_revisions, transaction, upgrade_schema
from delivery.storage.keys import SignerKeys, create_key_file, read_key_file
from delivery.storage.models import CampaignRow, SignerRow
from tests.conftest import PG_ADMIN_URL
from tests.support.imports import DECIDED
from tests.support.serve_harness import fresh_database

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[2]
AppFactory = Callable[..., App]
_spec = importlib.util.spec_from_file_location(
    "migration_0005", MIGRATIONS / "versions" / "0005_keyed_signer_keys.py")
assert _spec is not None and _spec.loader is not None
migration = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(migration)
EMAILS = ["zoë@example.org", "anna@example.net", "ivan@example.net"]


def sha256(text_: str) -> str:
    return hashlib.sha256(text_.encode("utf-8")).hexdigest()


def signer(email: str | None, name: str = "Zoë Ørsted") -> object:
    return validate_signer({"name": name, "email": email, "city": "Århus", "country": "DK",
                            "signed_at": "2026-11-01"}, now=NOW, source="test")


def new_campaign(engine: Engine, slug: str) -> int:
    with transaction(engine) as session:
        row = CampaignRow(slug=slug, title=slug, goal=100, created_at=NOW)
        session.add(row)
        session.flush()
        return row.id


def stored_keys(engine: Engine, campaign_id: int) -> list[str]:
    with transaction(engine) as session:
        return list(session.scalars(select(SignerRow.email_key).where(
            SignerRow.campaign_id == campaign_id).order_by(SignerRow.id)))


def test_stored_keys_are_keyed_hashes_that_differ_between_installations(engine: Engine) -> None:
    ours, theirs = SignerKeys(os.urandom(32)), SignerKeys(os.urandom(32))
    mine, other = new_campaign(engine, "mine"), new_campaign(engine, "other")
    batch = [signer(e) for e in EMAILS] + [signer(None, "Արամ Սարգսյան")]
    with transaction(engine) as session:
        assert add_signers(session, mine, batch, now=NOW, keys=ours) == (4, 0)  # type: ignore[arg-type]
        assert add_signers(session, other, batch, now=NOW, keys=theirs) == (4, 0)  # type: ignore[arg-type]

    digests = [email_key(e) for e in EMAILS] + [anonymous_key("Արամ Սարգսյան", "Århus", "Denmark")]
    assert stored_keys(engine, mine) == [ours.stored_key(d) for d in digests]
    assert stored_keys(engine, other) == [theirs.stored_key(d) for d in digests]
    # What someone holding a copy can compute from a guessed address is in no row.
    guesses = {sha256(normalize_email(e)) for e in EMAILS} | set(digests)
    with transaction(engine) as session:
        assert not session.scalars(select(SignerRow.id).where(SignerRow.email_key.in_(guesses))).all()
    assert not set(stored_keys(engine, mine)) & set(stored_keys(engine, other))

    with transaction(engine) as session:  # the right key recognises each one, however written
        again = [signer(" ZOE\u0308@Example.ORG "), signer("Anna@example.net"),
                 signer(None, "ԱՐԱՄ  Սարգսյան")]
        assert add_signers(session, mine, again, now=NOW, keys=ours) == (0, 3)  # type: ignore[arg-type]
        assert not withdraw_signer(session, mine, "IVAN@example.net", now=NOW, actor="t", keys=theirs)
        assert withdraw_signer(session, mine, "IVAN@example.net", now=NOW, actor="t", keys=ours)
    with transaction(engine) as session:
        withdrawn = session.scalar(select(SignerRow.withdrawn_at).where(
            SignerRow.campaign_id == mine, SignerRow.email_key == ours.stored_key(email_key(EMAILS[2]))))
    assert withdrawn == NOW


def test_the_service_stores_and_finds_signers_with_the_installation_key(
        make_app: AppFactory, tmp_path: Path) -> None:
    app = make_app()
    campaign = app.campaign(None)
    fields = {"name": "Zoë Ørsted", "email": "zoë@example.org", "city": "Århus", "country": "DK"}
    assert signers.add_signer(app, campaign, fields, now=NOW, actor="api:test").stored
    duplicate = signers.add_signer(app, campaign, {**fields, "email": "ZOE\u0308@EXAMPLE.ORG"}, now=NOW,
                                   actor="api:test")
    assert not duplicate.stored and duplicate.signers == 1
    export = tmp_path / "export.csv"
    export.write_text("name,email,city,country\nZoë Ø,Zoë@Example.org,Århus,DK\nAnna,anna@example.net,,\n",
                      encoding="utf-8")
    report = signers.import_file(app, campaign, export, now=NOW, actor="cli:test", options=DECIDED)
    assert (report.imported, report.duplicates) == (1, 1)

    keys = app.signer_keys
    with transaction(app.engine) as session:
        campaign_id = app.campaign_id(session, campaign)
    assert stored_keys(app.engine, campaign_id) == [keys.stored_key(email_key("zoë@example.org")),
                                                   keys.stored_key(email_key("anna@example.net"))]
    assert sha256("zoë@example.org") not in stored_keys(app.engine, campaign_id)
    signers.withdraw(app, campaign, "Zoë@example.ORG", now=NOW, actor="cli:test")
    assert signers.count(app, campaign) == 1
    with pytest.raises(NotFound):
        signers.withdraw(app, campaign, "nobody@example.org", now=NOW, actor="cli:test")

    key_file = app.settings.signer_key_path
    assert key_file == (tmp_path / "var" / "signer-key").resolve()
    on_disk = read_key_file(key_file)
    assert on_disk is not None and on_disk.fingerprint == keys.fingerprint
    assert key_file.read_text(encoding="ascii").strip().splitlines()[-1] not in repr(keys)


# ---------------------------------------------------------------- migration 0005

@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of its own, without any schema (the shared test database is at head)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.sqlite3'}"
        return
    with fresh_database(PG_ADMIN_URL) as url:
        yield url


def old_database(url: str, emails: list[str], anonymous: int = 0) -> tuple[Engine, int]:
    """A database as the version before keyed hashes left it: revision 0004, SHA-256 keys."""
    engine = make_engine(url)
    upgrade_schema(engine, "0004")
    assert schema_revisions(engine)[0] == "0004"
    campaign_id = new_campaign(engine, "salman-mukaev")
    rows = [{"email_key": email_key(normalize_email(e)), "name": f"Signer {i}"} for i, e in enumerate(emails)]
    rows += [{"email_key": anonymous_key(f"Anon {i}", "Yerevan", "Armenia"), "name": f"Anon {i}"}
             for i in range(anonymous)]
    with engine.begin() as conn:
        conn.execute(insert(SignerRow.__table__), [  # type: ignore[arg-type]
            {**row, "campaign_id": campaign_id, "city": "Yerevan", "country": "Armenia", "signed_at": NOW,
             "consent": True, "source": "old", "created_at": NOW} for row in rows])
    return engine, campaign_id


def test_migration_0005_rewrites_old_keys_in_batches_and_the_same_people_stay_duplicates(
        fresh_url: str) -> None:
    total = 2 * migration.BATCH + 7  # three batches, the last one short
    emails = [f"Signer{i}@Example.net" for i in range(total)]
    engine, campaign_id = old_database(fresh_url, emails, anonymous=2)
    try:
        old = stored_keys(engine, campaign_id)
        keys = SignerKeys(os.urandom(32))
        upgrade_schema(engine, signer_keys=keys)
        current, newest = schema_revisions(engine)
        assert current == newest and current >= "0005"
        assert stored_keys(engine, campaign_id) == [keys.stored_key(k) for k in old]

        sample = [0, migration.BATCH - 1, migration.BATCH, total - 1]
        again = [validate_signer({"name": "Again", "email": emails[i].upper(), "city": "Yerevan",
                                  "country": "AM"}, now=NOW, source="t") for i in sample]
        again.append(validate_signer({"name": "anon 1", "city": "yerevan", "country": "AM"}, now=NOW,
                                     source="t"))
        with transaction(engine) as session:
            assert add_signers(session, campaign_id, again, now=NOW, keys=keys) == (0, 5)
            assert withdraw_signer(session, campaign_id, emails[migration.BATCH], now=NOW, actor="t",
                                   keys=keys)
        assert len(stored_keys(engine, campaign_id)) == total + 2
    finally:
        engine.dispose()


def test_init_upgrades_an_old_database_making_the_key_and_keeps_everyone_recognised(
        fresh_url: str, tmp_path: Path) -> None:
    engine, campaign_id = old_database(fresh_url, EMAILS)
    engine.dispose()
    settings = load_settings({"DELIVERY_HOME": str(REPO), "DELIVERY_VAR_DIR": str(tmp_path / "var"),
                              "DELIVERY_DATABASE_URL": fresh_url})
    assert not settings.signer_key_path.exists()
    from delivery.campaigns.config import load_campaigns

    app = App(settings=settings, engine=make_engine(fresh_url), campaigns=load_campaigns(REPO / "schedules"))
    try:
        with pytest.raises(UsageError, match=r"revision 0004 .* run `petition-delivery init`"):
            signers.add_signer(app, app.campaign(None), {"name": "A", "email": EMAILS[0]}, now=NOW, actor="t")
        assert not settings.signer_key_path.exists()
        init(app)
        keys = read_key_file(settings.signer_key_path)
        assert keys is not None and keys.fingerprint == app.signer_keys.fingerprint
        assert stored_keys(app.engine, campaign_id) == [keys.stored_key(email_key(e)) for e in EMAILS]
        campaign = app.campaign(None)
        for email in EMAILS:
            assert not signers.add_signer(app, campaign, {"name": "Again", "email": email.upper()}, now=NOW,
                                          actor="api:test").stored
        signers.withdraw(app, campaign, EMAILS[1], now=NOW, actor="cli:test")
        assert signers.count(app, campaign) == 2
        init(app)  # rerun: same key, nothing rewritten twice
        assert stored_keys(app.engine, campaign_id) == [keys.stored_key(email_key(e)) for e in EMAILS]
    finally:
        app.close()


def test_migration_0005_refuses_without_the_key_and_cannot_be_undone_with_signers(fresh_url: str) -> None:
    engine, campaign_id = old_database(fresh_url, EMAILS)
    try:
        old = stored_keys(engine, campaign_id)
        with pytest.raises(DeliveryError, match="signer key: run it through `petition-delivery init`"):
            upgrade_schema(engine)
        assert schema_revisions(engine)[0] == "0004" and stored_keys(engine, campaign_id) == old
        upgrade_schema(engine, signer_keys=SignerKeys(os.urandom(32)))
        head = schema_revisions(engine)[1]
        with pytest.raises(DeliveryError, match=r"0005 cannot be undone .* restore a backup"):
            upgrade_schema(engine, "0004")
        assert schema_revisions(engine)[0] == head  # the whole downgrade rolled back
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM signers"))
        upgrade_schema(engine, "0004")  # nothing keyed is lost: allowed
        assert schema_revisions(engine)[0] == "0004"
    finally:
        engine.dispose()


# ---------------------------------------------------------------- a lost key file

def test_a_missing_key_file_with_stored_signers_is_refused_naming_the_file(make_app: AppFactory) -> None:
    app = make_app()
    campaign = app.campaign(None)
    signers.add_signer(app, campaign, {"name": "Zoë", "email": "zoe@example.org"}, now=NOW, actor="t")
    key_file = app.settings.signer_key_path
    key_file.unlink()

    later = App(settings=app.settings, engine=app.engine, campaigns=app.campaigns)  # a new process
    expected = f"signer key file {key_file} is missing, but the database holds 1 signers"
    for attempt in (lambda: init(later),
                    lambda: check_ready(later, [campaign]),
                    lambda: signers.add_signer(later, campaign, {"name": "Z", "email": "zoe@example.org"},
                                               now=NOW, actor="t"),
                    lambda: signers.withdraw(later, campaign, "zoe@example.org", now=NOW, actor="t")):
        with pytest.raises(UsageError) as caught:
            attempt()
        assert expected in str(caught.value) and "restore" in str(caught.value)
        assert "backup" in str(caught.value) and "DELIVERY_SIGNER_KEY_FILE" in str(caught.value)
        assert not key_file.exists(), "no new key may be made in its place"
    assert signers.count(later, campaign) == 1


def test_a_missing_key_file_with_no_stored_signer_is_made_again_by_init(make_app: AppFactory) -> None:
    app = make_app()
    key_file = app.settings.signer_key_path
    first = app.signer_keys.fingerprint
    key_file.unlink()
    later = App(settings=app.settings, engine=app.engine, campaigns=app.campaigns)
    missing = re.escape(f"{key_file} does not exist: run `petition-delivery init`")
    with pytest.raises(UsageError, match=missing):
        later.signer_keys  # noqa: B018
    init(later)
    assert key_file.exists() and later.signer_keys.fingerprint != first


def test_the_command_line_refuses_a_lost_key_file(database_url: str, tmp_path: Path,
                                                   signing_files: tuple[Path, Path]) -> None:
    key, cert = signing_files
    env = {k: v for k, v in os.environ.items() if not k.startswith("DELIVERY_")}
    env.update({"DELIVERY_HOME": str(REPO), "DELIVERY_DATABASE_URL": database_url,
                "DELIVERY_SIGNER_KEY_FILE": str(tmp_path / "secrets" / "signer.key"),
                "DELIVERY_VAR_DIR": str(tmp_path / "var"), "DELIVERY_SIGNING_KEY": str(key),
                "DELIVERY_SIGNING_CERT": str(cert)})

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "delivery", *args], cwd=tmp_path, env=env, text=True,
                              capture_output=True, timeout=120)

    (tmp_path / "secrets").mkdir()
    made = cli("init")
    assert made.returncode == 0, made.stderr
    key_file = tmp_path / "secrets" / "signer.key"
    assert f"signer key: {key_file}" in made.stdout and "back it up" in made.stdout
    assert cli("signers", "add", "--name", "Ani", "--email", "ani@example.net", "--city", "Yerevan",
               "--country", "AM").returncode == 0
    key_file.unlink()
    for args in (("init",), ("signers", "add", "--name", "Ani", "--email", "ani@example.net", "--city",
                             "Yerevan", "--country", "AM"), ("signers", "remove", "ani@example.net")):
        refused = cli(*args)
        assert refused.returncode == 2, refused.stderr
        assert f"the signer key file {key_file} is missing" in refused.stderr
        assert "restore" in refused.stderr and "Traceback" not in refused.stderr
        assert not key_file.exists()


# ---------------------------------------------------------------- the key file itself

def test_a_key_file_is_made_once_and_never_replaced(tmp_path: Path) -> None:
    path = tmp_path / "var" / "signer-key"
    first = create_key_file(path)
    assert create_key_file(path).fingerprint == first.fingerprint  # a second maker gets the first key
    lines = path.read_text(encoding="ascii").splitlines()
    assert lines[0].startswith("# ") and len(lines) == 2 and len(bytes.fromhex(lines[1])) == 32
    assert read_key_file(path) is not None and read_key_file(tmp_path / "nothing") is None
    assert lines[1] not in repr(first) and first.fingerprint in repr(first)
    assert sorted(p.name for p in path.parent.iterdir()) == ["signer-key"]  # no temporary file left
    path.write_text("not a key\n", encoding="ascii")
    not_a_key = re.escape(f"{path}: DELIVERY_SIGNER_KEY_FILE: is not a signer key file")
    with pytest.raises(ConfigError, match=not_a_key):
        read_key_file(path)
    with pytest.raises(ConfigError, match="does not exist"):
        create_key_file(tmp_path / "no" / "such" / "signer-key")
    with pytest.raises(ValueError):
        SignerKeys(b"short")


def test_the_key_file_setting(tmp_path: Path) -> None:
    default = load_settings({"DELIVERY_VAR_DIR": str(tmp_path / "var")})
    assert default.signer_key_path == (tmp_path / "var").resolve() / "signer-key"
    chosen = load_settings({"DELIVERY_SIGNER_KEY_FILE": str(tmp_path / "k")})
    assert chosen.signer_key_path == (tmp_path / "k").resolve()
