"""delivery.signers.dates: a column's day/month order (DateScan) and one cell's signing time
(read_date). Pure: fixed `now`, explicit zones."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

import pytest

from delivery.errors import InputRefused, RowRejected
from delivery.signers.dates import DateOrder, DateScan, month_names, read_date

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
YEREVAN = ZoneInfo("Asia/Yerevan")  # UTC+4 all year
BERLIN = ZoneInfo("Europe/Berlin")


def read(text: str, order: DateOrder | None = None, zone: tzinfo = UTC, now: datetime = NOW
         ) -> datetime:
    return read_date(text, order=order, zone=zone, now=now)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0,
        microsecond: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, microsecond, tzinfo=UTC)


def scanned(cells: Iterable[str], given: DateOrder | None = None) -> DateScan:
    scan = DateScan(given)
    for line, text in enumerate(cells, start=2):  # line 1 is the header
        scan.add(line, text)
    return scan


def refusal(cells: Iterable[str]) -> str:
    with pytest.raises(InputRefused) as refused:
        scanned(cells).settle("signers.csv", "Date")
    assert refused.value.source == "signers.csv"
    return refused.value.problem


# --- DateScan.settle ---------------------------------------------------------------------------

def test_order_values_are_the_option_texts() -> None:
    assert [order.value for order in DateOrder] == ["dmy", "mdy", "ymd"]
    assert DateOrder("mdy") is DateOrder.MDY


def test_a_us_google_sheets_column_settles_month_first() -> None:
    cells = ["3/4/2026 14:05:33", "3/15/2026 9:01:02"]
    order = scanned(cells).settle("signers.csv", "Timestamp")
    assert order is DateOrder.MDY
    assert read(cells[0], order) == utc(2026, 3, 4, 14, 5, 33)
    assert read(cells[1], order) == utc(2026, 3, 15, 9, 1, 2)


def test_a_day_first_cell_settles_day_first() -> None:
    cells = ["03/04/2026", "04.05.2026 10:00", "27-11-2026", "1/2/26"]
    assert scanned(cells).settle("signers.csv", "Date") is DateOrder.DMY


def test_a_column_of_ambiguous_cells_only_is_refused_naming_the_option() -> None:
    problem = refusal(["2026-01-05", "03/04/2026", "05/06/2026"])
    assert "--date-order" in problem
    assert "'Date'" in problem and "line 3: '03/04/2026'" in problem
    assert "3 April or 4 March" in problem and "--date-order dmy or --date-order mdy" in problem


def test_a_column_mixing_both_orders_is_refused_naming_both_lines() -> None:
    problem = refusal(["03/04/2026", "27/11/2026", "2026-11-01", "11/27/2026", "28/11/2026"])
    assert "line 3: '27/11/2026'" in problem and "line 5: '11/27/2026'" in problem
    assert "day-first" in problem and "month-first" in problem
    assert "split the file" in problem


def test_a_given_order_settles_ambiguous_rows_and_is_refused_when_the_file_proves_the_other(
        ) -> None:
    assert scanned(["03/04/2026"], DateOrder.MDY).settle("signers.csv", "Date") is DateOrder.MDY
    assert scanned(["27/11/2026", "03/04/2026"], DateOrder.DMY).settle("s.csv", "Date") \
        is DateOrder.DMY
    with pytest.raises(InputRefused, match=r"--date-order mdy, but column 'Date' line 3: "
                                           r"'27/11/2026' can only be day first"):
        scanned(["03/04/2026", "27/11/2026"], DateOrder.MDY).settle("signers.csv", "Date")
    with pytest.raises(InputRefused, match="mixes day-first"):
        scanned(["27/11/2026", "11/27/2026"], DateOrder.DMY).settle("signers.csv", "Date")
    # two-digit year/month/day dates look day first: a given ymd is not contradicted by them
    assert scanned(["26/03/04"], DateOrder.YMD).settle("signers.csv", "Date") is DateOrder.YMD
    assert read("27/11/2026", DateOrder.DMY) == utc(2026, 11, 27)
    with pytest.raises(RowRejected, match="not a valid date in day/month/year order: '11/27/2026'"):
        read("11/27/2026", DateOrder.DMY)
    assert read("03/04/2026", DateOrder.DMY) == utc(2026, 4, 3)


@pytest.mark.parametrize("cells", [
    [],
    ["2026-11-27", "2026-11-27T14:30:00Z", "2026/03/04", "2026-03-04"],
    ["27 Nov 2026", "Nov 3, 2026", "Tue, 03 Mar 2026 14:05:33 +0000", "1772600000"],
    ["03/03/2026", "11.11.2026"],  # the same read either way
    ["45/03/2026", "3/45/2026", "0/5/2026", "13/14/2026"],  # no valid reading proves an order
    ["3/4/202", "3/4-2026", "not a date"],
])
def test_cells_that_prove_nothing_settle_nothing(cells: list[str]) -> None:
    assert scanned(cells).settle("signers.csv", "Date") is None


def test_padding_weekdays_and_other_digits_are_evidence_too() -> None:
    assert scanned(["  27/11/2026"]).settle("s", "Date") is DateOrder.DMY
    assert scanned(["Friday, 11/27/2026"]).settle("s", "Date") is DateOrder.MDY
    assert scanned(["١٣/٠٣/٢٠٢٦"]).settle("s", "Date") is DateOrder.DMY


def test_refusals_never_quote_an_address_and_cut_long_cells() -> None:
    problem = refusal(["03/04/2026 ann@example.org"])
    assert "ann" not in problem and "(it holds an e-mail address)" in problem
    problem = refusal(["03/04/2026 " + "x" * 100])
    assert "'03/04/2026 " + "x" * 29 + "'" in problem and "x" * 30 not in problem


# --- read_date: forms ------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("2026-11-27", utc(2026, 11, 27)),
    ("2026-11-26T14:30:00Z", utc(2026, 11, 26, 14, 30)),
    ("2026-11-27T14:30:00+04:00", utc(2026, 11, 27, 10, 30)),
    ("2026-11-27T14:30:00+0400", utc(2026, 11, 27, 10, 30)),
    ("2026-11-27T14:30+04", utc(2026, 11, 27, 10, 30)),
    ("2026-11-26 14:30:00.250-05:00", utc(2026, 11, 26, 19, 30, 0, 250000)),
    ("2026-11-26T14:30:00.123456789Z", utc(2026, 11, 26, 14, 30, 0, 123456)),
    ("2026-11-27 11:00 UTC", utc(2026, 11, 27, 11)),
    ("2026-W48-5", utc(2026, 11, 27)),
    ("2026/11/27", utc(2026, 11, 27)),
    ("2026.11.27 10:20", utc(2026, 11, 27, 10, 20)),
    ("  2026-11-27  ", utc(2026, 11, 27)),
])
def test_iso_and_year_first(text: str, expected: datetime) -> None:
    assert read(text) == expected
    assert read(text, DateOrder.MDY) == expected  # year first is never read another way


@pytest.mark.parametrize(("text", "order", "expected"), [
    ("27/11/2026", DateOrder.DMY, utc(2026, 11, 27)),
    ("27.11.2026 10:20:30", DateOrder.DMY, utc(2026, 11, 27, 10, 20, 30)),
    ("27-11-2026, 10:20", DateOrder.DMY, utc(2026, 11, 27, 10, 20)),
    ("03/04/2026", DateOrder.DMY, utc(2026, 4, 3)),
    ("03/04/2026", DateOrder.MDY, utc(2026, 3, 4)),
    ("03/04/26", DateOrder.MDY, utc(2026, 3, 4)),
    ("26/03/04", DateOrder.YMD, utc(2026, 3, 4)),
    ("25/03/2026", None, utc(2026, 3, 25)),  # readable one way only
    ("3/25/2026", None, utc(2026, 3, 25)),
    ("05/05/2026", None, utc(2026, 5, 5)),
])
def test_numeric_dates_follow_the_order(text: str, order: DateOrder | None, expected: datetime
                                        ) -> None:
    assert read(text, order) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("3/4/2026 09:01 AM", utc(2026, 3, 4, 9, 1)),
    ("3/4/2026 9:01 PM", utc(2026, 3, 4, 21, 1)),
    ("3/4/2026 12:00 AM", utc(2026, 3, 4, 0, 0)),
    ("3/4/2026 12:30 PM", utc(2026, 3, 4, 12, 30)),
    ("3/4/2026 9:01:02pm", utc(2026, 3, 4, 21, 1, 2)),
    ("3/4/2026 9:01 a.m.", utc(2026, 3, 4, 9, 1)),
    ("3/4/2026 9:01 p. m.", utc(2026, 3, 4, 21, 1)),
])
def test_twelve_hour_clocks(text: str, expected: datetime) -> None:
    assert read(text, DateOrder.MDY) == expected


def test_an_hour_over_twelve_with_am_or_pm_is_unreadable() -> None:
    with pytest.raises(RowRejected, match="unreadable date '3/4/2026 13:00 PM'"):
        read("3/4/2026 13:00 PM", DateOrder.MDY)


@pytest.mark.parametrize(("suffix", "expected"), [
    ("Z", utc(2026, 3, 4, 9, 1)),
    (" UTC", utc(2026, 3, 4, 9, 1)),
    (" GMT", utc(2026, 3, 4, 9, 1)),
    (" GMT+3", utc(2026, 3, 4, 6, 1)),
    (" GMT+03:00", utc(2026, 3, 4, 6, 1)),
    (" UTC-5", utc(2026, 3, 4, 14, 1)),
    (" +04:00", utc(2026, 3, 4, 5, 1)),
    (" +0400", utc(2026, 3, 4, 5, 1)),
    ("-05", utc(2026, 3, 4, 14, 1)),
    (" EST", utc(2026, 3, 4, 14, 1)),
    (" PM GMT+3", utc(2026, 3, 4, 18, 1)),
])
def test_zone_suffixes(suffix: str, expected: datetime) -> None:
    # The zone written in the cell wins over the file's zone.
    assert read(f"3/4/2026 9:01{suffix}", DateOrder.MDY, zone=YEREVAN) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("27 Nov 2026", utc(2026, 11, 27)),
    ("27 November 2026", utc(2026, 11, 27)),
    ("27. November 2026", utc(2026, 11, 27)),
    ("27-Nov-26", utc(2026, 11, 27)),
    ("27 ноября 2026", utc(2026, 11, 27)),
    ("27 ноября 2026 г.", utc(2026, 11, 27)),
    ("27 нояб. 2026", utc(2026, 11, 27)),
    ("4. März 2026", utc(2026, 3, 4)),
    ("4 MÄRZ 2026", utc(2026, 3, 4)),
    ("4 mars 2026", utc(2026, 3, 4)),
    ("1er août 2026", utc(2026, 8, 1)),
    ("4 de marzo de 2026", utc(2026, 3, 4)),
    ("4 de março de 2026", utc(2026, 3, 4)),
    ("4 marzo 2026", utc(2026, 3, 4)),
    ("4 maart 2026", utc(2026, 3, 4)),
    ("27 listopada 2026 r.", utc(2026, 11, 27)),
    ("27 листопада 2026", utc(2026, 11, 27)),
    ("27 նոյեմբերի 2026", utc(2026, 11, 27)),
    ("Nov 27, 2026", utc(2026, 11, 27)),
    ("March 4 2026", utc(2026, 3, 4)),
    ("March 4th, 2026", utc(2026, 3, 4)),
    ("Sept. 3, 2026", utc(2026, 9, 3)),
    ("26 Nov 2026 14:30", utc(2026, 11, 26, 14, 30)),
    ("Nov 26, 2026, 2:30 PM", utc(2026, 11, 26, 14, 30)),
    ("November 27, 2026 at 2:30:00 PM GMT+4", utc(2026, 11, 27, 10, 30)),
    ("Tue, 03 Mar 2026 14:05:33 +0000", utc(2026, 3, 3, 14, 5, 33)),
    ("Tue, 03 Mar 2026 14:05:33 GMT", utc(2026, 3, 3, 14, 5, 33)),
    ("Fri Nov 27 2026 10:30:00 GMT+0400 (Armenia Standard Time)", utc(2026, 11, 27, 6, 30)),
    ("Tuesday, March 3, 2026", utc(2026, 3, 3)),
    ("Wed 4/3/2026", utc(2026, 3, 4)),
])
def test_month_names_and_mail_dates(text: str, expected: datetime) -> None:
    assert read(text, DateOrder.DMY) == expected


def test_month_names_cover_every_language_and_name_one_month_each() -> None:
    table = month_names()
    assert set(table.values()) == set(range(1, 13))
    for word, month in {"sep": 9, "sept": 9, "мая": 5, "травня": 5, "mei": 5, "maj": 5,
                        "mai": 5, "mrt": 3, "sty": 1, "հունվարի": 1, "ott": 10}.items():
        assert table[word] == month
    assert month_names() is table  # built once


@pytest.mark.parametrize(("text", "expected"), [
    ("1772600000", utc(2026, 3, 4, 4, 53, 20)),
    ("1772600000000", utc(2026, 3, 4, 4, 53, 20)),
    ("1772600000123", utc(2026, 3, 4, 4, 53, 20, 123000)),
    ("999999999", utc(2001, 9, 9, 1, 46, 39)),
])
def test_epoch_seconds_and_milliseconds(text: str, expected: datetime) -> None:
    assert read(text) == expected


@pytest.mark.parametrize("text", ["20261127", "2026", "12345678901", "12345678", "17726000000000"])
def test_other_all_digit_texts_are_unreadable(text: str) -> None:
    with pytest.raises(RowRejected, match=f"unreadable date '{text}'"):
        read(text)


# --- read_date: refusals -----------------------------------------------------------------------

def test_an_ambiguous_text_without_an_order_is_rejected() -> None:
    with pytest.raises(RowRejected, match=r"day/month order unknown .*'03/04/2026'.*3 April or 4 March"):
        read("03/04/2026")


@pytest.mark.parametrize(("text", "order", "words"), [
    ("25/03/2026", DateOrder.MDY, "month/day/year"),
    ("3/25/2026", DateOrder.DMY, "day/month/year"),
    ("27/11/2026 14:30", DateOrder.YMD, "year/month/day"),
])
def test_a_text_that_does_not_fit_the_order_is_rejected(text: str, order: DateOrder, words: str
                                                         ) -> None:
    with pytest.raises(RowRejected, match=f"not a valid date in {words} order"):
        read(text, order)


@pytest.mark.parametrize(("text", "order"), [
    ("31/02/2026", DateOrder.DMY), ("02/31/2026", DateOrder.MDY), ("31/31/2026", None),
    ("2026-13-01", None), ("2026/02/30", None), ("3/4/6", DateOrder.DMY), ("27 Foo 2026", None),
    ("yesterday", None), ("", None), ("3/4/2026 25:00", DateOrder.DMY),
    ("3/4/2026 10:61", DateOrder.DMY), ("3/4/2026 10:00 +25:00", DateOrder.DMY),
    ("Nov 2026", None), ("Marc 4 2026", None), ("0/5/2026", None), ("45/03/2026", None),
    ("6/03/04", DateOrder.YMD),
])
def test_unreadable_dates_are_rejected(text: str, order: DateOrder | None) -> None:
    with pytest.raises(RowRejected, match="unreadable date"):
        read(text, order)


def test_reasons_never_quote_an_address_and_cut_long_texts() -> None:
    for text in ("zoe@example.org", "31/02/2026 zoe@example.org", "Zoë＠x", "a\uff20b.org"):
        with pytest.raises(RowRejected) as rejected:
            read(text)
        assert rejected.value.reason == "unreadable date (it holds an e-mail address)"
    with pytest.raises(RowRejected) as rejected:
        read("nonsense " * 20)
    assert rejected.value.reason == "unreadable date " + repr(("nonsense " * 20)[:40])


@pytest.mark.parametrize("text", ["0000-01-01", "0000-01-01T10:00", "00/01/0000 10:00",
                                  "9999-12-31T23:00:00-05:00"])
def test_out_of_range_dates_are_rejected(text: str) -> None:
    with pytest.raises(RowRejected, match="signing date is out of range"):
        read(text, DateOrder.DMY)


def test_a_naive_time_at_the_end_of_the_calendar_is_out_of_range() -> None:
    with pytest.raises(RowRejected, match="out of range"):
        read("9999-12-31 23:00", zone=ZoneInfo("America/New_York"))
    with pytest.raises(RowRejected, match="out of range"):
        read("0001-01-01 01:00", zone=YEREVAN)


# --- read_date: zones and the future -----------------------------------------------------------

def test_a_time_without_a_zone_is_in_the_files_zone() -> None:
    assert read("2026-11-27 12:30", zone=YEREVAN) == utc(2026, 11, 27, 8, 30)
    assert read("27/11/2026 12:30", DateOrder.DMY, zone=YEREVAN) == utc(2026, 11, 27, 8, 30)
    assert read("2026-11-27 11:30", zone=UTC) == utc(2026, 11, 27, 11, 30)
    assert read("2026-11-27 12:30", zone=YEREVAN).tzinfo is UTC


def test_a_local_time_just_before_now_is_not_in_the_future() -> None:
    local = (NOW - timedelta(minutes=55)).astimezone(YEREVAN)  # 15:05 in Yerevan
    assert read(local.strftime("%Y-%m-%d %H:%M"), zone=YEREVAN) == NOW - timedelta(minutes=55)
    assert read(local.strftime("%d/%m/%Y %H:%M"), DateOrder.DMY, zone=YEREVAN) \
        == NOW - timedelta(minutes=55)


def test_dst_gaps_and_folds_read_without_raising() -> None:
    # 02:30 on 29 March 2026 does not exist in Berlin, and 02:30 on 25 October happens twice:
    # both read with fold=0, the offset before the change.
    assert read("2026-03-29 02:30", zone=BERLIN) == utc(2026, 3, 29, 1, 30)
    assert read("2026-10-25 02:30", zone=BERLIN) == utc(2026, 10, 25, 0, 30)
    assert read("29.03.2026 02:30", DateOrder.DMY, zone=BERLIN) == utc(2026, 3, 29, 1, 30)


def test_a_date_without_a_time_is_midnight_utc_of_that_date() -> None:
    for text in ("27/11/2026", "2026-11-27", "27 Nov 2026"):
        assert read(text, DateOrder.DMY, zone=YEREVAN) == utc(2026, 11, 27)
        assert read(text, DateOrder.DMY, zone=ZoneInfo("America/Los_Angeles")) == utc(2026, 11, 27)


def test_a_date_is_in_the_future_only_after_today_in_the_files_zone() -> None:
    late = datetime(2026, 11, 27, 21, 0, tzinfo=UTC)  # already 28 November in Yerevan
    assert read("28/11/2026", DateOrder.DMY, zone=YEREVAN, now=late) == utc(2026, 11, 28)
    assert read("2026-11-28", zone=YEREVAN, now=late) == utc(2026, 11, 28)
    for zone, text in ((UTC, "28/11/2026"), (YEREVAN, "29/11/2026"), (UTC, "2026-11-28")):
        with pytest.raises(RowRejected, match="signing date is in the future"):
            read(text, DateOrder.DMY, zone=zone, now=late)


def test_a_time_is_in_the_future_beyond_five_minutes_of_clock_skew() -> None:
    assert read("2026-11-27T12:04:00Z") == NOW + timedelta(minutes=4)
    assert read("2026-11-27T12:05:00Z") == NOW + timedelta(minutes=5)
    for text in ("2026-11-27T12:06:00Z", "2026-11-27 16:06", "27/11/2026 12:06 UTC", "1800000000",
                 "28 Nov 2026"):
        with pytest.raises(RowRejected, match="signing date is in the future"):
            read(text, DateOrder.DMY, zone=YEREVAN if "16:06" in text else UTC)


def test_now_may_be_given_in_any_zone() -> None:
    now = NOW.astimezone(YEREVAN)
    assert read("2026-11-27T12:04:00Z", now=now) == NOW + timedelta(minutes=4)
    with pytest.raises(RowRejected, match="in the future"):
        read("2026-11-27T12:06:00Z", now=now)
