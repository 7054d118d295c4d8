"""Environment → Settings: everything that is not in a campaign file, secrets included.

This is the one module that reads the environment (the README's table lists every variable).
Secrets (SMTP password, signing passphrase, session key) come only from the environment and are
never part of `repr()`, so they cannot leak into logs or tracebacks.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from delivery.campaigns.config import parse_duration
from delivery.errors import ConfigError

BUILTIN = Path(__file__).parent / "_builtin"
SOURCE_TREE = Path(__file__).resolve().parent.parent
SECURITY_MODES = ("starttls", "tls", "none")
IMAP_SECURITY_MODES = ("tls", "starttls")
COOKIE_MODES = ("auto", "always", "never")
MIN_SECRET = 32
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
SIGNATURE_LEVELS = ("B-B", "B-T", "B-LT", "B-LTA")
DEFAULT_DEADLINE = 30.0
DEFAULT_VERIFY_MB = 60
VERIFY_PATH = "/verify"  # served by delivery.web.verify
MAX_VERIFY_MB = 200  # below what bundle.verify reads of one file
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


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
class ImapSettings:
    """The mailbox that receives the bounces of what the service sends (the sender's)."""

    host: str
    port: int
    security: str  # "tls" or "starttls": a mailbox is never read in clear
    username: str
    password: str | None = field(default=None, repr=False)
    mailbox: str = "INBOX"
    ca_file: Path | None = None
    timeout: float = 30.0
    # Each dossier e-mail's return path names it (VERP: local+b-ID-CHECK@domain), so that a bounce
    # that quotes nothing of the original still finds it; needs the sender's mail system to deliver
    # local+anything@domain to this mailbox (plus addressing).
    verp: bool = False

    @property
    def account(self) -> str:
        """Names the mailbox and where its reading stopped (delivery.storage's cursor)."""
        return f"{self.username}@{self.host}:{self.port}/{self.mailbox}"


@dataclass(frozen=True)
class WebSettings:
    secret_key: str | None = field(default=None, repr=False)  # None: a random key per process
    # "always": every cookie Secure; "auto": Secure when the request came over TLS (directly or
    # through a trusted proxy's X-Forwarded-Proto); "never": for plain-HTTP local use only.
    secure_cookies: str = "auto"
    trusted_proxies: tuple[IpNetwork, ...] = ()
    verify_upload_mb: int = DEFAULT_VERIFY_MB  # the most the public /verify page takes at once


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
    signature_level: str = "B-B"  # PAdES level: B-B, B-T, B-LT or B-LTA (SIGNATURE_LEVELS)
    trust_roots: Path | None = None  # PEM: the roots signing and timestamp certificates chain to
    web: WebSettings = field(default_factory=WebSettings)
    shutdown_deadline: float = DEFAULT_DEADLINE  # seconds a stop of `serve` may take
    check_every: timedelta | None = None  # one tick interval for every campaign (operations, tests)
    clock_file: Path | None = None  # test only: `serve` reads the time from this file
    log_level: str = "INFO"
    # The signer secret (see delivery.storage.keys); None: `signer-key` in var_dir.
    signer_key_file: Path | None = None
    bounce_imap: ImapSettings | None = None  # None: bounces are not read
    # Where recipients reach `serve`'s download pages (https://…, no trailing slash); None: no
    # link delivery, every dossier goes as attachments.
    public_url: str | None = None

    @property
    def verify_url(self) -> str | None:
        """The public verification page, which the e-mails and the letter page name."""
        return f"{self.public_url}{VERIFY_PATH}" if self.public_url else None

    @property
    def signer_key_path(self) -> Path:
        return self.signer_key_file or self.var_dir / "signer-key"

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
    signer_key = env.get("DELIVERY_SIGNER_KEY_FILE")
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
        signature_level=_signature_level(env),
        trust_roots=Path(env["DELIVERY_TRUST_ROOTS"]) if env.get("DELIVERY_TRUST_ROOTS") else None,
        web=_web_settings(env),
        shutdown_deadline=_shutdown_deadline(env),
        check_every=_check_every(env),
        clock_file=Path(env["DELIVERY_CLOCK_FILE"]) if env.get("DELIVERY_CLOCK_FILE") else None,
        log_level=_log_level(env),
        signer_key_file=Path(signer_key).resolve() if signer_key else var_dir.resolve() / "signer-key",
        bounce_imap=_imap_settings(env),
        public_url=_public_url(env),
    )


