"""WebSettings → WebConfig: the web admin's session key, cookie security, trusted proxies and limits.

Without DELIVERY_SECRET_KEY a random session key is made for this process (and a warning logged
once), so sessions end when the process restarts.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field

from delivery.settings import IpNetwork, WebSettings

log = logging.getLogger("delivery.web")
_generated: dict[str, str] = {}


@dataclass(frozen=True)
class WebConfig:
    secret_key: str = field(repr=False)
    secure_cookies: str = "auto"  # as WebSettings.secure_cookies
    trusted_proxies: tuple[IpNetwork, ...] = ()
    session_max_age: int = 12 * 3600
    max_body: int = 64 * 1024
    login_failures: int = 5
    login_window: int = 15 * 60


def _process_secret() -> str:
    if "key" not in _generated:
        _generated["key"] = secrets.token_urlsafe(48)
        log.warning("DELIVERY_SECRET_KEY is not set: using a random key for this process; "
                    "web sessions end when it restarts")
    return _generated["key"]


def web_config(settings: WebSettings) -> WebConfig:
    return WebConfig(secret_key=settings.secret_key or _process_secret(),
                     secure_cookies=settings.secure_cookies, trusted_proxies=settings.trusted_proxies)
