"""Environment → Settings: everything that is not in a campaign file, secrets included.

Secrets (SMTP password, signing passphrase) come only from the environment and are never part of
`repr()`, so they cannot leak into logs or tracebacks.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from delivery.errors import ConfigError

BUILTIN = Path(__file__).parent / "_builtin"
SOURCE_TREE = Path(__file__).resolve().parent.parent
SECURITY_MODES = ("starttls", "tls", "none")


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    security: str
    username: str | None
    password: str | None = field(default=None, repr=False)
    ca_file: Path | None = None
    timeout: float = 30.0

    @property
    def account(self) -> str:
        """Identifies the SMTP account for pausing after an authentication failure."""
        return f"{self.username or ''}@{self.host}:{self.port}"


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    smtp: SmtpSettings | None
    outbox_dir: Path
    var_dir: Path
    signing_key: Path | None
    signing_cert: Path | None
    signing_passphrase: str | None = field(default=None, repr=False)
    timestamp_url: str | None = None

    @property
    def schedules_dir(self) -> Path:
        return _first_existing(self.home / "schedules", SOURCE_TREE / "schedules", BUILTIN / "schedules")

    @property
    def templates_dir(self) -> Path:
        return _first_existing(self.home / "templates", SOURCE_TREE / "templates", BUILTIN / "templates")


def _first_existing(*candidates: Path) -> Path:
    for c in candidates:
        if c.is_dir():
            return c.resolve()
    return candidates[0]


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    home = Path(env.get("DELIVERY_HOME") or ".").resolve()
    var_dir = Path(env.get("DELIVERY_VAR_DIR") or home / "var")
    database_url = env.get("DELIVERY_DATABASE_URL") or f"sqlite:///{var_dir / 'delivery.sqlite3'}"
    outbox_dir = Path(env.get("DELIVERY_OUTBOX_DIR") or var_dir / "outbox")
    key = env.get("DELIVERY_SIGNING_KEY")
    cert = env.get("DELIVERY_SIGNING_CERT")
    return Settings(
        home=home,
        database_url=database_url,
        smtp=_smtp_settings(env),
        outbox_dir=outbox_dir,
        var_dir=var_dir,
        signing_key=Path(key) if key else None,
        signing_cert=Path(cert) if cert else None,
        signing_passphrase=env.get("DELIVERY_SIGNING_PASSPHRASE"),
        timestamp_url=env.get("DELIVERY_TIMESTAMP_URL") or None,
    )


def _smtp_settings(env: Mapping[str, str]) -> SmtpSettings | None:
    host = env.get("DELIVERY_SMTP_HOST")
    if not host:
        return None
    security = env.get("DELIVERY_SMTP_SECURITY", "starttls").lower()
    if security not in SECURITY_MODES:
        raise ConfigError("environment", "DELIVERY_SMTP_SECURITY",
                          f"'{security}' is not one of: {', '.join(SECURITY_MODES)}")
    if security == "none" and not _is_loopback(host):
        raise ConfigError("environment", "DELIVERY_SMTP_SECURITY",
                          "'none' sends in clear and is allowed only for a loopback host")
    default_port = {"starttls": 587, "tls": 465, "none": 25}[security]
    port_text = env.get("DELIVERY_SMTP_PORT") or str(default_port)
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError("environment", "DELIVERY_SMTP_PORT", f"'{port_text}' is not a port number")
    timeout_text = env.get("DELIVERY_SMTP_TIMEOUT") or "30"
    try:
        timeout = float(timeout_text)
    except ValueError:
        timeout = -1.0
    if not 0 < timeout <= 3600:
        raise ConfigError("environment", "DELIVERY_SMTP_TIMEOUT",
                          "must be a number of seconds from 0 to 3600")
    ca = env.get("DELIVERY_SMTP_CA_FILE")
    return SmtpSettings(
        host=host,
        port=int(port_text),
        security=security,
        username=env.get("DELIVERY_SMTP_USERNAME") or None,
        password=env.get("DELIVERY_SMTP_PASSWORD") or None,
        ca_file=Path(ca) if ca else None,
        timeout=timeout,
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
