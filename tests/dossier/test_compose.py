"""delivery.dossier.compose: the document model, pure (no templates, no PDF engine)."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from pathlib import Path

from delivery.campaigns.config import parse_campaign
from delivery.dossier.compose import Dossier, Signer, compose

REPO = Path(__file__).resolve().parents[2]
CAMPAIGN = parse_campaign((REPO / "schedules" / "salman-mukaev.toml").read_text(), "test")
BASE = datetime(2024, 1, 1, tzinfo=UTC)


def rows(n: int, *, withdrawn: Collection[int] = (), withheld: Collection[int] = ()) -> list[Signer]:
    """Signers numbered 1…n in the order of signing."""
    return [Signer(f"Signer {i}", "Yerevan", ["Armenia", "France"][i % 2],
                   BASE + timedelta(hours=10 * i), i not in withheld, withdrawn=i in withdrawn)
            for i in range(1, n + 1)]


def build(signers: list[Signer], *, volume_size: int = 10, omit: bool = False) -> Dossier:
    campaign = dataclasses.replace(CAMPAIGN, withheld_names="omit") if omit else CAMPAIGN
    return compose(campaign, signers, dossier_id="D-1", created_at=BASE + timedelta(days=90),
                   trigger="milestone", milestone=None, addressees=CAMPAIGN.recipients,
                   signed=False, volume_size=volume_size)


def numbers(dossier: Dossier) -> list[list[int]]:
    return [[line.number for line in v.printed_lines()] for v in dossier.volumes]


def test_every_signer_once_in_order_in_volumes_of_fixed_size() -> None:
    dossier = build(rows(25))
    assert numbers(dossier) == [list(range(1, 11)), list(range(11, 21)), list(range(21, 26))]
    assert [(v.number, v.total, v.first, v.last) for v in dossier.volumes] == [
        (1, 3, 1, 10), (2, 3, 11, 20), (3, 3, 21, 25)]
    assert [line.name for line in dossier.volumes[0].printed_lines()][:2] == ["Signer 1", "Signer 2"]
    assert dossier.signer_count == dossier.listed_count == 25


def test_a_withdrawn_signer_keeps_its_number_and_changes_only_its_volume() -> None:
    before = build(rows(25))
    after = build(rows(25, withdrawn={14}))
    assert numbers(after) == [list(range(1, 11)), [n for n in range(11, 21) if n != 14],
                              list(range(21, 26))]
    assert after.volumes[0] == before.volumes[0] and after.volumes[2] == before.volumes[2]
    assert after.volumes[1] != before.volumes[1]
    assert (after.signer_count, after.listed_count, after.withheld_count) == (24, 24, 0)
    assert sum(n for _, n in after.by_country) == 24 and after.growth[-1][1] == 24


def test_withdrawals_at_the_end_and_a_whole_volume_withdrawn() -> None:
    dossier = build(rows(25, withdrawn={11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 25}))
    assert numbers(dossier) == [list(range(1, 11)), [], list(range(21, 25))]
    assert [(v.first, v.last) for v in dossier.volumes] == [(1, 10), (11, 20), (21, 24)]
    assert build(rows(3, withdrawn={1, 2, 3})).volumes == ()


def test_withheld_names_are_listed_anonymously_or_omitted_keeping_their_numbers() -> None:
    anonymous = build(rows(12, withheld={2, 11}))
    assert [line.name is None for line in anonymous.volumes[0].printed_lines()][:3] == [False, True, False]
    assert anonymous.withheld_count == 2 and anonymous.listed_count == 12
    omitted = build(rows(12, withheld={2, 11}), omit=True)
    assert numbers(omitted) == [[1, *range(3, 11)], [12]]
    assert (omitted.signer_count, omitted.withheld_count, omitted.listed_count) == (12, 2, 10)
