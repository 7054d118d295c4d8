"""Field rules of delivery.signers.normalize and delivery.signers.intake.validate_signer (pure, no
database)."""

from __future__ import annotations

import hashlib
import unicodedata
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from delivery.errors import RowRejected
from delivery.signers.intake import RowRules, validate_signer
from delivery.signers.normalize import (
    anonymous_key,
    clean_text,
    email_key,
    normalize_email,
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


def test_anonymous_key_with_identifying_cells_tells_namesakes_apart() -> None:
    plain = anonymous_key("María García", "Madrid", "Spain")
    first = anonymous_key("María García", "Madrid", "Spain", ["postcode=28001"])
    second = anonymous_key("María García", "Madrid", "Spain", ["postcode=28013"])
    assert len({plain, first, second}) == 3
    assert first == anonymous_key("maría garcía", "madrid", "spain", ["postcode=28001"])


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


@pytest.mark.parametrize("name", ["<script>alert(1)</script>", "{{ config.items() }}", "{% include 'x' %}",
                                  "url(file:///etc/passwd)", "Robert'); DROP TABLE signers;--",
                                  "=HYPERLINK(\"http://x\")", "${jndi:ldap://x}"])
def test_hostile_names_stay_plain_text(name: str) -> None:
    assert validate_signer(signer(name=name), now=NOW, source="t").name == name


def test_now_must_be_aware() -> None:
    with pytest.raises(ValueError, match="aware"):
        validate_signer(signer(), now=datetime(2026, 1, 1), source="t")


def test_dates_at_the_edge_of_the_calendar_are_rejected_not_crashing() -> None:
    for text in ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-12:00"):
        with pytest.raises(RowRejected, match=r"out of range|future"):
            validate_signer(signer(signed_at=text), now=NOW, source="t")


def test_a_single_add_dates_an_empty_date_now_and_reads_an_aware_datetime() -> None:
    assert validate_signer(signer(signed_at=None), now=NOW, source="t").signed_at == NOW
    assert validate_signer(signer(signed_at="  "), now=NOW, source="t").signed_at == NOW
    yerevan = timezone(timedelta(hours=4))
    got = validate_signer(signer(signed_at=datetime(2026, 1, 1, 10, tzinfo=yerevan)), now=NOW,
                          source="t").signed_at
    assert got == datetime(2026, 1, 1, 6, tzinfo=UTC) and got.tzinfo == UTC
    with pytest.raises(RowRejected, match="in the future"):
        validate_signer(signer(signed_at=NOW + timedelta(days=1)), now=NOW, source="t")


def test_a_file_row_with_an_empty_date_is_rejected_naming_the_option() -> None:
    rules = RowRules(empty_date_is_now=False)
    with pytest.raises(RowRejected, match="--signed-at-missing import-time"):
        validate_signer(signer(signed_at=""), now=NOW, source="t", rules=rules)


def test_naive_times_are_read_in_the_rules_zone() -> None:
    rules = RowRules(zone=ZoneInfo("Asia/Yerevan"), empty_date_is_now=False)
    # 55 minutes before now in Yerevan: accepted, not "in the future" as a UTC reading made it
    got = validate_signer(signer(signed_at="2026-11-27 15:05"), now=NOW, source="t", rules=rules)
    assert got.signed_at == datetime(2026, 11, 27, 11, 5, tzinfo=UTC)
    naive = validate_signer(signer(signed_at=datetime(2026, 11, 27, 15, 5)), now=NOW, source="t",
                            rules=rules)
    assert naive.signed_at == got.signed_at


def test_consent_absent_follows_the_rules_and_an_empty_answer_withholds() -> None:
    fields = signer()
    del fields["consent"]
    assert validate_signer(fields, now=NOW, source="t").consent is True
    assert validate_signer(fields, now=NOW, source="t",
                           rules=RowRules(consent_default=False)).consent is False
    assert validate_signer(signer(consent=""), now=NOW, source="t").consent is False
    assert validate_signer(signer(consent="Nein"), now=NOW, source="t").consent is False
    assert validate_signer(signer(consent=True), now=NOW, source="t").consent is True


def test_first_and_last_names_join_family_first_in_cjk_scripts() -> None:
    def joined(first: str, last: str) -> str:
        fields = signer(first_name=first, last_name=last)
        del fields["name"]
        return validate_signer(fields, now=NOW, source="t").name

    assert joined("伟", "王") == "王伟"
    assert joined("María", "García") == "María García"


@pytest.mark.parametrize("name", ["____", "?? ???", "da39a3ee5e6b4b0d3255bfef95601890afd80709",
                                  "AN0123456", "12345"])
def test_names_that_are_no_names_are_rejected(name: str) -> None:
    with pytest.raises(RowRejected, match="name"):
        validate_signer(signer(name=name), now=NOW, source="t")


def test_identifying_cells_key_signers_without_an_email() -> None:
    rules = RowRules(identity=("postcode",))
    one = validate_signer(signer(email="", postcode="28001"), now=NOW, source="t", rules=rules)
    two = validate_signer(signer(email="", postcode="28013"), now=NOW, source="t", rules=rules)
    empty = validate_signer(signer(email="", postcode=""), now=NOW, source="t", rules=rules)
    assert one.email_key != two.email_key
    # an empty cell keys the signer as a file without the column does
    assert empty.email_key == anonymous_key("Zoë Ørsted", "Århus", "Denmark")


def test_lone_surrogates_are_rejected() -> None:
    from datetime import UTC, datetime

    from delivery.errors import RowRejected
    from delivery.signers.intake import validate_signer

    with pytest.raises(RowRejected, match="surrogate"):
        validate_signer({"name": "Anna \ud800", "email": "a@example.net"}, now=datetime.now(UTC), source="t")
