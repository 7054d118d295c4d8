"""Reading signer CSV files (delivery.signers.intake): encodings, delimiters, columns, line numbers."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from delivery.errors import InputRefused
from delivery.signers.intake import Excluded, Rejected, SignerInput, open_signer_csv
from delivery.signers.normalize import email_key
from delivery.signers.options import FIELDS, parse_pairs
from tests.support.imports import decided

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
HEADER = "name,email,city,country,signed_at,consent\r\n"
ZOE = "Zoë Ørsted,zoe@example.org,Århus,DK,27/11/2026,yes\r\n"


def write(tmp_path: Path, data: bytes, name: str = "signers.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def read(path: Path, **kwargs: Any) -> list[SignerInput | Rejected]:
    with open_signer_csv(path, decided(**kwargs)) as signer_csv:
        return [r for r in signer_csv.records(now=NOW, source="test") if not isinstance(r, Excluded)]


def accepted(records: list[SignerInput | Rejected]) -> list[SignerInput]:
    return [r for r in records if isinstance(r, SignerInput)]


def rejected(records: list[SignerInput | Rejected]) -> list[Rejected]:
    return [r for r in records if isinstance(r, Rejected)]


def assert_zoe(record: SignerInput | Rejected) -> None:
    assert isinstance(record, SignerInput)
    assert (record.name, record.city, record.country) == ("Zoë Ørsted", "Århus", "Denmark")
    assert record.email_key == email_key("zoe@example.org")
    assert record.signed_at == datetime(2026, 11, 27, tzinfo=UTC) and record.consent


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be"])
def test_utf8_with_and_without_bom_and_utf16_with_bom(tmp_path: Path, encoding: str) -> None:
    data = (HEADER + ZOE).encode(encoding)
    if encoding in ("utf-16-le", "utf-16-be"):  # the BOM written explicitly, in both byte orders
        data = "\ufeff".encode(encoding) + data
    [record] = read(write(tmp_path, data))
    assert_zoe(record)


@pytest.mark.parametrize("delimiter", [";", "\t"])
def test_semicolon_and_tab_delimiters(tmp_path: Path, delimiter: str) -> None:
    text = (HEADER + ZOE).replace(",", delimiter) + f'"Doe, Jane"{delimiter}{delimiter}Paris{delimiter}FR\n'
    records = read(write(tmp_path, text.encode()))
    assert_zoe(records[0])
    assert isinstance(records[1], SignerInput) and records[1].name == "Doe, Jane"


def test_quoted_fields_with_delimiters_and_newlines_keep_physical_line_numbers(tmp_path: Path) -> None:
    text = (HEADER
            + '"Ørsted, Zoë",zoe@example.org,"Århus\nJylland",DK,,\n'   # lines 2-3
            + '"Multi\r\nLine\r\nName",,Paris,FR,,\n'                    # lines 4-6
            + "\n"                                                       # 7: blank, skipped
            + ",,nameless,FR,,\n"                                        # 8
            + '"a ""quoted"" name",bad-email,x,y,,\n')                   # 9
    records = read(write(tmp_path, text.encode()))
    first, second = accepted(records)
    assert (first.name, first.city) == ("Ørsted, Zoë", "Århus Jylland")
    assert second.name == "Multi Line Name"
    assert [(r.line, r.reason) for r in rejected(records)] == [
        (8, "name is empty"), (9, "invalid e-mail address")]
    assert rejected(records)[1].fields == ('a "quoted" name', "bad-email", "x", "y", "", "")


def test_a_100000_character_field_is_rejected_by_length_not_by_crashing(tmp_path: Path) -> None:
    text = HEADER + "x" * 100_000 + ",a@example.org,,,,\n" + ZOE
    records = read(write(tmp_path, text.encode()))
    [reject] = rejected(records)
    assert (reject.line, reject.reason) == (2, "name longer than 200 characters")
    assert reject.fields[0] == "x" * 100_000
    assert_zoe(records[1])


@pytest.mark.parametrize("size", [200_000, 2_000_000])  # within the csv module's limit, beyond it
def test_a_field_longer_than_a_field_may_be_is_one_rejected_row(tmp_path: Path, size: int) -> None:
    text = HEADER + "y" * size + ",a@example.org,,,,\n" + ZOE
    [reject, zoe] = read(write(tmp_path, text.encode()))
    assert isinstance(reject, Rejected) and reject.line == 2
    assert "longer than 131,072 characters" in reject.reason
    assert_zoe(zoe)


def test_extra_non_empty_fields_are_rejected_missing_ones_are_empty(tmp_path: Path) -> None:
    text = HEADER + "Ann,,Rome,IT,,,,\n" + "Bob,,Oslo\n" + "Cid,,Lyon,FR,,,surprise\n"
    records = read(write(tmp_path, text.encode()))
    assert [r.name for r in accepted(records)] == ["Ann", "Bob"]
    assert [(r.line, r.reason) for r in rejected(records)] == [(4, "7 fields, the header has 6")]


def test_empty_file_and_blank_file_are_refused(tmp_path: Path) -> None:
    for data in (b"", b"\xef\xbb\xbf", b"\n \r\n"):
        with pytest.raises(InputRefused, match="is empty"):
            read(write(tmp_path, data))


def test_a_header_too_long_or_too_wide_is_refused_before_any_row_is_read(tmp_path: Path) -> None:
    long_line = ("name,email," + "x" * 2_000_000 + "\nAnn,ann@example.org\n").encode()
    with pytest.raises(InputRefused, match=r"header line .* longer than 1,048,576 characters"):
        read(write(tmp_path, long_line))
    wide = ("name,email," + ",".join(f"c{i}" for i in range(3000)) + "\nAnn,ann@example.org\n").encode()
    with pytest.raises(InputRefused, match="3,002 columns, more than 2,000"):
        read(write(tmp_path, wide))


def test_header_only_file_yields_nothing(tmp_path: Path) -> None:
    assert read(write(tmp_path, HEADER.encode("utf-8-sig"))) == []


def test_binary_file_is_refused(tmp_path: Path) -> None:
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))
    with pytest.raises(InputRefused, match="NUL bytes"):
        read(write(tmp_path, png))
    with pytest.raises(InputRefused, match="not UTF-8"):
        read(write(tmp_path, b"\xff\xd8\xff\xe0JFIF" + bytes(range(1, 256))))


def test_utf16_without_bom_is_refused_rather_than_guessed(tmp_path: Path) -> None:
    path = write(tmp_path, (HEADER + ZOE).encode("utf-16-le"))
    with pytest.raises(InputRefused, match="without a byte-order mark"):
        read(path)
    assert_zoe(read(path, encoding="utf-16-le")[0])


def test_cp1252_is_refused_without_encoding_and_correct_with_it(tmp_path: Path) -> None:
    path = write(tmp_path, (HEADER + ZOE).encode("cp1252"))
    with pytest.raises(InputRefused, match="--encoding") as caught:
        read(path)
    assert str(path) in str(caught.value)
    assert f"byte 0xEB at offset {len(HEADER) + 2}" in str(caught.value)  # the ë of Zoë
    assert_zoe(read(path, encoding="cp1252")[0])
    assert_zoe(read(path, encoding="windows-1252")[0])


def test_an_explicit_encoding_that_does_not_fit_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, (HEADER + ZOE).encode("cp1252") + b"\x81")  # undefined in cp1252
    with pytest.raises(InputRefused, match="does not decode as cp1252"):
        read(path, encoding="cp1252")
    with pytest.raises(InputRefused, match="unknown encoding"):
        read(path, encoding="klingon-8")


def test_an_explicit_encoding_on_a_file_with_bom_drops_the_bom(tmp_path: Path) -> None:
    assert_zoe(read(write(tmp_path, (HEADER + ZOE).encode("utf-8-sig")), encoding="utf-8")[0])
    utf16 = ("\ufeff" + HEADER + ZOE).encode("utf-16-le")
    assert_zoe(read(write(tmp_path, utf16), encoding="utf-16-le")[0])


def test_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputRefused, match="no such file"):
        read(tmp_path / "nope.csv")


def test_export_aliases_first_last_name_signed_on_country_code_and_zip(tmp_path: Path) -> None:
    text = ("First Name;Last Name;E-mail Address;Town;Zip;Country Code;Signed On;Public\n"
            "Zoë;Ørsted;zoe@example.org;Århus;8000;DK;27 Nov 2026;Y\n"
            ";Solo;;Yerevan;0010;AM;27.11.2026;0\n")
    first, second = read(write(tmp_path, text.encode()))
    assert_zoe(first)
    assert isinstance(second, SignerInput)
    assert (second.name, second.country, second.consent) == ("Solo", "Armenia", False)


def test_full_name_alias_and_unknown_columns_ignored(tmp_path: Path) -> None:
    text = "Full Name,Email,Postcode,Phone\nAnn Lee,ann@example.org,12345,555\n"
    [record] = read(write(tmp_path, text.encode()))
    assert isinstance(record, SignerInput)
    assert (record.name, record.city, record.country, record.consent) == ("Ann Lee", "", "", True)


def test_column_map_names_other_columns(tmp_path: Path) -> None:
    text = "Unterzeichner,Ort,Land,Datum\nZoë Ørsted,Århus,Dänemark,27.11.2026\n"
    mapping = dict(parse_pairs("--map", ["name=Unterzeichner", " city=Ort", "country = Land",
                                         "signed_at=datum"], fields=FIELDS))
    [record] = read(write(tmp_path, text.encode()), column_map=mapping)
    assert isinstance(record, SignerInput)
    assert (record.name, record.city, record.country) == ("Zoë Ørsted", "Århus", "Denmark")
    assert record.signed_at == datetime(2026, 11, 27, tzinfo=UTC)


def test_no_name_column_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, b"email,city\nzoe@example.org,Aarhus\n")
    with pytest.raises(InputRefused, match="no name column") as caught:
        read(path)
    assert "--map name=" in str(caught.value)
    with pytest.raises(InputRefused, match="no such column"):
        read(path, column_map={"name": "Full Name"})


@pytest.mark.parametrize("items", [["name"], ["name="], ["=Full Name"], ["nickname=Nick"],
                                   ["name=A", "name=B"]])
def test_bad_column_map_is_refused(items: list[str]) -> None:
    with pytest.raises(InputRefused, match="--map"):
        parse_pairs("--map", items, fields=FIELDS)


def test_a_mapped_column_is_everything_after_the_first_equals_sign() -> None:
    assert parse_pairs("--map", ["city=Town, village=or hamlet"], fields=FIELDS) == [
        ("city", "Town, village=or hamlet")]


def test_source_is_recorded(tmp_path: Path) -> None:
    with open_signer_csv(write(tmp_path, (HEADER + ZOE).encode())) as signer_csv:
        [record] = signer_csv.records(now=NOW, source="import:signers.csv")
    assert isinstance(record, SignerInput) and record.source == "import:signers.csv"
