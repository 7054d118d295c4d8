"""Signer fields or a CSV export → `SignerInput` values and rejected rows (pure: no database).

`validate_signer` turns one set of fields into a `SignerInput` or raises `RowRejected`; the rules
are in `delivery.signers.normalize`. `open_signer_csv` reads a CSV file as a stream:

- Encoding: UTF-8 with or without a BOM, UTF-16 with a BOM; anything else only with an explicit
  `encoding`. The whole file is checked to decode (strictly) before any row is yielded, so a
  Windows-1252 file is refused with a clear message instead of imported as mojibake, and a
  binary file (NUL characters) is refused too.
- Delimiter: `,`, `;` or tab, whichever the header line has most of (outside quotes).
- Columns (the generic format): name, email, city, country, signed_at, consent. Headers are
  matched case-insensitively, ignoring spaces, `_`, `-` and `.`, with aliases for common exports
  (`ALIASES`: "Full Name", "First Name" + "Last Name", "Signed On", "Country Code", "E-mail
  Address"…). Other columns (zip, postcode, phone…) are ignored. `column_map` ({field: header},
  fields as above plus first_name and last_name) overrides the aliases. A file with no name
  column (nor first/last name) is refused with `InputRefused`.
- Rows: `SignerCsv.records()` yields a `SignerInput` per accepted row and a `Rejected` (physical
  line where the row starts, reason, the row's original fields) per rejected one. Blank lines
  are skipped; a row with more non-empty fields than the header is rejected; missing trailing
  fields are empty. A name, city or country holding anything like an e-mail address is
  rejected, the reason naming its column (see delivery.signers.normalize).
- Rows are never merged in silence. A stray or unclosed quote makes the csv module read the
  lines up to the next quote as one row; such a row is rejected as *every* physical line it
  was read from, each with its own line number, the reason naming the lines and the column,
  and its fields as that line alone reads. A row counts as merged when it was read from
  several lines and a field holds a line break followed by an e-mail-like text or by a line
  with two delimiters or more (another row; one when the header has two columns), or the row
  has more fields than the header. A row read from one line with fewer fields than the header
  (as a whole row quoted as one field reads) is rejected the same way when a field of a column
  that is read (name, e-mail, city, …) holds the delimiter followed by an e-mail-like text, or
  `max(2, columns - 1)` delimiters. A field longer than `MAX_FIELD` (131,072 characters)
  rejects the lines of its row; one still open after `_CSV_LIMIT` characters (an unclosed
  quote) rejects the lines read into it, and reading goes on at the next line. So every
  non-blank data row is imported, a duplicate, or rejected: none is lost.
"""

from __future__ import annotations

import codecs
import csv
import itertools
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TextIO

from delivery.errors import InputRefused, RowRejected
from delivery.signers.normalize import (
    MAX_NAME,
    MAX_PLACE,
    EmailInText,
    anonymous_key,
    canonical_country,
    check_printed,
    clean_field,
    clean_text,
    email_key,
    email_like,
    normalize_email,
    parse_consent,
    parse_signed_at,
)

FIELDS = ("name", "first_name", "last_name", "email", "city", "country", "signed_at", "consent")
_ALIAS_LISTS: dict[str, tuple[str, ...]] = {
    "name": ("name", "full name", "fullname", "signer", "signer name", "signatory", "display name"),
    "first_name": ("first name", "firstname", "first", "given name", "forename", "prénom"),
    "last_name": ("last name", "lastname", "last", "surname", "family name", "nom"),
    "email": ("email", "e mail", "email address", "e mail address", "mail"),
    "city": ("city", "town", "locality", "city town"),
    "country": ("country", "country code", "country name", "nation"),
    "signed_at": ("signed at", "signed on", "signed", "date", "signature date", "date signed",
                  "signed date", "created at", "created", "timestamp", "time"),
    "consent": ("consent", "public", "display publicly", "show name", "list name", "opt in",
                "publish name"),
}
ALIASES = {alias: field for field, aliases in _ALIAS_LISTS.items() for alias in aliases}
_CHUNK = 1 << 20
MAX_FIELD = 131_072  # characters: a longer field rejects its row, whatever its column
# A header beyond these is refused before anything is read (a 44 MB header line took 7 s and
# 550 MB to report its "columns not read"); a wide form export has a few hundred columns.
MAX_HEADER = 1 << 20
MAX_COLUMNS = 2_000
# The csv module's own limit (one setting per process; only this module reads CSV). Above
# MAX_FIELD, so that a misplaced quote closing within it is read whole: its lines are rejected
# together and reading goes on after the closing quote, in step with the file. An unclosed
# quote costs at most this much memory before csv gives up.
_CSV_LIMIT = 8 * MAX_FIELD
# Delimiters on a line inside a quoted field that make it read as another row (fewer when the
# header has fewer columns): free text with one comma on its second line is not one.
_ROW_LIKE = 2
_LINE_BREAK = re.compile(r"\r\n?|\n")


