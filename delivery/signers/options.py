"""Import options as an organizer gives them (CLI flags, web form fields) → `ImportOptions` (pure).

Every choice that settles how a file is read lives here, so that the CLI, the web admin and
the API read a file the same way, and each refusal names the option that settles it:

- `--format NAME`: a platform's export (see delivery.signers.formats).
- `--map FIELD=COLUMN` (repeatable, one field each): the column holding a field; the column is
  everything after the first "=", so headers with commas or "=" work.
- `--where COLUMN=VALUE` (repeatable): keep only the rows whose COLUMN is VALUE (all must hold).
- `--date-order dmy|mdy|ymd`: the day/month order of numeric dates, when no row settles it.
- `--timezone ZONE`: the zone of times written without one (default: the campaign's).
- `--signed-at-missing reject|import-time`: an empty date cell rejects its row (default), or is
  the time of import.
- `--consent-missing name|withhold`: what a file without a consent column means (no default:
  the campaign key `consent_missing`, or a refusal naming both).
- `--update`: signers already stored (matched by key) take this file's consent, city, country
  and date of signing; their numbers stay.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from delivery.errors import InputRefused
from delivery.signers.dates import DateOrder


class SignedAtMissing(StrEnum):
    REJECT = "reject"
    IMPORT_TIME = "import-time"


class ConsentMissing(StrEnum):
    NAME = "name"
    WITHHOLD = "withhold"


# The fields a column can be mapped to. name or first_name/last_name is printed; postcode,
# phone and row_id only identify a signer without an e-mail (never stored or printed).
FIELDS = ("name", "first_name", "last_name", "email", "city", "country", "signed_at", "consent",
          "postcode", "phone", "row_id")


@dataclass(frozen=True)
class ImportOptions:
    encoding: str | None = None
    format: str | None = None
    column_map: Mapping[str, str] = field(default_factory=dict)
    where: tuple[tuple[str, str], ...] = ()
    date_order: DateOrder | None = None
    timezone: str | None = None  # as given; None: the format's zone, else `campaign_timezone`
    campaign_timezone: str = "UTC"
    signed_at_missing: SignedAtMissing = SignedAtMissing.REJECT
    consent_missing: ConsentMissing | None = None
    update: bool = False
    dry_run: bool = False


_E = TypeVar("_E", bound=StrEnum)


def _choice(kind: type[_E], option: str, value: str | None) -> _E | None:
    if value is None or not value.strip():
        return None
    try:
        return kind(value.strip().lower())
    except ValueError:
        allowed = "|".join(member.value for member in kind)
        raise InputRefused(option, f"{value.strip()!r} is not one of {allowed}") from None


def parse_pairs(option: str, items: Iterable[str], *, fields: tuple[str, ...] | None
                ) -> list[tuple[str, str]]:
    """["name=Full Name, as typed", …] → [("name", "Full Name, as typed"), …]: split at the
    first "="; with `fields`, the left side must be one of them, each at most once."""
    pairs: list[tuple[str, str]] = []
    for item in items:
        left, sep, right = item.partition("=")
        left = left.strip()
        if fields is not None:
            left = left.lower().replace("-", "_")
        if not sep or not left or (fields is not None and not right.strip()):
            what = "FIELD=COLUMN" if fields is not None else "COLUMN=VALUE"
            raise InputRefused(option, f"{item.strip()!r} is not {what}")
        if fields is not None:
            if left not in fields:
                raise InputRefused(option, f"{left!r} is not a field; fields: " + ", ".join(fields))
            if any(left == other for other, _ in pairs):
                raise InputRefused(option, f"{left} is mapped twice")
        pairs.append((left, right.strip()))
    return pairs


def import_options(*, encoding: str | None = None, format: str | None = None,
                   maps: Iterable[str] = (), where: Iterable[str] = (),
                   date_order: str | None = None, timezone: str | None = None,
                   signed_at_missing: str | None = None, consent_missing: str | None = None,
                   update: bool = False, dry_run: bool = False,
                   default_timezone: str = "UTC",
                   default_consent_missing: str | None = None) -> ImportOptions:
    """Option texts (as typed) → ImportOptions; InputRefused naming the option that is wrong."""
    from delivery.signers.formats import FORMATS  # the presets' table imports these options

    if format is not None and format.strip():
        format = format.strip().lower()
        if format not in FORMATS:
            raise InputRefused("--format", f"{format!r} is not a known format; formats: "
                                           + ", ".join(sorted(FORMATS)))
    else:
        format = None
    zone = (timezone or "").strip() or None
    for option, name in (("--timezone", zone), ("schedule.timezone", default_timezone)):
        try:
            ZoneInfo(name or "UTC")
        except (ZoneInfoNotFoundError, ValueError):
            raise InputRefused(option, f"unknown time zone {name!r} (e.g. Asia/Yerevan, UTC)"
                               ) from None
    consent = _choice(ConsentMissing, "--consent-missing", consent_missing)
    if consent is None:
        consent = _choice(ConsentMissing, "campaign.consent_missing", default_consent_missing)
    return ImportOptions(
        encoding=(encoding or "").strip() or None, format=format,
        column_map=dict(parse_pairs("--map", maps, fields=FIELDS)),
        where=tuple(parse_pairs("--where", where, fields=None)),
        date_order=_choice(DateOrder, "--date-order", date_order), timezone=zone,
        campaign_timezone=default_timezone,
        signed_at_missing=_choice(SignedAtMissing, "--signed-at-missing", signed_at_missing)
        or SignedAtMissing.REJECT,
        consent_missing=consent, update=update, dry_run=dry_run)
