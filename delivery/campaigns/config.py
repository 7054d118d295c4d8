"""schedules/*.toml → Campaign: parse and validate campaign files (pure, no I/O but reading them).

Every error names the file, the key and what is wrong, so an organizer can fix it in one go.
"""

from __future__ import annotations

import re
import tomllib
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import time, timedelta
from email.utils import getaddresses, parseaddr
from pathlib import Path
from typing import Any, Generic, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from delivery.errors import ConfigError

_LANGUAGE_CODE = re.compile(r"^[a-z]{2,3}$")  # which codes exist: templates/languages.toml
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
V = TypeVar("V")
_DURATION = re.compile(r"^(\d+)\s*(s|m|h|d)$")
_DAYS = re.compile(r"^(\d+)\s*d$")
MAX_RETENTION_DAYS = 36500
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_ADDR_SPEC = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
DEFAULT_MAX_MESSAGE_SIZE = 10_000_000  # bytes of one whole e-mail, as sent
MIN_MESSAGE_SIZE = 1_000_000
DELIVERY_MODES = ("auto", "attachment", "link")
DEFAULT_LINK_EXPIRY = timedelta(days=90)


@dataclass(frozen=True)
class RecipientText:
    """How a recipient is addressed in one language: name, title and postal address lines."""

    name: str
    title: str = ""
    postal: tuple[str, ...] = ()


@dataclass(frozen=True)
class Recipient:
    name: str
    email: str
    language: str
    title: str = ""
    postal: tuple[str, ...] = ()
    # (language, text) where the campaign file gives this recipient's texts per language
    translations: tuple[tuple[str, RecipientText], ...] = ()
    # The largest e-mail this recipient's server takes, whole and encoded (the server's own
    # SIZE, when it announces a smaller one, wins): Postfix's default is 10,240,000 bytes,
    # Exchange's organisation default 10 MB, Gmail's 25 MB.
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    # "attachment": the dossier in the e-mails; "link": an e-mail with the letter, the manifest
    # and a link to a download page; "auto": the link when the attachments would need more than
    # `link_after` e-mails (and the service has a public address), else attachments.
    delivery: str = "auto"
    link_after: int = 1

    def text(self, language: str) -> RecipientText:
        """This recipient's name, title and postal lines in `language` (every edition lists
        every addressee in its own language); the plain values where none are given."""
        return dict(self.translations).get(language) or RecipientText(self.name, self.title,
                                                                      self.postal)


@dataclass(frozen=True)
class CampaignText:
    """The campaign's own words in one language: what the dossier, the e-mail and the
    signature print for it."""

    title: str
    sender_name: str
    location: str


@dataclass(frozen=True)
class SendWindow:
    """Days (0 = Monday) and a daily time range, read in the schedule's time zone."""

    days: frozenset[int]
    start: time
    end: time

    def __str__(self) -> str:
        days = ",".join(WEEKDAYS[d].title() for d in sorted(self.days))
        return f"{days} {self.start:%H:%M}-{self.end:%H:%M}"


@dataclass(frozen=True)
class Schedule:
    check_every: timedelta
    timezone: str
    send_window: SendWindow | None
    hold: timedelta


@dataclass(frozen=True)
class Campaign:
    slug: str
    title: str
    goal: int
    letter: str
    sender: str
    organizers: tuple[str, ...]
    recipients: tuple[Recipient, ...]
    thresholds: tuple[int, ...]
    schedule: Schedule
    signing: str  # "required" or "off"
    withheld_names: str  # "anonymous" (listed as "Name withheld") or "omit"
    signer_location: str  # shown in the signature block
    source: str
    # How long signers' names, places and e-mail keys are kept after the campaign's last
    # delivery (delivery.services.retention); None: until an organizer purges them by hand.
    retention: timedelta | None = None
    # What an import file without a consent column means: "name", "withhold", or "" (no
    # default: such a file is refused until the organizer decides).
    consent_missing: str = ""
    # (language, text) for each language whose title, sender name or location the file gives
    translations: tuple[tuple[str, CampaignText], ...] = ()
    # How long a recipient's download link works after the delivery is built (organizers may
    # extend or revoke it).
    link_expiry: timedelta = DEFAULT_LINK_EXPIRY
    # When a link recipient has neither downloaded nor confirmed the dossier this long after its
    # e-mail was accepted, the organizers get one reminder; None: no reminder.
    chase_after: timedelta | None = None
    # A manual send confirmed in the web admin waits until another account approves it.
    require_second_approval: bool = False
    # (language, Jinja2 source) of each cover letter edited in the web admin: used in place of
    # the letter's file under templates/ (delivery.campaigns.templates.template_loader)
    letters: tuple[tuple[str, str], ...] = ()

    @property
    def sender_address(self) -> str:
        return parseaddr(self.sender)[1]

    @property
    def sender_name(self) -> str:
        return parseaddr(self.sender)[0] or self.title

    def text(self, language: str) -> CampaignText:
        """The title, sender name and location in `language`; the plain values where the
        file gives none for it."""
        return dict(self.translations).get(language) or CampaignText(
            self.title, self.sender_name, self.signer_location)

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r.language for r in self.recipients))

    def recipient(self, email: str) -> Recipient:
        for r in self.recipients:
            if r.email.lower() == email.strip().lower():
                return r
        raise KeyError(email)


