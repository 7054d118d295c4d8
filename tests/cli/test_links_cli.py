"""`links extend|withdraw`: the organizers' two actions on a download link, from the command line
as from the delivery page, audited with the command's actor, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from delivery.cli.main import main
from delivery.services.app import App
from delivery.storage.db import reading
from delivery.storage.models import AuditRow, LinkRow
from tests.services.test_links import PM, PUBLIC, delivered, link_campaign
from tests.support.smtpd import SmtpServer

AppFactory = Callable[..., App]


@pytest.fixture
def linked(make_app: AppFactory, smtp_server: SmtpServer, tmp_path: Path,
           monkeypatch: pytest.MonkeyPatch) -> tuple[App, str]:
    home = tmp_path / "home"
    (home / "schedules").mkdir(parents=True)
    (home / "schedules" / "link.toml").write_text(link_campaign(), encoding="utf-8")
    app = make_app({**smtp_server.env(), "DELIVERY_PUBLIC_URL": PUBLIC}, link_campaign())
    public_id, _ = delivered(app, smtp_server)
    # the command reads the same installation from the environment, as on a server
    env = {"DELIVERY_HOME": str(home), "DELIVERY_VAR_DIR": str(app.settings.var_dir),
           "DELIVERY_DATABASE_URL": app.engine.url.render_as_string(hide_password=False),
           "DELIVERY_OUTBOX_DIR": str(app.settings.outbox_dir), "DELIVERY_PUBLIC_URL": PUBLIC,
           "DELIVERY_SIGNING_KEY": str(app.settings.signing_key),
           "DELIVERY_SIGNING_CERT": str(app.settings.signing_cert), **smtp_server.env()}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return app, public_id


def _link(app: App) -> LinkRow:
    with reading(app.engine) as session:
        return session.scalars(select(LinkRow).where(LinkRow.recipient == PM)).one()


def test_extend_then_withdraw_a_link(linked: tuple[App, str], capsys: pytest.CaptureFixture[str]) -> None:
    app, public_id = linked
    before = _link(app).expires_at
    assert main(["links", "extend", public_id, PM.upper(), "--days", "30"]) == 0
    assert _link(app).expires_at == before + timedelta(days=30)
    assert "works until" in capsys.readouterr().out
    assert main(["links", "extend", public_id, PM]) == 0  # by the campaign's link_expiry, 90 days
    assert _link(app).expires_at == before + timedelta(days=120)
    assert main(["links", "withdraw", public_id, PM]) == 0
    assert _link(app).revoked_at is not None
    assert main(["links", "withdraw", public_id, PM]) == 1
    assert "already revoked" in capsys.readouterr().err
    assert main(["links", "extend", public_id, PM]) == 1  # a withdrawn link stays withdrawn
    with reading(app.engine) as session:
        actions = [(a.action, a.actor) for a in session.scalars(
            select(AuditRow).where(AuditRow.action.like("link.%")).order_by(AuditRow.id))]
    assert [a for a, _ in actions] == ["link.extend", "link.extend", "link.revoke"]
    assert all(actor.startswith("cli") for _, actor in actions)


def test_what_the_command_cannot_find_or_take_is_a_usage_error(
        linked: tuple[App, str], capsys: pytest.CaptureFixture[str]) -> None:
    app, public_id = linked
    assert main(["links", "extend", public_id, "nobody@example.org"]) == 2
    assert "sent no download link to nobody@example.org" in capsys.readouterr().err
    assert main(["links", "withdraw", "NO-SUCH-ID", PM]) == 2
    assert main(["links", "extend", public_id, PM, "--days", "0"]) == 2
    assert "1 to 3650 days" in capsys.readouterr().err
    assert _link(app).revoked_at is None
