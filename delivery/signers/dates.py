"""Date cells of a signer export → the file's day/month order, and aware UTC signing times (pure).

No I/O and no clock: the caller passes `now` and the zone of times written without one. Failures
raise `RowRejected(reason)` for one cell, or `InputRefused` for a whole column; a text quoted in
either is cleaned, cut to 40 characters and never one that looks like an e-mail address
("(it holds an e-mail address)" stands in its place).

Rules:
- Day/month order (`DateScan`, fed a column's cells in file order): a numeric date a/b/y (the
  separator `/`, `.` or `-` twice, y of 2 or 4 digits, a time may follow) is *day-first only*
  when 12 < a ≤ 31 and 1 ≤ b ≤ 12, *month-first only* when 12 < b ≤ 31 and 1 ≤ a ≤ 12, and
  *ambiguous* when both are 1–12 and differ; a == b reads the same either way. Year-first dates
  (2026/03/04), month names, ISO forms and epoch numbers prove nothing. `settle` refuses a column
  with both day-first-only and month-first-only cells (one file, one order), and an order the
  organiser chose (`--date-order dmy|mdy`) that a cell proves wrong, naming the line; otherwise it
  gives the chosen order, or the one kind seen settles dmy or mdy, and ambiguous cells that
  nothing settles refuse the column, naming `--date-order`; with no ambiguous cell there is no
  order to settle (None). A chosen ymd is not checked: two-digit y/m/d dates look day first.
- Forms `read_date` reads:
  - ISO 8601 dates and date-times: `T` or a space, seconds and fractions optional, zone `Z`,
    `±HH:MM`, `±HHMM` or `±HH`.
  - Numeric d/m/y, m/d/y or y/m/d with `/`, `.` or `-`; a two-digit year yy is 20yy. The order
    decides; without one a text readable both ways is rejected ("day/month order unknown"), a
    text readable one way only is read that way. Four-digit years first are always y/m/d.
  - Day, month name, year ("27 Nov 2026", "27. November 2026", "27 ноября 2026 г.",
    "4 de marzo de 2026") and month name, day, year ("Nov 27, 2026", "March 4th 2026").
    Month names: wide and abbreviated, 'format' and 'stand-alone', of en, hy, ru, de, fr, es,
    it, pt, nl, pl and uk (Babel's data), case-folded, without a trailing "."; a word that names
    two different months across these languages is left out rather than guessed.
  - Each may go on with a time `H:MM[:SS[.ffffff]]` (after a space, "T", "," or " at "), then
    `AM`/`PM` (any case, also `a.m.`; 12 AM is 00, an hour over 12 is rejected), then a zone:
    `Z`, `UTC`, `GMT`, `UT`, an offset alone or after UTC/GMT (`GMT+3`, `UTC-05:00`, `+0400`,
    `-05`), or an RFC 822 US zone (EST…PDT); a parenthesised comment may close the text.
  - RFC 2822 dates ("Tue, 03 Mar 2026 14:05:33 +0000"): an English weekday name may lead any
    form.
  - Epoch numbers: an all-digit text of 9–10 digits is seconds, of 12–13 digits milliseconds;
    any other all-digit text is unreadable.
- A time without a zone is in `zone` (a DST gap or fold reads with fold=0, never raises). A date
  without a time is midnight UTC of that calendar date, so a dossier printing UTC dates prints it
  as written.
- In the future: a time later than `now` + 5 minutes (clock skew), a date after today in `zone`.
  Years before 1 and times that overflow are "out of range".
"""

from __future__ import annotations

import functools
import re
import unicodedata
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from enum import StrEnum

from delivery.errors import InputRefused, RowRejected
from delivery.signers.normalize import clean_text, quote_value

CLOCK_SKEW = timedelta(minutes=5)
MONTH_LANGUAGES = ("en", "hy", "ru", "de", "fr", "es", "it", "pt", "nl", "pl", "uk")
QUOTE_LIMIT = 40


class DateOrder(StrEnum):
    DMY = "dmy"
    MDY = "mdy"
    YMD = "ymd"


