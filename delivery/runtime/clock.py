"""Settings → Clock: the time the service ticks with (the system clock, or one a test controls).

`serve` never reads `datetime.now()` itself: every tick asks its Clock, so a test can move time
past a hold period or into a send window by rewriting one file instead of sleeping for hours.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from delivery.errors import ConfigError


class Clock(Protocol):
    def now(self) -> datetime:
        """An aware UTC datetime."""
        ...


def parse_time(text: str, source: str) -> datetime:
    """ISO time → aware UTC datetime; a time without an offset is read as UTC."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(source, "(time)", f"'{text.strip()[:40]}' is not an ISO time like "
                          "2026-11-27T10:00:00+04:00") from None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass(frozen=True)
class FixedClock:
    at: datetime

    def now(self) -> datetime:
        return self.at


@dataclass(frozen=True)
class FileClock:
    """The time written in a file, read afresh on every call (tests rewrite it to move time)."""

    path: Path

    def now(self) -> datetime:
        try:
            text = self.path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(str(self.path), "(clock file)",
                              f"cannot be read: {exc.strerror or exc}") from exc
        return parse_time(text, str(self.path))


def clock_for(clock_file: Path | None) -> Clock:
    """A clock file (DELIVERY_CLOCK_FILE, for tests): a FileClock, checked once here; otherwise
    the system clock."""
    if clock_file is None:
        return SystemClock()
    clock = FileClock(clock_file)
    clock.now()  # fail at start, with the file named, rather than at the first tick
    return clock


def write_clock(path: Path, at: datetime) -> None:
    """Set a FileClock's time atomically, so a reader never sees half a timestamp."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(at.isoformat(), encoding="utf-8")
    tmp.replace(path)
