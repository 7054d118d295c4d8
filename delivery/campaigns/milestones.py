"""Signer count + thresholds + already reached → the milestones to record now (pure).

A milestone is reached once. Several crossed at once make one delivery, for the highest; the
lower ones are recorded as reached by that same delivery. A count that falls back below a reached
milestone (withdrawals) changes nothing.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Crossing:
    """What one tick found: every newly reached threshold, and the one the delivery is for."""

    reached: tuple[int, ...]

    @property
    def highest(self) -> int:
        return self.reached[-1]


def crossing(count: int, thresholds: Sequence[int], already: Collection[int]) -> Crossing | None:
    reached = tuple(t for t in sorted(thresholds) if t <= count and t not in already)
    return Crossing(reached) if reached else None


def next_milestone(count: int, thresholds: Sequence[int]) -> int | None:
    return next((t for t in sorted(thresholds) if t > count), None)