_ORDER_WORDS = {DateOrder.DMY: "day/month/year", DateOrder.MDY: "month/day/year",
                DateOrder.YMD: "year/month/day"}
_ENGLISH_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
                   "September", "October", "November", "December")


def quoted(text: str) -> str:
    """A cell for a reason or a refusal: reports and logs carry them, addresses must not."""
    return quote_value(clean_text(text), QUOTE_LIMIT)


def _unreadable(text: str) -> RowRejected:
    return RowRejected(f"unreadable date {quoted(text)}")


def _out_of_range() -> RowRejected:
    return RowRejected("signing date is out of range")


def _readings(first: int, second: int) -> str:
    """03/04 → "3 April or 4 March": both ways a numeric date can be read."""
    return (f"{first} {_ENGLISH_MONTHS[second - 1]} or {second} {_ENGLISH_MONTHS[first - 1]}")


# --- the order a column proves ---------------------------------------------------------------

_WEEKDAY = (r"(?:mon(?:day)?|tue(?:s(?:day)?)?|wed(?:nesday)?|thu(?:r(?:s(?:day)?)?)?|fri(?:day)?"
            r"|sat(?:urday)?|sun(?:day)?)(?:[.,]\s*|\s+)")
_DAY_MONTH = r"(\d{1,2})([/.-])(\d{1,2})\2(?:\d{4}|\d{2})(?!\d)"
_SCAN_PLAIN = re.compile(_DAY_MONTH).match
_SCAN_PADDED = re.compile(rf"\s*(?:{_WEEKDAY})?{_DAY_MONTH}", re.IGNORECASE).match


# What one cell proves (plain ints: add() compares them a million times).
_NOTHING, _DAY_FIRST, _MONTH_FIRST, _AMBIGUOUS = range(4)


def _kind(first: int, second: int) -> int:
    if first == second or not (1 <= first <= 31 and 1 <= second <= 31):
        return _NOTHING
    if first > 12:
        return _DAY_FIRST if second <= 12 else _NOTHING
    return _MONTH_FIRST if second > 12 else _AMBIGUOUS


# ("3", "04") → its kind, for every pair of 1–2 ASCII digit texts: add() does one look-up.
_NUMBERS = [str(n) for n in range(10)] + [f"{n:02}" for n in range(100)]
_KINDS = {(a, b): _kind(int(a), int(b)) for a in _NUMBERS for b in _NUMBERS}


class DateScan:
    """The date cells of one column, fed in file order → the day/month order they prove."""

    __slots__ = ("_ambiguous", "_day_first", "_given", "_learned", "_month_first")

    def __init__(self, given: DateOrder | None) -> None:
        self._given = given
        # Only the first example line of each kind is kept: a refusal quotes it.
        self._day_first: tuple[int, str] | None = None
        self._month_first: tuple[int, str] | None = None
        self._ambiguous: tuple[int, str] | None = None
        # Nothing more to learn once both orders are proved; a given order is checked too.
        self._learned = given is DateOrder.YMD  # two-digit y/m/d dates look day first

    def add(self, line: int, text: str) -> None:
        if self._learned:
            return
        # The common cell takes one C call; only one not starting with a digit may have white
        # space or a weekday first.
        match = _SCAN_PLAIN(text) or (None if text[:1].isdigit() else _SCAN_PADDED(text))
        if match is None:
            return
        first, second = match[1], match[3]
        kind = _KINDS.get((first, second))
        if kind is None:  # digits of another script ("١٢"): int() reads them, as read_date does
            kind = _kind(int(first), int(second))
        if kind == _AMBIGUOUS:
            if self._ambiguous is None:
                self._ambiguous = (line, text)
        elif kind == _DAY_FIRST:
            if self._day_first is None:
                self._day_first = (line, text)
                self._learned = self._month_first is not None
        elif kind == _MONTH_FIRST and self._month_first is None:
            self._month_first = (line, text)
            self._learned = self._day_first is not None

    def settle(self, source: str, column: str) -> DateOrder | None:
        if self._day_first is not None and self._month_first is not None:
            (day_line, day_text), (month_line, month_text) = self._day_first, self._month_first
            raise InputRefused(source, (
                f"column {column!r} mixes day-first dates (line {day_line}: {quoted(day_text)}) "
                f"and month-first dates (line {month_line}: {quoted(month_text)}); one file must "
                "use one order: fix the column or split the file"))
        proof = {DateOrder.DMY: self._month_first, DateOrder.MDY: self._day_first}
        against = proof.get(self._given) if self._given is not None else None
        if against is not None:
            line, text = against
            other = "month" if self._given is DateOrder.DMY else "day"
            raise InputRefused(source, (
                f"--date-order {self._given}, but column {column!r} line {line}: {quoted(text)} "
                f"can only be {other} first: the file settles its order itself; leave out "
                "--date-order or fix that row"))
        if self._given is not None:
            return self._given
        if self._day_first is not None:
            return DateOrder.DMY
        if self._month_first is not None:
            return DateOrder.MDY
        if self._ambiguous is not None:
            line, text = self._ambiguous
            match = _SCAN_PADDED(text)
            assert match is not None  # add() kept it because it matched
            raise InputRefused(source, (
                f"column {column!r}, line {line}: {quoted(text)} can be read as "
                f"{_readings(int(match[1]), int(match[3]))} and no row settles which; say which "
                "with --date-order dmy or --date-order mdy"))
        return None


