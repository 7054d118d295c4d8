"""Campaign + settings + clock → what stands between it and a real delivery: findings with a code
and their facts, which each entry point words (the dashboard in the organizer's language).

The checks are the ones a delivery itself would run into later: recipients on domains that
exist only in examples, a signing key (files or upload) missing, unusable or about to expire,
recipients who take a download link while the service has no public address, no SMTP server
(the e-mails go to the outbox folder), a hold and send window that delay the next milestone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from delivery.campaigns.config import Campaign
from delivery.campaigns.languages import read_languages
from delivery.campaigns.templates import missing_pieces
from delivery.errors import ConfigError, SigningError
from delivery.services import signing_keys
from delivery.services.app import App

# RFC 2606 and RFC 6761: names that can never reach anyone.
RESERVED_DOMAINS = frozenset({"example.com", "example.net", "example.org", "localhost"})
RESERVED_SUFFIXES = (".example", ".test", ".invalid", ".localhost", ".example.com",
                     ".example.net", ".example.org")
EXPIRY_WARNING = timedelta(days=30)

Severity = Literal["error", "warning", "info"]


@dataclass(frozen=True)
class Finding:
    code: str  # reserved_recipients | no_signing_key | signing_key_unusable |
    #            signing_key_expires | link_needs_public_url | no_smtp | milestone_waits |
    #            milestone_held | milestone_window | texts_missing
    severity: Severity
    facts: dict[str, str] = field(default_factory=dict)


def reserved_domain(address: str) -> bool:
    """Whether the address's domain is reserved for examples and tests (it reaches no one)."""
    domain = address.rsplit("@", 1)[-1].strip().lower().rstrip(".")
    return domain in RESERVED_DOMAINS or domain.endswith(RESERVED_SUFFIXES)


def readiness(app: App, campaign: Campaign, *, now: datetime) -> list[Finding]:
    """Every finding for the campaign, errors first; an empty list: ready for a real delivery."""
    found: list[Finding] = []
    reserved = [r.email for r in campaign.recipients if reserved_domain(r.email)]
    if reserved:
        found.append(Finding("reserved_recipients", "error", {"addresses": ", ".join(reserved)}))
    if campaign.signing == "required":
        found.extend(_signing(app, now))
    found.extend(_texts(app, campaign))
    linked = [r.email for r in campaign.recipients if r.delivery == "link"]
    if linked and app.settings.public_url is None:
        found.append(Finding("link_needs_public_url", "error", {"addresses": ", ".join(linked)}))
    if app.settings.smtp is None:
        found.append(Finding("no_smtp", "warning", {"folder": str(app.settings.outbox_dir)}))
    schedule = campaign.schedule
    held, window = schedule.hold > timedelta(0), schedule.send_window
    if held or window is not None:
        code = ("milestone_waits" if held and window is not None
                else "milestone_held" if held else "milestone_window")
        found.append(Finding(code, "info", {
            "hold_seconds": str(int(schedule.hold.total_seconds())), "window": str(window or ""),
            "timezone": schedule.timezone}))
    order = {"error": 0, "warning": 1, "info": 2}
    return sorted(found, key=lambda f: order[f.severity])


def _texts(app: App, campaign: Campaign) -> list[Finding]:
    """A recipient language whose letter, e-mail or fixed texts are missing or broken: `serve`
    starts only when every one is there, so this is a templates folder changed since."""
    templates = app.settings.templates_dir
    try:
        pieces = list(missing_pieces(campaign, templates, read_languages(templates)))
    except ConfigError as exc:  # templates/languages.toml itself unreadable
        return [Finding("texts_missing", "error", {"languages": ", ".join(campaign.languages),
                                                   "what": str(exc)})]
    if not pieces:
        return []
    languages = ", ".join(dict.fromkeys(p.language for p in pieces))
    what = "; ".join(str(p) for p in pieces[:3])  # the first few: the log of `init` names all
    return [Finding("texts_missing", "error", {"languages": languages, "what": what})]


def _signing(app: App, now: datetime) -> list[Finding]:
    try:
        identity = signing_keys.identity(app, now=now)
    except SigningError as exc:
        return [Finding("signing_key_unusable", "error", {"reason": str(exc)})]
    if identity is None:
        return [Finding("no_signing_key", "error")]
    expires = identity.cert.not_valid_after_utc
    if expires - now <= EXPIRY_WARNING:
        return [Finding("signing_key_expires", "warning", {"at": expires.isoformat()})]
    return []