@dataclass(frozen=True)
class SignerInput:
    email_key: str
    name: str
    city: str
    country: str
    signed_at: datetime  # aware, UTC
    consent: bool
    source: str


@dataclass(frozen=True)
class Rejected:
    line: int
    reason: str
    fields: tuple[str, ...]


def _text(value: object) -> str:
    text = "" if value is None else value if isinstance(value, str) else str(value)
    # A lone surrogate (from a JSON "\\ud800" escape) is no character: no database can store it.
    if any("\ud800" <= c <= "\udfff" for c in text):
        raise RowRejected("contains an invalid character (a lone UTF-16 surrogate)")
    return text


def validate_signer(fields: Mapping[str, object], *, now: datetime, source: str) -> SignerInput:
    """Fields (name, email, city, country, signed_at, consent) → SignerInput, or RowRejected."""
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    name = clean_field(_text(fields.get("name")), "name", MAX_NAME)
    if not name:
        raise RowRejected("name is empty")
    city = clean_field(_text(fields.get("city")), "city", MAX_PLACE)
    country = canonical_country(clean_field(_text(fields.get("country")), "country", MAX_PLACE))
    if len(country) > MAX_PLACE:
        raise RowRejected(f"country longer than {MAX_PLACE} characters")
    check_printed(name, city, country)
    email = _text(fields.get("email")).strip()
    key = email_key(normalize_email(email)) if email else anonymous_key(name, city, country)
    return SignerInput(email_key=key, name=name, city=city, country=country,
                       signed_at=parse_signed_at(fields.get("signed_at"), now=now),
                       consent=parse_consent(fields.get("consent")), source=source)


def parse_column_map(text: str) -> dict[str, str]:
    """`--map` text "name=Full Name,city=Town" → {"name": "Full Name", "city": "Town"}.

    Bad syntax or an unknown field → InputRefused.
    """
    mapping: dict[str, str] = {}
    for item in text.split(","):
        field, sep, header = item.partition("=")
        field = field.strip().lower().replace("-", "_")
        if not sep or not header.strip() or field not in FIELDS:
            raise InputRefused("--map", f"{item.strip()!r} is not FIELD=COLUMN with FIELD one of "
                                        + ", ".join(FIELDS))
        if field in mapping:
            raise InputRefused("--map", f"{field} is mapped twice")
        mapping[field] = header.strip()
    return mapping


def _header_key(header: str) -> str:
    return " ".join(re.sub(r"[\s_\-.]+", " ", header.casefold()).split())


def plan_columns(header: list[str], column_map: Mapping[str, str] | None,
                 source: str) -> dict[str, int]:
    """Header cells (+ explicit map) → {field: column index}; InputRefused without a name."""
    plan: dict[str, int] = {}
    wanted = dict(column_map or {})
    for field, column in wanted.items():
        if field not in FIELDS:
            raise InputRefused(source, f"--map names an unknown field {field!r}")
        matches = [i for i, h in enumerate(header) if h.strip() == column.strip()] or \
                  [i for i, h in enumerate(header) if _header_key(h) == _header_key(column)]
        if not matches:
            raise InputRefused(source, f"--map {field}={column}: no such column in the header")
        plan[field] = matches[0]
    for i, cell in enumerate(header):
        alias = ALIASES.get(_header_key(cell))
        if alias and alias not in plan and i not in plan.values():
            plan[alias] = i
    if "name" not in plan and "first_name" not in plan and "last_name" not in plan:
        found = ", ".join(repr(h) for h in header)
        raise InputRefused(source, f"no name column (columns: {found[:120]}); name one with "
                                   "--map name=COLUMN")
    return plan


def resolve_encoding(path: Path, encoding: str | None) -> str:
    """The codec to read `path` with; InputRefused unless the whole file decodes as text."""
    with path.open("rb") as stream:
        head = stream.read(4)
    if encoding is None:
        if head.startswith(codecs.BOM_UTF8):
            codec = "utf-8-sig"
        elif head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            codec = "utf-16"
        else:
            codec = "utf-8"
    else:
        try:
            codec = codecs.lookup(encoding).name
        except LookupError:
            raise InputRefused(str(path), f"unknown encoding {encoding!r}") from None
        if codec == "utf-8" and head.startswith(codecs.BOM_UTF8):
            codec = "utf-8-sig"
    _check_decodes(path, codec, explicit=encoding is not None)
    return codec