# --- month names -----------------------------------------------------------------------------

def _month_key(word: str) -> str:
    return unicodedata.normalize("NFC", word).casefold().rstrip(".")


@functools.cache
def month_names() -> dict[str, int]:
    """Every month word of MONTH_LANGUAGES (case-folded, no trailing ".") → its month 1–12."""
    # Babel reads the local zone when imported and its data on use: only here, once.
    from babel.dates import get_month_names

    months: dict[str, set[int]] = {}
    for month, name in enumerate(_ENGLISH_MONTHS, start=1):
        for word in (name, name[:3]):
            months.setdefault(_month_key(word), set()).add(month)
    months.setdefault("sept", set()).add(9)
    for language in MONTH_LANGUAGES:
        for width in ("wide", "abbreviated"):
            for context in ("format", "stand-alone"):
                for month, name in get_month_names(width, context, language).items():
                    months.setdefault(_month_key(name), set()).add(month)
    return {word: next(iter(found)) for word, found in months.items() if len(found) == 1}


# --- reading one cell ------------------------------------------------------------------------

_CLOCK = (r"(?:\s*,\s*|\s+(?:at\s+)?|T)"
          r"(?P<hour>\d{1,2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?:[.,](?P<fraction>\d{1,9}))?)?"
          r"(?:\s*(?P<meridiem>[ap])\.?\s?m\.?)?"
          r"(?:\s*(?P<zone>Z|(?:UTC|GMT|UT)?\s*[+-]\d{1,2}(?::?\d{2})?|UTC|GMT|UT|[ECMP][SD]T))?"
          r"(?:\s*\([^()]*\))?")
_YEAR_WORD = r"(?:\s*(?:г|р|r|թ)\.?)?"  # "2026 г.", "2026 р.", "2026 r.", "2026 թ."
_NUMERIC = re.compile(
    rf"(?P<p>\d{{4}}|\d{{1,2}})(?P<sep>[/.-])(?P<q>\d{{1,2}})(?P=sep)(?P<r>\d{{4}}|\d{{1,2}})(?:{_CLOCK})?",
    re.IGNORECASE)
_DAY_MONTH_NAME = re.compile(
    r"(?P<day>\d{1,2})(?:st|nd|rd|th|er)?\.?(?:\s*[/-]\s*|\s+(?:de\s+)?|)(?P<month>[^\W\d_]+)\.?"
    rf"(?:\s*[/-]\s*|,?\s+(?:de\s+)?|)(?P<year>\d{{4}}|\d{{2}}){_YEAR_WORD}(?:{_CLOCK})?",
    re.IGNORECASE)
