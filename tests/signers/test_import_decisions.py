"""What an import decides and what it refuses to decide (delivery.signers.store.import_csv with
ImportOptions), on SQLite and PostgreSQL: each refusal names its option; identity, duplicates,
corrections and numbering are checked on the stored rows."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from delivery.errors import InputRefused
from delivery.signers.dates import DateOrder
from delivery.signers.options import import_options
from delivery.signers.store import forget_volume_facts, import_csv
from delivery.storage.db import transaction
from delivery.storage.models import SignerRow, VolumeFactsRow
from tests.support.keys import TEST_KEYS

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@pytest.fixture
def files(tmp_path: Path) -> Path:
    """A folder of its own for the CSV files (the SQLite database lives in tmp_path)."""
    folder = tmp_path / "files"
    folder.mkdir()
    return folder


def write(folder: Path, text: str, name: str = "in.csv") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def rows(engine: Engine) -> list[SignerRow]:
    with transaction(engine) as session:
        return list(session.scalars(select(SignerRow).order_by(SignerRow.id)))


def read_csv(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8-sig", newline="") as stream:
        return list(csv.reader(stream))


@pytest.mark.parametrize(("text", "option"), [
    ("name,signed_at,consent\nAnn Lee,03/04/2026,yes\n", "--date-order"),
    ("name,signed_at\nAnn Lee,2026-03-04\n", "--consent-missing"),
    ("name,consent\nAnn Lee,yes\n", "--signed-at-missing import-time"),
    ("name,signed_at,May we publish your name?,Can we show your name on the public list?\n"
     "Ann Lee,2026-03-04,yes,yes\n", "--map consent=COLUMN"),
    ("name,signed_at,consent\nAnn Lee,2026-03-04,yes\n", "--where"),
])
def test_each_refusal_names_the_option_that_settles_it_and_stores_nothing(
        engine: Engine, campaign_id: int, files: Path, text: str, option: str) -> None:
    where = ["Status=confirmed"] if option == "--where" else []
    with pytest.raises(InputRefused, match=option.replace("-", r"\-")):
        import_csv(engine, campaign_id, write(files, text), now=NOW, keys=TEST_KEYS,
                   options=import_options(where=where))
    assert rows(engine) == [] and sorted(p.name for p in files.iterdir()) == ["in.csv"]


def test_a_timezone_against_the_zone_a_format_fixes_is_refused(
        engine: Engine, campaign_id: int, files: Path) -> None:
    path = write(files, "#,Name,Submit Date (UTC),Response Type\nr1,Ann Lee,2026-03-04 10:00:00,"
                        "completed\n")
    with pytest.raises(InputRefused, match="leave out --timezone"):
        import_csv(engine, campaign_id, path, now=NOW, keys=TEST_KEYS, options=import_options(
            format="typeform", timezone="Asia/Yerevan", consent_missing="withhold"))
    report = import_csv(engine, campaign_id, path, now=NOW, keys=TEST_KEYS, options=import_options(
        format="typeform", timezone="UTC", consent_missing="withhold"))
    assert report.imported == 1 and rows(engine)[0].signed_at == datetime(2026, 3, 4, 10, tzinfo=UTC)


def test_the_campaign_key_decides_a_file_without_a_consent_column(
        engine: Engine, campaign_id: int, files: Path) -> None:
    path = write(files, "name,signed_at\nAnn Lee,2026-03-04\nBo Kim,2026-03-05\n")
    report = import_csv(engine, campaign_id, path, now=NOW, keys=TEST_KEYS,
                        options=import_options(default_consent_missing="withhold"))
    assert (report.imported, report.named, report.withheld) == (2, 0, 2)
    assert [r.consent for r in rows(engine)] == [False, False]


def test_namesakes_without_an_email_stay_apart_by_postcode_and_repeats_are_listed(
        engine: Engine, campaign_id: int, files: Path) -> None:
    path = write(files, "name,city,postcode,signed_at,consent\n"
                           "María García,Madrid,28001,2026-03-04,yes\n"     # 2
                           "María García,Madrid,28013,2026-03-05,yes\n"     # 3: another María
                           "MARÍA  GARCÍA,madrid,28001,2026-03-06,no\n")    # 4: line 2 again
    report = import_csv(engine, campaign_id, path, now=NOW, keys=TEST_KEYS,
                        options=import_options())
    assert (report.imported, report.duplicates, report.named, report.withheld) == (2, 1, 2, 0)
    assert [(r.name, r.signed_at.day) for r in rows(engine)] == [("María García", 4),
                                                                  ("María García", 5)]
    assert report.duplicates_file == files / "in.csv.duplicates.csv"
    assert read_csv(report.duplicates_file) == [
        ["line", "same signer as", "name", "city", "country"],
        ["4", "line 2", "MARÍA GARCÍA", "madrid", ""]]
    assert report.duplicates_file.stat().st_mode & 0o777 == 0o600
    again = import_csv(engine, campaign_id, path, now=NOW + timedelta(hours=1), keys=TEST_KEYS,
                       options=import_options())
    assert (again.imported, again.duplicates) == (0, 3)
    assert [row[:2] for row in read_csv(again.duplicates_file or files)[1:]] == [
        ["2", "the list (stored before)"], ["3", "the list (stored before)"],
        ["4", "the list (stored before)"]]


def test_one_import_is_numbered_in_the_order_its_signers_signed(
        engine: Engine, campaign_id: int, files: Path) -> None:
    first = write(files, "name,signed_at,consent\nCai Early,2026-01-02,yes\n", "a.csv")
    import_csv(engine, campaign_id, first, now=NOW, keys=TEST_KEYS, options=import_options())
    later = write(files, "name,signed_at,consent\n"
                            "Dee Third,2026-03-03 10:00,yes\nAbe First,2025-12-01 09:00,yes\n"
                            "Bea Second,2026-03-03 09:59,yes\n", "b.csv")
    import_csv(engine, campaign_id, later, now=NOW, keys=TEST_KEYS, options=import_options())
    # the earlier import keeps its numbers; the later one is numbered by signing time
    assert [r.name for r in rows(engine)] == ["Cai Early", "Abe First", "Bea Second", "Dee Third"]


def test_update_corrects_consent_place_and_date_and_keeps_numbers(
        engine: Engine, campaign_id: int, files: Path) -> None:
    path = write(files, "name,email,city,country,signed_at,consent\n"
                           "Ann Lee,ann@example.org,Paris,FR,2026-03-04,yes\n"
                           "Bo Kim,bo@example.org,Oslo,NO,2026-03-05,yes\n")
    import_csv(engine, campaign_id, path, now=NOW, keys=TEST_KEYS, options=import_options())
    before = {r.name: r.id for r in rows(engine)}
    fixed = write(files, "name,email,city,country,signed_at,consent\n"
                            "Ann Lee,ann@example.org,Lyon,Frankreich,2026-03-02,Nein\n"
                            "Bo Kim,bo@example.org,Oslo,NO,2026-03-05,yes\n"
                            "Cy New,cy@example.org,Rome,IT,2026-03-06,yes\n", "fixed.csv")
    plain = import_csv(engine, campaign_id, fixed, now=NOW, keys=TEST_KEYS,
                       options=import_options())
    assert (plain.imported, plain.duplicates, plain.updated) == (1, 2, 0)
    assert rows(engine)[0].consent is True  # without --update nothing stored changes
    dry = import_csv(engine, campaign_id, fixed, now=NOW, keys=TEST_KEYS,
                     options=import_options(update=True, dry_run=True))
    assert dry.updated == 1 and rows(engine)[0].consent is True
    report = import_csv(engine, campaign_id, fixed, now=NOW, keys=TEST_KEYS,
                        options=import_options(update=True))
    assert (report.imported, report.updated) == (0, 1)
    assert report.updated_ids == [before["Ann Lee"]]
    ann = rows(engine)[0]
    assert (ann.id, ann.consent, ann.city, ann.country) == (before["Ann Lee"], False, "Lyon",
                                                            "France")
    assert ann.signed_at == datetime(2026, 3, 2, tzinfo=UTC)


def test_forgetting_volume_facts_drops_only_the_volumes_holding_changed_signers(
        engine: Engine, campaign_id: int) -> None:
    with transaction(engine) as session:
        for number, (first, last) in enumerate([(1, 10), (11, 20), (21, 30)], start=1):
            session.add(VolumeFactsRow(campaign_id=campaign_id, fingerprint=f"f{number}",
                                       size=10, number=number, first_id=first, last_id=last,
                                       rows=10, facts="{}", created_at=NOW))
    with transaction(engine) as session:
        assert forget_volume_facts(session, campaign_id, [12, 30]) == 2
    with transaction(engine) as session:
        assert list(session.scalars(select(VolumeFactsRow.fingerprint))) == ["f1"]


def test_where_keeps_only_matching_rows_and_counts_the_others_excluded(
        engine: Engine, campaign_id: int, files: Path) -> None:
    path = write(files, "name,signed_at,consent,Status\nAnn Lee,2026-03-04,yes,confirmed\n"
                           "Bo Kim,2026-03-04,yes,pending\nCy New,2026-03-04,yes,Confirmed\n")
    report = import_csv(engine, campaign_id, path, now=NOW, keys=TEST_KEYS,
                        options=import_options(where=["Status=confirmed"]))
    assert (report.imported, report.excluded, report.rejected) == (2, 1, 0)
    assert report.excluded_reasons == {"Status is not confirmed": 1}
    assert [r.name for r in rows(engine)] == ["Ann Lee", "Cy New"]


def test_map_names_a_header_with_commas_and_a_consent_question(
        engine: Engine, campaign_id: int, files: Path) -> None:
    path = write(files, '"Your name, as it should appear",When,"City, town or village",'
                           '"Do you agree that your name is published with the petition?"\n'
                           "Ann Lee,2026-03-04,Gyumri,\nBo Kim,2026-03-05,Vanadzor,Yes\n")
    report = import_csv(engine, campaign_id, path, now=NOW, keys=TEST_KEYS, options=import_options(
        maps=["name=Your name, as it should appear", "signed_at=When",
              "city=City, town or village"]))
    assert (report.imported, report.named, report.withheld) == (2, 1, 1)
    assert [(r.name, r.city, r.consent) for r in rows(engine)] == [
        ("Ann Lee", "Gyumri", False), ("Bo Kim", "Vanadzor", True)]


def test_naive_times_are_in_the_campaign_zone_and_the_day_order_comes_from_the_rows(
        engine: Engine, campaign_id: int, files: Path) -> None:
    path = write(files, "name,signed_at,consent\nAnn Lee,3/4/2026 14:05:33,yes\n"
                           "Bo Kim,3/15/2026 9:01:02,yes\nCy New,11/27/2026 15:05,yes\n")
    report = import_csv(engine, campaign_id, path, now=NOW, keys=TEST_KEYS,
                        options=import_options(default_timezone="Asia/Yerevan"))
    assert report.date_order is DateOrder.MDY and report.rejected == 0
    assert [r.signed_at for r in rows(engine)] == [
        datetime(2026, 3, 4, 10, 5, 33, tzinfo=UTC), datetime(2026, 3, 15, 5, 1, 2, tzinfo=UTC),
        datetime(2026, 11, 27, 11, 5, tzinfo=UTC)]  # 55 minutes before now, in Yerevan


def test_an_explicit_encoding_that_yields_mojibake_is_warned_about(
        engine: Engine, campaign_id: int, files: Path) -> None:
    path = files / "in.csv"
    path.write_bytes("name,signed_at,consent\nJosé Müller,2026-03-04,yes\n".encode())
    report = import_csv(engine, campaign_id, path, now=NOW, keys=TEST_KEYS,
                        options=import_options(encoding="cp1252"))
    assert report.imported == 1 and len(report.warnings) == 1
    assert "line 2" in report.warnings[0] and "--encoding" in report.warnings[0]


def test_rows_that_are_no_signers_are_rejected_with_their_reasons(
        engine: Engine, campaign_id: int, files: Path) -> None:
    path = write(files, "name,country,signed_at,consent\n"
                           "____ ____,AM,2026-03-04,yes\n"
                           "da39a3ee5e6b4b0d3255bfef95601890afd80709,AM,2026-03-04,yes\n"
                           "AN0123456,AM,2026-03-04,yes\n"
                           "Ann Lee,NA,2026-03-04,yes\n"
                           "Bo Kim,Armenien,2026-03-04,vielleicht\n"
                           "Cy New,Russland,,yes\n")
    report = import_csv(engine, campaign_id, path, now=NOW, keys=TEST_KEYS,
                        options=import_options())
    assert report.imported == 0
    reasons = [reason for _line, reason in report.sample_rejects]
    assert [line for line, _reason in report.sample_rejects] == [2, 3, 4, 5, 6, 7]
    assert "wrong encoding" in reasons[0] and "hash" in reasons[1] and "ID code" in reasons[2]
    assert "Namibia" in reasons[3] and "consent" in reasons[4]
    assert "--signed-at-missing import-time" in reasons[5]
