"""(done, total) callbacks → a one-line progress bar with an ETA on stderr, for long builds."""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import TextIO


class ProgressBar:
    def __init__(self, label: str, *, enabled: bool = True, stream: TextIO | None = None) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.enabled = enabled and self.stream.isatty()
        self.started = time.monotonic()
        self.shown = False

    def update(self, done: int, total: int) -> None:
        if not self.enabled or total <= 1:
            return
        elapsed = time.monotonic() - self.started
        eta = elapsed / done * (total - done) if done else 0.0
        filled = int(30 * done / total)
        self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (30 - filled)}] {done}/{total}"
                          f"  ETA {eta:4.0f}s ")
        self.stream.flush()
        self.shown = True

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.shown:
            self.stream.write("\n")