_MONTH_NAME_DAY = re.compile(
    r"(?P<month>[^\W\d_]+)\.?(?:\s*[/-]\s*|\s*)(?P<day>\d{1,2})(?:st|nd|rd|th)?"
    rf"(?:\s*,\s*|\s+|\s*[/-]\s*)(?P<year>\d{{4}}|\d{{2}}){_YEAR_WORD}(?:{_CLOCK})?",
    re.IGNORECASE)
_LEADING_WEEKDAY = re.compile(_WEEKDAY, re.IGNORECASE)
_OFFSET = re.compile(r"(?:UTC|GMT|UT)?\s*(?P<sign>[+-])(?P<hours>\d{1,2})(?::?(?P<minutes>\d{2}))?",
                     re.IGNORECASE)
_NAMED_ZONES = {"Z": 0, "UTC": 0, "GMT": 0, "UT": 0, "EST": -5, "EDT": -4, "CST": -6, "CDT": -5,
                "MST": -7, "MDT": -6, "PST": -8, "PDT": -7}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _year(digits: str) -> int:
    return 2000 + int(digits) if len(digits) == 2 else int(digits)


@functools.cache
def _fixed_zone(minutes: int) -> timezone:
    return UTC if minutes == 0 else timezone(timedelta(minutes=minutes))


def _zone_of(zone_text: str, text: str) -> timezone:
    named = _NAMED_ZONES.get(zone_text.upper())
    if named is not None:
        return _fixed_zone(named * 60)
    offset = _OFFSET.fullmatch(zone_text)
    assert offset is not None  # the cell's pattern only lets offsets through
    hours, minutes = int(offset["hours"]), int(offset["minutes"] or 0)
    if hours > 23 or minutes > 59:
        raise _unreadable(text)
    return _fixed_zone((-1 if offset["sign"] == "-" else 1) * (hours * 60 + minutes))


def _hour(match: re.Match[str], text: str) -> int:
    hour = int(match["hour"])
    meridiem = match["meridiem"]
    if meridiem is None:
        return hour
    if hour > 12:
        raise _unreadable(text)
    return hour % 12 + (12 if meridiem in "pP" else 0)


def _midnight_utc(year: int, month: int, day: int, text: str) -> datetime:
    if year < 1:
        raise _out_of_range()
    try:
        return datetime(year, month, day, 0, 0, 0, 0, UTC)  # positional: keywords cost more
    except ValueError:
        raise _unreadable(text) from None


def _time_utc(match: re.Match[str], year: int, month: int, day: int, zone: tzinfo, text: str
              ) -> datetime:
    """A matched cell with a time and its calendar date → aware UTC (in `zone` unless it names
    its own)."""
    if year < 1:
        raise _out_of_range()
    fraction = match["fraction"]
    written_zone = match["zone"]
    try:
        local = datetime(year, month, day, _hour(match, text), int(match["minute"]),
                         int(match["second"] or 0), int(fraction[:6].ljust(6, "0")) if fraction else 0,
                         _zone_of(written_zone, text) if written_zone else zone)
    except ValueError:
        raise _unreadable(text) from None
    return _as_utc(local)


def _as_utc(when: datetime) -> datetime:
    try:
        return when.astimezone(UTC)
    except OverflowError:
        raise _out_of_range() from None


def _is_valid(year: int, month: int, day: int) -> bool:
    try:
        datetime(year, month, day)
    except ValueError:
        return False
    return True


def _numeric_date(match: re.Match[str], order: DateOrder | None, text: str) -> tuple[int, int, int]:
    """p/q/r → (year, month, day) in `order`, or in the one way the text reads without one."""
    p, q, r = match["p"], match["q"], match["r"]
    if len(p) == 4:
        if len(r) > 2:
            raise _unreadable(text)
        return int(p), int(q), int(r)
    if len(r) == 1:
        raise _unreadable(text)
    first, second, year = int(p), int(q), _year(r)
    if order is None:
        kind = _kind(first, second)
        if kind == _AMBIGUOUS:
            raise RowRejected(f"day/month order unknown for {quoted(text)}: it can be read as "
                              f"{_readings(first, second)}")
        # At most one reading holds (or both are the same): the one the scan would prove.
        return (year, first, second) if kind == _MONTH_FIRST else (year, second, first)
    if order is DateOrder.YMD:
        if len(r) == 4:
            raise RowRejected(f"not a valid date in year/month/day order: {quoted(text)}")
        if len(p) == 1:
            raise _unreadable(text)
        return _year(p), second, int(r)
    ymd = (year, second, first) if order is DateOrder.DMY else (year, first, second)
    # Only a month over 12 can make the order's reading fail where the other one holds.
    if ymd[1] > 12 and _is_valid(ymd[0], ymd[2], ymd[1]):
        raise RowRejected(f"not a valid date in {_ORDER_WORDS[order]} order: {quoted(text)}")
    return ymd


