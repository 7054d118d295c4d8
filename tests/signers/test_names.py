"""Name checks of delivery.signers.names (pure)."""

from __future__ import annotations

import pytest

from delivery.signers.names import (
    ENCODING_DEBRIS,
    HEX_DIGEST,
    ID_CODE,
    MOJIBAKE_PAIRS,
    NO_LETTER,
    join_name,
    looks_mojibake,
    name_problem,
)
from delivery.signers.normalize import clean_text

NORMAL_NAMES = [
    "María García", "Łukasz Ørsted", "O'Neil", "Jean-Luc Picard", "Անահիտ Սարգսյան",
    "محمد الحسن", "می\u200cنا رضایی", "आरव शर्मा", "王伟", "Alex 🏳️\u200d🌈", "Louis XIV",
    "J. R. R. Tolkien", "Mary-Kate O’Brien", "Nguyễn Văn A", "John Smith 2nd", "Anna 12",
    "Anna 1984", "Signer 39999",
    "Zoë Ørsted", "Þórður Ðào", "김민준", "山田太郎", "Ana_María", "Who? Me", "Abebe Bikila",
    "Ἀριστοτέλης", "Saoirse Ní Bhraonáin", "Fatima az-Zahra", "deadbeef cafe",
]


@pytest.mark.parametrize("name", NORMAL_NAMES)
def test_normal_names_pass(name: str) -> None:
    assert name_problem(clean_text(name)) is None


@pytest.mark.parametrize(("name", "reason"), [
    ("12", NO_LETTER), ("---", NO_LETTER), ("🙂", NO_LETTER), ("🏳️\u200d🌈 🎉", NO_LETTER),
    ("...", NO_LETTER), ("٣٤", NO_LETTER),
    ("J??rg M??ller", ENCODING_DEBRIS), ("???? ????", ENCODING_DEBRIS), ("M__ller", ENCODING_DEBRIS),
    ("J\ufffdrg", ENCODING_DEBRIS), ("?a", ENCODING_DEBRIS), ("??", ENCODING_DEBRIS),
    ("_ _", ENCODING_DEBRIS), ("?? 123456", ENCODING_DEBRIS),
    ("da39a3ee5e6b4b0d3255bfef95601890afd80709", HEX_DIGEST),
    ("d41d8cd98f00b204e9800998ecf8427e", HEX_DIGEST), ("Anna D41D8CD98F00B204", HEX_DIGEST),
    ("deadbeefdeadbeef", HEX_DIGEST),
    ("AN0123456", ID_CODE), ("123-45-6789", ID_CODE), ("Anna 1234567", ID_CODE),
    ("John ID:A1B2C3", ID_CODE), ("123", NO_LETTER), ("Иван ٣٤٥٦٧٨", ID_CODE), ("ID123", ID_CODE),
])
def test_problems(name: str, reason: str) -> None:
    assert name_problem(name) == reason


def test_encoding_reason_says_what_to_do() -> None:
    assert "UTF-8" in ENCODING_DEBRIS and "encoding" in ENCODING_DEBRIS


@pytest.mark.parametrize(("first", "last", "printed"), [
    ("伟", "王", "王伟"), ("민준", "김", "김민준"), ("太郎", "山田", "山田太郎"),
    ("さくら", "佐藤", "佐藤さくら"), ("ナオミ", "ワタナベ", "ワタナベナオミ"),
    ("溥仪", "爱新觉罗", "爱新觉罗溥仪"), ("민 준", "김", "김민 준"),
    ("Wei", "王", "Wei 王"), ("伟", "Wang", "伟 Wang"), ("Ana", "García", "Ana García"),
    ("Անահիտ", "Սարգսյան", "Անահիտ Սարգսյան"), ("", "王", "王"), ("伟", "", "伟"),
    ("Ana", "", "Ana"), ("", "", ""),
])
def test_join_name(first: str, last: str, printed: str) -> None:
    assert join_name(first, last) == printed


def test_pairs_are_derived_from_decoding() -> None:
    assert {"Ã©", "Ã¶", "Â\u00a0", "Â£", "Ð¸", "Õ¡", "Ô±", "Ãœ"} <= MOJIBAKE_PAIRS
    assert all(len(pair) == 2 and "Â" <= pair[0] <= "ß" for pair in MOJIBAKE_PAIRS)


@pytest.mark.parametrize("text", [
    "MÃ¼ller", "ZoÃ«", "JosÃ©", "Ã˜rsted", "Ð˜Ð²Ð°Ð½", "Ô±Õ¶Õ¡Õ°Õ«Õ¿", "O€™Brien".replace("€", "â€"),
    "Â£5", "Ã ", "MarÃa", "SÃ£o Paulo", "Å\u0081ukasz", "Ä\u008cech", "ï»¿Anna", "Jï¿½rg",
    "‘Anna’".encode().decode("cp1252"),
])
def test_mojibake_is_found(text: str) -> None:
    assert looks_mojibake(text)


@pytest.mark.parametrize("text", [
    "Zoë", "São Paulo", "Ørsted", "Ðorđe", "Þórður", "Đorđe", "Ðào", "Ãnh", "JOSÉ GARCÍA",
    "ANDRÉ MÜLLER", "Müller", "Björk Guðmundsdóttir", "ÞÓRA", "ÅSA", "Øyvind", "Ñandú", "ÆSIR",
    "Ängelholm", "Ödön", "Ünal", "ÐÀO", "Ðặng Văn", "Nguyễn Thị Ánh", "Ólafur Ragnar Grímsson",
    "Ævar Þór", "Çağla", "Émile Zola", "John Smith", "", "Ôn Như Hầu", "Âu Cơ", "Ấn",
])
def test_correct_text_is_not_mojibake(text: str) -> None:
    assert not looks_mojibake(text)


def test_known_false_positive_is_documented() -> None:
    # An all-capital Czech/Slovak name with Ú/Ó before Š/Ž reads as mojibake (module docstring).
    assert looks_mojibake("KÚŠ")
