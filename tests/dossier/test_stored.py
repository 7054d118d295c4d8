"""delivery.dossier.stored on SQLite and PostgreSQL: the dossier of stored signers, composed by
reading only the volumes whose rows changed."""

from __future__ import annotations

import dataclasses
import subprocess
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, event, func, select, update

from delivery.artifacts import UnsignedPdf
from delivery.campaigns.config import Campaign, parse_campaign
from delivery.dossier import stored
from delivery.dossier.compose import Dossier, Signer, compose
from delivery.dossier.stored import (
    Frozen,
    StoredLines,
    compose_stored,
    facts_from_json,
    facts_to_json,
)
from delivery.errors import RenderError
from delivery.pdf.build import build_dossier_pdfs
from delivery.signers.intake import SignerInput
from delivery.signers.store import add_signers
from delivery.storage.db import transaction
from delivery.storage.models import CampaignRow, SignerRow, VolumeFactsRow
from tests.support.keys import TEST_KEYS

REPO = Path(__file__).resolve().parents[2]
TEMPLATES = REPO / "templates"
CAMPAIGN = parse_campaign((REPO / "schedules" / "salman-mukaev.toml").read_text(), "test")
BASE = datetime(2024, 1, 1, tzinfo=UTC)
NOW = datetime(2025, 3, 1, 12, tzinfo=UTC)
SIZE = 10


@pytest.fixture
def campaigns(engine: Engine) -> tuple[int, int]:
    """Two campaigns: the one under test, and another whose rows interleave with its ids."""
    with transaction(engine) as session:
        rows = [CampaignRow(slug=slug, title=slug, goal=100, created_at=BASE)
                for slug in ("test", "other")]
        session.add_all(rows)
        session.flush()
        return rows[0].id, rows[1].id


def person(i: int) -> Signer:
    return Signer(f"Signer {i}", ["Yerevan", "Москва"][i % 2], ["Armenia", "Russia", "Egypt"][i % 3],
                  BASE + timedelta(hours=9 * i), i % 7 != 3)


def store(engine: Engine, campaign_id: int, numbers: range, other: int | None = None) -> None:
    """Signers with these numbers, each followed by a row of the other campaign."""
    for i in numbers:
        with transaction(engine) as session:
            s = person(i)
            add_signers(session, campaign_id, [SignerInput(f"{i:064x}", s.name, s.city, s.country,
                                                           s.signed_at, s.consent, "test")], now=NOW,
                        keys=TEST_KEYS)
            if other is not None:
                add_signers(session, other, [SignerInput(f"{i:064x}", "Other", "Paris", "France",
                                                         s.signed_at, True, "test")], now=NOW,
                            keys=TEST_KEYS)


def withdraw(engine: Engine, campaign_id: int, number: int, at: datetime) -> None:
    with transaction(engine) as session:
        session.execute(update(SignerRow).where(
            SignerRow.campaign_id == campaign_id,
            SignerRow.email_key == TEST_KEYS.stored_key(f"{number:064x}"),
        ).values(withdrawn_at=at))


def frozen(engine: Engine, campaign_id: int, as_of: datetime = NOW) -> Frozen:
    with transaction(engine) as session:
        last = session.scalar(select(func.max(SignerRow.id)).where(
            SignerRow.campaign_id == campaign_id)) or 0
    return Frozen(campaign_id, last, as_of)


def stored_dossier(engine: Engine, signers: Frozen, campaign: Campaign = CAMPAIGN,
                   now: datetime = NOW) -> tuple[Dossier, StoredLines]:
    return compose_stored(engine, campaign, signers, dossier_id="D-1", created_at=NOW,
                          trigger="milestone", milestone=None, addressees=CAMPAIGN.recipients,
                          signed=False, now=now, volume_size=SIZE)


def pure_dossier(signers: Sequence[Signer], campaign: Campaign = CAMPAIGN) -> Dossier:
    return compose(campaign, signers, dossier_id="D-1", created_at=NOW, trigger="milestone",
                   milestone=None, addressees=CAMPAIGN.recipients, signed=False,
                   volume_size=SIZE)