def _signature_level(env: Mapping[str, str]) -> str:
    """DELIVERY_SIGNATURE_LEVEL, checked against what it needs; unset: B-LTA with a timestamp
    service, else B-B."""
    url = env.get("DELIVERY_TIMESTAMP_URL")
    level = (env.get("DELIVERY_SIGNATURE_LEVEL") or ("B-LTA" if url else "B-B")).upper()
    if level not in SIGNATURE_LEVELS:
        raise ConfigError("environment", "DELIVERY_SIGNATURE_LEVEL",
                          f"'{level[:20]}' is not one of: {', '.join(SIGNATURE_LEVELS)}")
    if level != "B-B" and not url:
        raise ConfigError("environment", "DELIVERY_SIGNATURE_LEVEL",
                          f"{level} needs a timestamp service: set DELIVERY_TIMESTAMP_URL")
    if level in ("B-LT", "B-LTA") and not env.get("DELIVERY_TRUST_ROOTS"):
        raise ConfigError("environment", "DELIVERY_TRUST_ROOTS",
                          f"signature level {level} needs the PEM file of the root certificates "
                          "the signing and timestamp certificates chain to (or set "
                          "DELIVERY_SIGNATURE_LEVEL=B-T)")
    return level


def _log_level(env: Mapping[str, str]) -> str:
    level = (env.get("DELIVERY_LOG_LEVEL") or "INFO").upper()
    if level not in LOG_LEVELS:
        raise ConfigError("environment", "DELIVERY_LOG_LEVEL",
                          f"'{level[:20]}' is not one of: {', '.join(LOG_LEVELS)}")
    return level


def _web_settings(env: Mapping[str, str]) -> WebSettings:
    secret = env.get("DELIVERY_SECRET_KEY") or ""
    if secret and len(secret) < MIN_SECRET:
        raise ConfigError("environment", "DELIVERY_SECRET_KEY",
                          f"too short: use at least {MIN_SECRET} random characters (e.g. "
                          "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`)")
    secure = (env.get("DELIVERY_SECURE_COOKIES") or "auto").lower()
    if secure not in COOKIE_MODES:
        raise ConfigError("environment", "DELIVERY_SECURE_COOKIES",
                          f"'{secure}' is not {', '.join(COOKIE_MODES[:-1])} or {COOKIE_MODES[-1]}")
    proxies = []
    for item in (env.get("DELIVERY_TRUSTED_PROXIES") or "").replace(",", " ").split():
        try:
            proxies.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ConfigError("environment", "DELIVERY_TRUSTED_PROXIES",
                              f"'{item}' is not an IP address or network") from None
    raw = (env.get("DELIVERY_VERIFY_MAX_MB") or str(DEFAULT_VERIFY_MB)).strip()
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_VERIFY_MB:
        raise ConfigError("environment", "DELIVERY_VERIFY_MAX_MB",
                          f"'{raw[:20]}' is not a whole number of megabytes from 1 to {MAX_VERIFY_MB}")
    return WebSettings(secret_key=secret or None, secure_cookies=secure, trusted_proxies=tuple(proxies),
                       verify_upload_mb=int(raw))


def _shutdown_deadline(env: Mapping[str, str]) -> float:
    raw = env.get("DELIVERY_SHUTDOWN_DEADLINE") or str(DEFAULT_DEADLINE)
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value <= 3600:
        raise ConfigError("environment", "DELIVERY_SHUTDOWN_DEADLINE",
                          f"'{raw}' is not a number of seconds (0-3600]")
    return value


