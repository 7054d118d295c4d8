"""Frozen signer set + campaign + delivery facts → Dossier: the document model (pure).

The dossier model holds exactly what may be printed: names, cities, countries and dates of
signing. E-mail addresses and database ids never enter it, so no later stage can leak them.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import NamedTuple

from delivery.config import Campaign, Recipient

DEFAULT_VOLUME_SIZE = 2000


class Signer(NamedTuple):
    """One signer as stored, in the order of signing; the input of compose.

    A withdrawn signer is passed too, so that it keeps its place: it holds its number, and is
    neither counted nor listed. (A tuple, like Line: one is made per database row.)
    """

    name: str
    city: str
    country: str
    signed_at: datetime
    consent: bool
    withdrawn: bool = False


class Line(NamedTuple):
    """One printed line of the signer list. `name` is None when the signer withheld it. (A
    tuple: a million are made for a large dossier, at half the cost of a frozen dataclass.)"""

    number: int
    name: str | None
    city: str
    country: str
    signed_on: date


@dataclass(frozen=True)
class Volume:
    """The lines whose numbers fall in first…last (a fixed range of `volume_size` numbers; the
    last volume's range ends at the highest number). Numbers of withdrawn signatures are not
    reused, so a withdrawal changes only its own volume, never the ones after it."""

    number: int
    total: int
    first: int
    last: int
    lines: Sequence[Line]


@dataclass(frozen=True)
class Dossier:
    campaign_slug: str
    campaign_title: str
    dossier_id: str
    created_at: datetime
    trigger: str
    milestone: int | None
    goal: int
    signer_count: int
    withheld_count: int
    addressees: tuple[Recipient, ...]
    sender_name: str
    sender_address: str
    location: str
    letter: str
    signed: bool
    by_country: tuple[tuple[str, int], ...]
    growth: tuple[tuple[date, int], ...]
    volumes: tuple[Volume, ...]

    @property
    def progress_percent(self) -> float:
        return min(100.0, 100.0 * self.signer_count / self.goal) if self.goal else 0.0

    @property
    def listed_count(self) -> int:
        """Lines in the signer list, "Name withheld" lines included."""
        return sum(len(v.lines) for v in self.volumes)

    @property
    def named_count(self) -> int:
        """Signers printed with their name: those who did not withhold it."""
        return self.signer_count - self.withheld_count


def compose(
    campaign: Campaign,
    signers: Iterable[Signer],
    *,
    dossier_id: str,
    created_at: datetime,
    trigger: str,
    milestone: int | None,
    addressees: Sequence[Recipient],
    signed: bool,
    volume_size: int = DEFAULT_VOLUME_SIZE,
) -> Dossier:
    by_country: Counter[str] = Counter()
    by_day: Counter[date] = Counter()
    lines: list[Line] = []
    count = withheld = number = 0
    for signer in signers:
        number += 1
        if signer.withdrawn:
            continue
        count += 1
        by_country[signer.country or "—"] += 1
        day = signer.signed_at.date()
        by_day[day] += 1
        if not signer.consent:
            withheld += 1
            if campaign.withheld_names == "omit":
                continue
        lines.append(Line(number, signer.name if signer.consent else None,
                          signer.city, signer.country, day))
    return Dossier(
        campaign_slug=campaign.slug,
        campaign_title=campaign.title,
        dossier_id=dossier_id,
        created_at=created_at,
        trigger=trigger,
        milestone=milestone,
        goal=campaign.goal,
        signer_count=count,
        withheld_count=withheld,
        addressees=tuple(addressees),
        sender_name=campaign.sender_name,
        sender_address=campaign.sender_address,
        location=campaign.signer_location,
        letter=campaign.letter,
        signed=signed,
        by_country=tuple(sorted(by_country.items(), key=lambda kv: (-kv[1], kv[0]))),
        growth=_cumulative(by_day),
        volumes=split_volumes(lines, volume_size),
    )


def split_volumes(lines: Sequence[Line], size: int) -> tuple[Volume, ...]:
    """Lines (numbered in increasing order, with gaps) → volumes of `size` numbers each."""
    if not lines:
        return ()
    highest = lines[-1].number
    total = -(-highest // size)
    volumes, start = [], 0
    for i in range(total):
        last = min(highest, (i + 1) * size)
        end = bisect.bisect_right(lines, last, lo=start, key=_number)
        volumes.append(Volume(number=i + 1, total=total, first=i * size + 1, last=last,
                              lines=lines[start:end]))
        start = end
    return tuple(volumes)


def _number(line: Line) -> int:
    return line.number


def _cumulative(by_day: Counter[date]) -> tuple[tuple[date, int], ...]:
    running = 0
    out = []
    for day in sorted(by_day):
        running += by_day[day]
        out.append((day, running))
    return tuple(out)
