"""Field rules of delivery.signers.normalize and delivery.signers.intake.validate_signer (pure, no
database)."""

from __future__ import annotations

import hashlib
import unicodedata
from datetime import UTC, datetime, timedelta, timezone

import pytest

from delivery.errors import RowRejected
from delivery.signers.intake import validate_signer
from delivery.signers.normalize import (
    anonymous_key,
    canonical_country,
    clean_text,
    email_key,
    normalize_email,
    parse_consent,
    parse_signed_at,
)

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def signer(**fields: object) -> dict[str, object]:
    base: dict[str, object] = {"name": "Zoë Ørsted", "email": "zoe@example.org", "city": "Århus",
                               "country": "DK", "signed_at": "2026-11-20", "consent": "yes"}
    base.update(fields)
    return base


def test_text_is_nfc_trimmed_and_collapsed() -> None:
    assert clean_text("  Zoe\u0308 \t Ørsted\n ") == "Zoë Ørsted"
    assert unicodedata.is_normalized("NFC", clean_text("Zoe\u0308"))
    assert clean_text("Ana\u00a0\u3000María") == "Ana María"


def test_controls_and_bidi_overrides_are_removed() -> None:
    assert clean_text("Ev\u202eil\u202c Name") == "Evil Name"
    assert clean_text("\u2066Bob\u2069 \u2067Ali\u2068") == "Bob Ali"
    assert clean_text("Nul\x00l\x07 \x1b[31mRed") == "Null [31mRed"
    assert clean_text("Soft\u00adhy\u200bphen\ufeff") == "Softhyphen"


def test_joiners_that_scripts_need_are_kept() -> None:
    persian = "می\u200cخواهم"
    devanagari = "क्\u200dष"
    family = "👨\u200d👩\u200d👧"
    rainbow = "🏳️\u200d🌈"
    scotland = "🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f"
    for text in (persian, devanagari, family, rainbow, scotland):
        assert clean_text(f"Sam {text}") == f"Sam {text}"
    # Stray joiners at word edges and lone tag characters are invisible noise.
    assert clean_text("\u200dAli\u200c \u200dBaba\u200d\u200d") == "Ali Baba"
    assert clean_text("a\U000e0067b") == "ab"


def test_email_is_normalised_and_checked() -> None:
    assert normalize_email("  ZOË@Example.ORG ") == "zoë@example.org"
    assert normalize_email("Zoe\u0308@example.org") == normalize_email("ZOË@EXAMPLE.ORG")
    assert normalize_email("ü.x+tag@münchen.de") == "ü.x+tag@münchen.de"
    assert normalize_email("a@xn--80ak6aa92e.com") == "a@xn--80ak6aa92e.com"
    for bad in ("plain", "a@b", "a@b.c", "@example.org", "a b@example.org", "a..b@example.org",
                ".a@example.org", "a@example..org", "a\u202e@example.org", "a:b@example.org",
                "x" * 65 + "@example.org", "a@" + "b" * 250 + ".org"):
        with pytest.raises(RowRejected, match="invalid e-mail"):
            normalize_email(bad)


def test_email_key_is_sha256_of_the_normalised_address() -> None:
    expected = hashlib.sha256("zoë@example.org".encode()).hexdigest()
    assert email_key(normalize_email("ZOE\u0308@EXAMPLE.ORG")) == expected


def test_anonymous_key_ignores_case_and_form_and_space() -> None:
    one = anonymous_key("Zoë Ørsted", "Århus", "Denmark")
    assert one == anonymous_key("ZOE\u0308  ØRSTED", " århus", "denmark")
    assert one == hashlib.sha256("noemail:zoë ørsted|århus|denmark".encode()).hexdigest()
    assert one != anonymous_key("Zoë Ørsted", "Aarhus", "Denmark")


@pytest.mark.parametrize(("typed", "canonical"), [
    ("AM", "Armenia"), ("arm", "Armenia"), ("armenia", "Armenia"), ("Հայաստան", "Armenia"),
    ("U.S.A.", "United States"), ("us", "United States"), ("GBR", "United Kingdom"),
    ("UK", "United Kingdom"), ("ir", "Iran"), ("Iran, Islamic Republic of", "Iran"),
    ("Turkey", "Türkiye"), ("dk", "Denmark"), ("ci", "Côte d'Ivoire"), ("Kurdistan", "Kurdistan"),
    ("", ""),
])
def test_countries_map_to_one_english_short_name(typed: str, canonical: str) -> None:
    assert canonical_country(typed) == canonical


def test_every_iso_country_code_is_known() -> None:
    from delivery.signers.normalize import COUNTRIES

    entries = [e for e in COUNTRIES.replace("\n", "").split(";") if e]
    assert len(entries) == 249
    for entry in entries:
        alpha2, alpha3, name, *_ = entry.split("|")
        assert canonical_country(alpha2.lower()) == canonical_country(alpha3) == name


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-11-27", datetime(2026, 11, 27, tzinfo=UTC)),
    ("2026-11-27T14:30:00+04:00", datetime(2026, 11, 27, 10, 30, tzinfo=UTC)),
    ("2026-11-27T11:00:00Z", datetime(2026, 11, 27, 11, tzinfo=UTC)),
    ("2026-11-27 11:00 UTC", datetime(2026, 11, 27, 11, tzinfo=UTC)),
    ("2026/11/27", datetime(2026, 11, 27, tzinfo=UTC)),
    ("27/11/2026", datetime(2026, 11, 27, tzinfo=UTC)),
    ("27.11.2026", datetime(2026, 11, 27, tzinfo=UTC)),
    ("5.3.2026 09:15", datetime(2026, 3, 5, 9, 15, tzinfo=UTC)),
    ("27-11-2026 10:20:30", datetime(2026, 11, 27, 10, 20, 30, tzinfo=UTC)),
    ("27 Nov 2026", datetime(2026, 11, 27, tzinfo=UTC)),
    ("3 September 2026", datetime(2026, 9, 3, tzinfo=UTC)),
    ("Nov 27, 2026", datetime(2026, 11, 27, tzinfo=UTC)),
])
def test_dates_iso_and_day_first(text: str, expected: datetime) -> None:
    assert parse_signed_at(text, now=NOW) == expected