def text_of(pdf: UnsignedPdf, folder: Path) -> str:
    path = folder / pdf.name
    path.write_bytes(pdf.data)
    return subprocess.run(["pdftotext", "-enc", "UTF-8", str(path), "-"], check=True,
                          capture_output=True, text=True).stdout


def read(dossier: Dossier) -> list[int]:
    """The numbers of the volumes whose rows were read."""
    return [v.number for v in dossier.volumes if v.lines is not None]


def without_lines(dossier: Dossier) -> Dossier:
    return dataclasses.replace(dossier, volumes=tuple(
        dataclasses.replace(v, lines=None) for v in dossier.volumes))


@pytest.mark.parametrize("omit", [False, True])
def test_the_stored_dossier_is_the_dossier_of_its_signers(
        engine: Engine, campaigns: tuple[int, int], omit: bool) -> None:
    campaign = dataclasses.replace(CAMPAIGN, withheld_names="omit" if omit else "anonymous")
    mine, other = campaigns
    store(engine, mine, range(1, 36), other)
    withdraw(engine, mine, 12, NOW - timedelta(days=1))
    withdraw(engine, mine, 35, NOW - timedelta(days=1))
    withdraw(engine, mine, 20, NOW + timedelta(days=1))  # after the dossier's time: still listed
    expected = [person(i)._replace(withdrawn=i in (12, 35)) for i in range(1, 36)]

    dossier, _ = stored_dossier(engine, frozen(engine, mine), campaign)
    assert dossier == pure_dossier(expected, campaign)
    assert read(dossier) == [1, 2, 3, 4]
    assert dossier.last_line == (34, person(34).signed_at.date())

    again, _ = stored_dossier(engine, frozen(engine, mine), campaign)
    assert read(again) == []
    assert again == without_lines(dossier)


def test_new_signers_read_only_the_volumes_they_join(
        engine: Engine, campaigns: tuple[int, int]) -> None:
    mine, other = campaigns
    store(engine, mine, range(1, 26), other)
    stored_dossier(engine, frozen(engine, mine))
    store(engine, mine, range(26, 43), other)
    dossier, _ = stored_dossier(engine, frozen(engine, mine))
    assert read(dossier) == [3, 4, 5]
    assert without_lines(dossier) == without_lines(pure_dossier([person(i) for i in range(1, 43)]))
    assert (dossier.signer_count, dossier.volumes[-1].last) == (42, 42)


def test_a_withdrawal_reads_only_its_volume_and_later_ones_are_not_applied(
        engine: Engine, campaigns: tuple[int, int]) -> None:
    mine, _ = campaigns
    store(engine, mine, range(1, 31))
    stored_dossier(engine, frozen(engine, mine))
    withdraw(engine, mine, 14, NOW - timedelta(hours=1))
    withdraw(engine, mine, 25, NOW + timedelta(hours=1))
    dossier, _ = stored_dossier(engine, frozen(engine, mine))
    assert read(dossier) == [2]
    assert [line.number for line in dossier.volumes[1].lines or ()] == [
        n for n in range(11, 21) if n != 14]
    assert dossier.signer_count == 29

    later, _ = stored_dossier(engine, frozen(engine, mine, as_of=NOW + timedelta(days=1)))
    assert read(later) == [3] and later.signer_count == 28


def test_signers_after_the_frozen_set_are_not_in_it(
        engine: Engine, campaigns: tuple[int, int]) -> None:
    mine, _ = campaigns
    store(engine, mine, range(1, 16))
    signers = frozen(engine, mine)
    store(engine, mine, range(16, 30))
    dossier, _ = stored_dossier(engine, signers)
    assert (dossier.signer_count, len(dossier.volumes), dossier.volumes[-1].last) == (15, 2, 15)