def _check_decodes(path: Path, codec: str, *, explicit: bool) -> None:
    decoder = codecs.getincrementaldecoder(codec)(errors="strict")
    offset, has_text, wide = 0, False, codec.startswith(("utf-16", "utf-32"))
    with path.open("rb") as stream:
        while True:
            chunk = stream.read(_CHUNK)
            if not wide and b"\0" in chunk:
                raise InputRefused(str(path), "contains NUL bytes: a binary file, or UTF-16/UTF-32 "
                                              "without a byte-order mark (then pass --encoding)")
            pending = len(decoder.getstate()[0])
            try:
                text = decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as exc:
                where = f"byte 0x{exc.object[exc.start]:02X} at offset {offset - pending + exc.start}"
                if explicit:
                    raise InputRefused(str(path), f"does not decode as {codec} ({where})") from None
                raise InputRefused(str(path), f"is not UTF-8 or UTF-16 with a BOM ({where}); say "
                                              "which encoding it is, e.g. --encoding cp1252") from None
            if "\0" in text:
                raise InputRefused(str(path), "contains NUL characters: not a text CSV file")
            has_text = has_text or bool(text.strip())
            offset += len(chunk)
            if not chunk:
                break
    if not has_text:
        raise InputRefused(str(path), "is empty")


def _sniff_delimiter(line: str) -> str:
    counts = dict.fromkeys(",;\t", 0)
    quoted = False
    for ch in line:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in counts:
            counts[ch] += 1
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _recorded(lines: Iterable[str], seen: list[str]) -> Iterator[str]:
    """The lines, each also appended to `seen`: the physical lines a csv row was read from."""
    for line in lines:
        seen.append(line)
        yield line


