"""Now + send window + time zone → the earliest moment an automatic delivery may go (pure).

Works on wall-clock times in the campaign's zone through zoneinfo, so a daylight-saving change
neither skips nor doubles a window.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from delivery.campaigns.config import SendWindow


def earliest_send(now: datetime, window: SendWindow | None, timezone: str) -> datetime:
    if window is None or not window.days:
        return now
    zone = ZoneInfo(timezone)
    local = now.astimezone(zone)
    for offset in range(8):
        day = local.date() + timedelta(days=offset)
        if day.weekday() not in window.days:
            continue
        start = datetime.combine(day, window.start, zone)
        end = datetime.combine(day, window.end, zone)
        if offset == 0 and start <= local < end:
            return now
        if local < start:
            return start.astimezone(UTC)
    raise AssertionError("a window with at least one day always opens within a week")


def is_open(now: datetime, window: SendWindow | None, timezone: str) -> bool:
    return earliest_send(now, window, timezone) == now
