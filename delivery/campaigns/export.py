"""Campaign → the TOML text of a campaign file that parse_campaign reads back as the same
Campaign (every value, every language's text), for `petition-delivery campaigns export`.

Defaults are written out too (signing, check interval, link expiry…), so the file says what is
in force rather than what someone once typed. A text given for every language is written as a
table by language; otherwise as one value.
"""

from __future__ import annotations

from datetime import time, timedelta
from typing import Any

import tomli_w

from delivery.campaigns.config import (
    DEFAULT_MAX_MESSAGE_SIZE,
    WEEKDAYS,
    Campaign,
    Recipient,
    SendWindow,
)

HEADER = ("# A petition-delivery campaign, written by `petition-delivery campaigns export`.\n"
          "# Secrets (SMTP password, signing key) are never in it; see the README for each key.\n\n")
_UNITS = ((86_400, "d"), (3_600, "h"), (60, "m"), (1, "s"))


def campaign_toml(campaign: Campaign) -> str:
    """The campaign file's text."""
    return HEADER + tomli_w.dumps(campaign_data(campaign), multiline_strings=False)


def campaign_data(campaign: Campaign) -> dict[str, Any]:
    """The campaign as the tables and values of its file."""
    return {
        "campaign": _campaign_table(campaign),
        "recipients": [_recipient_table(r) for r in campaign.recipients],
        "milestones": {"thresholds": list(campaign.thresholds)},
        "schedule": _schedule_table(campaign),
    }


def duration_text(value: timedelta) -> str:
    """A duration as the campaign file writes it: "90d", "2h", "5m", "30s"."""
    seconds = int(value.total_seconds())
    for size, unit in _UNITS:
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    raise AssertionError("unreachable: every whole number of seconds divides by 1")


def send_window_text(window: SendWindow) -> str:
    """"mon,tue,wed 09:00-18:00": the days one by one, in the week's order."""
    days = ",".join(WEEKDAYS[d] for d in sorted(window.days))
    return f"{days} {_clock(window.start)}-{_clock(window.end)}"


def _clock(moment: time) -> str:
    return moment.isoformat(timespec="seconds" if moment.second else "minutes")


def _campaign_table(c: Campaign) -> dict[str, Any]:
    table: dict[str, Any] = {"slug": c.slug, "goal": c.goal, "letter": c.letter, "sender": c.sender}
    if c.organizers:
        table["organizers"] = list(c.organizers)
    table |= {"signing": c.signing, "withheld_names": c.withheld_names}
    if c.consent_missing:
        table["consent_missing"] = c.consent_missing
    if c.retention is not None:
        table["retention"] = f"{c.retention.days}d"
    table["link_expiry"] = duration_text(c.link_expiry)
    if c.chase_after is not None:
        table["chase_after"] = duration_text(c.chase_after)
    if c.require_second_approval:
        table["require_second_approval"] = True
    if c.translations:
        texts = dict(c.translations)
        table["title"] = {lang: t.title for lang, t in texts.items()}
        table["sender_name"] = {lang: t.sender_name for lang, t in texts.items()}
        if any(t.location for t in texts.values()):
            table["location"] = {lang: t.location for lang, t in texts.items()}
    else:
        table["title"] = c.title
        if c.signer_location:
            table["location"] = c.signer_location
    return table


def _recipient_table(r: Recipient) -> dict[str, Any]:
    table: dict[str, Any] = {"email": r.email, "language": r.language}
    if r.max_message_size != DEFAULT_MAX_MESSAGE_SIZE:
        table["max_message_size"] = r.max_message_size
    if r.delivery != "auto":
        table["delivery"] = r.delivery
    if r.link_after != 1:
        table["link_after"] = r.link_after
    if r.translations:
        texts = dict(r.translations)
        table["name"] = {lang: t.name for lang, t in texts.items()}
        if any(t.title for t in texts.values()):
            table["title"] = {lang: t.title for lang, t in texts.items()}
        if any(t.postal for t in texts.values()):
            table["postal"] = {lang: list(t.postal) for lang, t in texts.items()}
    else:
        table["name"] = r.name
        if r.title:
            table["title"] = r.title
        if r.postal:
            table["postal"] = list(r.postal)
    return table


def _schedule_table(c: Campaign) -> dict[str, Any]:
    s = c.schedule
    table: dict[str, Any] = {"check_every": duration_text(s.check_every), "timezone": s.timezone,
                             "hold": duration_text(s.hold)}
    if s.send_window is not None:
        table["send_window"] = send_window_text(s.send_window)
    return table

