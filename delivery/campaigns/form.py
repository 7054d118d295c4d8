"""Campaign ↔ the web admin's settings form: the fields' values, and the posted fields → the
campaign file's text, validated by the same parse_campaign as a file (pure).

The form edits what an organizer sets up (title, goal, milestones, schedule, recipients,
organizers); every other key of the campaign (signing, texts of the sender, postal lines, link
options…) is carried over unchanged from the version it was opened on. A refusal names the form
field it belongs to, found from the key the campaign file's rules name.

Fields: `title-LANG`; `goal`; `thresholds` ("1000, 5000"); `check_every`, `timezone`,
`send_window`, `hold`; `organizers` (one address per line); per recipient `rN-email`,
`rN-language`, `rN-name-LANG`, `rN-title-LANG`, `rN-delivery`, `rN-max_message_size`,
`rN-remove` and `rN-was` (the address it had, to keep what the form does not show); `recipients`,
how many recipient blocks were shown (the last one empty, to add one).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import tomli_w

from delivery.campaigns.config import (
    DEFAULT_MAX_MESSAGE_SIZE,
    Campaign,
    parse_campaign,
)
from delivery.campaigns.export import HEADER, campaign_data, duration_text, send_window_text
from delivery.errors import ConfigError

SCHEDULE_FIELDS = ("check_every", "timezone", "send_window", "hold")
RECIPIENT_TEXTS = ("name", "title")
MAX_RECIPIENTS = 50
# the form's own refusals (the web admin translates them; the campaign file's rules say the rest)
WHOLE_NUMBER = "write a whole number, like 80000"
THRESHOLDS_BAD = "write whole numbers separated by commas, like 1000, 5000, 10000"
BYTES_BAD = "write a number of bytes, like 10000000"
MISSING_TEXT = "a recipient reads this language: give the text in it too"
_RECIPIENT_KEY = re.compile(r"^recipients\[(\d+)\](?:\.(\w+)(?:\.(\w+))?)?")


class FormInvalid(Exception):
    """The posted settings are refused: field → what is wrong (one field at least)."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))


@dataclass(frozen=True)
class RecipientBlock:
    """One recipient's block in the form: its index and whether it is the empty one to add."""

    index: int
    new: bool


def form_values(campaign: Campaign, languages: Sequence[str]) -> dict[str, str]:
    """The form's fields filled with the campaign's values, in every language of `languages`."""
    values: dict[str, str] = {
        "goal": str(campaign.goal),
        "thresholds": ", ".join(str(t) for t in campaign.thresholds),
        "check_every": duration_text(campaign.schedule.check_every),
        "timezone": campaign.schedule.timezone,
        "send_window": send_window_text(campaign.schedule.send_window)
        if campaign.schedule.send_window else "",
        "hold": duration_text(campaign.schedule.hold),
        "organizers": "\n".join(campaign.organizers),
        "recipients": str(len(campaign.recipients) + 1),
    }
    for lang in languages:
        values[f"title-{lang}"] = campaign.text(lang).title
    for i, r in enumerate(campaign.recipients):
        values |= {f"r{i}-email": r.email, f"r{i}-was": r.email, f"r{i}-language": r.language,
                   f"r{i}-delivery": r.delivery, f"r{i}-max_message_size": str(r.max_message_size)}
        for lang in languages:
            values[f"r{i}-name-{lang}"] = r.text(lang).name
            values[f"r{i}-title-{lang}"] = r.text(lang).title
    return values


def recipient_blocks(values: Mapping[str, str]) -> list[RecipientBlock]:
    """The recipient blocks a form with these values shows, the empty one to add last."""
    count = _count(values.get("recipients", "1"))
    return [RecipientBlock(i, new=not values.get(f"r{i}-was")) for i in range(count)]


def _count(text: str) -> int:
    return min(MAX_RECIPIENTS + 1, int(text)) if text.isdigit() and int(text) > 0 else 1


def settings_document(campaign: Campaign, posted: Mapping[str, str], languages: Sequence[str],
                      *, source: str) -> tuple[str, Campaign]:
    """The posted form over `campaign` → (the campaign file's text, the campaign it defines);
    FormInvalid naming the field at fault."""
    data = campaign_data(campaign)
    table = data["campaign"]
    errors: dict[str, str] = {}
    table["title"] = _localized(posted, "title", languages)
    table["goal"] = _whole(posted, "goal", errors)
    organizers = [line.strip() for line in posted.get("organizers", "").splitlines() if line.strip()]
    if organizers:
        table["organizers"] = organizers
    else:
        table.pop("organizers", None)
    thresholds = [t for t in re.split(r"[,;\s]+", posted.get("thresholds", "")) if t]
    if not all(t.isdigit() for t in thresholds):
        errors["thresholds"] = THRESHOLDS_BAD
    data["milestones"] = {"thresholds": [int(t) for t in thresholds if t.isdigit()]}
    schedule = {key: posted.get(key, "").strip() for key in SCHEDULE_FIELDS}
    if not schedule["send_window"]:
        del schedule["send_window"]
    data["schedule"] = schedule
    data["recipients"] = list(_recipients(campaign, posted, languages, errors))
    errors |= _missing_texts(data)
    if errors:
        raise FormInvalid(errors)
    text = HEADER + tomli_w.dumps(data, multiline_strings=False)
    try:
        return text, parse_campaign(text, source)
    except ConfigError as exc:
        raise FormInvalid({field_of(exc.key, data): exc.problem}) from exc


