"""CSV rows are never merged in silence, and no e-mail address reaches a dossier: a stray or
unclosed quote rejects every line it merged (each with its line number), nothing is lost, and a
name, city or country holding an address is rejected naming its column."""

from __future__ import annotations

import csv
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from delivery.campaigns.config import parse_campaign
from delivery.dossier.stored import Frozen, compose_stored
from delivery.errors import RowRejected
from delivery.pdf.build import build_dossier_pdfs
from delivery.signers.intake import Excluded, Rejected, SignerInput, open_signer_csv, validate_signer
from delivery.signers.store import import_csv
from delivery.storage.db import transaction
from delivery.storage.models import SignerRow
from tests.support.imports import DECIDED
from tests.support.keys import TEST_KEYS

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
HEADER = "name,email,city,country,signed_at,consent\n"
# The reproduced defect: the stray quote opening line 3 runs to the quote on line 6, and the
# csv module read lines 3-6 as one signer whose name holds three other signers' addresses
# ("imported 5, rejected 0" for 8 rows).
STRAY_QUOTE = (HEADER
               + "Ann,ann@example.org,Rome,IT,,yes\n"                 # 2
               + '"Bob Stray,bob@example.org,Oslo,NO,,\n'          # 3: the stray quote
               + "Cid,cid@example.org,Lyon,FR,,\n"                 # 4
               + "Dee,dee@example.org,Nice,FR,,\n"                 # 5
               + 'Eve,eve@example.org,Bern,CH,,"yes"\n'            # 6: the next quote
               + "Fay,fay@example.org,Riga,LV,,yes\n"                 # 7
               + "Gus,gus@example.org,Kyiv,UA,,yes\n"                 # 8
               + "Hal,hal@example.org,Baku,AZ,,yes\n")                # 9


def write(folder: Path, text: str, name: str = "signers.csv") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8", newline="")
    return path


def read(path: Path) -> list[SignerInput | Rejected]:
    with open_signer_csv(path, DECIDED) as signer_csv:
        return [r for r in signer_csv.records(now=NOW, source="test") if not isinstance(r, Excluded)]


def names(records: list[SignerInput | Rejected]) -> list[str]:
    return [r.name for r in records if isinstance(r, SignerInput)]


def rejects(records: list[SignerInput | Rejected]) -> list[Rejected]:
    return [r for r in records if isinstance(r, Rejected)]


@pytest.fixture
def files(tmp_path: Path) -> Path:
    folder = tmp_path / "files"
    folder.mkdir()
    return folder


