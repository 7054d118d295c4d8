"""delivery.signers.countries: codes, CLDR names in every locale, refusals (pure, no database)."""

from __future__ import annotations

import pytest
from babel import Locale

from delivery.errors import RowRejected
from delivery.signers.countries import (
    _CODES_ALSO_NAMES,
    _ENGLISH_ALIASES,
    COUNTRY_CODES,
    _all_locales_table,
    _english_table,
    _key,
    _spelling_table,
    _verdict,
    canonical_country,
    iso_country_names,
)


@pytest.mark.parametrize(("typed", "canonical"), [
    ("am", "Armenia"), ("AM", "Armenia"), ("ARM", "Armenia"), ("arm", "Armenia"),
    ("U.S.A.", "United States"), ("U.S.", "United States"), ("usa", "United States"),
    ("UK", "United Kingdom"), ("Great Britain", "United Kingdom"), ("NGA", "Nigeria"),
    ("XK", "Kosovo"), ("Kosovo", "Kosovo"), ("St. Lucia", "Saint Lucia"),
])
def test_codes_and_english_forms(typed: str, canonical: str) -> None:
    assert canonical_country(typed) == canonical


@pytest.mark.parametrize(("typed", "canonical"), [
    ("Armenien", "Armenia"), ("Arménie", "Armenia"), ("Հայաստան", "Armenia"), ("Армения", "Armenia"),
    ("Russland", "Russian Federation"), ("Россия", "Russian Federation"),
    ("Deutschland", "Germany"), ("Allemagne", "Germany"), ("ドイツ", "Germany"), ("ألمانيا", "Germany"),
    ("İran", "Iran"), ("대한민국", "South Korea"), ("Türkei", "Türkiye"), ("Estados Unidos", "United States"),
])
def test_names_in_other_languages(typed: str, canonical: str) -> None:
    assert canonical_country(typed) == canonical


def test_key_ignores_case_dots_spacing_composition_and_apostrophes() -> None:
    assert canonical_country("  ARMENIEN ") == "Armenia"
    assert canonical_country("u.  s.a") == "United States"
    assert canonical_country("Arme\u0301nie") == "Armenia"  # decomposed é
    assert canonical_country("Côte d\u2019Ivoire") == "Côte d'Ivoire"


def test_every_canonical_name_and_code_maps_to_that_canonical_name() -> None:
    for alpha2, (alpha3, name) in COUNTRY_CODES.items():
        assert canonical_country(name) == name
        assert canonical_country(alpha3) == name
        if alpha2 != "NA":  # refused: see below
            assert canonical_country(alpha2) == name


def test_canonical_names_stay_those_stored_signers_carry() -> None:
    assert len(COUNTRY_CODES) == 250
    for alpha2, name in [("RU", "Russian Federation"), ("IR", "Iran"), ("KR", "South Korea"),
                         ("TR", "Türkiye"), ("US", "United States"), ("AM", "Armenia"),
                         ("CD", "Congo, The Democratic Republic of the"), ("XK", "Kosovo")]:
        assert COUNTRY_CODES[alpha2][1] == name


def test_iso_country_names_cover_the_table() -> None:
    assert iso_country_names() == {name for _, name in COUNTRY_CODES.values()}
    assert {canonical_country(alpha3) for alpha3, _ in COUNTRY_CODES.values()} == iso_country_names()


@pytest.mark.parametrize("typed", ["NA", "na", "Na"])
def test_na_is_refused_naming_namibia(typed: str) -> None:
    with pytest.raises(RowRejected, match="Namibia") as refused:
        canonical_country(typed)
    assert "not available" in refused.value.reason
    assert canonical_country("NAM") == canonical_country("Namibia") == "Namibia"


@pytest.mark.parametrize("typed", ["N/A", "n/a", "N.A.", "-", "—", "none", "Unknown"])
def test_cells_saying_no_country_read_as_empty(typed: str) -> None:
    assert canonical_country(typed) == ""


def test_empty_stays_empty() -> None:
    assert canonical_country("") == ""


@pytest.mark.parametrize(("typed", "meanings"), [
    ("Kongo", ("Congo", "Congo, The Democratic Republic of the")),  # CG in 38 locales, CD in nb
    ("Nigeri", ("Niger", "Nigeria")),  # NG in sq, NE in naq
    ("Sant Martin", ("Saint Martin (French part)", "Sint Maarten (Dutch part)")),
])
def test_a_spelling_locales_give_two_territories_is_refused(typed: str,
                                                            meanings: tuple[str, str]) -> None:
    with pytest.raises(RowRejected) as refused:
        canonical_country(typed)
    assert refused.value.reason == (f"country {typed!r} can mean {meanings[0]} or {meanings[1]}: "
                                    "write its ISO code or its English name")


def test_a_code_another_locale_writes_as_a_name_counts_only_in_capitals() -> None:
    assert canonical_country("NGA") == "Nigeria"
    for typed in ("Nga", "nga"):  # Vietnamese for Russia
        with pytest.raises(RowRejected, match="Nigeria or Russian Federation"):
            canonical_country(typed)


def test_codes_also_names_matches_cldr() -> None:
    codes = {_key(code) for alpha2, (alpha3, _) in COUNTRY_CODES.items() for code in (alpha2, alpha3)}
    english, everywhere = _english_table(), _all_locales_table()
    assert {key for key in codes if set(everywhere.get(key, ())) - set(english[key])} == _CODES_ALSO_NAMES


def test_the_english_table_wins_and_is_unambiguous() -> None:
    table = _spelling_table([("NG", "NGA"), ("RU", "Nga"), ("FR", "France"), ("DE", "France")])
    assert table == {"nga": ("Nigeria", "Russian Federation"),
                     "france": ("France", "Germany")}
    assert all(len(names) == 1 for names in _english_table().values())


def test_regions_and_groupings_are_not_countries() -> None:
    assert _spelling_table([("150", "Europe"), ("EU", "European Union"), ("ZZ", "Unknown Region")]) == {}
    assert canonical_country("European Union") == "European Union"


def test_english_aliases_are_only_what_the_table_and_babels_english_lack() -> None:
    known = _spelling_table([
        *Locale("en").territories.items(),
        *((alpha2, spelling) for alpha2, (alpha3, name) in COUNTRY_CODES.items()
          for spelling in (alpha2, alpha3, name))])
    assert [alias for _, alias in _ENGLISH_ALIASES if _key(alias) in known] == []


@pytest.mark.parametrize("typed", ["Kurdistan", "Scotland", "Artsakh", "America", "Korea"])
def test_unknown_text_is_kept_as_typed(typed: str) -> None:
    assert canonical_country(typed) == typed


def test_codes_and_english_names_do_not_load_every_locale() -> None:
    _all_locales_table.cache_clear()
    _verdict.cache_clear()
    assert [canonical_country(typed) for typed in ("DE", "FRA", "Armenia", "Russia", "UK")] == [
        "Germany", "France", "Armenia", "Russian Federation", "United Kingdom"]
    assert _all_locales_table.cache_info().currsize == 0
    assert canonical_country("Allemagne") == "Germany"
    assert _all_locales_table.cache_info().currsize == 1
