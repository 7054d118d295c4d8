"""Environment → WebConfig: the web admin's secret key, cookie security, trusted proxies and limits.

DELIVERY_SECRET_KEY signs the session cookies; without it a random key is made for this process
(and a warning logged once), so sessions end when the process restarts.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field

from delivery.errors import ConfigError

log = logging.getLogger("delivery.web")
MIN_SECRET = 32
_generated: dict[str, str] = {}


@dataclass(frozen=True)
class WebConfig:
    secret_key: str = field(repr=False)
    # "always": every cookie Secure; "auto": Secure when the request came over TLS (directly or
    # through a trusted proxy's X-Forwarded-Proto); "never": for plain-HTTP local use only.
    secure_cookies: str = "auto"
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
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


def load_web_config(env: Mapping[str, str] | None = None) -> WebConfig:
    env = os.environ if env is None else env
    secret = env.get("DELIVERY_SECRET_KEY") or ""
    if secret and len(secret) < MIN_SECRET:
        raise ConfigError("environment", "DELIVERY_SECRET_KEY",
                          f"too short: use at least {MIN_SECRET} random characters (e.g. "
                          "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`)")
    secure = (env.get("DELIVERY_SECURE_COOKIES") or "auto").lower()
    if secure not in ("auto", "always", "never"):
        raise ConfigError("environment", "DELIVERY_SECURE_COOKIES",
                          f"'{secure}' is not auto, always or never")
    proxies = []
    for item in (env.get("DELIVERY_TRUSTED_PROXIES") or "").replace(",", " ").split():
        try:
            proxies.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ConfigError("environment", "DELIVERY_TRUSTED_PROXIES",
                              f"'{item}' is not an IP address or network") from None
    return WebConfig(secret_key=secret or _process_secret(), secure_cookies=secure,
                     trusted_proxies=tuple(proxies))
