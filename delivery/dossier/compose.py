"""Frozen signer set + campaign + delivery facts → Dossier: the document model (pure).

The dossier model holds exactly what may be printed: names, cities, countries and dates of
signing. E-mail addresses and database ids never enter it, so no later stage can leak them.
Intake rejects a name, city or country holding anything like an e-mail address; should one be
stored all the same (a row imported before that rule, or written around intake), compose
withholds it: such a name is listed as withheld (or omitted, as the campaign says), such a
city or country is left blank, and the signer still counts. Refusing to build instead would
stop every delivery of the campaign on one row that nobody can correct from here.

A dossier is assembled from volumes, and everything it says about its signers (counts, the
countries, the growth curve, the last signer) is the sum of its volumes' `VolumeFacts`. So a
volume whose signers did not change need not be read again: its facts, kept from an earlier
build (delivery.dossier.stored), stand in for its lines, which are read only if it must be drawn.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from itertools import islice
from typing import NamedTuple

from delivery.campaigns.config import Campaign, CampaignText, Recipient
from delivery.signers.normalize import email_like

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


class VolumeFacts(NamedTuple):
    """What one volume's range of signers adds to the dossier, without its lines."""

    digest: str  # SHA-256 of exactly what the lines print (see line_digest)
    lines: int
    last_number: int  # of the last line; 0 when there is none
    last_signed_on: date | None
    signers: int  # counted: not withdrawn
    withheld: int
    by_country: tuple[tuple[str, int], ...]  # sorted by country
    by_day: tuple[tuple[date, int], ...]  # sorted by day


@dataclass(frozen=True)
class Volume:
    """The lines whose numbers fall in first…last (a fixed range of `volume_size` numbers; the
    last volume's range ends at the highest number). Numbers of withdrawn signatures are not
    reused, so a withdrawal changes only its own volume, never the ones after it.

    `lines` is None when they were not read (the facts say what they hold)."""

    number: int
    total: int
    first: int
    last: int
    lines: Sequence[Line] | None
    facts: VolumeFacts

    @classmethod
    def of_lines(cls, number: int, total: int, first: int, last: int,
                 lines: Sequence[Line]) -> Volume:
        """A volume of these lines, each counted as a signer (withheld when nameless)."""
        signers = [Signer(line.name or "", line.city, line.country,
                          datetime.combine(line.signed_on, datetime.min.time()),
                          line.name is not None) for line in lines]
        facts = volume_facts(signers, lines, omitted=0)
        return cls(number, total, first, last, lines, facts)

    def printed_lines(self) -> Sequence[Line]:
        """The lines; ValueError if they were not read (the build reads them before drawing)."""
        if self.lines is None:
            raise ValueError(f"volume {self.number}: its lines were not read")
        return self.lines


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
    # (language, text) where the campaign gives its title, sender name or location per language
    campaign_texts: tuple[tuple[str, CampaignText], ...] = ()
    verify_url: str | None = None  # the public page that checks a signed dossier
    letters: tuple[tuple[str, str], ...] = ()  # the campaign's letters edited in the web admin

    def text(self, language: str) -> CampaignText:
        """The campaign's title, sender name and location in `language`."""
        return dict(self.campaign_texts).get(language) or CampaignText(
            self.campaign_title, self.sender_name, self.location)

    @property
    def progress_percent(self) -> float:
        return min(100.0, 100.0 * self.signer_count / self.goal) if self.goal else 0.0

    @property
    def listed_count(self) -> int:
        """Lines in the signer list, "Name withheld" lines included."""
        return sum(v.facts.lines for v in self.volumes)

    @property
    def named_count(self) -> int:
        """Signers printed with their name: those who did not withhold it."""
        return self.signer_count - self.withheld_count

    @property
    def last_line(self) -> tuple[int, date | None]:
        """The number and day of signing of the last listed signer; (0, None) for none."""
        if not self.volumes:
            return 0, None
        facts = self.volumes[-1].facts
        return facts.last_number, facts.last_signed_on


class VolumeDraft(NamedTuple):
    """One volume's range of signers, composed: its lines (None if not read) and facts."""

    lines: list[Line] | None
    facts: VolumeFacts