def _recipients(campaign: Campaign, posted: Mapping[str, str], languages: Sequence[str],
                errors: dict[str, str]) -> Iterator[dict[str, Any]]:
    kept = {r.email.lower(): table for r, table in
            zip(campaign.recipients, campaign_data(campaign)["recipients"], strict=True)}
    for block in recipient_blocks(posted):
        p = f"r{block.index}-"
        email = posted.get(p + "email", "").strip()
        if posted.get(p + "remove") or (block.new and not email and not _any_text(posted, p, languages)):
            continue
        table = dict(kept.get(posted.get(p + "was", "").lower(), {}))
        table |= {"email": email, "language": posted.get(p + "language", "").strip()}
        for key in RECIPIENT_TEXTS:
            value = _localized(posted, p + key, languages)
            if value:
                table[key] = value
            else:
                table.pop(key, None)
        table["delivery"] = posted.get(p + "delivery", "auto").strip() or "auto"
        size = posted.get(p + "max_message_size", "").strip().replace(",", "").replace(" ", "")
        if size and not size.isdigit():
            errors[p + "max_message_size"] = BYTES_BAD
        table["max_message_size"] = int(size) if size.isdigit() else DEFAULT_MAX_MESSAGE_SIZE
        yield table


def _missing_texts(data: Mapping[str, Any]) -> dict[str, str]:
    """Each text given per language that lacks one a recipient reads, by its field."""
    read = list(dict.fromkeys(str(r.get("language", "")) for r in data["recipients"]))
    texts: list[tuple[str, Any]] = [("title", data["campaign"].get("title"))]
    for i, r in enumerate(data["recipients"]):
        texts += [(f"r{i}-{key}", r.get(key)) for key in RECIPIENT_TEXTS]
    return {f"{field}-{lang}": MISSING_TEXT for field, value in texts if isinstance(value, dict)
            for lang in read if lang and lang not in value}


def _any_text(posted: Mapping[str, str], prefix: str, languages: Sequence[str]) -> bool:
    return any(posted.get(f"{prefix}{key}-{lang}", "").strip()
               for key in RECIPIENT_TEXTS for lang in languages)


def _localized(posted: Mapping[str, str], name: str, languages: Sequence[str]) -> str | dict[str, str]:
    """One text for every language when every language has the same, else a table of those
    given (the campaign's rules then ask for each language a recipient reads: an edition is
    never half in another language); "" when none is."""
    given = {lang: posted.get(f"{name}-{lang}", "").strip() for lang in languages}
    given = {lang: text for lang, text in given.items() if text}
    if not given:
        return ""
    if len(given) == len(languages) and len(set(given.values())) == 1:
        return next(iter(given.values()))
    return given


def _whole(posted: Mapping[str, str], name: str, errors: dict[str, str]) -> int | str:
    text = posted.get(name, "").strip().replace(",", "").replace(" ", "")
    if not text.isdigit():
        errors[name] = WHOLE_NUMBER
        return text
    return int(text)


def field_of(key: str, data: Mapping[str, Any] | None = None) -> str:
    """The form field a campaign file's key (as a ConfigError names it) is edited in."""
    match = _RECIPIENT_KEY.match(key)
    if match:
        index, name, lang = match.groups()
        if name is None:
            return "recipients"
        if name in RECIPIENT_TEXTS:
            return f"r{index}-{name}-{lang or _first_language(data, index, name)}"
        return f"r{index}-{name}"
    section, _, rest = key.partition(".")
    name, _, lang = rest.partition(".")
    if section == "campaign" and name == "title":
        return f"title-{lang or _first_language(data, None, 'title')}"
    if section in ("campaign", "schedule") and name:
        return name
    if section == "milestones":
        return "thresholds"
    return "recipients" if section == "recipients" else "title-en"


def _first_language(data: Mapping[str, Any] | None, index: str | None, name: str) -> str:
    """The language of the first recipient: where a text missing in every language is asked."""
    recipients = (data or {}).get("recipients") or [{}]
    first = recipients[int(index)] if index is not None and int(index) < len(recipients) else recipients[0]
    return str(first.get("language") or "en")


def changed_keys(before: str, after: str) -> list[str]:
    """The keys whose values differ between two campaign files' texts, recipients named by their
    address: "schedule.hold", "recipients[pm@gov.am].title", "recipients[pm@gov.am]" for one
    added or removed. Compared as the campaigns they define: a default written out or a send
    window spelt otherwise is no change."""
    old_data, new_data = _canonical(before), _canonical(after)
    old_people, new_people = _by_address(old_data), _by_address(new_data)
    old, new = _flat(old_data), _flat(new_data)
    keys = [k for k in dict.fromkeys([*old, *new]) if old.get(k) != new.get(k)]
    for address in dict.fromkeys([*old_people, *new_people]):
        if address not in old_people or address not in new_people:
            keys.append(f"recipients[{address}]")
        else:
            mine, theirs = _flat(old_people[address]), _flat(new_people[address])
            keys += [f"recipients[{address}].{k}" for k in dict.fromkeys([*mine, *theirs])
                     if mine.get(k) != theirs.get(k)]
    return keys


def _by_address(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The recipients' tables by address, taken out of `data`."""
    return {str(r.get("email", "")).lower(): r for r in data.pop("recipients", [])}


def _canonical(text: str) -> dict[str, Any]:
    try:
        return campaign_data(parse_campaign(text, "(compared)"))
    except ConfigError:  # valid under older rules only: compared as written
        return tomllib.loads(text)


def _flat(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict) and not _is_texts(value):
            out |= _flat(value, name)
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for i, item in enumerate(value):
                out |= _flat(item, f"{name}[{i}]")
        else:
            out[name] = value
    return out


def _is_texts(table: Mapping[str, Any]) -> bool:
    """A table of texts by language (title, name…) counts as one value."""
    return bool(table) and all(re.fullmatch(r"[a-z]{2,3}", k) for k in table)