def _check_every(env: Mapping[str, str]) -> timedelta | None:
    """'2s', '1m' or a number of seconds; unset: each campaign's own schedule.check_every."""
    text = (env.get("DELIVERY_CHECK_EVERY") or "").strip()
    if not text:
        return None
    value = parse_duration(text)
    if value is None:
        try:
            value = timedelta(seconds=float(text))
        except ValueError:
            value = None
    if value is None or value <= timedelta(0):
        raise ConfigError("environment", "DELIVERY_CHECK_EVERY",
                          f"'{text}' is not a duration like '2s' or '5m'")
    return value


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
    ca = env.get("DELIVERY_SMTP_CA_FILE")
    return SmtpSettings(
        host=host,
        port=_port("DELIVERY_SMTP_PORT", env.get("DELIVERY_SMTP_PORT") or str(default_port)),
        security=security,
        username=env.get("DELIVERY_SMTP_USERNAME") or None,
        password=env.get("DELIVERY_SMTP_PASSWORD") or None,
        ca_file=Path(ca) if ca else None,
        timeout=_seconds("DELIVERY_SMTP_TIMEOUT", env.get("DELIVERY_SMTP_TIMEOUT") or "30"),
    )


def _port(name: str, text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ConfigError("environment", name, f"'{text}' is not a port number")
    return int(text)


def _seconds(name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= 3600:
        raise ConfigError("environment", name, "must be a number of seconds from 0 to 3600")
    return value


def _public_url(env: Mapping[str, str]) -> str | None:
    text = (env.get("DELIVERY_PUBLIC_URL") or "").strip()
    if not text:
        return None
    parts = urlsplit(text)
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.query or parts.fragment:
        raise ConfigError("environment", "DELIVERY_PUBLIC_URL",
                          f"'{text}' is not an address like https://petition.example.org")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ConfigError("environment", "DELIVERY_PUBLIC_URL",
                          "must be https: the links carry each office's key to its dossier "
                          "(http only for a loopback host)")
    return text.rstrip("/")


def _imap_settings(env: Mapping[str, str]) -> ImapSettings | None:
    host = env.get("DELIVERY_BOUNCE_IMAP_HOST")
    if not host:
        return None
    security = (env.get("DELIVERY_BOUNCE_IMAP_SECURITY") or "tls").lower()
    if security not in IMAP_SECURITY_MODES:
        raise ConfigError("environment", "DELIVERY_BOUNCE_IMAP_SECURITY",
                          f"'{security}' is not one of: {', '.join(IMAP_SECURITY_MODES)}")
    port = _port("DELIVERY_BOUNCE_IMAP_PORT",
                 env.get("DELIVERY_BOUNCE_IMAP_PORT") or ("993" if security == "tls" else "143"))
    username = env.get("DELIVERY_BOUNCE_IMAP_USERNAME")
    if not username:
        raise ConfigError("environment", "DELIVERY_BOUNCE_IMAP_USERNAME",
                          f"is needed to read the mailbox on {host}")
    timeout = _seconds("DELIVERY_BOUNCE_IMAP_TIMEOUT", env.get("DELIVERY_BOUNCE_IMAP_TIMEOUT") or "30")
    ca = env.get("DELIVERY_BOUNCE_IMAP_CA_FILE")
    verp = (env.get("DELIVERY_BOUNCE_VERP") or "off").lower()
    if verp not in ("on", "off"):
        raise ConfigError("environment", "DELIVERY_BOUNCE_VERP", f"'{verp}' is not one of: on, off")
    return ImapSettings(host=host, port=port, security=security, username=username,
                        password=env.get("DELIVERY_BOUNCE_IMAP_PASSWORD") or None,
                        mailbox=env.get("DELIVERY_BOUNCE_IMAP_MAILBOX") or "INBOX",
                        ca_file=Path(ca) if ca else None, timeout=timeout, verp=verp == "on")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