def load_campaigns(schedules_dir: Path) -> dict[str, Campaign]:
    """Every `*.toml` under `schedules_dir`, by slug; duplicate slugs are an error."""
    campaigns: dict[str, Campaign] = {}
    for path in sorted(schedules_dir.glob("*.toml")):
        campaign = load_campaign(path)
        if campaign.slug in campaigns:
            raise ConfigError(str(path), "campaign.slug", f"'{campaign.slug}' is also used by "
                              f"{campaigns[campaign.slug].source}")
        campaigns[campaign.slug] = campaign
    return campaigns


def load_campaign(path: Path) -> Campaign:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), "(file)", f"cannot be read: {exc}") from exc
    return parse_campaign(text, str(path))


def parse_campaign(text: str, source: str) -> Campaign:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, "(syntax)", str(exc)) from exc
    f = _Fields(source)
    _refuse_unknown_keys(data, source)
    camp = f.table(data, "campaign")
    slug = f.string(camp, "campaign.slug")
    if not _SLUG.match(slug):
        raise ConfigError(source, "campaign.slug", "use lowercase letters, digits and '-' only")
    goal = f.positive_int(camp, "campaign.goal")
    sender = f.string(camp, "campaign.sender")
    if len(getaddresses([sender])) != 1:
        raise ConfigError(source, "campaign.sender", "must be exactly one address, like "
                                                     "'Campaign name <petitions@example.org>'")
    f.address(parseaddr(sender)[1], "campaign.sender", whole=sender)
    organizers = tuple(f.address(a, "campaign.organizers")
                       for a in f.string_list(camp, "campaign.organizers", default=[]))
    signing = f.choice(camp, "campaign.signing", ("required", "off"), default="required")
    withheld = f.choice(camp, "campaign.withheld_names", ("anonymous", "omit"), default="anonymous")

    recipients = []
    raw_recipients = data.get("recipients")
    if not isinstance(raw_recipients, list) or not raw_recipients:
        raise ConfigError(source, "recipients", "add at least one [[recipients]] table")
    for i, raw in enumerate(raw_recipients):
        key = f"recipients[{i}]"
        if not isinstance(raw, dict):
            raise ConfigError(source, key, "must be a table")
        language = f.string(raw, f"{key}.language", default="en")
        if not _LANGUAGE_CODE.match(language):
            raise ConfigError(source, f"{key}.language", f"'{language}' is not a language code "
                                                         "like 'en', 'hy' or 'ru'")
        limit = (f.positive_int(raw, f"{key}.max_message_size") if "max_message_size" in raw
                 else DEFAULT_MAX_MESSAGE_SIZE)
        if limit < MIN_MESSAGE_SIZE:
            raise ConfigError(source, f"{key}.max_message_size",
                              f"must be at least {MIN_MESSAGE_SIZE:,} bytes: the first e-mail "
                              "carries the letter and the summary")
        recipients.append(Recipient(
            name="", email=f.address(f.string(raw, f"{key}.email"), f"{key}.email"),
            language=language, max_message_size=limit,
            delivery=f.choice(raw, f"{key}.delivery", DELIVERY_MODES, default="auto"),
            link_after=f.positive_int(raw, f"{key}.link_after") if "link_after" in raw else 1))
    emails = [r.email.lower() for r in recipients]
    if len(set(emails)) != len(emails):
        raise ConfigError(source, "recipients", "the same e-mail address is listed twice")
    languages = tuple(dict.fromkeys(r.language for r in recipients))
    for i, (raw, recipient) in enumerate(zip(raw_recipients, recipients, strict=True)):
        key = f"recipients[{i}]"
        names = f.localized(raw, f"{key}.name", languages)
        titles = f.localized(raw, f"{key}.title", languages, default="")
        postal = f.localized_lines(raw, f"{key}.postal", languages)
        recipients[i] = replace(
            recipient, name=names.plain, title=titles.plain, postal=postal.plain,
            translations=tuple(
                (lang, RecipientText(names.get(lang), titles.get(lang), postal.get(lang)))
                for lang in _given(names, titles, postal)))

    ms = f.table(data, "milestones")
    thresholds = ms.get("thresholds")
    if (not isinstance(thresholds, list) or not thresholds
            or not all(isinstance(t, int) and not isinstance(t, bool) and t > 0 for t in thresholds)):
        raise ConfigError(source, "milestones.thresholds", "must be a list of positive whole numbers")
    if sorted(set(thresholds)) != thresholds:
        raise ConfigError(source, "milestones.thresholds", "must be strictly increasing")

    sched = data.get("schedule", {})
    if not isinstance(sched, dict):
        raise ConfigError(source, "schedule", "must be a table")
    tz = f.string(sched, "schedule.timezone", default="UTC")
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(source, "schedule.timezone", f"unknown time zone '{tz}'") from exc
    window_text = f.string(sched, "schedule.send_window", default="")
    schedule = Schedule(
        check_every=f.duration(sched, "schedule.check_every", default="5m"),
        timezone=tz,
        send_window=parse_send_window(window_text, source) if window_text else None,
        hold=f.duration(sched, "schedule.hold", default="0s"),
    )
    if schedule.check_every < timedelta(seconds=10):
        raise ConfigError(source, "schedule.check_every", "must be at least 10s")

    titles = f.localized(camp, "campaign.title", languages)
    locations = f.localized(camp, "campaign.location", languages, default="")
    display = parseaddr(sender)[0]
    sender_names = f.localized(camp, "campaign.sender_name", languages, default=display)
    # a sender_name given once, for every language, is kept as every language's text: the
    # plain values alone have nowhere to keep it (Campaign.sender_name is the From's display name)
    given = _given(titles, locations, sender_names) or (list(languages) if "sender_name" in camp else [])
    translations = tuple(
        (lang, CampaignText(titles.get(lang), sender_names.get(lang) or titles.get(lang),
                            locations.get(lang)))
        for lang in given)
    return Campaign(
        slug=slug,
        title=titles.plain,
        goal=goal,
        letter=f.string(camp, "campaign.letter"),
        sender=sender,
        organizers=organizers,
        recipients=tuple(recipients),
        thresholds=tuple(thresholds),
        schedule=schedule,
        signing=signing,
        withheld_names=withheld,
        signer_location=locations.plain,
        source=source,
        retention=f.retention(camp, "campaign.retention"),
        consent_missing=f.choice(camp, "campaign.consent_missing", ("", "name", "withhold"),
                                 default=""),
        translations=translations,
        link_expiry=_link_expiry(f, camp),
        chase_after=_chase_after(f, camp),
        require_second_approval=_flag(f, camp, "campaign.require_second_approval"),
    )