def test_dates_naive_is_utc_empty_is_now_and_aware_is_converted() -> None:
    assert parse_signed_at(None, now=NOW) == NOW
    assert parse_signed_at("  ", now=NOW) == NOW
    assert parse_signed_at(datetime(2026, 1, 1, 10), now=NOW) == datetime(2026, 1, 1, 10, tzinfo=UTC)
    yerevan = timezone(timedelta(hours=4))
    got = parse_signed_at(datetime(2026, 1, 1, 10, tzinfo=yerevan), now=NOW)
    assert got == datetime(2026, 1, 1, 6, tzinfo=UTC) and got.tzinfo == UTC


def test_future_dates_are_rejected_beyond_clock_skew() -> None:
    assert parse_signed_at("2026-11-27T12:04:00Z", now=NOW) == NOW + timedelta(minutes=4)
    for future in ("2026-11-27T12:06:00Z", "28/11/2026", NOW + timedelta(days=1)):
        with pytest.raises(RowRejected, match="in the future"):
            parse_signed_at(future, now=NOW)


@pytest.mark.parametrize("text", ["11/27/2026", "31/02/2026", "yesterday", "27 Foo 2026", "2026-13-01"])
def test_unreadable_dates_are_rejected(text: str) -> None:
    with pytest.raises(RowRejected, match="unreadable date"):
        parse_signed_at(text, now=NOW)


def test_consent_values() -> None:
    for yes in ("yes", "Y", "TRUE", "t", "1", "on", "", " ", None, True):
        assert parse_consent(yes) is True
    for no in ("no", "N", "false", "F", "0", "off", False):
        assert parse_consent(no) is False
    with pytest.raises(RowRejected, match="consent"):
        parse_consent("maybe")


def test_validate_signer_normalises_every_field() -> None:
    got = validate_signer(signer(name=" Zoe\u0308  Ørsted ", email="ZOË@EXAMPLE.ORG",
                                 city="A\u030arhus", country="dnk", consent="n"),
                          now=NOW, source="test")
    assert (got.name, got.city, got.country, got.consent) == ("Zoë Ørsted", "Århus", "Denmark", False)
    assert got.email_key == email_key("zoë@example.org")
    assert got.signed_at == datetime(2026, 11, 20, tzinfo=UTC) and got.source == "test"


def test_validate_signer_without_email_uses_the_name_and_place_key() -> None:
    got = validate_signer(signer(email="", country="Denmark"), now=NOW, source="t")
    assert got.email_key == anonymous_key("Zoë Ørsted", "Århus", "Denmark")
    assert validate_signer(signer(email=None, country="DK"), now=NOW, source="t").email_key == \
        got.email_key


@pytest.mark.parametrize(("fields", "reason"), [
    ({"name": ""}, "name is empty"),
    ({"name": " \u202e\u200b "}, "name is empty"),
    ({"name": "x" * 201}, "name longer than 200"),
    ({"city": "c" * 101}, "city longer than 100"),
    ({"country": "k" * 101}, "country longer than 100"),
    ({"email": "nope"}, "invalid e-mail"),
    ({"signed_at": "2030-01-01"}, "in the future"),
    ({"consent": "perhaps"}, "consent"),
])
def test_validate_signer_rejections(fields: dict[str, object], reason: str) -> None:
    with pytest.raises(RowRejected, match=reason) as caught:
        validate_signer(signer(**fields), now=NOW, source="t")
    assert "Zoë" not in caught.value.reason and "zoe@" not in caught.value.reason


def test_limits_are_counted_after_cleaning() -> None:
    name = "x" * 200 + "\u202e" * 50 + "   "
    assert validate_signer(signer(name=name), now=NOW, source="t").name == "x" * 200


@pytest.mark.parametrize("name", ["<script>alert(1)</script>", "{{ 7*7 }}", "{% include 'x' %}",
                                  "url(file:///etc/passwd)", "Robert'); DROP TABLE signers;--",
                                  "=HYPERLINK(\"http://x\")", "${jndi:ldap://x}"])
def test_hostile_names_stay_plain_text(name: str) -> None:
    assert validate_signer(signer(name=name), now=NOW, source="t").name == name


def test_now_must_be_aware() -> None:
    with pytest.raises(ValueError, match="aware"):
        validate_signer(signer(), now=datetime(2026, 1, 1), source="t")


def test_dates_at_the_edge_of_the_calendar_are_rejected_not_crashing() -> None:
    from datetime import UTC, datetime

    from delivery.errors import RowRejected
    from delivery.signers.normalize import parse_signed_at

    now = datetime(2026, 11, 27, tzinfo=UTC)
    for text in ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-12:00"):
        with pytest.raises(RowRejected, match=r"out of range|future"):
            parse_signed_at(text, now=now)


def test_lone_surrogates_are_rejected() -> None:
    from datetime import UTC, datetime

    from delivery.errors import RowRejected
    from delivery.signers.intake import validate_signer

    with pytest.raises(RowRejected, match="surrogate"):
        validate_signer({"name": "Anna \ud800", "email": "a@example.net"}, now=datetime.now(UTC), source="t")
