"""Signer fields or a CSV export + import options → `SignerInput` values, rejected and excluded rows
(pure: no database).

`validate_signer` turns one set of fields into a `SignerInput` or raises `RowRejected`, under the
`RowRules` of its file (or the defaults of a single add: an empty date is now, an absent consent is
yes). The rules are in delivery.signers.normalize, .dates, .consent, .names and .countries.
`open_signer_csv` reads a CSV file as a stream:

- Encoding: UTF-8 with or without a BOM, UTF-16 with a BOM; anything else only with an explicit
  `encoding`. The whole file is checked to decode (strictly) before any row is yielded, so a
  Windows-1252 file is refused with a clear message instead of imported as mojibake, and a
  binary file (NUL characters) is refused too. With an explicit encoding, names and cities that
  read like UTF-8 decoded as a one-byte code page ("Ã©", "Ð°") are counted in a warning.
- Delimiter: `,`, `;` or tab, whichever the header line has most of (outside quotes).
- Columns: `--map FIELD=COLUMN` first, then the format's headers (`--format`, see
  delivery.signers.formats), then the generic names and their aliases (`ALIASES`), matched
  case-insensitively ignoring spaces, `_`, `-` and `.`. A consent column is also found by its
  question ("May we publish your name?", delivery.signers.consent); two such columns are refused.
  A file with no name column (nor first/last name) is refused with `InputRefused`.
- Decisions a file cannot make for itself are refused (`InputRefused`, naming the option) before
  anything is read: no date column (`--signed-at-missing import-time` or `--map signed_at=`), no
  consent column (`--consent-missing name|withhold`), numeric dates whose day/month order no row
  settles (`--date-order`), or a column that mixes both orders (a first pass reads the date
  column for that).
- Rows: `SignerCsv.records()` yields a `SignerInput` per accepted row, a `Rejected` (physical
  line where the row starts, reason, the row's original fields) per rejected one, and an
  `Excluded` per row a format's exclusion or `--where` leaves out. Blank lines are skipped; a row
  with more non-empty fields than the header is rejected; missing trailing fields are empty. A
  name, city or country holding anything like an e-mail address is rejected, the reason naming
  its column (see delivery.signers.normalize).
- Identity: a signer without an e-mail is keyed by name, city, country and every identifying
  column the file has (postcode, phone, the platform's row id).
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
  non-blank data row is imported, a duplicate, excluded or rejected: none is lost.
"""

from __future__ import annotations

import codecs
import csv
import itertools
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import TextIO
from zoneinfo import ZoneInfo

from delivery.errors import InputRefused, RowRejected
from delivery.signers.consent import is_consent_header, read_consent
from delivery.signers.countries import canonical_country
from delivery.signers.dates import DateOrder, DateScan, read_date, signing_time
from delivery.signers.formats import FORMATS, format_columns
from delivery.signers.names import join_name, looks_mojibake, name_problem
from delivery.signers.normalize import (
    MAX_NAME,
    MAX_PLACE,
    EmailInText,
    anonymous_key,
    check_printed,
    clean_field,
    clean_text,
    email_key,
    email_like,
    normalize_email,
)
from delivery.signers.options import (
    FIELDS,
    ConsentMissing,
    ImportOptions,
    SignedAtMissing,
)

