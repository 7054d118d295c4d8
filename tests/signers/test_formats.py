"""Platform export formats (delivery.signers.formats): each sample export's real header row →
the columns its format reads (pure, no database)."""

from __future__ import annotations

import csv
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from delivery.signers.dates import DateOrder
from delivery.signers.formats import FORMATS, Exclusion, ExportFormat, format_columns, match_header
from delivery.signers.options import FIELDS

SAMPLES = Path(__file__).parent / "samples"
ENCODINGS = {"excel-de.csv": "cp1252"}


def header_of(sample: str) -> list[str]:
    """The header row as delivery.signers.intake reads it: BOM dropped, delimiter sniffed."""
    text = (SAMPLES / sample).read_text(encoding=ENCODINGS.get(sample, "utf-8-sig"))
    first = text.splitlines()[0]
    delimiter = max(",;\t", key=first.count)
    return [cell.strip() for cell in next(csv.reader([first], delimiter=delimiter))]


EXPECTED: dict[str, tuple[str, dict[str, str]]] = {
    "google-forms-en-us.csv": ("google-forms", {
        "signed_at": "Timestamp", "email": "Email Address", "name": "Full name", "city": "City",
        "country": "Country"}),
    "google-forms-de.csv": ("google-forms", {
        "signed_at": "Zeitstempel", "email": "E-Mail-Adresse", "name": "Name", "city": "Stadt",
        "country": "Land"}),
    "typeform.csv": ("typeform", {
        "row_id": "#", "signed_at": "Submit Date (UTC)", "name": "What's your name?",
        "email": "Email", "city": "City", "country": "Country"}),
    "mailchimp.csv": ("mailchimp", {
        "email": "Email Address", "first_name": "First Name", "last_name": "Last Name",
        "phone": "Phone Number", "country": "CC", "signed_at": "CONFIRM_TIME", "row_id": "LEID"}),
    "action-network.csv": ("action-network", {
        "row_id": "uuid", "first_name": "first_name", "last_name": "last_name", "email": "email",
        "postcode": "zip_code", "phone": "can2_phone", "city": "can2_user_city",
        "country": "country", "signed_at": "can2_subscription_date"}),
    "nationbuilder.csv": ("nationbuilder", {
        "row_id": "nationbuilder_id", "first_name": "first_name", "last_name": "last_name",
        "email": "email", "phone": "phone_number", "city": "primary_city",
        "country": "primary_country_code", "postcode": "primary_zip", "signed_at": "created_at"}),
    "civicrm.csv": ("civicrm", {
        "row_id": "Contact ID", "first_name": "First Name", "last_name": "Last Name",
        "email": "Email", "city": "City", "country": "Country", "postcode": "Postal Code",
        "phone": "Phone", "signed_at": "Activity Date"}),
    "pytition.csv": ("pytition", {
        "first_name": "first_name", "last_name": "last_name", "phone": "phone", "email": "email"}),
    "excel-de.csv": ("excel-de", {
        "first_name": "Vorname", "last_name": "Nachname", "email": "E-Mail", "city": "Ort",
        "country": "Land", "signed_at": "Unterschrieben am", "postcode": "PLZ",
        "consent": "Name veröffentlichen"}),
    "excel-fr.csv": ("excel-fr", {
        "last_name": "Nom", "first_name": "Prénom", "email": "Adresse e-mail", "city": "Ville",
        "country": "Pays", "signed_at": "Date de signature", "postcode": "Code postal",
        "consent": "Consentement"}),
}


@pytest.mark.parametrize("sample", sorted(EXPECTED))
def test_each_sample_header_maps_to_the_fields_its_format_reads(sample: str) -> None:
    name, expected = EXPECTED[sample]
    assert format_columns(FORMATS[name], header_of(sample)) == expected


def test_every_sample_has_a_test_and_every_format_a_sample() -> None:
    samples = {p.name for p in SAMPLES.glob("*.csv")}
    assert samples == set(EXPECTED) | {"libreoffice-en-us.csv"}  # LibreOffice: the generic format
    assert {name for name, _ in EXPECTED.values()} == set(FORMATS)


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_every_format_is_keyed_by_its_name_and_reads_known_fields(name: str) -> None:
    fmt = FORMATS[name]
    assert fmt.name == name and fmt.title
    assert set(fmt.columns) <= set(FIELDS) and set(fmt.fallbacks) <= set(FIELDS)
    assert all(fmt.columns.values()) and all(fmt.fallbacks.values())
    if fmt.timezone is not None:
        ZoneInfo(fmt.timezone)
    for exclusion in fmt.exclude:
        assert exclusion.reason and exclusion.values
        assert all(v == v.strip().casefold() for v in exclusion.values)


