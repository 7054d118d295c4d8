"""A paused SMTP account is resumed by a command or the dashboard's button, audited, and the mail
that waited goes out at once; on SQLite and PostgreSQL, through a real SMTP server with AUTH."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from starlette.testclient import TestClient

from delivery.cli.main import main
from delivery.services.app import App, open_app
from delivery.settings import load_settings
from delivery.storage.db import reading
from delivery.storage.models import AuditRow
from delivery.web import create_web_app
from tests.support.campaigns import campaign_file
from tests.support.smtp_faults import FaultyServer, faulty_server
from tests.web.test_web import login, web_config

ACCOUNT_USER = "campaign"


@pytest.fixture
def server() -> Iterator[FaultyServer]:
    with faulty_server(auth=True) as server:
        yield server


@pytest.fixture
def home(tmp_path: Path, engine: Engine, server: FaultyServer, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A campaign folder with a 5-signature milestone, its database, and a wrong SMTP password."""
    (tmp_path / "schedules").mkdir()
    (tmp_path / "schedules" / "small.toml").write_text(campaign_file(
        slug="small", title="Small test petition", goal=50, signing="off", hold="0s", thresholds="[5]",
        check_every="1m"), encoding="utf-8")
    env = {"DELIVERY_HOME": str(tmp_path), "DELIVERY_DATABASE_URL": engine.url.render_as_string(False),
           **server.env(), "DELIVERY_SMTP_USERNAME": ACCOUNT_USER, "DELIVERY_SMTP_PASSWORD": "wrong"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert main(["init"]) == 0
    for i in range(5):
        assert main(["signers", "add", "--name", f"Signer {i}", "--email", f"s{i}@example.net",
                     "--city", "Yerevan", "--country", "AM"]) == 0
    return tmp_path


def pause_sending(capsys: pytest.CaptureFixture[str]) -> str:
    """A milestone delivery whose e-mails the server refuses with 535: the account is paused."""
    main(["run-due"])
    capsys.readouterr()
    assert main(["smtp", "status"]) == 0
    status = capsys.readouterr().out
    assert status.startswith(f"PAUSED {ACCOUNT_USER}@127.0.0.1:") and "535" in status
    return status.split()[1]


def audit(engine: Engine, action: str) -> list[tuple[str, str]]:
    with reading(engine) as session:
        rows = session.execute(select(AuditRow.actor, AuditRow.subject).where(AuditRow.action == action))
        return [(actor, subject) for actor, subject in rows]


def dossier_recipients(server: FaultyServer) -> list[str]:
    return sorted(r.rcpt_tos[0] for r in server.received if r.rcpt_tos[0] != "organizers@example.org")


def test_smtp_resume_clears_the_pause_and_sends_what_waited(
        home: Path, engine: Engine, server: FaultyServer, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    account = pause_sending(capsys)
    assert server.received == []
    assert main(["smtp", "resume"]) == 1  # still the wrong password: refused again, paused again
    capsys.readouterr()
    monkeypatch.setenv("DELIVERY_SMTP_PASSWORD", "right")
    assert main(["smtp", "resume", "--json"]) == 0
    resumed = json.loads(capsys.readouterr().out)
    assert resumed["account"] == account and resumed["send"]["sent"] == 3  # two dossiers, one alert
    assert dossier_recipients(server) == ["migration-service@example.org", "prime-minister@example.org"]
    assert [actor.startswith("cli:") and subject == account
            for actor, subject in audit(engine, "smtp.resume")] == [True, True]
    assert main(["smtp", "resume"]) == 2
    assert "no SMTP account is paused" in capsys.readouterr().err
    assert main(["deliveries", "--json"]) == 0
    assert [d["status"] for d in json.loads(capsys.readouterr().out)] == ["done"]


def test_the_alert_names_the_command_that_resumes(
        home: Path, server: FaultyServer, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    pause_sending(capsys)
    monkeypatch.setenv("DELIVERY_SMTP_PASSWORD", "right")
    assert main(["smtp", "resume"]) == 0
    [alert] = [r.message for r in server.received if r.rcpt_tos == ["organizers@example.org"]]
    body = alert.get_content()
    assert "paused" in body and "`petition-delivery smtp resume`" in body and "Resume sending" in body


def test_the_dashboard_button_resumes_sending(
        home: Path, engine: Engine, server: FaultyServer, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    from delivery.services import accounts
    from tests.web.test_web import NOW, PASSWORD

    account = pause_sending(capsys)
    monkeypatch.setenv("DELIVERY_SMTP_PASSWORD", "right")
    app: App = open_app(load_settings())
    try:
        accounts.add_user(app, "organizer", PASSWORD, now=NOW, actor="cli:tester")
        with TestClient(create_web_app(app, config=web_config())) as client:
            csrf = login(client)
            dashboard = client.get("/c/small/")
            assert "Sending is paused" in dashboard.text and "Resume sending" in dashboard.text
            forged = client.post("/c/small/smtp/resume", data={"csrf": "forged", "account": account})
            assert forged.status_code == 403 and audit(engine, "smtp.resume") == []
            done = client.post("/c/small/smtp/resume", data={"csrf": csrf, "account": account})
            assert done.status_code == 200 and "resumed" in done.text
            client.app.state.web.jobs.join_all(timeout=60)  # type: ignore[attr-defined]
            assert "Sending is paused" not in client.get("/c/small/").text
    finally:
        app.close()
    assert audit(engine, "smtp.resume") == [("web:organizer", account)]
    assert dossier_recipients(server) == ["migration-service@example.org", "prime-minister@example.org"]