def _flag(f: _Fields, camp: Mapping[str, Any], key: str) -> bool:
    value = camp.get(key.rsplit(".", 1)[-1], False)
    if not isinstance(value, bool):
        raise f.fail(key, "must be true or false (without quotes)")
    return value


def _chase_after(f: _Fields, camp: Mapping[str, Any]) -> timedelta | None:
    if "chase_after" not in camp:
        return None
    after = f.duration(camp, "campaign.chase_after", default="7d")
    if not timedelta(hours=1) <= after <= timedelta(days=365):
        raise f.fail("campaign.chase_after", "must be from 1h to 365d, like \"7d\"")
    return after


def _link_expiry(f: _Fields, camp: Mapping[str, Any]) -> timedelta:
    expiry = f.duration(camp, "campaign.link_expiry", default="90d")
    if not timedelta(days=1) <= expiry <= timedelta(days=3650):
        raise f.fail("campaign.link_expiry", "must be from 1d to 3650d")
    return expiry


KNOWN_KEYS: dict[str, frozenset[str]] = {
    "": frozenset({"campaign", "recipients", "milestones", "schedule"}),
    "campaign": frozenset({"slug", "title", "goal", "letter", "sender", "organizers", "signing",
                           "withheld_names", "location", "retention", "consent_missing",
                           "sender_name", "link_expiry", "chase_after",
                           "require_second_approval"}),
    "recipients": frozenset({"name", "title", "email", "language", "postal", "max_message_size",
                             "delivery", "link_after"}),
    "milestones": frozenset({"thresholds"}),
    "schedule": frozenset({"check_every", "timezone", "send_window", "hold"}),
}