IDENTITY_FIELDS = ("postcode", "phone", "row_id")
_ALIAS_LISTS: dict[str, tuple[str, ...]] = {
    "name": ("name", "full name", "fullname", "signer", "signer name", "signatory", "display name"),
    "first_name": ("first name", "firstname", "first", "given name", "forename", "prénom",
                   "vorname"),
    "last_name": ("last name", "lastname", "last", "surname", "family name", "nom", "nachname"),
    "email": ("email", "e mail", "email address", "e mail address", "mail", "e mail adresse",
              "adresse e mail", "adresse email", "courriel"),
    "city": ("city", "town", "locality", "city town", "ort", "stadt", "wohnort", "ville"),
    "country": ("country", "country code", "country name", "nation", "land", "pays"),
    "signed_at": ("signed at", "signed on", "signed", "date", "signature date", "date signed",
                  "signed date", "created at", "created", "timestamp", "time", "datum"),
    "consent": ("consent", "public", "display publicly", "show name", "list name", "opt in",
                "publish name"),
    "postcode": ("zip", "zip code", "postcode", "postal code", "post code", "plz", "code postal"),
    "phone": ("phone", "phone number", "telephone", "mobile", "telefon", "téléphone"),
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
    line: int = 0  # where a file row starts (0: not from a file)


@dataclass(frozen=True)
class Rejected:
    line: int
    reason: str
    fields: tuple[str, ...]


@dataclass(frozen=True)
class Excluded:
    """A row a format's exclusion or `--where` leaves out: counted, never stored."""

    line: int
    reason: str


@dataclass(frozen=True)
class RowRules:
    """How one row's cells are read: settled once per file, or the defaults of a single add."""

    zone: tzinfo = UTC
    date_order: DateOrder | None = None
    empty_date_is_now: bool = True  # a signer added now; a file's empty date cell is no date
    consent_default: bool = True    # the fields have no consent at all (API: a default of yes)
    identity: tuple[str, ...] = ()  # fields that tell apart signers without an e-mail


SINGLE_ADD = RowRules()


_SURROGATE = re.compile("[\ud800-\udfff]")


def _text(value: object) -> str:
    text = "" if value is None else value if isinstance(value, str) else str(value)
    # A lone surrogate (from a JSON "\\ud800" escape) is no character: no database can store it.
    if not text.isascii() and _SURROGATE.search(text):
        raise RowRejected("contains an invalid character (a lone UTF-16 surrogate)")
    return text


def _signed_at(value: object, now: datetime, rules: RowRules) -> datetime:
    if value is None or (isinstance(value, str) and not value.strip()):
        if rules.empty_date_is_now:
            return now
        raise RowRejected("the date of signing is empty (to date such rows at the time of "
                          "import: --signed-at-missing import-time)")
    if isinstance(value, datetime):
        return signing_time(value, zone=rules.zone, now=now)
    if isinstance(value, str):
        return read_date(value, order=rules.date_order, zone=rules.zone, now=now)
    raise RowRejected("unreadable date")


def _consent(fields: Mapping[str, object], rules: RowRules) -> bool:
    value = fields.get("consent")
    if value is None:
        return rules.consent_default
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return read_consent(value)
    raise RowRejected("unreadable consent answer")


def validate_signer(fields: Mapping[str, object], *, now: datetime, source: str,
                    rules: RowRules = SINGLE_ADD, line: int = 0) -> SignerInput:
    """Fields (name or first_name/last_name, email, city, country, signed_at, consent, and the
    identifying postcode, phone, row_id) → SignerInput, or RowRejected."""
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    if "name" in fields or not ("first_name" in fields or "last_name" in fields):
        name = clean_field(_text(fields.get("name")), "name", MAX_NAME)
    else:
        name = clean_field(join_name(clean_text(_text(fields.get("first_name"))),
                                     clean_text(_text(fields.get("last_name")))), "name", MAX_NAME)
    if not name:
        raise RowRejected("name is empty")
    if problem := name_problem(name):
        raise RowRejected(problem)
    city = clean_field(_text(fields.get("city")), "city", MAX_PLACE)
    country = canonical_country(clean_field(_text(fields.get("country")), "country", MAX_PLACE))
    if len(country) > MAX_PLACE:
        raise RowRejected(f"country longer than {MAX_PLACE} characters")
    check_printed(name, city, country)
    email = _text(fields.get("email")).strip()
    if email:
        key = email_key(normalize_email(email))
    else:
        # Labelled, and only the cells that hold something: a file without them keys its
        # signers as every earlier import did.
        extra = [f"{f}={v}" for f in rules.identity if (v := clean_text(_text(fields.get(f))))]
        key = anonymous_key(name, city, country, extra)
    return SignerInput(email_key=key, name=name, city=city, country=country,
                       signed_at=_signed_at(fields.get("signed_at"), now, rules),
                       consent=_consent(fields, rules), source=source, line=line)


def _header_key(header: str) -> str:
    return " ".join(re.sub(r"[\s_\-.]+", " ", header.casefold()).split())


def _find(header: Sequence[str], column: str) -> int | None:
    matches = [i for i, h in enumerate(header) if h.strip() == column.strip()] or \
              [i for i, h in enumerate(header) if _header_key(h) == _header_key(column)]
    return matches[0] if matches else None


@dataclass
class ColumnPlan:
    """Which column holds which field, what else is read, and which rows are left out."""

    fields: dict[str, int]
    fallbacks: dict[str, list[int]] = field(default_factory=dict)
    # (column, values that exclude (casefolded), reason; keep=True: only these values stay)
    filters: list[tuple[int, frozenset[str], str, bool]] = field(default_factory=list)

    def read(self) -> set[int]:
        used = set(self.fields.values())
        used.update(i for indices in self.fallbacks.values() for i in indices)
        used.update(f[0] for f in self.filters)
        return used


def plan_columns(header: list[str], options: ImportOptions, source: str) -> ColumnPlan:
    """Header cells + options → ColumnPlan; InputRefused for what the file cannot settle."""
    plan: dict[str, int] = {}
    for name, column in options.column_map.items():
        if name not in FIELDS:
            raise InputRefused(source, f"--map names an unknown field {name!r}")
        index = _find(header, column)
        if index is None:
            raise InputRefused(source, f"--map {name}={column}: no such column in the header")
        plan[name] = index
    fmt = FORMATS[options.format] if options.format else None
    column_plan = ColumnPlan(plan)
    if fmt is not None:
        for name, cell in format_columns(fmt, header).items():
            index = _find(header, cell)
            if name not in plan and index is not None and index not in plan.values():
                plan[name] = index
        for name, cells in fmt.fallbacks.items():
            present = [i for c in cells if (i := _find(header, c)) is not None]
            if name in plan and present:
                column_plan.fallbacks[name] = [i for i in present if i != plan[name]]
        for exclusion in fmt.exclude:
            index = _find(header, exclusion.column)
            if index is not None:
                column_plan.filters.append((index, exclusion.values, exclusion.reason, False))
    for i, cell in enumerate(header):
        alias = ALIASES.get(_header_key(cell))
        if alias and alias not in plan and i not in plan.values():
            plan[alias] = i
    if "consent" not in plan:
        questions = [i for i, cell in enumerate(header)
                     if i not in plan.values() and is_consent_header(cell)]
        if len(questions) > 1:
            both = " and ".join(repr(header[i][:60]) for i in questions[:2])
            raise InputRefused(source, f"two columns ask for consent to be named ({both}): say "
                                       "which one holds it with --map consent=COLUMN")
        if questions:
            plan["consent"] = questions[0]
    for column, value in options.where:
        index = _find(header, column)
        if index is None:
            raise InputRefused(source, f"--where {column}={value}: no such column in the header")
        column_plan.filters.append((index, frozenset({value.strip().casefold()}),
                                    f"{header[index][:40]} is not {value[:40]}", True))
    if "name" not in plan and "first_name" not in plan and "last_name" not in plan:
        found = ", ".join(repr(h) for h in header)
        raise InputRefused(source, f"no name column (columns: {found[:120]}); name one with "
                                   "--map name=COLUMN")
    if "signed_at" not in plan and options.signed_at_missing is not SignedAtMissing.IMPORT_TIME:
        raise InputRefused(source, "no column holds the date of signing: name it with --map "
                                   "signed_at=COLUMN, or date every signer at the time of import "
                                   "with --signed-at-missing import-time")
    if "consent" not in plan and options.consent_missing is None:
        raise InputRefused(source, "no column says whether each signer agreed to be named: name it "
                                   "with --map consent=COLUMN, or decide for the whole file with "
                                   "--consent-missing withhold (count everyone, name no one) or "
                                   "--consent-missing name (only if every signer agreed to be "
                                   "named); a campaign can set consent_missing once")
    return column_plan


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
    """An open, checked signer CSV: its header, column plan, row rules and a stream of records."""

    def __init__(self, stream: TextIO, *, source: str, options: ImportOptions) -> None:
        skipped = 0
        first = stream.readline(MAX_HEADER + 1)
        while first and not first.strip():
            skipped, first = skipped + 1, stream.readline(MAX_HEADER + 1)
        if len(first) > MAX_HEADER:
            raise InputRefused(source, f"the header line (line {skipped + 1}) is longer than "
                                       f"{MAX_HEADER:,} characters: this is not a signer export")
        first = first.removeprefix("\ufeff")  # a BOM left by an explicit utf-16-le/-be
        self.delimiter = _sniff_delimiter(first)
        self.skipped_lines = skipped  # blank lines before the header
        self._lines: list[str] = []
        csv.field_size_limit(_CSV_LIMIT)
        self._reader = csv.reader(_recorded(itertools.chain([first], stream), self._lines),
                                  delimiter=self.delimiter)
        self.header = [cell.strip() for cell in next(self._reader, [])]
        if len(self.header) > MAX_COLUMNS:
            raise InputRefused(source, f"the header has {len(self.header):,} columns, more than "
                                       f"{MAX_COLUMNS:,}: this is not a signer export")
        self.columns = plan_columns(self.header, options, source)
        self.plan = self.columns.fields
        self.options = options
        fmt = FORMATS[options.format] if options.format else None
        # A format's zone is a fact of its export ("Submit Date (UTC)"), not a default.
        fixed = fmt.timezone if fmt else None
        if fixed and options.timezone and options.timezone != fixed:
            raise InputRefused(source, f"--timezone {options.timezone}, but {options.format} "
                                       f"exports write their times in {fixed}: leave out "
                                       "--timezone")
        self.zone_name = fixed or options.timezone or options.campaign_timezone
        given = options.date_order or (fmt.date_order if fmt else None)
        self.date_scan = DateScan(given)
        self.date_order: DateOrder | None = given
        self.rules = self._rules()
        self.check_mojibake = options.encoding is not None
        self.mojibake_rows = 0
        self.mojibake_line = 0

    def _rules(self) -> RowRules:
        consent_default = self.options.consent_missing is not ConsentMissing.WITHHOLD
        return RowRules(zone=ZoneInfo(self.zone_name), date_order=self.date_order,
                        empty_date_is_now=(self.options.signed_at_missing
                                           is SignedAtMissing.IMPORT_TIME),
                        consent_default=consent_default,
                        identity=tuple(f for f in IDENTITY_FIELDS if f in self.plan))

    def date_columns(self) -> list[int]:
        """The columns the dates are read from (the date column, then its fallbacks)."""
        if "signed_at" not in self.plan:
            return []
        return [self.plan["signed_at"], *self.columns.fallbacks.get("signed_at", [])]

    def settle_dates(self, cells: Iterable[tuple[int, str]], source: str) -> None:
        """The date cells of the whole file (line, text) → the day/month order, or InputRefused."""
        add = self.date_scan.add
        for line, text in cells:
            add(line, text)
        column = self.header[self.plan["signed_at"]] if "signed_at" in self.plan else ""
        self.date_order = self.date_scan.settle(source, column)
        self.rules = self._rules()

    def records(self, *, now: datetime, source: str
                ) -> Iterator[SignerInput | Rejected | Excluded]:
        width, plan, reader, lines = len(self.header), self.plan, self._reader, self._lines
        fallbacks, filters, rules = self.columns.fallbacks.items(), self.columns.filters, self.rules
        while True:
            start = self.skipped_lines + reader.line_num + 1
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
            if filters and (reason := _left_out(row, filters)):
                yield Excluded(start, reason)
                continue
            fields = {f: row[i] if i < len(row) else "" for f, i in plan.items()}
            for name, indices in fallbacks:
                if not fields[name].strip():
                    fields[name] = next((row[i] for i in indices if i < len(row) and row[i].strip()),
                                        "")
            try:
                signer = validate_signer(fields, now=now, source=source, rules=rules, line=start)
            except EmailInText as exc:
                yield Rejected(start, self._email_reason(exc.label, row), tuple(row))
                continue
            except RowRejected as exc:
                yield Rejected(start, exc.reason, tuple(row))
                continue
            if self.check_mojibake and not (signer.name.isascii() and signer.city.isascii()) \
                    and looks_mojibake(f"{signer.name} {signer.city}"):
                self.mojibake_rows += 1
                self.mojibake_line = self.mojibake_line or start
            yield signer

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


def _left_out(row: list[str], filters: list[tuple[int, frozenset[str], str, bool]]) -> str | None:
    for index, values, reason, keep in filters:
        cell = row[index].strip().casefold() if index < len(row) else ""
        if (cell in values) != keep:
            return reason
    return None


def _date_cells(path: Path, codec: str, signer_csv: SignerCsv) -> Iterator[tuple[int, str]]:
    """(line, text) of every non-empty date cell, read in a first pass over the file."""
    columns = signer_csv.date_columns()
    offset = signer_csv.skipped_lines
    with path.open("r", encoding=codec, errors="strict", newline="") as stream:
        reader = csv.reader(stream, delimiter=signer_csv.delimiter)
        for _ in range(offset):
            stream.readline()
        next(reader, None)
        while True:
            line = offset + reader.line_num + 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error:  # the second pass rejects such rows with their reasons
                continue
            for index in columns:
                if index < len(row) and (text := row[index].strip()):
                    yield line, text
                    break


@contextmanager
def open_signer_csv(path: Path, options: ImportOptions | None = None) -> Iterator[SignerCsv]:
    """Path + options → SignerCsv; InputRefused (before any row is read) for an unusable file
    or one that leaves a decision open (date order, consent, dates)."""
    options = options or ImportOptions()
    if not path.is_file():
        raise InputRefused(str(path), "no such file")
    codec = resolve_encoding(path, options.encoding)
    with path.open("r", encoding=codec, errors="strict", newline="") as stream:
        try:
            signer_csv = SignerCsv(stream, source=str(path), options=options)
            if signer_csv.date_columns():
                signer_csv.settle_dates(_date_cells(path, codec, signer_csv), str(path))
            yield signer_csv
        except UnicodeDecodeError:  # the file changed after it was checked
            raise InputRefused(str(path), "changed while being read") from None
