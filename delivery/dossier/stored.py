"""Stored signers + a delivery's frozen set → Dossier, reading only the volumes that changed.

A signer row never changes once stored, except for being withdrawn, and rows are never deleted.
So the signers of volume v (numbers (v-1)·size+1 … v·size, numbered in id order within the
campaign) are fixed by a fingerprint: the ids of its first and last rows, how many rows lie
between them, and which of those had been withdrawn when the delivery was created. A build
reads the campaign's ids (one index scan, no row data), looks the fingerprints up in the
volume_facts table, and reads the rows of the volumes not found there. The other volumes enter
the dossier as their facts alone; their lines are read only if one must be drawn again (a
language not in the cache), and then checked against the facts' digest.

Facts not used by any build for a day are removed when a build stores new ones.
"""

from __future__ import annotations

import bisect
import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import islice
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, and_, case, delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from delivery.campaigns.config import Campaign, Recipient
from delivery.dossier.compose import (
    DEFAULT_VOLUME_SIZE,
    Dossier,
    Line,
    Signer,
    Volume,
    VolumeDraft,
    VolumeFacts,
    assemble,
    compose_volume,
)
from delivery.errors import RenderError
from delivery.storage.db import is_postgres, reading, transaction
from delivery.storage.models import DeliveryRow, SignerRow, VolumeFactsRow

FACTS_FORMAT = "2"  # part of every fingerprint: a change to VolumeFacts or compose bumps it
KEEP_UNUSED = timedelta(days=1)
# Lines read to compose a dossier are kept for drawing up to this many; beyond it they are
# read again when their volume is drawn, so memory does not grow with the petition.
KEEP_LINES = 200_000


@dataclass(frozen=True)
class Frozen:
    """The signers a dossier shows: the campaign's rows up to `last_signer_id`, withdrawals made
    up to `as_of` applied (DeliveryRow holds the same three facts)."""

    campaign_id: int
    last_signer_id: int
    as_of: datetime

    @classmethod
    def of(cls, delivery: DeliveryRow) -> Frozen:
        """The set a delivery froze when it was created: up to its last signer, withdrawals made
        by its creation applied, so its dossier is the same however often it is built."""
        return cls(delivery.campaign_id, delivery.last_signer_id, delivery.created_at)

    def rows(self) -> ColumnElement[bool]:
        """The campaign's rows up to the last signer, withdrawn or not (their numbers stay)."""
        return and_(SignerRow.campaign_id == self.campaign_id, SignerRow.id <= self.last_signer_id)

    def withdrawn(self) -> ColumnElement[bool]:
        """Rows withdrawn by the set's time: they are left out of its dossier."""
        return and_(SignerRow.withdrawn_at.is_not(None), SignerRow.withdrawn_at <= self.as_of)

    def withdrawn_rows(self) -> ColumnElement[bool]:
        """The set's rows withdrawn by its time (a range of ix_signers_campaign_withdrawn_country)."""
        return and_(self.rows(), self.withdrawn())

    def withdrawn_ids(self, conn: Connection | Session) -> list[int]:
        """The ids of the set's rows withdrawn by its time, in order. Sorted here, not by the
        query: asked for them in id order, SQLite reads every row up to the last signer in that
        order and tests each (584 ms at a million signers) instead of seeking the few in the
        index of withdrawals (0.8 ms)."""
        return sorted(conn.execute(select(SignerRow.id).where(self.withdrawn_rows())).scalars())

    def count_shown(self, conn: Connection | Session) -> int:
        """How many signers the dossier counts: the rows less the withdrawn ones (at a million
        signers on SQLite 51 ms; testing each row for a withdrawal took 260 ms)."""
        rows = conn.execute(select(func.count()).select_from(SignerRow).where(self.rows())).scalar_one()
        gone = conn.execute(select(func.count()).select_from(SignerRow)
                            .where(self.withdrawn_rows())).scalar_one()
        return int(rows) - int(gone)


@dataclass(frozen=True)
class _Range:
    """The stored rows of one volume."""

    number: int
    first_id: int
    last_id: int
    rows: int
    withdrawn: tuple[int, ...]

    def fingerprint(self, size: int, omit_withheld: bool) -> str:
        return hashlib.sha256(
            f"{FACTS_FORMAT}\x1e{size}\x1e{int(omit_withheld)}\x1e{self.number}\x1e"
            f"{self.first_id}\x1e{self.last_id}\x1e{self.rows}\x1e"
            f"{','.join(map(str, self.withdrawn))}".encode()).hexdigest()