def compose_volume(signers: Iterable[Signer], first_number: int, *,
                   omit_withheld: bool) -> VolumeDraft:
    """The signers numbered first_number, first_number + 1, … → their lines and facts."""
    lines: list[Line] = []
    kept: list[Signer] = []
    omitted = 0
    number = first_number - 1
    for signer in signers:
        number += 1
        if signer.withdrawn:
            continue
        # One test of the three joined: a line break is white space, so no match spans two.
        if email_like(f"{signer.name}\n{signer.city}\n{signer.country}"):
            signer = _without_emails(signer)
        kept.append(signer)
        if not signer.consent and omit_withheld:
            omitted += 1
            continue
        lines.append(Line(number, signer.name if signer.consent else None, signer.city,
                          signer.country, signer.signed_at.date()))
    return VolumeDraft(lines, volume_facts(kept, lines, omitted=omitted))


def _without_emails(signer: Signer) -> Signer:
    """The signer with every e-mail-like field withheld (see the module docstring)."""
    return signer._replace(
        name="" if email_like(signer.name) else signer.name,
        consent=signer.consent and not email_like(signer.name),
        city="" if email_like(signer.city) else signer.city,
        country="" if email_like(signer.country) else signer.country)


def volume_facts(counted: Sequence[Signer], lines: Sequence[Line], *,
                 omitted: int) -> VolumeFacts:
    by_country = Counter(s.country or "—" for s in counted)
    by_day = Counter(s.signed_at.date() for s in counted)
    withheld = sum(1 for line in lines if line.name is None) + omitted
    last = lines[-1] if lines else None
    return VolumeFacts(
        digest=line_digest(lines), lines=len(lines),
        last_number=last.number if last else 0, last_signed_on=last.signed_on if last else None,
        signers=len(counted), withheld=withheld,
        by_country=tuple(sorted(by_country.items())), by_day=tuple(sorted(by_day.items())))


def line_digest(lines: Iterable[Line]) -> str:
    """SHA-256 of what the lines print, in order; a withheld name differs from every name."""
    withheld = "\x00"
    return hashlib.sha256("".join([
        f"{line.number}\x1f{withheld if line.name is None else line.name}\x1f{line.city}\x1f"
        f"{line.country}\x1f{line.signed_on.isoformat()}\x1e" for line in lines]).encode()
    ).hexdigest()


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
    """Every signer, read once, in order → the dossier."""
    drafts: list[VolumeDraft] = []
    stream = iter(signers)
    omit = campaign.withheld_names == "omit"
    while chunk := list(islice(stream, volume_size)):
        drafts.append(compose_volume(chunk, len(drafts) * volume_size + 1, omit_withheld=omit))
    return assemble(campaign, drafts, dossier_id=dossier_id, created_at=created_at,
                    trigger=trigger, milestone=milestone, addressees=addressees, signed=signed,
                    volume_size=volume_size)


def assemble(
    campaign: Campaign,
    drafts: Sequence[VolumeDraft],
    *,
    dossier_id: str,
    created_at: datetime,
    trigger: str,
    milestone: int | None,
    addressees: Sequence[Recipient],
    signed: bool,
    volume_size: int,
) -> Dossier:
    """Volume drafts, one per `volume_size` signer numbers in order → the dossier. Volumes
    after the last listed line are dropped; empty ones before it keep their place."""
    listed = [i for i, d in enumerate(drafts) if d.facts.lines]
    total = listed[-1] + 1 if listed else 0
    volumes = []
    for i, draft in enumerate(drafts[:total]):
        last = draft.facts.last_number if i == total - 1 else (i + 1) * volume_size
        volumes.append(Volume(number=i + 1, total=total, first=i * volume_size + 1, last=last,
                              lines=draft.lines, facts=draft.facts))
    by_country: Counter[str] = Counter()
    by_day: Counter[date] = Counter()
    for draft in drafts:
        by_country.update(dict(draft.facts.by_country))
        by_day.update(dict(draft.facts.by_day))
    return Dossier(
        campaign_slug=campaign.slug,
        campaign_title=campaign.title,
        dossier_id=dossier_id,
        created_at=created_at,
        trigger=trigger,
        milestone=milestone,
        goal=campaign.goal,
        signer_count=sum(d.facts.signers for d in drafts),
        withheld_count=sum(d.facts.withheld for d in drafts),
        addressees=tuple(addressees),
        sender_name=campaign.sender_name,
        sender_address=campaign.sender_address,
        location=campaign.signer_location,
        letter=campaign.letter,
        signed=signed,
        by_country=tuple(sorted(by_country.items(), key=lambda kv: (-kv[1], kv[0]))),
        growth=_cumulative(by_day),
        volumes=tuple(volumes),
        campaign_texts=campaign.translations,
        letters=campaign.letters,
    )


def _cumulative(by_day: Counter[date]) -> tuple[tuple[date, int], ...]:
    running = 0
    out = []
    for day in sorted(by_day):
        running += by_day[day]
        out.append((day, running))
    return tuple(out)
