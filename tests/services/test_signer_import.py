"""Importing through the service (delivery.services.signers.import_file), on SQLite and
PostgreSQL: corrections with --update are refused while a build reads the signers, drop the
stored facts of the volumes they change, and are audited with their actor."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from delivery.errors import StateConflict
from delivery.services import deliveries, signers
from delivery.services.app import App
from delivery.storage.db import transaction
from delivery.storage.models import AuditRow, SignerRow, VolumeFactsRow

AppFactory = Callable[..., App]
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
HEADER = "name,email,city,signed_at,consent\n"


def consents(app: App) -> dict[str, bool]:
    with transaction(app.engine) as session:
        return {row.name: row.consent for row in session.scalars(select(SignerRow))}


def test_an_update_is_refused_while_a_build_runs_then_corrects_and_drops_volume_facts(
        make_app: AppFactory, tmp_path: Path) -> None:
    app = make_app()
    campaign = app.campaign(None)
    first = tmp_path / "first.csv"
    first.write_text(HEADER + "Ann Lee,ann@example.org,Paris,2026-03-04,yes\n"
                              "Bo Kim,bo@example.org,Oslo,2026-03-05,yes\n", encoding="utf-8")
    signers.import_file(app, campaign, first, now=NOW, actor="cli:tester",
                        options=signers.import_options(campaign))
    with transaction(app.engine) as session:
        ann = session.scalars(select(SignerRow).where(SignerRow.name == "Ann Lee")).one()
        session.add(VolumeFactsRow(campaign_id=ann.campaign_id, fingerprint="v1", size=2000,
                                   number=1, first_id=ann.id, last_id=ann.id + 1, rows=2,
                                   facts="{}", created_at=NOW))
    fixed = tmp_path / "fixed.csv"
    fixed.write_text(HEADER + "Ann Lee,ann@example.org,Paris,2026-03-04,no\n", encoding="utf-8")
    update = signers.import_options(campaign, update=True)
    building = deliveries.create_manual(app, campaign, now=NOW, actor="test")  # claimed: building
    with pytest.raises(StateConflict, match=f"{building.public_id} is being built: "
                                            "signers import --update when"):
        signers.import_file(app, campaign, fixed, now=NOW, actor="cli:tester", options=update)
    assert consents(app) == {"Ann Lee": True, "Bo Kim": True}
    later = NOW + deliveries.BUILD_LEASE + timedelta(seconds=1)  # its builder died
    report = signers.import_file(app, campaign, fixed, now=later, actor="cli:tester",
                                 options=update)
    assert (report.imported, report.updated) == (0, 1)
    assert consents(app) == {"Ann Lee": False, "Bo Kim": True}
    with transaction(app.engine) as session:
        assert list(session.scalars(select(VolumeFactsRow.fingerprint))) == []
        actions = [(a.action, a.actor) for a in session.scalars(
            select(AuditRow).where(AuditRow.action.like("signers.%")).order_by(AuditRow.id))]
    assert actions[-2:] == [("signers.import", "cli:tester"), ("signers.update", "cli:tester")]
