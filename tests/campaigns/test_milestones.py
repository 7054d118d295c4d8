"""Milestones and send windows: pure functions."""

from __future__ import annotations

from datetime import UTC, datetime, time

from delivery.campaigns.config import SendWindow
from delivery.campaigns.milestones import crossing, next_milestone
from delivery.campaigns.window import earliest_send, is_open

THRESHOLDS = (1000, 5000, 10000)


def test_nothing_below_the_first_threshold() -> None:
    assert crossing(999, THRESHOLDS, set()) is None


def test_several_crossed_at_once_make_one_delivery_for_the_highest() -> None:
    found = crossing(6000, THRESHOLDS, set())
    assert found is not None
    assert found.reached == (1000, 5000)
    assert found.highest == 5000


def test_a_reached_milestone_is_not_reached_again() -> None:
    assert crossing(6000, THRESHOLDS, {1000, 5000}) is None
    found = crossing(12000, THRESHOLDS, {1000, 5000})
    assert found is not None and found.reached == (10000,)


def test_falling_back_below_changes_nothing() -> None:
    assert crossing(900, THRESHOLDS, {1000}) is None
    assert next_milestone(900, THRESHOLDS) == 1000
    assert next_milestone(10000, THRESHOLDS) is None


WORKDAYS = SendWindow(frozenset(range(5)), time(9), time(18))


def test_inside_the_window_sends_now() -> None:
    now = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)  # Tuesday 11:00 in Yerevan (UTC+4)
    assert is_open(now, WORKDAYS, "Asia/Yerevan")


def test_after_hours_waits_for_the_next_working_morning() -> None:
    friday_evening = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)  # Friday 19:00 in Yerevan
    assert earliest_send(friday_evening, WORKDAYS, "Asia/Yerevan") == datetime(2026, 11, 30, 5, 0, tzinfo=UTC)


def test_window_follows_daylight_saving_time() -> None:
    # Berlin switches to summer time on 2026-03-29: 09:00 local is 08:00 UTC before, 07:00 UTC after.
    sunday = datetime(2026, 3, 29, 12, 0, tzinfo=UTC)
    assert earliest_send(sunday, WORKDAYS, "Europe/Berlin") == datetime(2026, 3, 30, 7, 0, tzinfo=UTC)
    saturday = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)
    assert earliest_send(saturday, WORKDAYS, "Europe/Berlin") == datetime(2026, 3, 30, 7, 0, tzinfo=UTC)
    before = datetime(2026, 3, 27, 6, 0, tzinfo=UTC)  # Friday 07:00 CET
    assert earliest_send(before, WORKDAYS, "Europe/Berlin") == datetime(2026, 3, 27, 8, 0, tzinfo=UTC)


def test_no_window_means_any_time() -> None:
    now = datetime(2026, 11, 28, 23, 0, tzinfo=UTC)
    assert earliest_send(now, None, "UTC") == now
