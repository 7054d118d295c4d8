"""Failed logins per key (user name, client IP) → whether another attempt is allowed now.

In memory, per process: a sliding window of failure times per key. Enough for one admin
process; several processes each keep their own count (the limit then multiplies by their number).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable


class LoginLimiter:
    def __init__(self, *, failures: int, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.failures = failures
        self.window = window
        self.clock = clock
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._seen.setdefault(key, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        return times

    def retry_after(self, *keys: str) -> int:
        """0 when every key may try again now, else the seconds until the busiest one may."""
        now = self.clock()
        wait = 0.0
        with self._lock:
            for key in keys:
                times = self._recent(key, now)
                if len(times) >= self.failures:
                    wait = max(wait, times[-self.failures] + self.window - now)
        return int(wait) + 1 if wait > 0 else 0

    def failed(self, *keys: str) -> None:
        now = self.clock()
        with self._lock:
            for key in keys:
                self._recent(key, now).append(now)
            if len(self._seen) > 10_000:  # drop idle keys so a flood of names cannot grow memory forever
                for key in [k for k, v in self._seen.items() if not v or v[-1] <= now - self.window]:
                    del self._seen[key]

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._seen.pop(key, None)