class SignerCsv:
    """An open, checked signer CSV: its header, column plan and a stream of records."""

    def __init__(self, stream: TextIO, *, source: str, column_map: Mapping[str, str] | None):
        skipped = 0
        first = stream.readline(MAX_HEADER + 1)
        while first and not first.strip():
            skipped, first = skipped + 1, stream.readline(MAX_HEADER + 1)
        if len(first) > MAX_HEADER:
            raise InputRefused(source, f"the header line (line {skipped + 1}) is longer than "
                                       f"{MAX_HEADER:,} characters: this is not a signer export")
        first = first.removeprefix("\ufeff")  # a BOM left by an explicit utf-16-le/-be
        self.delimiter = _sniff_delimiter(first)
        self._offset = skipped
        self._lines: list[str] = []
        csv.field_size_limit(_CSV_LIMIT)
        self._reader = csv.reader(_recorded(itertools.chain([first], stream), self._lines),
                                  delimiter=self.delimiter)
        self.header = [cell.strip() for cell in next(self._reader, [])]
        if len(self.header) > MAX_COLUMNS:
            raise InputRefused(source, f"the header has {len(self.header):,} columns, more than "
                                       f"{MAX_COLUMNS:,}: this is not a signer export")
        self.plan = plan_columns(self.header, column_map, source)

    def records(self, *, now: datetime, source: str) -> Iterator[SignerInput | Rejected]:
        width, plan, reader, lines = len(self.header), self.plan, self._reader, self._lines
        while True:
            start = self._offset + reader.line_num + 1
            lines.clear()
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield from self._reject_lines(start, self._unreadable(exc, start))
                continue
            if not any(cell.strip() for cell in row):
                continue
            # Cheap tests first: a row read from one line, not long, with every column (a
            # whole row quoted as one field makes fewer) is neither merged nor oversize.
            if len(lines) > 1 or len(row) < width or len(lines[0]) > MAX_FIELD:
                merged = self._merged(row, start)
                if merged:
                    yield from self._reject_lines(start, merged)
                    continue
            if len(row) > width and any(cell.strip() for cell in row[width:]):
                yield Rejected(start, f"{len(row)} fields, the header has {width}", tuple(row))
                continue
            fields = {f: row[i] if i < len(row) else "" for f, i in plan.items()}
            if "name" not in fields:
                fields["name"] = f"{fields.get('first_name', '')} {fields.get('last_name', '')}"
            try:
                yield validate_signer(fields, now=now, source=source)
            except EmailInText as exc:
                yield Rejected(start, self._email_reason(exc.label, row), tuple(row))
            except RowRejected as exc:
                yield Rejected(start, exc.reason, tuple(row))

    def _column(self, index: int) -> str:
        header = self.header[index] if index < len(self.header) else ""
        return f"column {header[:40]!r}" if header else f"column {index + 1}"

    def _span(self, start: int) -> str:
        end = start + len(self._lines) - 1
        return f"line {start}" if end == start else f"lines {start}-{end} (read as one row)"

    def _merged(self, row: list[str], start: int) -> str | None:
        """Why the row, read from the lines in `self._lines`, is merged or oversize, or None."""
        width, delimiter, span = len(self.header), self.delimiter, len(self._lines)
        hint = f" (a stray or unclosed quote on line {start}?)" if span > 1 else " (a stray quote?)"
        for i, cell in enumerate(row):
            if len(cell) > MAX_FIELD:
                return (f"{self._span(start)}: the field in {self._column(i)} is longer than "
                        f"{MAX_FIELD:,} characters" + (hint if span > 1 else ""))
        if span > 1:
            row_like = max(1, min(_ROW_LIKE, width - 1))
            for i, cell in enumerate(row):
                parts = _LINE_BREAK.split(cell)
                if len(parts) < 2:
                    continue
                after = "\n".join(parts[1:])
                if email_like(after):
                    return (f"{self._span(start)}: the quoted field in {self._column(i)} holds a "
                            f"line break followed by an e-mail address{hint}")
                if any(part.count(delimiter) >= row_like for part in parts[1:]):
                    return (f"{self._span(start)}: the quoted field in {self._column(i)} holds a "
                            f"line break followed by what looks like another CSV row{hint}")
            if len(row) > width and any(cell.strip() for cell in row[width:]):
                return f"{self._span(start)}: {len(row)} fields, the header has {width}{hint}"
        whole_row = max(2, width - 1)
        for i in sorted(set(self.plan.values())):
            cell = row[i] if i < len(row) else ""
            if delimiter not in cell:
                continue
            if email_like(cell.partition(delimiter)[2]):
                return (f"{self._span(start)}: the quoted field in {self._column(i)} holds "
                        f"{delimiter!r} followed by an e-mail address{hint}")
            if cell.count(delimiter) >= whole_row:
                return (f"{self._span(start)}: the quoted field in {self._column(i)} holds "
                        f"{cell.count(delimiter)} {delimiter!r}, like a whole CSV row{hint}")
        return None

    def _unreadable(self, exc: csv.Error, start: int) -> str:
        if "field larger than field limit" not in str(exc):
            return f"{self._span(start)}: unreadable CSV row ({exc})"
        if len(self._lines) == 1:
            return f"line {start}: a field is longer than {MAX_FIELD:,} characters"
        return (f"{self._span(start)}: a quoted field opened on line {start} is longer than "
                f"{MAX_FIELD:,} characters (an unclosed quote?); reading goes on at line "
                f"{start + len(self._lines)}")

    def _reject_lines(self, start: int, reason: str) -> Iterator[Rejected]:
        """One Rejected per non-blank line the failed row was read from, with its fields as
        that line alone reads: each is a row of the file, counted and written once."""
        for number, line in enumerate(self._lines, start=start):
            text = line.rstrip("\r\n")
            try:
                fields = tuple(next(csv.reader([text], delimiter=self.delimiter), []))
            except csv.Error:
                fields = (text,)
            if any(field.strip() for field in fields):  # a blank row is skipped, here as anywhere
                yield Rejected(number, reason, fields)

    def _email_reason(self, label: str, row: list[str]) -> str:
        """The reason for an e-mail-like text in the `label` field, naming its column."""
        if label in self.plan:
            where = self._column(self.plan[label])
        else:  # the name, joined from the first and last name columns
            where = " and ".join(
                self._column(i) for f in ("first_name", "last_name")
                if (i := self.plan.get(f)) is not None and i < len(row)
                and email_like(clean_text(row[i]))) or "the joined first and last names"
        return (f"{where} ({label}) holds an e-mail address (or text like one), which must "
                "never appear in a dossier")


@contextmanager
def open_signer_csv(path: Path, *, encoding: str | None = None,
                    column_map: Mapping[str, str] | None = None) -> Iterator[SignerCsv]:
    """Path → SignerCsv; InputRefused (before any row is read) for an unusable file."""
    if not path.is_file():
        raise InputRefused(str(path), "no such file")
    codec = resolve_encoding(path, encoding)
    with path.open("r", encoding=codec, errors="strict", newline="") as stream:
        try:
            yield SignerCsv(stream, source=str(path), column_map=column_map)
        except UnicodeDecodeError:  # the file changed after it was checked
            raise InputRefused(str(path), "changed while being read") from None
