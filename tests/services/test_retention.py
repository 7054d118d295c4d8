"""Retention (delivery.services.retention): `signers purge` and the campaign's `retention` key, on
SQLite and PostgreSQL, through real builds, signatures and the outbox folder.

What a purge must hold: the right signers lose name, city, e-mail key (and a country few share),
and keep their row, number and date; a later dossier prints none of their names; a dossier
delivered before still verifies; no cached volume or preview under var/ shows a purged name
(read back with pdftotext and in decompressed PDF streams); it is audited without names.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pikepdf
import pytest
from sqlalchemy import Engine, event, select

from delivery.campaigns.config import parse_campaign
from delivery.cli.main import main
from delivery.errors import ConfigError, NotFound, StateConflict, UsageError
from delivery.services import deliveries, reports, retention, signers
from delivery.services.app import App
from delivery.services.preview import preview
from delivery.signers.intake import validate_signer
from delivery.signers.store import add_signers, count_signers
from delivery.storage.db import transaction
from delivery.storage.models import AuditRow, DeliveryRow, SignerRow, VolumeFactsRow
from tests.support.campaigns import campaign_file

AppFactory = Callable[..., App]
REPO = Path(__file__).resolve().parents[2]
GOOD = (REPO / "schedules" / "salman-mukaev.toml").read_text(encoding="utf-8")

# The delivery before the purge, and the one after (manual sends: no send window applies).
FIRST = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)
LATER = FIRST + timedelta(days=1)
SPRING = datetime(2026, 3, 10, 9, 30, tzinfo=UTC)  # before the purge date
AUTUMN = datetime(2026, 10, 1, 14, 15, tzinfo=UTC)  # after it
PURGE_DAY = date(2026, 6, 1)

# Signers who signed before PURGE_DAY: (name, e-mail, city, country).
OLD = [("Purgeme Alpha", "alpha@example.net", "Oldtown", "AM"),
       ("Стирать Бета", "beta@example.net", "Oldtown", "AM"),
       ("Löschmich Gamma", "gamma@example.net", "Kleinstadt", "Liechtenstein")]
# Who stays: 20 from Armenia, so that Armenia (shared by more than COUNTRY_KEPT_FROM) stays
# on the purged rows; Liechtenstein (one signer) does not.
NEW = [(f"Keeper {i:02d}", f"keeper{i}@example.net", "Gyumri", "AM") for i in range(20)]
OLD_NAMES = [name for name, *_ in OLD]


def campaign_toml(*, slug: str = "small", retention: str | None = None,
                  thresholds: str = "[1000]", hold: str = "0s") -> str:
    text = campaign_file(slug=slug, title="Small test petition", goal=50, signing="required",
                         hold=hold, thresholds=thresholds, check_every="1m")
    if retention is not None:
        text = text.replace('signing = "required"\n', f'signing = "required"\nretention = "{retention}"\n')
    return text


def add(app: App, people: Iterable[tuple[str, str, str, str]], signed_at: datetime, *,
        slug: str | None = None) -> None:
    campaign = app.campaign(slug)
    with transaction(app.engine) as session:
        rows = [validate_signer({"name": name, "email": email, "city": city, "country": country,
                                 "signed_at": signed_at.isoformat()}, now=signed_at, source="test")
                for name, email, city, country in people]
        add_signers(session, app.campaign_id(session, campaign), rows, now=signed_at,
                    keys=app.signer_keys)


def rows(app: App, slug: str = "small") -> list[SignerRow]:
    with transaction(app.engine) as session:
        campaign_id = app.campaign_id(session, app.campaigns[slug])
        return list(session.scalars(select(SignerRow).where(SignerRow.campaign_id == campaign_id)
                                    .order_by(SignerRow.id)))


def audits(app: App, action: str = "signers.purge") -> list[AuditRow]:
    with transaction(app.engine) as session:
        return list(session.scalars(select(AuditRow).where(AuditRow.action == action)
                                    .order_by(AuditRow.id)))


def pdftotext(path: Path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True,
                          text=True).stdout


def names_on_disk(folder: Path, names: Iterable[str]) -> dict[str, list[str]]:
    """Which names any file under `folder` holds: in its bytes, in its decompressed PDF streams
    (UTF-8 or UTF-16), or in the text pdftotext reads from it → {name: [files]}."""
    wanted = list(names)
    found: dict[str, list[str]] = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = path.read_bytes()
        blobs = [data]
        if data.startswith(b"%PDF"):
            blobs.append(pdftotext(path).encode())
            with pikepdf.open(path) as pdf:
                for obj in pdf.objects:
                    if isinstance(obj, pikepdf.Stream):
                        try:
                            blobs.append(obj.read_bytes())
                        except pikepdf.PdfError:
                            continue
        for name in wanted:
            needles = (name.encode(), name.encode("utf-16-be"))
            if any(needle in blob for needle in needles for blob in blobs):
                found.setdefault(name, []).append(str(path.relative_to(folder)))
    return found


def dossier_text(app: App, public_id: str, folder: Path) -> str:
    """The English dossier of a delivery as stored for sending, read back with pdftotext."""
    reports.export_files(app, app.campaign(None), folder)
    [pdf] = sorted((folder / public_id).glob("dossier-*-en*.pdf"))
    return pdftotext(pdf)


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, engine: Engine,
            signing_files: tuple[Path, Path]) -> Callable[..., tuple[int, str, str]]:
    """`petition-delivery …` in this process, on the test database and var folder, with the
    small campaign as the home's only campaign file."""
    home = tmp_path / "home"
    (home / "schedules").mkdir(parents=True)
    (home / "schedules" / "small.toml").write_text(campaign_toml(), encoding="utf-8")
    key, cert = signing_files
    url = engine.url.render_as_string(hide_password=False)
    for name, value in {"DELIVERY_HOME": str(home), "DELIVERY_VAR_DIR": str(tmp_path / "var"),
                        "DELIVERY_DATABASE_URL": url, "DELIVERY_OUTBOX_DIR": str(tmp_path / "outbox"),
                        "DELIVERY_SIGNING_KEY": str(key), "DELIVERY_SIGNING_CERT": str(cert)}.items():
        monkeypatch.setenv(name, value)

    def run(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run


# ---------------------------------------------------------------- the campaign key

def test_retention_is_read_in_days_and_absent_means_keep() -> None:
    with_key = GOOD.replace('signing = "required"', 'signing = "required"\nretention = "180d"', 1)
    assert parse_campaign(with_key, "x.toml").retention == timedelta(days=180)
    assert parse_campaign(GOOD, "x.toml").retention is None


@pytest.mark.parametrize(("value", "problem"), [
    ('"6m"', "number of days"),  # six minutes in schedule durations: never read as a retention
    ('"180"', "number of days"),
    ('"half a year"', "number of days"),
    ("180", "number of days in quotes"),
    ('"0d"', "at least 1d"),
    ('"99999999d"', "at most"),
])
def test_a_bad_retention_is_refused_naming_the_key(value: str, problem: str) -> None:
    text = GOOD.replace('signing = "required"', f'signing = "required"\nretention = {value}', 1)
    with pytest.raises(ConfigError) as caught:
        parse_campaign(text, "schedules/x.toml")
    assert caught.value.key == "campaign.retention"
    assert problem in caught.value.problem
    assert str(caught.value).startswith("schedules/x.toml: campaign.retention: ")


# ---------------------------------------------------------------- what a purge erases

def test_a_purge_erases_names_places_and_keys_of_earlier_signers_only(make_app: AppFactory) -> None:
    other = make_app(campaign_toml=campaign_toml(slug="other"))
    app = make_app(campaign_toml=campaign_toml())
    add(app, OLD, SPRING)
    add(app, NEW, AUTUMN)
    add(other, OLD, SPRING, slug="other")  # the same people in another campaign: not this purge's
    signers.withdraw(app, app.campaign(None), "beta@example.net", now=AUTUMN, actor="test")
    before = {r.id: r for r in rows(app)}

    report = retention.purge_before(app, app.campaign(None), PURGE_DAY, now=FIRST, actor="cli:ana")

    assert report.erased == 3
    after = rows(app)
    purged = [r for r in after if r.signed_at < retention.cutoff_of(PURGE_DAY)]
    kept = [r for r in after if r not in purged]
    assert len(purged) == 3 and len(kept) == 20
    for row in purged:
        old = before[row.id]
        assert (row.name, row.city, row.consent) == ("", "", False)
        assert row.email_key == f"purged:{row.id}"  # no HMAC: no address finds it again
        assert row.signed_at == datetime.combine(SPRING.date(), datetime.min.time(), UTC)
        assert row.withdrawn_at == old.withdrawn_at and row.source == old.source
    # Armenia is shared by 21 active signers: kept; Liechtenstein named one person: erased; and
    # a withdrawn signer counts nowhere: erased too.
    assert [r.country for r in purged] == ["Armenia", "", ""]
    for row in kept:
        old = before[row.id]
        assert (row.name, row.city, row.country, row.email_key, row.signed_at, row.consent) == (
            old.name, old.city, old.country, old.email_key, old.signed_at, old.consent)
    assert {r.name for r in rows(other, "other")} == set(OLD_NAMES)
    with transaction(app.engine) as session:
        assert count_signers(session, app.campaign_id(session, app.campaign(None))) == 22  # still counted
    # A purged person can no longer be confirmed, nor withdrawn, by their address.
    with pytest.raises(NotFound):
        signers.withdraw(app, app.campaign(None), "alpha@example.net", now=FIRST, actor="test")
    signers.withdraw(app, other.campaign("other"), "alpha@example.net", now=FIRST, actor="test")

    [record] = audits(app)
    detail = json.loads(record.detail)
    assert record.actor == "cli:ana" and record.subject == "3 signers"
    assert detail["erased"] == 3 and detail["before"] == "2026-06-01T00:00:00+00:00"
    assert detail["trigger"] == "manual"
    every_audit = " ".join(a.subject + a.detail for a in audits(app, "signers.purge")
                           + audits(app, "signers.withdraw"))
    for name, email, city, _country in OLD:
        assert name not in every_audit and email not in every_audit and city not in every_audit

    # Run again: nothing is left to erase, nothing changes, nothing is audited.
    assert retention.purge_before(app, app.campaign(None), PURGE_DAY, now=FIRST, actor="x").erased == 0
    assert [(r.id, r.email_key, r.country) for r in rows(app)] == [
        (r.id, r.email_key, r.country) for r in after]
    assert len(audits(app)) == 1


def test_a_purge_refuses_the_future_and_a_running_build(make_app: AppFactory) -> None:
    app = make_app(campaign_toml=campaign_toml())
    campaign = app.campaign(None)
    add(app, OLD, SPRING)
    with pytest.raises(UsageError, match="future"):
        retention.purge_before(app, campaign, FIRST.date() + timedelta(days=1), now=FIRST, actor="x")
    building = deliveries.create_manual(app, campaign, now=FIRST, actor="test")  # claimed: building
    with pytest.raises(StateConflict, match=f"{building.public_id} is being built"):
        retention.purge_before(app, campaign, PURGE_DAY, now=FIRST, actor="x")
    assert {r.name for r in rows(app)} == set(OLD_NAMES) and audits(app) == []
    # Once its lease has run out (its builder died), the purge goes ahead.
    later = FIRST + deliveries.BUILD_LEASE + timedelta(seconds=1)
    assert retention.purge_before(app, campaign, PURGE_DAY, now=later, actor="x").erased == 3


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the bytes of the database file
def test_sqlite_file_keeps_no_purged_name_or_key(make_app: AppFactory, database_url: str) -> None:
    app = make_app(campaign_toml=campaign_toml())

    @event.listens_for(app.engine, "connect")
    def default_off(dbapi_conn: Any, _record: Any) -> None:
        # As SQLite is built by default (this one is built with SECURE_DELETE): the purge must
        # not depend on how the library was compiled.
        dbapi_conn.execute("PRAGMA secure_delete = OFF")

    app.engine.dispose()
    add(app, OLD, SPRING)
    add(app, NEW, AUTUMN)
    database = Path(app.engine.url.database or "")

    def file_bytes() -> bytes:
        return b"".join(p.read_bytes() for p in (database, Path(f"{database}-wal")) if p.exists())

    with transaction(app.engine) as session:
        old_keys = [r.email_key for r in session.scalars(select(SignerRow).where(
            SignerRow.signed_at < retention.cutoff_of(PURGE_DAY)))]
    assert all(name.encode() in file_bytes() for name in OLD_NAMES)  # the check can see them
    assert all(key.encode() in file_bytes() for key in old_keys)
    retention.purge_before(app, app.campaign(None), PURGE_DAY, now=FIRST, actor="x")
    data = file_bytes()
    for text in [*OLD_NAMES, "Oldtown", "Kleinstadt", *old_keys]:
        assert text.encode() not in data, text
    assert b"Keeper 07" in data


# ---------------------------------------------------------------- dossiers, cache, previews, verify

def test_after_a_purge_later_dossiers_withhold_the_names_and_nothing_under_var_keeps_them(
        make_app: AppFactory, cli_env: Callable[..., tuple[int, str, str]], tmp_path: Path,
        signing_files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    app = make_app(campaign_toml=campaign_toml())
    campaign = app.campaign(None)
    add(app, OLD, SPRING)
    add(app, NEW, AUTUMN)
    var = tmp_path / "var"

    first = deliveries.send_now(app, campaign, now=FIRST, actor="test")
    earlier = tmp_path / "export-before"
    text = dossier_text(app, first, earlier)
    assert all(text.count(name) == 1 for name in OLD_NAMES)  # delivered with their names
    preview(app, campaign, out_dir=None, now=FIRST, progress=None)
    on_disk = names_on_disk(var, OLD_NAMES)
    # The check sees them before the purge, in the volume cache and in the preview.
    assert set(on_disk) == set(OLD_NAMES), on_disk
    assert any(p.startswith("cache/volumes/") for p in on_disk[OLD_NAMES[0]])
    assert any(p.startswith("preview/") for p in on_disk[OLD_NAMES[0]])
    eml_before = sorted((tmp_path / "outbox").glob("*.eml"))
    assert len(eml_before) == 2
    with transaction(app.engine) as session:
        assert session.scalars(select(VolumeFactsRow)).first() is not None

    # Without --yes and without a terminal, the command asks and changes nothing.
    code, _out, err = cli_env("signers", "purge", "--before", PURGE_DAY.isoformat(), capsys=capsys)
    assert code == 2 and "confirmation" in err
    code, _out, err = cli_env("signers", "purge", "--before", "2099-01-01", "--yes", capsys=capsys)
    assert code == 2 and "future" in err
    code, out, _err = cli_env("signers", "purge", "--before", PURGE_DAY.isoformat(), "--dry-run",
                              "--json", capsys=capsys)
    assert code == 0 and json.loads(out)["erased"] == 3 and json.loads(out)["dry_run"]
    assert {r.name for r in rows(app)} >= set(OLD_NAMES) and audits(app) == []

    code, out, err = cli_env("signers", "purge", "--before", PURGE_DAY.isoformat(), "--yes",
                             capsys=capsys)
    assert code == 0, err
    assert out.startswith("erased 3 signers who signed before 2026-06-01 (UTC)")
    assert "kept: 1 delivered dossiers in the database and 2 .eml files" in out
    for name in OLD_NAMES:
        assert name not in out
    [record] = audits(app)
    assert record.actor.startswith("cli") and json.loads(record.detail)["erased"] == 3

    # Nothing under var/ shows a purged name: the cache and the preview are gone.
    assert names_on_disk(var, OLD_NAMES) == {}
    assert not list((var / "preview").iterdir())
    with transaction(app.engine) as session:
        assert session.scalars(select(VolumeFactsRow)).first() is None

    # The dossier delivered before still verifies, exported before the purge and after it.
    cert = str(signing_files[1])
    code, out, _err = cli_env("verify", str(earlier / first), "--trust", cert, capsys=capsys)
    assert code == 0 and "VERIFIED: every check holds" in out
    after_export = tmp_path / "export-after"
    reports.export_files(app, campaign, after_export)
    code, out, _err = cli_env("verify", str(after_export / first), "--trust", cert, capsys=capsys)
    assert code == 0 and "VERIFIED: every check holds" in out
    # What was delivered stays as it was (kept on purpose: the recipients hold it).
    assert sorted((tmp_path / "outbox").glob("*.eml")) == eml_before

    # A later dossier: same count, same numbers, the purged as withheld lines, no name or town.
    later = deliveries.send_now(app, campaign, now=LATER, actor="test")
    text = dossier_text(app, later, tmp_path / "export-later")
    for name in [*OLD_NAMES, "Oldtown", "Kleinstadt", "Liechtenstein"]:
        assert name not in text, name
    assert all(text.count(f"Keeper {i:02d}") == 1 for i in range(20))
    assert text.count("Name withheld") == 3
    assert "signer’s request" not in text  # the summary does not say the purged asked for it
    with transaction(app.engine) as session:
        counts = dict(session.execute(select(DeliveryRow.public_id, DeliveryRow.signer_count)).all())
    assert counts[first] == counts[later] == 23
    # The later build filled the cache again, with withheld lines only.
    assert list((var / "cache" / "volumes").glob("*.pdf"))
    assert names_on_disk(var, OLD_NAMES) == {}


# ---------------------------------------------------------------- the tick applies `retention`

def test_the_tick_purges_once_retention_has_passed_after_the_last_delivery(
        make_app: AppFactory, tmp_path: Path) -> None:
    app = make_app(campaign_toml=campaign_toml(retention="180d"))
    campaign = app.campaign(None)
    delivered_at = datetime(2026, 5, 5, 7, 0, tzinfo=UTC)
    add(app, OLD, SPRING)
    add(app, NEW, AUTUMN - timedelta(days=200))  # 2026-03-15: before the delivery too
    late = [("Latecomer Delta", "delta@example.net", "Vanadzor", "AM")]
    add(app, late, delivered_at + timedelta(days=10))  # after the delivery
    deliveries.send_now(app, campaign, now=delivered_at, actor="test")
    var = tmp_path / "var"
    assert names_on_disk(var / "cache", ["Purgeme Alpha"])  # cached with the names

    deliveries.tick(app, campaign, now=delivered_at + timedelta(days=179))
    assert "Purgeme Alpha" in {r.name for r in rows(app)} and audits(app) == []

    due = delivered_at + timedelta(days=181)
    deliveries.tick(app, campaign, now=due)
    named = {r.name for r in rows(app)}
    assert named == {"", "Latecomer Delta"}  # everyone who signed before the delivery
    [record] = audits(app)
    detail = json.loads(record.detail)
    assert (record.actor, detail["trigger"], detail["erased"]) == ("scheduler", "retention", 23)
    # Who signed before the delivery, and then (daily) who signed more than 180 days ago.
    assert detail["before"] == retention.cutoff_of(date(2026, 5, 6)).isoformat()
    assert names_on_disk(var, ["Purgeme Alpha", "Keeper 03"]) == {}

    # Idempotent: more ticks erase nothing more and audit nothing more...
    snapshot = [(r.id, r.name, r.email_key, r.country, r.signed_at) for r in rows(app)]
    deliveries.tick(app, campaign, now=due)
    deliveries.tick(app, campaign, now=due + timedelta(hours=5))
    assert [(r.id, r.name, r.email_key, r.country, r.signed_at) for r in rows(app)] == snapshot
    assert len(audits(app)) == 1
    # ...until a later signer's own `retention` has passed too.
    deliveries.tick(app, campaign, now=delivered_at + timedelta(days=191))
    assert {r.name for r in rows(app)} == {""}
    assert [json.loads(a.detail)["erased"] for a in audits(app)] == [23, 1]


def test_the_tick_keeps_names_without_retention_or_while_a_delivery_is_under_way(
        make_app: AppFactory) -> None:
    delivered_at = datetime(2026, 5, 5, 7, 0, tzinfo=UTC)
    keep = make_app(campaign_toml=campaign_toml())
    add(keep, OLD, SPRING)
    deliveries.send_now(keep, keep.campaign(None), now=delivered_at, actor="test")
    deliveries.tick(keep, keep.campaign(None), now=delivered_at + timedelta(days=3000))
    assert {r.name for r in rows(keep)} == set(OLD_NAMES)

    app = make_app(campaign_toml=campaign_toml(retention="30d", thresholds="[10]", hold="2h"))
    campaign = app.campaign(None)
    add(app, [*OLD, *NEW[:2]], SPRING)
    deliveries.send_now(app, campaign, now=delivered_at, actor="test")
    add(app, NEW[2:7], delivered_at + timedelta(days=1))
    # Ten signers reach a milestone at this tick: its delivery is held, so the names wait.
    due = delivered_at + timedelta(days=40)
    report = deliveries.tick(app, campaign, now=due)
    assert report.milestones == [10]
    assert "" not in {r.name for r in rows(app)} and audits(app) == []
    assert retention.retention_cutoff(app, campaign, now=due) is None