def _refuse_unknown_keys(data: Mapping[str, Any], source: str) -> None:
    """A misspelt key would silently fall back to its default (no hold, no window): refuse it."""
    tables: list[tuple[str, str, Any]] = [("", "", data)]
    for name in ("campaign", "milestones", "schedule"):
        tables.append((name, name, data.get(name)))
    raw = data.get("recipients")
    for i, item in enumerate(raw if isinstance(raw, list) else []):
        tables.append(("recipients", f"recipients[{i}]", item))
    for kind, where, table in tables:
        if not isinstance(table, dict):
            continue
        for key in table:
            if key not in KNOWN_KEYS[kind]:
                known = ", ".join(sorted(KNOWN_KEYS[kind]))
                raise ConfigError(source, f"{where}.{key}" if where else key,
                                  f"unknown key (known here: {known})")


@dataclass(frozen=True)
class _Localized(Generic[V]):
    """A campaign value given once for every language, or as a table by language."""

    plain: V  # the value without a language: the English one, or the only one
    by_language: Mapping[str, V]

    def get(self, language: str) -> V:
        return self.by_language.get(language, self.plain)


def _given(*values: _Localized[Any]) -> list[str]:
    """The languages some of `values` are given in."""
    return list(dict.fromkeys(lang for v in values for lang in v.by_language))


def parse_duration(text: str) -> timedelta | None:
    m = _DURATION.match(text.strip())
    if not m:
        return None
    unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[m.group(2)]
    return timedelta(**{unit: int(m.group(1))})


def parse_send_window(text: str, source: str) -> SendWindow:
    """'Mon-Fri 09:00-18:00' or 'Mon,Wed 10:00-12:00'."""
    problem = "write it like 'Mon-Fri 09:00-18:00'"
    parts = text.split()
    if len(parts) != 2:
        raise ConfigError(source, "schedule.send_window", problem)
    days: set[int] = set()
    for chunk in parts[0].lower().split(","):
        ends = chunk.split("-")
        if not all(e in WEEKDAYS for e in ends) or len(ends) > 2:
            raise ConfigError(source, "schedule.send_window", f"unknown day in '{chunk}'; {problem}")
        first, last = WEEKDAYS.index(ends[0]), WEEKDAYS.index(ends[-1])
        days.update(range(first, last + 1) if first <= last else [*range(first, 7), *range(0, last + 1)])
    try:
        start_s, end_s = parts[1].split("-")
        start, end = time.fromisoformat(start_s), time.fromisoformat(end_s)
    except ValueError as exc:
        raise ConfigError(source, "schedule.send_window", problem) from exc
    if start >= end:
        raise ConfigError(source, "schedule.send_window", "the start time must be before the end time")
    return SendWindow(frozenset(days), start, end)


def _breaks_a_line(text: str) -> bool:
    return any(unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in text)


def validate_address(address: str) -> str | None:
    """The problem with one bare e-mail address, or None: one ASCII address, no header injection."""
    if any(c in address for c in "\r\n\0"):
        return "contains a line break or NUL character"
    if "," in address or ";" in address or " " in address.strip():
        return "must be exactly one address"
    if not address.isascii():
        return "non-ASCII addresses need SMTPUTF8, which is not supported"
    if not _ADDR_SPEC.match(address):
        return f"'{address}' is not an e-mail address"
    return None