class StoredLines:
    """Reads the lines of a volume composed from stored signers (build's `read_lines`)."""

    def __init__(self, engine: Engine, frozen: Frozen, ranges: Sequence[_Range], size: int,
                 omit_withheld: bool) -> None:
        self.engine, self.frozen, self.size, self.omit = engine, frozen, size, omit_withheld
        self.ranges = {r.number: r for r in ranges}

    def __call__(self, volume: Volume) -> Sequence[Line]:
        span = self.ranges[volume.number]
        with reading(self.engine) as session:
            signers = list(_signers(session, self.frozen, span.first_id, span.last_id))
        if len(signers) != span.rows:
            raise _changed(volume.number)
        lines = compose_volume(signers, (span.number - 1) * self.size + 1,
                               omit_withheld=self.omit).lines
        assert lines is not None
        return lines


def compose_stored(engine: Engine, campaign: Campaign, frozen: Frozen, *, dossier_id: str,
                   created_at: datetime, trigger: str, milestone: int | None,
                   addressees: Sequence[Recipient], signed: bool, now: datetime,
                   volume_size: int = DEFAULT_VOLUME_SIZE) -> tuple[Dossier, StoredLines]:
    """The dossier of a frozen signer set, and the reader of the lines it left unread."""
    omit = campaign.withheld_names == "omit"
    with reading(engine) as session:
        ranges = _ranges(session, frozen, volume_size)
        prints = [r.fingerprint(volume_size, omit) for r in ranges]
        known = _known_facts(session, frozen.campaign_id, prints)
        drafts: list[VolumeDraft | None] = [
            VolumeDraft(None, known[p]) if p in known else None for p in prints]
        fresh: dict[str, tuple[_Range, VolumeFacts]] = {}
        kept = 0
        for run in _missing_runs(drafts):
            spans = [ranges[i] for i in run]
            rows = _signers(session, frozen, spans[0].first_id, spans[-1].last_id)
            for i, span in zip(run, spans, strict=True):
                signers = list(islice(rows, span.rows))
                if len(signers) != span.rows:
                    raise _changed(span.number)
                lines, facts = compose_volume(signers, i * volume_size + 1, omit_withheld=omit)
                kept += facts.lines
                drafts[i] = VolumeDraft(lines if kept <= KEEP_LINES else None, facts)
                fresh[prints[i]] = (span, facts)
            if next(rows, None) is not None:
                raise _changed(spans[-1].number)
    _store_facts(engine, frozen.campaign_id, volume_size, fresh, keep=prints, now=now)
    dossier = assemble(campaign, [d for d in drafts if d is not None], dossier_id=dossier_id,
                       created_at=created_at, trigger=trigger, milestone=milestone,
                       addressees=addressees, signed=signed, volume_size=volume_size)
    return dossier, StoredLines(engine, frozen, ranges, volume_size, omit)


def _ranges(session: Session, frozen: Frozen, size: int) -> list[_Range]:
    """Each volume's rows. The bounds of full volumes known from earlier builds hold while the
    rows up to them still count exactly (rows are never deleted, so only a row committed late,
    with an id among them, could change them); then only the ids after them are read."""
    conn = session.connection()
    in_set = frozen.rows()
    withdrawn = frozen.withdrawn_ids(conn)
    known = _known_bounds(session, frozen, size)
    if known and conn.execute(select(func.count()).select_from(SignerRow).where(
            in_set, SignerRow.id <= known[-1][1])).scalar_one() != len(known) * size:
        known = []
    after = known[-1][1] if known else 0
    ids = [row[0] for row in conn.execute(
        select(SignerRow.id).where(in_set, SignerRow.id > after).order_by(SignerRow.id))]
    bounds = known + [(ids[start], ids[min(start + size, len(ids)) - 1])
                      for start in range(0, len(ids), size)]
    ranges = []
    for number, (first, last) in enumerate(bounds, start=1):
        lo, hi = bisect.bisect_left(withdrawn, first), bisect.bisect_right(withdrawn, last)
        rows = size if number <= len(known) or number < len(bounds) else len(ids) % size or size
        ranges.append(_Range(number, first, last, rows, tuple(withdrawn[lo:hi])))
    return ranges


def _known_bounds(session: Session, frozen: Frozen, size: int) -> list[tuple[int, int]]:
    """(first id, last id) of volumes 1, 2, … as far as earlier builds found them full."""
    found = session.connection().execute(
        select(VolumeFactsRow.number, VolumeFactsRow.first_id, VolumeFactsRow.last_id)
        .where(VolumeFactsRow.campaign_id == frozen.campaign_id, VolumeFactsRow.size == size,
               VolumeFactsRow.rows == size, VolumeFactsRow.last_id <= frozen.last_signer_id)
        .distinct().order_by(VolumeFactsRow.number))
    bounds: list[tuple[int, int]] = []
    for number, first, last in found:
        if number != len(bounds) + 1 or (bounds and first <= bounds[-1][1]):
            break  # a gap, or two bounds for one volume: trust none after it
        bounds.append((first, last))
    return bounds