def test_lines_left_unread_are_read_for_drawing_and_match(
        engine: Engine, campaigns: tuple[int, int], tmp_path: Path) -> None:
    mine, other = campaigns
    store(engine, mine, range(1, 26), other)
    first, _ = stored_dossier(engine, frozen(engine, mine))
    dossier, read_lines = stored_dossier(engine, frozen(engine, mine))
    assert read(dossier) == []
    assert [read_lines(v) for v in dossier.volumes] == [v.lines for v in first.volumes]
    pdfs = build_dossier_pdfs(dossier, TEMPLATES, languages=["en"], workers=1,
                              cache_dir=tmp_path / "cache", read_lines=read_lines)
    assert pdfs[0].pages > 3


def test_a_row_changed_behind_the_store_fails_the_build_that_must_draw_it(
        engine: Engine, campaigns: tuple[int, int], tmp_path: Path) -> None:
    mine, _ = campaigns
    store(engine, mine, range(1, 26))
    stored_dossier(engine, frozen(engine, mine))
    dossier, read_lines = stored_dossier(engine, frozen(engine, mine))
    with transaction(engine) as session:
        session.execute(update(SignerRow).where(SignerRow.email_key == TEST_KEYS.stored_key(f"{13:064x}"))
                        .values(name="Someone Else"))
    with pytest.raises(RenderError, match="volume 2: its signers read now are not the ones"):
        build_dossier_pdfs(dossier, TEMPLATES, languages=["en"], workers=1,
                           cache_dir=tmp_path / "cache", read_lines=read_lines)


def test_a_row_appearing_inside_a_volume_is_refused_when_its_lines_are_read(
        engine: Engine, campaigns: tuple[int, int]) -> None:
    mine, other = campaigns
    store(engine, mine, range(1, 21), other)
    dossier, read_lines = stored_dossier(engine, frozen(engine, mine))
    with transaction(engine) as session:  # a row committed late, with an id inside volume 1
        gap = session.scalar(select(SignerRow.id).where(
            SignerRow.campaign_id == other).order_by(SignerRow.id)) or 0
        session.execute(update(SignerRow).where(SignerRow.id == gap)
                        .values(campaign_id=mine, email_key="late"))
    with pytest.raises(RenderError, match="signers of volume 1 changed"):
        read_lines(dossier.volumes[0])


def test_unreadable_facts_are_read_again_and_replaced(
        engine: Engine, campaigns: tuple[int, int]) -> None:
    mine, _ = campaigns
    store(engine, mine, range(1, 21))
    stored_dossier(engine, frozen(engine, mine))
    with transaction(engine) as session:
        broken = session.scalars(select(VolumeFactsRow.fingerprint)).first()
        session.execute(update(VolumeFactsRow).where(VolumeFactsRow.fingerprint == broken)
                        .values(facts='{"digest": 7}'))
    dossier, _ = stored_dossier(engine, frozen(engine, mine))
    assert len(read(dossier)) == 1
    with transaction(engine) as session:
        texts = session.scalars(select(VolumeFactsRow.facts)).all()
    assert len(texts) == 2 and all(facts_from_json(t) is not None for t in texts)


def test_facts_unused_for_a_day_go_when_new_ones_are_stored(
        engine: Engine, campaigns: tuple[int, int]) -> None:
    mine, _ = campaigns
    store(engine, mine, range(1, 21))
    stored_dossier(engine, frozen(engine, mine))
    withdraw(engine, mine, 5, NOW)
    stored_dossier(engine, frozen(engine, mine), now=NOW + timedelta(hours=2))
    with transaction(engine) as session:
        assert session.scalar(select(func.count()).select_from(VolumeFactsRow)) == 3
    store(engine, mine, range(21, 25))
    stored_dossier(engine, frozen(engine, mine), now=NOW + timedelta(days=2))
    with transaction(engine) as session:
        created = sorted(session.scalars(select(VolumeFactsRow.created_at)))
    # volume 1 before the withdrawal is gone; volume 1 after it and volume 2 are in use
    assert created == [NOW, NOW + timedelta(hours=2), NOW + timedelta(days=2)]


def test_facts_survive_their_json_form() -> None:
    dossier = pure_dossier([person(i) for i in range(1, 9)])
    facts = dossier.volumes[0].facts
    assert facts_from_json(facts_to_json(facts)) == facts
    assert facts_from_json("not json") is None
    assert facts_from_json('{"digest": "x"}') is None