class _Fields:
    """Typed access to TOML values that names the key in every error."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, key: str, problem: str) -> ConfigError:
        return ConfigError(self.source, key, problem)

    def table(self, data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
        value = data.get(key)
        if not isinstance(value, dict):
            raise self.fail(key, f"missing [{key}] table")
        return value

    def string(self, data: Mapping[str, Any], key: str, default: str | None = None) -> str:
        value = data.get(key.rsplit(".", 1)[-1], default)
        if value is None:
            raise self.fail(key, "is required")
        if not isinstance(value, str):
            raise self.fail(key, "must be a string")
        if default is None and not value.strip():
            raise self.fail(key, "must not be empty")
        if _breaks_a_line(value.strip()):
            # Titles, names and the sender go into Subject, To and From: a line break there would
            # make every build of every delivery fail (or, unchecked, inject a header).
            raise self.fail(key, "contains a line break or another control character; "
                                 "campaign values are one line each")
        return value.strip()

    def localized(self, data: Mapping[str, Any], key: str, languages: tuple[str, ...],
                  default: str | None = None) -> _Localized[str]:
        """A string, or a table of strings by language code that gives every language of
        `languages` (those the recipients read): an edition is never half in another
        language."""
        value = data.get(key.rsplit(".", 1)[-1])
        if not isinstance(value, dict):
            text = self.string(data, key, default=default)
            return _Localized(text, {})
        # in a table each language's text is required: an empty one would leave that
        # edition without what the others print
        texts = {lang: self.string(value, f"{key}.{lang}")
                 for lang in self._languages_of(value, key, languages)}
        return _Localized(texts.get("en", next(iter(texts.values()))), texts)

    def localized_lines(self, data: Mapping[str, Any], key: str,
                        languages: tuple[str, ...]) -> _Localized[tuple[str, ...]]:
        """Postal lines: a list of strings (a string is one line), or a table of those by
        language."""
        value = data.get(key.rsplit(".", 1)[-1], [])
        if not isinstance(value, dict):
            return _Localized(self._lines(data, key), {})
        lines = {lang: self._lines(value, f"{key}.{lang}")
                 for lang in self._languages_of(value, key, languages)}
        return _Localized(lines.get("en", next(iter(lines.values()))), lines)

    def _lines(self, data: Mapping[str, Any], key: str) -> tuple[str, ...]:
        one = data.get(key.rsplit(".", 1)[-1])
        items = [one] if isinstance(one, str) else self.string_list(data, key, default=[])
        return tuple(self._one_line(item, f"{key}[{n}]") for n, item in enumerate(items))

    def _one_line(self, text: str, key: str) -> str:
        if _breaks_a_line(text.strip()):
            raise self.fail(key, "contains a line break or another control character; "
                                 "write one postal line per list item")
        if not text.strip():
            raise self.fail(key, "must not be empty")
        return text.strip()

    def _languages_of(self, table: Mapping[str, Any], key: str,
                      languages: tuple[str, ...]) -> list[str]:
        if not table:
            raise self.fail(key, "the table is empty; give one value, or one per language")
        for lang in table:
            if not _LANGUAGE_CODE.match(lang):
                raise self.fail(f"{key}.{lang}", "is not a language code like 'en', 'hy' or 'ru'")
        absent = [lang for lang in languages if lang not in table]
        if absent:
            raise self.fail(key, f"has no text in {', '.join(absent)}, which a recipient reads; "
                                 f"add {absent[0]} = \"…\" to the table, or give one value "
                                 "for every language")
        return list(table)

    def string_list(self, data: Mapping[str, Any], key: str, default: list[str]) -> list[str]:
        value = data.get(key.rsplit(".", 1)[-1], default)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(key, "must be a list of strings")
        return value

    def positive_int(self, data: Mapping[str, Any], key: str) -> int:
        value = data.get(key.rsplit(".", 1)[-1])
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise self.fail(key, "must be a positive whole number")
        return value

    def choice(self, data: Mapping[str, Any], key: str, choices: tuple[str, ...], default: str) -> str:
        value = self.string(data, key, default=default)
        if value not in choices:
            raise self.fail(key, f"'{value}' is not one of: {', '.join(choices)}")
        return value

    def duration(self, data: Mapping[str, Any], key: str, default: str) -> timedelta:
        text = self.string(data, key, default=default)
        value = parse_duration(text)
        if value is None:
            raise self.fail(key, f"'{text}' is not a duration like '30s', '5m', '2h' or '1d'")
        return value

    def retention(self, data: Mapping[str, Any], key: str) -> timedelta | None:
        """A number of days ("180d"), or None when the key is absent.

        Days only: "6m" means six minutes in the schedule's durations, and a retention read
        that way would erase every name minutes after a delivery, past undoing."""
        value = data.get(key.rsplit(".", 1)[-1])
        if value is None:
            return None
        example = 'a number of days in quotes, like "180d" (counted after the last delivery)'
        if not isinstance(value, str):
            raise self.fail(key, f"must be {example}")
        m = _DAYS.match(value.strip())
        if not m:
            raise self.fail(key, f"'{value.strip()}' is not {example}; leave the key out to keep "
                                 "signers until they are purged by hand")
        days = int(m.group(1))
        if days < 1:
            raise self.fail(key, "must be at least 1d")
        if days > MAX_RETENTION_DAYS:
            raise self.fail(key, f"must be at most {MAX_RETENTION_DAYS}d; leave the key out to keep "
                                 "signers until they are purged by hand")
        return timedelta(days=days)

    def address(self, address: str, key: str, whole: str | None = None) -> str:
        problem = validate_address(address) if whole is None or "\n" not in whole else "contains a line break"
        if problem:
            raise self.fail(key, problem)
        return address