def _signers(session: Session, frozen: Frozen, first_id: int, last_id: int) -> Iterator[Signer]:
    withdrawn = frozen.withdrawn()
    rows = session.connection().execution_options(yield_per=4000).execute(
        select(SignerRow.name, SignerRow.city, SignerRow.country, SignerRow.signed_at,
               SignerRow.consent, case((withdrawn, True), else_=False))
        .where(SignerRow.campaign_id == frozen.campaign_id, SignerRow.id >= first_id,
               SignerRow.id <= last_id)
        .order_by(SignerRow.id))
    places: dict[str, str] = {}  # one string per city or country, not one per row
    for name, city, country, signed_at, consent, gone in rows:
        if gone:
            yield Signer("", "", "", signed_at, False, withdrawn=True)
        else:
            yield Signer(name, places.setdefault(city, city), places.setdefault(country, country),
                         signed_at, consent)


def _missing_runs(drafts: Sequence[VolumeDraft | None]) -> Iterator[list[int]]:
    """Indices of consecutive volumes without facts: each run is read with one query."""
    run: list[int] = []
    for i, draft in enumerate(drafts):
        if draft is None:
            run.append(i)
        elif run:
            yield run
            run = []
    if run:
        yield run


def _changed(volume: int) -> RenderError:
    return RenderError(f"the signers of volume {volume} changed while the dossier was read; "
                       "build it again")


def _known_facts(session: Session, campaign_id: int, prints: Sequence[str]) -> dict[str, VolumeFacts]:
    found: dict[str, VolumeFacts] = {}
    for chunk in range(0, len(prints), 5000):
        for fingerprint, text in session.connection().execute(select(
                VolumeFactsRow.fingerprint, VolumeFactsRow.facts).where(
                VolumeFactsRow.campaign_id == campaign_id,
                VolumeFactsRow.fingerprint.in_(prints[chunk:chunk + 5000]))):
            facts = facts_from_json(text)
            if facts is not None:  # unreadable: read the volume again, and store it anew
                found[fingerprint] = facts
    return found


def _store_facts(engine: Engine, campaign_id: int, size: int,
                 fresh: dict[str, tuple[_Range, VolumeFacts]], *, keep: Sequence[str],
                 now: datetime) -> None:
    if not fresh:
        return
    with transaction(engine) as session:
        session.execute(delete(VolumeFactsRow).where(
            VolumeFactsRow.campaign_id == campaign_id,
            VolumeFactsRow.fingerprint.in_(list(fresh))))
        insert = pg_insert if is_postgres(engine) else sqlite_insert
        session.execute(insert(VolumeFactsRow).on_conflict_do_nothing(), [
            {"campaign_id": campaign_id, "fingerprint": p, "size": size, "number": span.number,
             "first_id": span.first_id, "last_id": span.last_id, "rows": span.rows,
             "facts": facts_to_json(facts), "created_at": now}
            for p, (span, facts) in fresh.items()])
        session.execute(delete(VolumeFactsRow).where(
            VolumeFactsRow.campaign_id == campaign_id,
            VolumeFactsRow.created_at < now - KEEP_UNUSED,
            VolumeFactsRow.fingerprint.not_in(list(keep))))


def facts_to_json(facts: VolumeFacts) -> str:
    return json.dumps({
        "digest": facts.digest, "lines": facts.lines, "last_number": facts.last_number,
        "last_signed_on": facts.last_signed_on.isoformat() if facts.last_signed_on else None,
        "signers": facts.signers, "withheld": facts.withheld,
        "by_country": facts.by_country,
        "by_day": [(day.isoformat(), n) for day, n in facts.by_day],
    }, ensure_ascii=False, separators=(",", ":"))


def facts_from_json(text: str) -> VolumeFacts | None:
    """The facts stored as `text`, or None if it does not hold them."""
    try:
        data: dict[str, Any] = json.loads(text)
        last = data["last_signed_on"]
        facts = VolumeFacts(
            digest=str(data["digest"]), lines=int(data["lines"]),
            last_number=int(data["last_number"]),
            last_signed_on=date.fromisoformat(last) if last else None,
            signers=int(data["signers"]), withheld=int(data["withheld"]),
            by_country=tuple((str(c), int(n)) for c, n in data["by_country"]),
            by_day=tuple((date.fromisoformat(d), int(n)) for d, n in data["by_day"]))
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
    return facts