def test_the_platforms_fixed_zones_and_date_orders() -> None:
    assert {n: f.timezone for n, f in FORMATS.items() if f.timezone} == {
        "typeform": "UTC", "mailchimp": "UTC"}
    assert {n: f.date_order for n, f in FORMATS.items() if f.date_order} == {
        "excel-de": DateOrder.DMY, "excel-fr": DateOrder.DMY}


def test_the_columns_an_exclusion_or_fallback_reads_are_in_the_samples() -> None:
    typeform, pytition, mailchimp = FORMATS["typeform"], FORMATS["pytition"], FORMATS["mailchimp"]
    assert [e.column for e in typeform.exclude] == ["Response Type"]
    assert "Response Type" in header_of("typeform.csv")
    assert [e.column for e in pytition.exclude] == ["confirmed"]
    assert "confirmed" in header_of("pytition.csv")
    assert mailchimp.fallbacks["signed_at"] == ("OPTIN_TIME",)
    assert "OPTIN_TIME" in header_of("mailchimp.csv")
    assert match_header(header_of("nationbuilder.csv"), FORMATS["nationbuilder"].fallbacks["country"]) \
        == "primary_country"


def test_exclusions_compare_stripped_and_case_folded() -> None:
    partial, = FORMATS["typeform"].exclude
    assert partial.excludes(" Partial ") and not partial.excludes("completed")
    assert partial.reason == "partial response (not submitted)"
    unconfirmed, = FORMATS["pytition"].exclude
    assert unconfirmed.excludes("False") and unconfirmed.excludes("0") and unconfirmed.excludes("NO")
    assert not unconfirmed.excludes("True") and not unconfirmed.excludes("")


def test_the_newsletter_box_is_not_consent_to_be_named() -> None:
    found = format_columns(FORMATS["pytition"], header_of("pytition.csv"))
    assert "consent" not in found and "subscribed_to_mailinglist" not in found.values()
    assert "consent" not in format_columns(FORMATS["mailchimp"], header_of("mailchimp.csv"))


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_unknown_headers_are_not_mapped(name: str) -> None:
    header = ["Lieblingsfarbe", "Comments", "Referrer", "utm_source", "Signature", "Notes 2"]
    assert format_columns(FORMATS[name], header) == {}


def test_headers_match_exactly_first_then_ignoring_case_spaces_and_punctuation() -> None:
    google = FORMATS["google-forms"]
    assert format_columns(google, ["EMAIL_ADDRESS", "time stamp", "TIMESTAMP"]) == {
        "email": "EMAIL_ADDRESS", "signed_at": "TIMESTAMP"}
    assert format_columns(google, ["email address", "Email Address"]) == {"email": "Email Address"}
    assert format_columns(FORMATS["typeform"], ["submit date (utc)", "#"]) == {
        "row_id": "#", "signed_at": "submit date (utc)"}
    assert format_columns(FORMATS["excel-de"], ["e-mail-adresse", "plz"]) == {
        "email": "e-mail-adresse", "postcode": "plz"}


def test_the_first_header_a_file_has_wins_and_a_cell_is_read_once() -> None:
    nationbuilder = FORMATS["nationbuilder"]
    assert format_columns(nationbuilder, ["mobile_number", "email1"]) == {
        "email": "email1", "phone": "mobile_number"}
    assert format_columns(nationbuilder, ["mobile_number", "phone_number"])["phone"] == "phone_number"
    civicrm = FORMATS["civicrm"]
    assert format_columns(civicrm, ["Home-Email", "Home-City", "Home-Country", "Home-Postal Code",
                                    "Home-Phone-Phone", "Internal Contact ID"]) == {
        "email": "Home-Email", "city": "Home-City", "country": "Home-Country",
        "postcode": "Home-Postal Code", "phone": "Home-Phone-Phone", "row_id": "Internal Contact ID"}
    twice = ExportFormat(name="t", title="T", columns={"name": ("Name",), "last_name": ("Name",)})
    assert format_columns(twice, ["Name"]) == {"name": "Name"}


def test_google_forms_reads_the_timestamp_and_address_in_each_sheets_language() -> None:
    google = FORMATS["google-forms"]
    for timestamp, email in [("Horodateur", "Adresse e-mail"),
                             ("Marca temporal", "Dirección de correo electrónico"),
                             ("Informazioni cronologiche", "Indirizzo email"),
                             ("Carimbo de data/hora", "Endereço de e-mail"),
                             ("Tijdstempel", "E-mailadres"), ("Sygnatura czasowa", "Adres e-mail"),
                             ("Отметка времени", "Адрес электронной почты")]:
        assert format_columns(google, [timestamp, email, "Как вас зовут?"]) == {
            "signed_at": timestamp, "email": email}


def test_match_header_gives_the_cell_as_the_file_writes_it() -> None:
    assert match_header([" Submit Date (UTC) "], ["Submit Date (UTC)"]) == " Submit Date (UTC) "
    assert match_header(["a", "b"], ["c"]) is None
    assert Exclusion("x", frozenset({"no"}), "r").excludes("No\t")
