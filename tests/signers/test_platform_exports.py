"""Real platform exports (tests/signers/samples/) imported through the signer store, on SQLite and
PostgreSQL: the values stored — UTC signing times, consent per signer, canonical country names —
and the counts of imported, excluded and rejected rows."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from delivery.errors import InputRefused
from delivery.signers.dates import DateOrder
from delivery.signers.options import import_options
from delivery.signers.store import ImportReport, import_csv
from delivery.storage.db import transaction
from delivery.storage.models import SignerRow
from tests.support.keys import TEST_KEYS

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
SAMPLES = Path(__file__).parent / "samples"

Stored = tuple[str, str, str, datetime, bool]  # name, city, country, signed_at, consent


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def run(tmp_path: Path, engine: Engine, campaign_id: int, sample: str, *, format: str | None,
        timezone: str | None = None, consent_missing: str | None = None,
        encoding: str | None = None, signed_at_missing: str | None = None,
        campaign_timezone: str = "UTC") -> ImportReport:
    """Imports a copy of the sample (the rejects file is written beside it, not in the repo)."""
    folder = tmp_path / "files"
    folder.mkdir(exist_ok=True)
    path = Path(shutil.copy(SAMPLES / sample, folder / sample))
    options = import_options(format=format, timezone=timezone, consent_missing=consent_missing,
                             encoding=encoding, signed_at_missing=signed_at_missing,
                             default_timezone=campaign_timezone)
    return import_csv(engine, campaign_id, path, now=NOW, keys=TEST_KEYS, options=options)


def rows(engine: Engine) -> list[SignerRow]:
    with transaction(engine) as session:
        return list(session.scalars(select(SignerRow).order_by(SignerRow.id)))


def stored(engine: Engine) -> list[Stored]:
    return [(r.name, r.city, r.country, r.signed_at, r.consent) for r in rows(engine)]


def counts(report: ImportReport) -> tuple[int, int, int, int, int, int, int]:
    return (report.imported, report.duplicates, report.rejected, report.excluded, report.named,
            report.withheld, report.updated)


def test_google_forms_us_sheet_month_first_in_the_sheets_zone(engine: Engine, campaign_id: int,
                                                               tmp_path: Path) -> None:
    report = run(tmp_path, engine, campaign_id, "google-forms-en-us.csv", format="google-forms",
                 timezone="America/New_York")
    assert counts(report) == (7, 0, 0, 0, 5, 2, 0)
    assert report.date_order == DateOrder.MDY  # "3/15/2026 9:01:02" settles it
    assert "Anything you want to tell the minister?" in report.unused_columns
    assert stored(engine) == [
        ("Անի Հակոբյան", "Երևան", "Armenia", at(2026, 3, 4, 19, 5, 33), True),
        ("Иван Петров", "Москва", "Russian Federation", at(2026, 3, 4, 21, 20, 10), False),
        ("Lucía García", "Sevilla", "Spain", at(2026, 3, 5, 14, 12, 45), True),
        ("Tom Baker", "Boston", "United States", at(2026, 3, 8, 2, 47, 3), False),  # empty answer
        ("Արամ Սարգսյան", "Գյումրի", "Armenia", at(2026, 3, 15, 13, 1, 2), True),  # EDT from 8 March
        ("Мария Иванова", "Санкт-Петербург", "Russian Federation", at(2026, 3, 20, 22, 30), True),
        ("Jean Dupont", "Lyon", "France", at(2026, 4, 2, 11, 5, 59), True),
    ]


def test_google_forms_german_sheet_day_first_ja_nein(engine: Engine, campaign_id: int,
                                                     tmp_path: Path) -> None:
    report = run(tmp_path, engine, campaign_id, "google-forms-de.csv", format="google-forms",
                 timezone="Europe/Berlin")
    assert counts(report) == (6, 0, 0, 0, 4, 2, 0)
    assert report.date_order == DateOrder.DMY  # "30.03.2026" settles it
    assert stored(engine) == [
        ("Lena Müller", "Berlin", "Germany", at(2026, 3, 4, 13, 5, 33), True),
        ("Jonas Schmidt", "Hamburg", "Germany", at(2026, 3, 4, 17, 40, 2), False),
        ("Gayane Avetisyan", "Köln", "Armenia", at(2026, 3, 6, 7, 15, 27), True),
        ("Дмитрий Соколов", "München", "Russian Federation", at(2026, 3, 9, 10, 0), False),
        ("Sophie Weiß", "Wien", "Austria", at(2026, 3, 12, 19, 5, 45), True),
        ("Felix Becker", "Leipzig", "Germany", at(2026, 3, 30, 5, 30), True),  # CEST from 29 March
    ]


def test_typeform_partial_responses_are_excluded_and_times_are_utc(engine: Engine, campaign_id: int,
                                                                   tmp_path: Path) -> None:
    # The campaign's zone does not apply: Typeform writes "Submit Date (UTC)".
    report = run(tmp_path, engine, campaign_id, "typeform.csv", format="typeform",
                 campaign_timezone="Asia/Yerevan")
    assert counts(report) == (5, 0, 0, 2, 3, 2, 0)
    assert report.excluded_reasons == {"partial response (not submitted)": 2}
    assert report.date_order is None and report.rejects_file is None
    assert stored(engine) == [
        ("Anahit Grigoryan", "Vanadzor", "Armenia", at(2026, 3, 4, 10, 2, 40), True),
        ("Сергей Кузнецов", "Казань", "Russian Federation", at(2026, 3, 5, 8, 30, 1), False),
        ("Հասմիկ Պետրոսյան", "Երևան", "Armenia", at(2026, 3, 6, 23, 58, 44), True),
        ("Claire Martin", "Paris", "France", at(2026, 3, 7, 14, 22, 5), True),
        ("Ольга Новикова", "Новосибирск", "Russian Federation", at(2026, 3, 8, 6, 45), False),
    ]


def test_mailchimp_without_a_consent_column_is_refused_naming_the_option(
        engine: Engine, campaign_id: int, tmp_path: Path) -> None:
    with pytest.raises(InputRefused, match="--consent-missing"):
        run(tmp_path, engine, campaign_id, "mailchimp.csv", format="mailchimp")
    assert stored(engine) == []


@pytest.mark.parametrize(("consent_missing", "consent"), [("withhold", False), ("name", True)])
def test_mailchimp_confirm_time_else_optin_time_in_utc(engine: Engine, campaign_id: int,
                                                       tmp_path: Path, consent_missing: str,
                                                       consent: bool) -> None:
    # The campaign's zone does not apply: Mailchimp's times are UTC.
    report = run(tmp_path, engine, campaign_id, "mailchimp.csv", format="mailchimp",
                 campaign_timezone="Asia/Yerevan", consent_missing=consent_missing)
    assert (report.imported, report.rejected, report.excluded) == (6, 0, 0)
    assert (report.named, report.withheld) == ((6, 0) if consent else (0, 6))
    assert stored(engine) == [
        ("Նարեկ Մանուկյան", "", "Armenia", at(2026, 3, 4, 9, 15, 22), consent),
        ("Елена Попова", "", "Russian Federation", at(2026, 3, 5, 17, 40, 3), consent),
        ("José Fernández", "", "Spain", at(2026, 3, 6, 12, 0), consent),  # OPTIN_TIME: no CONFIRM_TIME
        ("Karen White", "", "United States", at(2026, 3, 8, 2, 30), consent),
        ("Hans Groß", "", "Germany", at(2026, 3, 9, 19, 5, 44), consent),
        ("Mariam Davtyan", "", "Armenia", at(2026, 3, 10, 8, 5, 10), consent),  # CONFIRM_TIME wins
    ]


def test_action_network_report_an_empty_date_rejects_its_row(engine: Engine, campaign_id: int,
                                                             tmp_path: Path) -> None:
    report = run(tmp_path, engine, campaign_id, "action-network.csv", format="action-network",
                 timezone="America/New_York")
    assert counts(report) == (5, 0, 1, 0, 3, 2, 0)
    assert [line for line, _ in report.sample_rejects] == [7]
    assert report.rejects_file is not None and report.rejects_file.exists()
    assert stored(engine) == [
        ("Sarah Johnson", "Cambridge", "United States", at(2026, 3, 4, 19, 5, 33), True),
        ("Armen Khachatryan", "Glendale", "United States", at(2026, 3, 5, 14, 0), False),
        ("Marisol Hernández", "New York", "United States", at(2026, 3, 10, 0, 15), True),
        ("Алексей Лебедев", "Yerevan", "Armenia", at(2026, 3, 10, 10, 0), False),  # empty answer
        ("Emily Chen", "San Francisco", "United States", at(2026, 3, 13, 3, 30), True),
    ]


def test_nationbuilder_people_offsets_and_the_country_name_fallback(engine: Engine, campaign_id: int,
                                                                    tmp_path: Path) -> None:
    report = run(tmp_path, engine, campaign_id, "nationbuilder.csv", format="nationbuilder",
                 timezone="Asia/Yerevan")  # not used: every created_at carries its offset
    assert counts(report) == (5, 0, 0, 0, 3, 2, 0)
    assert stored(engine) == [
        ("Lusine Sargsyan", "Yerevan", "Armenia", at(2026, 3, 4, 15, 5, 33), True),
        ("Peter Walsh", "Boston", "United States", at(2026, 3, 5, 13, 0), False),  # no e-mail
        ("Екатерина Смирнова", "Москва", "Russian Federation", at(2026, 3, 6, 15, 20), True),
        # primary_country_code empty: primary_country read instead
        ("Tigran Hakobyan", "Gyumri", "Armenia", at(2026, 3, 7, 8, 0), False),
        ("Anna Schneider", "Berlin", "Germany", at(2026, 3, 8, 8, 30), True),
    ]


def test_civicrm_contacts_in_the_campaigns_zone_across_the_dst_change(
        engine: Engine, campaign_id: int, tmp_path: Path) -> None:
    report = run(tmp_path, engine, campaign_id, "civicrm.csv", format="civicrm",
                 timezone="Europe/Paris")
    assert counts(report) == (5, 0, 0, 0, 3, 2, 0)
    assert stored(engine) == [
        ("Marie Lefèvre", "Paris", "France", at(2026, 3, 4, 13, 5, 33), True),
        ("Արմեն Պետրոսյան", "Yerevan", "Armenia", at(2026, 3, 5, 9, 0), False),
        ("Nikolai Orlov", "Saint Petersburg", "Russian Federation", at(2026, 3, 28, 21, 30), True),
        ("Julia Wagner", "Dresden", "Germany", at(2026, 3, 29, 10, 0), True),
        ("Carmen López", "Valencia", "Spain", at(2026, 3, 30, 7, 15), False),  # no e-mail, no answer
    ]


def test_pytition_unconfirmed_signatures_are_excluded(engine: Engine, campaign_id: int,
                                                      tmp_path: Path) -> None:
    # Pytition exports neither a date nor a consent: both must be said.
    report = run(tmp_path, engine, campaign_id, "pytition.csv", format="pytition",
                 consent_missing="withhold", signed_at_missing="import-time")
    assert counts(report) == (4, 0, 0, 2, 0, 4, 0)
    assert report.excluded_reasons == {"signature not confirmed by e-mail": 2}
    assert sorted(stored(engine)) == sorted([
        ("Hovhannes Grigoryan", "", "", NOW, False),
        ("Natalia Volkova", "", "", NOW, False),
        ("Léa Girard", "", "", NOW, False),
        ("Սոնա Մկրտչյան", "", "", NOW, False),
    ])


def test_pytition_newsletter_box_is_not_consent_to_be_named(engine: Engine, campaign_id: int,
                                                           tmp_path: Path) -> None:
    with pytest.raises(InputRefused, match="--consent-missing"):
        run(tmp_path, engine, campaign_id, "pytition.csv", format="pytition",
            signed_at_missing="import-time")
    assert stored(engine) == []


def test_german_excel_cp1252_wahr_falsch_stored_in_order_of_signing(
        engine: Engine, campaign_id: int, tmp_path: Path) -> None:
    with pytest.raises(InputRefused, match="--encoding"):
        run(tmp_path, engine, campaign_id, "excel-de.csv", format="excel-de")
    report = run(tmp_path, engine, campaign_id, "excel-de.csv", format="excel-de",
                 timezone="Europe/Berlin", encoding="cp1252")
    assert counts(report) == (5, 0, 1, 0, 3, 2, 0)
    assert report.date_order == DateOrder.DMY
    assert [line for line, _ in report.sample_rejects] == [7]  # Marie Schäfer: no date
    signers = rows(engine)
    # The file lists Hayk, Jürgen, Olga, Anneliese, Lukas; numbers follow the signing times.
    assert [r.signed_at for r in signers] == sorted(r.signed_at for r in signers)
    assert [r.id for r in signers] == sorted(r.id for r in signers)
    assert stored(engine) == [
        ("Jürgen Weiß", "Berlin", "Germany", at(2026, 3, 4), True),  # a date alone: midnight UTC
        ("Anneliese Größer", "Hamburg", "Germany", at(2026, 3, 5), False),
        ("Hayk Sargsyan", "Jerewan", "Armenia", at(2026, 3, 6), True),
        ("Olga Iwanowa", "Moskau", "Russian Federation", at(2026, 3, 13, 17, 45), True),
        ("Lukas Fischer", "Köln", "Germany", at(2026, 3, 14), False),  # empty: withheld
    ]


def test_french_excel_utf8_bom_oui_non(engine: Engine, campaign_id: int, tmp_path: Path) -> None:
    report = run(tmp_path, engine, campaign_id, "excel-fr.csv", format="excel-fr",
                 timezone="Europe/Paris")
    assert counts(report) == (6, 0, 0, 0, 4, 2, 0)
    assert report.date_order == DateOrder.DMY
    assert stored(engine) == [
        ("Chloé Dubois", "Paris", "France", at(2026, 3, 4), True),
        ("Narine Hakobyan", "Marseille", "Armenia", at(2026, 3, 5), True),
        ("Étienne Moreau", "Lyon", "France", at(2026, 3, 6), False),
        ("Анна Кузнецова", "Moscou", "Russian Federation", at(2026, 3, 18), True),
        ("Noémie Lefebvre", "Nantes", "France", at(2026, 3, 20, 15, 30), False),
        ("Giulia Rossi", "Nice", "Italy", at(2026, 3, 21), True),
    ]


def test_libreoffice_us_save_as_shown_two_digit_years_and_am_pm(engine: Engine, campaign_id: int,
                                                                tmp_path: Path) -> None:
    report = run(tmp_path, engine, campaign_id, "libreoffice-en-us.csv", format=None,
                 timezone="America/Chicago")
    assert counts(report) == (5, 0, 0, 0, 3, 2, 0)
    assert report.date_order == DateOrder.MDY  # "03/15/26" settles it
    assert stored(engine) == [
        ("Aram Avetisyan", "Yerevan", "Armenia", at(2026, 3, 4, 15, 1), True),
        ("Irina Sokolova", "Moscow", "Russian Federation", at(2026, 3, 4, 20, 30), False),
        ("Miguel Torres", "Austin", "United States", at(2026, 3, 16, 2, 1), True),
        ("Rachel Green", "Chicago", "United States", at(2026, 3, 20, 5, 0), False),  # 12 AM
        ("Nare Harutyunyan", "Gyumri", "Armenia", at(2026, 4, 1, 17, 15), True),
    ]