def test_a_later_build_reads_only_the_ids_after_the_full_volumes_it_knows(
        engine: Engine, campaigns: tuple[int, int]) -> None:
    mine, other = campaigns
    store(engine, mine, range(1, 26), other)
    stored_dossier(engine, frozen(engine, mine))
    store(engine, mine, range(26, 31), other)
    id_reads: list[list[object]] = []  # the parameters of each query reading ids in a range

    def record(conn: object, cursor: object, statement: str,
               parameters: dict[str, object] | tuple[object, ...], context: object,
               executemany: bool) -> None:
        if statement.lstrip().startswith("SELECT signers.id") and "signers.id >" in statement:
            id_reads.append(list(parameters.values() if isinstance(parameters, dict)
                                 else parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        dossier, _ = stored_dossier(engine, frozen(engine, mine))
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert read(dossier) == [3]
    with transaction(engine) as session:
        volume_2_last = session.scalars(select(SignerRow.id).where(
            SignerRow.campaign_id == mine).order_by(SignerRow.id).offset(19)).first()
    assert len(id_reads) == 1 and volume_2_last in id_reads[0]


def test_a_row_committed_late_inside_known_volumes_is_found(
        engine: Engine, campaigns: tuple[int, int]) -> None:
    mine, other = campaigns
    store(engine, mine, range(1, 26), other)
    stored_dossier(engine, frozen(engine, mine))
    with transaction(engine) as session:  # the first row of the other campaign becomes no. 2
        gap = session.scalar(select(SignerRow.id).where(
            SignerRow.campaign_id == other).order_by(SignerRow.id)) or 0
        session.execute(update(SignerRow).where(SignerRow.id == gap)
                        .values(campaign_id=mine, email_key="late", name="Late Signer"))
    dossier, _ = stored_dossier(engine, frozen(engine, mine))
    assert read(dossier) == [1, 2, 3]
    names = [line.name for v in dossier.volumes for line in v.lines or ()]
    assert names[:3] == ["Signer 1", "Late Signer", "Signer 2"] and len(names) == 26


def test_beyond_the_lines_kept_in_memory_volumes_are_read_again_when_drawn(
        engine: Engine, campaigns: tuple[int, int], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    mine, other = campaigns
    store(engine, mine, range(1, 36), other)
    monkeypatch.setattr(stored, "KEEP_LINES", 15)
    dossier, read_lines = stored_dossier(engine, frozen(engine, mine))
    assert read(dossier) == [1]
    pdfs = build_dossier_pdfs(dossier, TEMPLATES, languages=["en"], workers=1,
                              cache_dir=tmp_path / "cache", read_lines=read_lines)
    text = text_of(pdfs[0], tmp_path)
    assert all(f"Signer {i} " in text for i in range(1, 36) if person(i).consent)


def test_a_volume_left_unread_without_a_reader_fails_the_build_before_rendering(
        engine: Engine, campaigns: tuple[int, int], tmp_path: Path) -> None:
    mine, _ = campaigns
    store(engine, mine, range(1, 16))
    stored_dossier(engine, frozen(engine, mine))
    dossier, _ = stored_dossier(engine, frozen(engine, mine))
    with pytest.raises(RenderError, match="volume 1 must be drawn but its lines were not read"):
        build_dossier_pdfs(dossier, TEMPLATES, languages=["en"], workers=1,
                           cache_dir=tmp_path / "cache")
    assert not list((tmp_path / "cache").glob("*.pdf"))


def test_a_campaign_without_signers_has_an_empty_dossier(
        engine: Engine, campaigns: tuple[int, int]) -> None:
    mine, other = campaigns
    store(engine, other, range(1, 5))
    dossier, _ = stored_dossier(engine, frozen(engine, mine))
    assert (dossier.volumes, dossier.signer_count, dossier.last_line) == ((), 0, (0, None))
    assert dossier == pure_dossier([])
