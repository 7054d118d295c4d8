"""The states a delivery moves through, and the one table of the moves allowed between them.

held → queued → building → sending → done | failed; cancelled from held, queued or sending; done →
failed when a message bounces after it was accepted. Every
change of a delivery's status in the services is checked against TRANSITIONS (`move`), and the
queries that pick rows by state derive their state lists from it (`sources`), so the rules are
written once.
"""

from __future__ import annotations

from enum import StrEnum

from delivery.errors import StateConflict


class DeliveryState(StrEnum):
    HELD = "held"  # waiting for the campaign's hold to end (organizers may cancel or release)
    QUEUED = "queued"  # to be built by whichever instance claims it first
    BUILDING = "building"  # claimed under a lease: being composed, rendered and signed
    SENDING = "sending"  # built: its messages are in the outbox
    DONE = "done"  # every dossier message sent
    FAILED = "failed"  # the build failed, or a message failed for good or bounced
    CANCELLED = "cancelled"


S = DeliveryState
ACTIVE = frozenset({S.QUEUED, S.BUILDING, S.SENDING})  # work is under way: a page showing it refreshes
TRANSITIONS: dict[DeliveryState, frozenset[DeliveryState]] = {
    S.HELD: frozenset({S.QUEUED, S.CANCELLED}),
    S.QUEUED: frozenset({S.BUILDING, S.CANCELLED}),
    # building → building: a lease that ran out is taken over; → queued: a lease handed back
    S.BUILDING: frozenset({S.BUILDING, S.SENDING, S.FAILED, S.QUEUED}),
    S.SENDING: frozenset({S.DONE, S.FAILED, S.CANCELLED}),
    # failed → queued: a failed build is built again; → sending: failed messages are retried
    S.FAILED: frozenset({S.QUEUED, S.SENDING}),
    S.DONE: frozenset({S.FAILED}),  # a bounce: a recipient did not get it after all
    S.CANCELLED: frozenset(),
}


def allowed(old: str, new: DeliveryState) -> bool:
    return new in TRANSITIONS.get(DeliveryState(old), frozenset())


def sources(new: DeliveryState) -> tuple[DeliveryState, ...]:
    """Every state from which a delivery may move to `new`."""
    return tuple(s for s, targets in TRANSITIONS.items() if new in targets)


def organizer_actions(status: str) -> frozenset[str]:
    """What an organizer may do to a delivery in this state: cancel, release (a held one early),
    retry (a failed build, or failed messages of a delivery still sending)."""
    state = DeliveryState(status)
    can = {"cancel"} if allowed(state, S.CANCELLED) else set()
    if state is S.HELD:
        can.add("release")
    if state in (S.FAILED, S.SENDING):
        can.add("retry")
    return frozenset(can)


def move(public_id: str, old: str, new: DeliveryState, *, doing: str) -> DeliveryState:
    """`new`, when the table allows old → new; StateConflict saying so otherwise."""
    if not allowed(old, new):
        raise StateConflict(f"delivery {public_id} is {old}: nothing to {doing}")
    return new
