"""One SMTP attempt's result (error or reply, attempts, age, clock) → Outcome (pure, table-driven).

The only place that decides what an SMTP answer means: sent, retry later (when), failed for
good, or pause the whole account. The transport uses `verdict` to pick its error leaf and the
outbox uses `classify` to pick the next state, so the two can never disagree.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Literal

from delivery.errors import (
    AuthenticationFailed,
    MessageTooLarge,
    PermanentTransportError,
    StoredMessageChanged,
    TransientTransportError,
)


class Verdict(Enum):
    SENT = "sent"
    RETRY = "retry"
    FAILED = "failed"
    TOO_LARGE = "too_large"  # failed, and the same bytes must never be offered again
    PAUSE = "pause"  # the account is wrong: stop everything, burn no retries


# Reply codes whose meaning we know. Anything else: 2xx sent, 4xx retry, 5xx failed.
CODES: dict[int, Verdict] = {
    250: Verdict.SENT,
    251: Verdict.SENT,
    421: Verdict.RETRY,  # service not available, closing channel
    450: Verdict.RETRY,  # mailbox unavailable (greylisting)
    451: Verdict.RETRY,  # local error in processing
    452: Verdict.RETRY,  # insufficient storage
    454: Verdict.RETRY,  # temporary authentication or TLS failure
    530: Verdict.PAUSE,  # authentication required
    534: Verdict.PAUSE,  # authentication mechanism too weak
    535: Verdict.PAUSE,  # authentication credentials invalid
    538: Verdict.PAUSE,  # encryption required for the mechanism
    550: Verdict.FAILED,
    552: Verdict.TOO_LARGE,
    553: Verdict.FAILED,
    554: Verdict.FAILED,
}

# Errors without a reply code (or raised by us), most specific first.
ERRORS: tuple[tuple[type[BaseException], Verdict], ...] = (
    (AuthenticationFailed, Verdict.PAUSE),
    (MessageTooLarge, Verdict.TOO_LARGE),
    (PermanentTransportError, Verdict.FAILED),
    (StoredMessageChanged, Verdict.FAILED),  # its stored bytes would send another e-mail
    (TransientTransportError, Verdict.RETRY),
    (TimeoutError, Verdict.RETRY),
    (ConnectionError, Verdict.RETRY),
    (ssl.SSLError, Verdict.RETRY),  # handshake failures: often a server being reconfigured
    (OSError, Verdict.RETRY),  # refused, unreachable, reset
)

# Where servers name the queue entry they made for a message, in their 250 answer to DATA: the
# id an office's postmaster needs to trace it. First match wins.
QUEUE_IDS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("postfix", re.compile(r"\bqueued as ([A-Za-z0-9]{6,})\b")),  # "2.0.0 Ok: queued as 4F3A21C0B"
    ("exim", re.compile(r"\bOK id=([A-Za-z0-9]{6}-[A-Za-z0-9]{6,}-[A-Za-z0-9]{2,})\b")),
    ("exchange", re.compile(r"\[InternalId=(\d+)\b")),  # "2.6.0 <mid> [InternalId=…] Queued mail"
    ("gmail", re.compile(r"^2\.0\.0 OK\s+\d+\s+(\S+) - gsmtp\b")),
    ("sendmail", re.compile(r"^2\.0\.0 ([A-Za-z0-9]{8,}) Message accepted for delivery\b")),
)

# RFC 3463 enhanced status 5.3.4: "message too big for system", whatever the basic code.
TOO_BIG = re.compile(r"\b5\.3\.4\b")
RETRY_HINT = re.compile(
    r"(?:retry|try\s+again)\s+(?:in|after)\s+(\d{1,6})\s*(s|sec|secs|seconds?|m|min|mins|minutes?|h|hours?)\b",
    re.IGNORECASE,
)
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600}


@dataclass(frozen=True)
class RetryPolicy:
    base_delay: timedelta = timedelta(minutes=1)
    factor: float = 2.0
    max_delay: timedelta = timedelta(hours=2)
    max_age: timedelta = timedelta(days=2)
    max_attempts: int = 50


@dataclass(frozen=True)
class Outcome:
    action: Literal["sent", "retry", "failed", "pause"]
    code: int | None
    text: str
    next_attempt_at: datetime | None
    # Why, in a word the outbox can key alerts on: sent | transient | rejected | too_large |
    # expired | auth.
    reason: str = ""


def verdict(error: BaseException | None, code: int | None, text: str = "") -> Verdict:
    """What an answer means, ignoring how often and how long we have tried."""
    if code is not None and code >= 500 and TOO_BIG.search(text):
        return Verdict.TOO_LARGE
    if code is not None and code in CODES:
        return CODES[code]
    if error is not None:
        for kind, meaning in ERRORS:
            if isinstance(error, kind):
                return meaning
    if code is not None and 200 <= code < 300:
        return Verdict.SENT
    if code is not None and 400 <= code < 500:
        return Verdict.RETRY
    if code is not None and code >= 500:
        return Verdict.FAILED
    # An error we do not know (a bug, an odd library failure): try again, age bounds it.
    return Verdict.RETRY if error is not None else Verdict.SENT


def queue_id(text: str) -> str | None:
    """The id the accepting server gave the message, read from its 250 answer; None when it
    names none (or in a way QUEUE_IDS does not know)."""
    for _, pattern in QUEUE_IDS:
        match = pattern.search(text)
        if match is not None:
            return match.group(1)
    return None


def retry_hint(text: str) -> timedelta | None:
    """A server's own "retry in N seconds" / "try again in N minutes", if it says so."""
    match = RETRY_HINT.search(text)
    if match is None:
        return None
    return timedelta(seconds=int(match.group(1)) * UNIT_SECONDS[match.group(2)[0].lower()])


def backoff(attempts: int, policy: RetryPolicy, rand: Callable[[], float]) -> timedelta:
    """Exponential delay after `attempts` tries, with "equal jitter": half fixed, half random."""
    exponent = max(0, attempts - 1)
    seconds = min(policy.max_delay.total_seconds(),
                  policy.base_delay.total_seconds() * policy.factor ** min(exponent, 64))
    return timedelta(seconds=seconds / 2 + rand() * seconds / 2)


def classify(
    error: BaseException | None,
    *,
    code: int | None,
    text: str,
    attempts: int,
    first_attempt_at: datetime,
    now: datetime,
    policy: RetryPolicy,
    rand: Callable[[], float],
) -> Outcome:
    """The next state of a message after its `attempts`-th try ended with `error` or `code`."""
    meaning = verdict(error, code, text)
    if meaning is Verdict.SENT:
        return Outcome("sent", code, text, None, "sent")
    if meaning is Verdict.PAUSE:
        return Outcome("pause", code, text, None, "auth")
    if meaning is Verdict.TOO_LARGE:
        return Outcome("failed", code, f"message too large, not resent: {text}", None, "too_large")
    if meaning is Verdict.FAILED:
        return Outcome("failed", code, text, None, "rejected")
    hint = retry_hint(text)
    delay = min(hint, policy.max_delay) if hint is not None else backoff(attempts, policy, rand)
    if attempts >= policy.max_attempts or now + delay > first_attempt_at + policy.max_age:
        gave_up = f"gave up after {attempts} attempts: {text}"
        return Outcome("failed", code, gave_up, None, "expired")
    return Outcome("retry", code, text, now + delay, "transient")