def _named_date(match: re.Match[str], text: str) -> tuple[int, int, int]:
    month = month_names().get(_month_key(match["month"]))
    if month is None:
        raise _unreadable(text)
    return _year(match["year"]), month, int(match["day"])


def _epoch(digits: str) -> datetime:
    if 9 <= len(digits) <= 10:
        return _EPOCH + timedelta(seconds=int(digits))
    if 12 <= len(digits) <= 13:
        return _EPOCH + timedelta(milliseconds=int(digits))
    raise _unreadable(digits)


def _written(text: str, order: DateOrder | None, zone: tzinfo) -> tuple[datetime, bool]:
    """A stripped cell that is not plain ISO → (aware UTC datetime, whether it is a date only)."""
    if text.isascii() and text.isdigit():
        return _epoch(text), False
    weekday = _LEADING_WEEKDAY.match(text) if text[:1].isalpha() else None
    rest = text[weekday.end():] if weekday else text
    match = _NUMERIC.fullmatch(rest)
    if match is not None:
        year, month, day = _numeric_date(match, order, text)
    else:
        match = _DAY_MONTH_NAME.fullmatch(rest) or _MONTH_NAME_DAY.fullmatch(rest)
        if match is None:
            raise _unreadable(text)
        year, month, day = _named_date(match, text)
    if match["hour"] is None:
        return _midnight_utc(year, month, day, text), True
    return _time_utc(match, year, month, day, zone, text), False


def _iso(text: str, zone: tzinfo) -> tuple[datetime, bool] | None:
    """An ISO 8601 cell → (aware UTC datetime, whether it is a date only); None if not ISO."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    # ISO dates are at most 10 characters ("2026-11-27", "2026-W48-5"); so are a few week
    # date-times ("2026W48T14"), told apart by their hour.
    if len(text) <= 10 and when.hour == 0:
        return datetime(when.year, when.month, when.day, 0, 0, 0, 0, UTC), True
    if when.tzinfo is None:  # a constructor, not replace(): keywords cost a lot per call
        when = datetime(when.year, when.month, when.day, when.hour, when.minute, when.second,
                        when.microsecond, zone)
    return _as_utc(when), False


@functools.lru_cache(maxsize=8)
def _today_midnight_utc(now: datetime, zone: tzinfo) -> datetime:
    """The midnight UTC of today in `zone`: a date-only cell after it is in the future."""
    today = now.astimezone(zone).date()
    return datetime(today.year, today.month, today.day, 0, 0, 0, 0, UTC)


def signing_time(when: datetime, *, zone: tzinfo, now: datetime) -> datetime:
    """A datetime given as such (an API call, a single add) → aware UTC, not in the future;
    a naive one is in `zone`."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=zone)
    when = _as_utc(when)
    if when > now + CLOCK_SKEW:
        raise RowRejected("signing date is in the future")
    return when


def read_date(text: str, *, order: DateOrder | None, zone: tzinfo, now: datetime) -> datetime:
    """A date cell → an aware UTC datetime, not in the future; RowRejected(reason) otherwise."""
    text = text.strip()
    # Most cells are ISO: one C call reads them. Basic-format dates (20261127) are all digits,
    # which the module rules reject, so they skip it.
    read = _iso(text, zone) if text[:4].isdigit() and not text.isdigit() else None
    when, date_only = read or _written(text, order, zone)
    if when > (_today_midnight_utc(now, zone) if date_only else now + CLOCK_SKEW):
        raise RowRejected("signing date is in the future")
    return when
