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
  fields are empty. A CSV field longer than `csv.field_size_limit()` (131,072 characters) makes
  its row unreadable and rejected.
"""

from __future__ import annotations

import codecs
import csv
import itertools
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TextIO

from delivery.errors import InputRefused, RowRejected
from delivery.signers.normalize import (
    MAX_NAME,
    MAX_PLACE,
    anonymous_key,
    canonical_country,
    clean_field,
    email_key,
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


class SignerCsv:
    """An open, checked signer CSV: its header, column plan and a stream of records."""

    def __init__(self, stream: TextIO, *, source: str, column_map: Mapping[str, str] | None):
        skipped = 0
        first = stream.readline()
        while first and not first.strip():
            skipped, first = skipped + 1, stream.readline()
        first = first.removeprefix("\ufeff")  # a BOM left by an explicit utf-16-le/-be
        self.delimiter = _sniff_delimiter(first)
        self._offset = skipped
        self._reader = csv.reader(itertools.chain([first], stream), delimiter=self.delimiter)
        self.header = [cell.strip() for cell in next(self._reader, [])]
        self.plan = plan_columns(self.header, column_map, source)

    def records(self, *, now: datetime, source: str) -> Iterator[SignerInput | Rejected]:
        width, plan, reader = len(self.header), self.plan, self._reader
        while True:
            start = self._offset + reader.line_num + 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield Rejected(start, f"unreadable CSV row ({exc})", ())
                continue
            if not any(cell.strip() for cell in row):
                continue
            if len(row) > width and any(cell.strip() for cell in row[width:]):
                yield Rejected(start, f"{len(row)} fields, the header has {width}", tuple(row))
                continue
            fields = {f: row[i] if i < len(row) else "" for f, i in plan.items()}
            if "name" not in fields:
                fields["name"] = f"{fields.get('first_name', '')} {fields.get('last_name', '')}"
            try:
                yield validate_signer(fields, now=now, source=source)
            except RowRejected as exc:
                yield Rejected(start, exc.reason, tuple(row))


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
