"""A manual send's request key makes it once: the same key again, later or at the same moment,
returns the first delivery and creates nothing; on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from delivery.errors import UsageError
from delivery.services import deliveries
from delivery.services.app import App
from delivery.services.deliveries import DeliveryRef
from delivery.storage.db import reading
from delivery.storage.models import AuditRow, DeliveryRow
from tests.support.campaigns import campaign_file

AppFactory = Callable[..., App]
NOW = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)
KEY = "k4yFromTheConfirmationForm-0123"


def campaign_toml() -> str:
    return campaign_file(slug="small", title="Small test petition", goal=50, signing="off", hold="0s",
                         thresholds="[5]", check_every="1m")


def delivery_rows(app: App) -> list[tuple[int, str | None]]:
    with reading(app.engine) as session:
        return [(d.id, d.request_key) for d in session.scalars(select(DeliveryRow).order_by(DeliveryRow.id))]


def audit_actions(app: App) -> list[tuple[str, str, str]]:
    with reading(app.engine) as session:
        return [(a.actor, a.action, a.subject) for a in session.scalars(select(AuditRow).where(
            AuditRow.action.like("delivery.%")).order_by(AuditRow.id))]


def test_the_same_key_twice_returns_the_first_delivery(make_app: AppFactory) -> None:
    app = make_app(None, campaign_toml())
    campaign = app.campaign(None)
    first = deliveries.create_manual(app, campaign, now=NOW, actor="web:anna", request_key=KEY)
    again = deliveries.create_manual(app, campaign, now=NOW, actor="web:anna", request_key=KEY,
                                     to=["prime-minister@example.org"])
    assert (again.id, again.public_id) == (first.id, first.public_id)
    assert not first.replayed and again.replayed
    assert delivery_rows(app) == [(first.id, KEY)]
    assert audit_actions(app) == [("web:anna", "delivery.create", first.public_id),
                                  ("web:anna", "delivery.create_replayed", first.public_id)]


def test_racing_calls_with_one_key_make_one_delivery(make_app: AppFactory) -> None:
    # Two Apps, two engines: as two web instances would.
    apps = [make_app(None, campaign_toml()), make_app(None, campaign_toml())]
    barrier = threading.Barrier(len(apps))
    refs: list[DeliveryRef] = []
    errors: list[BaseException] = []

    def run(app: App) -> None:
        barrier.wait()
        try:
            refs.append(deliveries.create_manual(app, app.campaign(None), now=NOW, actor="web:anna",
                                                 request_key=KEY))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(a,)) for a in apps]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert len({r.id for r in refs}) == 1 and sorted(r.replayed for r in refs) == [False, True]
    assert delivery_rows(apps[0]) == [(refs[0].id, KEY)]
    actions = [a[1] for a in audit_actions(apps[0])]
    assert actions == ["delivery.create", "delivery.create_replayed"]


def test_without_a_key_each_call_is_a_new_request(make_app: AppFactory) -> None:
    app = make_app(None, campaign_toml())
    campaign = app.campaign(None)
    first = deliveries.create_manual(app, campaign, now=NOW, actor="cli:anna")
    second = deliveries.create_manual(app, campaign, now=NOW, actor="cli:anna")
    assert first.id != second.id and not second.replayed
    rows = delivery_rows(app)
    assert len(rows) == 2 and all(key for _, key in rows) and rows[0][1] != rows[1][1]
    with reading(app.engine) as session:
        assert session.scalar(select(func.count()).select_from(AuditRow).where(
            AuditRow.action == "delivery.create_replayed")) == 0


@pytest.mark.parametrize("key", ["", "x" * 65])
def test_a_key_out_of_bounds_is_refused(make_app: AppFactory, key: str) -> None:
    app = make_app(None, campaign_toml())
    with pytest.raises(UsageError, match="1 to 64 characters"):
        deliveries.create_manual(app, app.campaign(None), now=NOW, actor="web:anna", request_key=key)
    assert delivery_rows(app) == []
