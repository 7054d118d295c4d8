"""WebConfig's login limits → the LoginLimits every login of this web app is checked against, and
the words a refused one is told.

The counting itself is delivery.services.accounts.log_in's, in the database: every instance and
every restart sees the same attempts (see that module's docstring for the scheme).
"""

from __future__ import annotations

from datetime import timedelta

from babel.support import NullTranslations

from delivery.services.accounts import LoginLimits


class LoginLimiter:
    def __init__(self, *, failures: int, window: float, limits: LoginLimits | None = None) -> None:
        """`failures` per (name, client address) before backoff, four times as many per address
        within `window` seconds; `limits` instead sets every figure."""
        self.limits = limits or LoginLimits(per_pair=failures, per_address=4 * failures,
                                            window=timedelta(seconds=window))


def wait_text(seconds: int, tr: NullTranslations | None = None) -> str:
    """How long a refused login waits, in the page's language: "40 seconds", "2 minutes"."""
    tr = tr or NullTranslations()
    if seconds < 60:
        return tr.ngettext("%(n)s second", "%(n)s seconds", seconds) % {"n": seconds}
    minutes = (seconds + 59) // 60
    return tr.ngettext("%(n)s minute", "%(n)s minutes", minutes) % {"n": minutes}