def rejects_file(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8-sig", newline="") as stream:
        return list(csv.reader(stream))[1:]


def test_a_stray_quote_rejects_each_line_it_merged_with_its_own_number(tmp_path: Path) -> None:
    records = read(write(tmp_path, STRAY_QUOTE))
    assert names(records) == ["Ann", "Fay", "Gus", "Hal"]
    merged = rejects(records)
    assert [r.line for r in merged] == [3, 4, 5, 6]
    for reject in merged:
        assert reject.reason.startswith("lines 3-6 (read as one row): the quoted field in "
                                        "column 'name' holds a line break followed by an e-mail")
        assert "@" not in reject.reason
    # Each line as it reads alone: a file the organizer can correct and import again.
    assert merged[1].fields == ("Cid", "cid@example.org", "Lyon", "FR", "", "")
    assert merged[3].fields == ("Eve", "eve@example.org", "Bern", "CH", "", "yes")
    assert merged[0].fields == ("Bob Stray,bob@example.org,Oslo,NO,,",)


@pytest.mark.parametrize(("text", "lines", "reason"), [
    # no e-mail column: the lines after the break are rows all the same
    ('name,city,country\nAnn,Rome,IT\n"Bob,Oslo,NO\nCid,Lyon,FR\nDee",Nice,FR\nEve,Bern,CH\n',
     [3, 4, 5], "holds a line break followed by what looks like another CSV row"),
    # the quote closes mid-line: more fields than the header
    ('name,city\nAnn,Rome\n"Bob,Oslo\nCid",Lyon,Paris,Nice\nEve,Bern\n',
     [3, 4], "4 fields, the header has 2"),
    # a whole row quoted as one field, on one line
    (HEADER + '"Bob,bob@example.org,Oslo,NO,,yes"\nEve,eve@example.org,Bern,CH,,\n',
     [2], "the quoted field in column 'name' holds ',' followed by an e-mail address"),
    ('name;city;country;signed_at\n"Bob;Oslo;NO;2026-11-01"\nEve;Bern;CH;\n',
     [2], "holds 3 ';', like a whole CSV row"),
], ids=["rows-after-a-break", "too-many-fields", "row-quoted-with-e-mail", "row-quoted"])
def test_merged_rows_of_every_shape_are_rejected_line_by_line(
        tmp_path: Path, text: str, lines: list[int], reason: str) -> None:
    records = read(write(tmp_path, text))
    assert [r.line for r in rejects(records)] == lines
    assert all(reason in r.reason for r in rejects(records))
    assert names(records)[-1] == "Eve"


def test_quoted_line_breaks_and_delimiters_of_real_values_still_import(tmp_path: Path) -> None:
    text = ("name,email,city,country,comment\n"
            '"Ørsted, Zoë",zoe@example.org,"Århus\nJylland",DK,\n'
            '"Doe, Jane",,"Paris, 11e",FR,"Sign me up, mail me at jane@example.org"\n'
            'Ann,ann@example.org,Rome,IT,"Two lines,\nof comment"\n'
            + STRAY_QUOTE.splitlines(keepends=True)[2])  # and a stray quote up to the end
    records = read(write(tmp_path, text))
    assert names(records) == ["Ørsted, Zoë", "Doe, Jane", "Ann"]
    [reject] = rejects(records)
    assert reject.line == 7 and "holds a line break" not in reject.reason


def test_an_unclosed_quote_in_the_last_rows_rejects_them_all(tmp_path: Path) -> None:
    text = HEADER + "Ann,,Rome,IT,,\n" + '"Bob,,Oslo,NO,,\n' + "".join(
        f"Signer {i},,Yerevan,AM,,\n" for i in range(3)) + "\n,,,,,\n"
    records = read(write(tmp_path, text))
    assert names(records) == ["Ann"]
    assert [r.line for r in rejects(records)] == [3, 4, 5, 6]  # blank lines 7 and 8 are no rows


@pytest.mark.parametrize(("header", "row", "column"), [
    (HEADER, "ann@example.org,ann@example.org,Rome,IT,,", "column 'name' (name)"),
    (HEADER, "Ann,,Rome ann@example.org,IT,,", "column 'city' (city)"),
    (HEADER, "Ann,,Rome,mailto:ann@example.org,,", "column 'country' (country)"),
    (HEADER, "Ann (ann\uff20example.org),,Rome,IT,,", "column 'name' (name)"),  # full-width ＠
    (HEADER, "Ann ann\u200b@\u200bexample.org,,Rome,IT,,", "column 'name' (name)"),  # hidden
    ("First Name,Last Name,Town\n", "Ann,ann@example,Rome", "column 'Last Name' (name)"),
    ("Full Name,Town\n", "Ann,Rome @ann@example.org", "column 'Town' (city)"),
], ids=["name", "city", "country", "full-width-at", "hidden-by-zero-width", "last-name", "town"])
def test_an_e_mail_in_a_printed_column_rejects_the_row_naming_the_column(
        tmp_path: Path, header: str, row: str, column: str) -> None:
    [reject, eve] = read(write(tmp_path, header + row + "\n" + "Eve" + "," * (header.count(",")) + "\n"))
    assert isinstance(reject, Rejected) and reject.line == 2
    assert reject.reason.startswith(f"{column} holds an e-mail address")
    assert "example" not in reject.reason
    assert isinstance(eve, SignerInput) and eve.name == "Eve"


@pytest.mark.parametrize("field", ["name", "city", "country"])
def test_an_e_mail_in_a_printed_field_is_rejected_on_every_path(field: str) -> None:
    fields = {"name": "Ann", "city": "Rome", "country": "IT", "email": "ann@example.org"}
    with pytest.raises(RowRejected, match=f"^{field} holds an e-mail address"):
        validate_signer({**fields, field: "ann@example.org"}, now=NOW, source="api")


def test_reasons_quoting_a_bad_value_never_quote_an_address(tmp_path: Path) -> None:
    text = HEADER + "Ann,,Rome,IT,ann@example.org,\n" + "Bob,,Oslo,NO,,bob@example.org\n"
    assert [r.reason for r in rejects(read(write(tmp_path, text)))] == [
        "unreadable date (it holds an e-mail address)",
        "unreadable consent answer (it holds an e-mail address)"]


@pytest.mark.parametrize("comment", [0, 300])  # within the csv module's field limit, beyond it
def test_an_unclosed_quote_loses_no_row_of_5000(engine: Engine, campaign_id: int, files: Path,
                                                comment: int) -> None:
    """5,000 rows, an unclosed quote on row 1,750: every row is imported or rejected with its
    line, and the rejects are the lines the quote swallowed (up to the end of the file, or up to
    where csv gave up on it and reading went on)."""
    pad = "x" * comment
    rows = [f"Signer {i},s{i}@example.org,Yerevan,AM,2026-11-01,yes,{pad}" for i in range(1, 5001)]
    rows[1749] = '"' + rows[1749]
    path = write(files, "name,email,city,country,signed_at,consent,comment\n"
                 + "\n".join(rows) + "\n")
    report = import_csv(engine, campaign_id, path, now=NOW, keys=TEST_KEYS, options=DECIDED)
    assert report.imported + report.duplicates + report.rejected == 5000
    assert report.rejects_file is not None
    rejected_lines = [int(row[0]) for row in rejects_file(report.rejects_file)]
    assert rejected_lines == list(range(1751, 1751 + report.rejected))
    assert all("longer than 131,072 characters" in row[1] for row in rejects_file(report.rejects_file))
    with transaction(engine) as session:
        stored = set(session.scalars(select(SignerRow.name)))
    signers_on = {int(name.removeprefix("Signer ")) + 1 for name in stored}  # their line numbers
    assert signers_on.isdisjoint(rejected_lines)
    assert signers_on | set(rejected_lines) == set(range(2, 5002))
    if comment:  # csv gave up inside the quote: the rows after it are read again
        assert 1751 + report.rejected <= 5001 and 5001 in signers_on
    else:
        assert report.rejected == 3251


def test_the_stray_quote_dossier_prints_no_address(engine: Engine, campaign_id: int,
                                                   files: Path) -> None:
    report = import_csv(engine, campaign_id, write(files, STRAY_QUOTE), now=NOW, keys=TEST_KEYS,
                        options=DECIDED)
    assert (report.imported, report.duplicates, report.rejected) == (4, 0, 4)
    assert report.rejects_file is not None
    assert [row[0] for row in rejects_file(report.rejects_file)] == ["3", "4", "5", "6"]
    with transaction(engine) as session:
        last = session.scalar(select(func.max(SignerRow.id))) or 0
    campaign = parse_campaign((REPO / "schedules" / "salman-mukaev.toml").read_text(), "test")
    dossier, read_lines = compose_stored(
        engine, campaign, Frozen(campaign_id, last, NOW), dossier_id="D-1", created_at=NOW,
        trigger="manual", milestone=None, addressees=campaign.recipients, signed=False, now=NOW)
    [pdf] = build_dossier_pdfs(dossier, REPO / "templates", languages=["en"], workers=1,
                               cache_dir=files / "cache", read_lines=read_lines)
    (files / "dossier.pdf").write_bytes(pdf.data)
    text = subprocess.run(["pdftotext", "-enc", "UTF-8", str(files / "dossier.pdf"), "-"],
                          check=True, capture_output=True, text=True).stdout
    assert all(name in text for name in ("Ann", "Fay", "Gus", "Hal"))
    assert "Bob" not in text and "Cid" not in text
    for address in ("ann", "bob", "cid", "dee", "eve", "fay", "gus", "hal"):
        assert f"{address}@" not in text
