"""Organizer accounts and API tokens (delivery.services.accounts) and their commands (delivery.cli.admin),
on SQLite and PostgreSQL."""

from __future__ import annotations

import argparse
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from delivery.cli import admin
from delivery.errors import NotFound, StateConflict, UsageError
from delivery.services import accounts
from delivery.services.app import App
from delivery.storage.db import transaction
from delivery.storage.models import ApiTokenRow, AuditRow, UserRow
from tests.web.test_web import NOW, SLUG, _gc_after, make_app

__all__ = ["_gc_after"]


@pytest.fixture
def app(engine: Engine, tmp_path: Path) -> App:
    return make_app(engine, tmp_path)


def test_passwords_are_argon2_hashed_and_checked() -> None:
    stored = accounts.hash_password("a long enough password")
    assert stored.startswith("$argon2id$")
    assert accounts.password_matches(stored, "a long enough password")
    assert not accounts.password_matches(stored, "a long enough passwort")
    assert not accounts.password_matches("not a hash", "a long enough password")


def test_add_user_and_authenticate(app: App) -> None:
    with transaction(app.engine) as session:
        assert accounts.add_user(session, "maria", "a long enough password", now=NOW)
    with transaction(app.engine) as session:
        assert accounts.authenticate(session, "maria", "a long enough password")
        assert not accounts.authenticate(session, "maria", "wrong password here")
        assert not accounts.authenticate(session, "nobody", "a long enough password")
        assert not accounts.authenticate(session, "maria", "x" * 5000)
    with transaction(app.engine) as session, pytest.raises(StateConflict):
        accounts.add_user(session, "maria", "another long password", now=NOW)
    with transaction(app.engine) as session:
        assert accounts.add_user(session, "maria", "another long password", now=NOW, replace=True) is False
    with transaction(app.engine) as session:
        assert accounts.authenticate(session, "maria", "another long password")


@pytest.mark.parametrize(("name", "password"), [("maria", "short"), ("", "a long enough password"),
                                                ("has space", "a long enough password"),
                                                ("-dash", "a long enough password")])
def test_bad_names_and_short_passwords_are_refused(app: App, name: str, password: str) -> None:
    with transaction(app.engine) as session, pytest.raises(UsageError):
        accounts.add_user(session, name, password, now=NOW)


def test_tokens_are_stored_as_sha256_and_can_be_revoked(app: App) -> None:
    with transaction(app.engine) as session:
        token = accounts.add_token(session, "website", campaign_id=None, now=NOW)
    assert token.startswith("pd_") and len(token) > 40
    with transaction(app.engine) as session:
        row = session.scalars(select(ApiTokenRow)).one()
        assert row.token_hash == accounts.token_hash(token) and token not in row.token_hash
        assert accounts.verify_token(session, token) == accounts.TokenInfo("website", None)
        assert accounts.verify_token(session, token + "x") is None
        assert accounts.verify_token(session, "website") is None
    with transaction(app.engine) as session:
        assert accounts.revoke_token(session, "website", now=NOW)
        assert not accounts.revoke_token(session, "website", now=NOW)
    with transaction(app.engine) as session:
        assert accounts.verify_token(session, token) is None
        with pytest.raises(NotFound):
            accounts.revoke_token(session, "nothing", now=NOW)
        with pytest.raises(StateConflict):
            accounts.add_token(session, "website", campaign_id=None, now=NOW)


# --- the commands, parsed as cli.py wires them ----------------------------------------------------------

def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--campaign", metavar="SLUG")
    common.add_argument("--json", action="store_true")
    top = argparse.ArgumentParser(prog="petition-delivery")
    sub = top.add_subparsers(dest="command", required=True)
    admin.add_user_parsers(sub.add_parser("users", parents=[common]))
    admin.add_token_parsers(sub.add_parser("tokens", parents=[common]))
    return top


@pytest.fixture
def stdin(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    fake = io.StringIO()
    monkeypatch.setattr("sys.stdin", fake)
    yield fake


def run(app: App, argv: list[str], stdin: io.StringIO | None = None, text: str = "") -> tuple[int, list[Any]]:
    if stdin is not None:
        stdin.seek(0)
        stdin.truncate()
        stdin.write(text)
        stdin.seek(0)
    out: list[Any] = []
    args = parser().parse_args(argv)
    code = admin.run(app, args, lambda a, data, line: out.append(data if a.json else line), NOW,
                              "cli:tester")
    return code, out


def test_users_add_with_password_stdin(app: App, stdin: io.StringIO) -> None:
    code, out = run(app, ["users", "add", "maria", "--password-stdin"], stdin, "a long enough password\n")
    assert code == 0 and out == ["user maria created"]
    with transaction(app.engine) as session:
        assert accounts.authenticate(session, "maria", "a long enough password")
        assert session.scalars(select(AuditRow.action)).all() == ["user.add"]
    with pytest.raises(StateConflict):
        run(app, ["users", "add", "maria", "--password-stdin"], stdin, "another long password\n")
    code, out = run(app, ["users", "add", "maria", "--password-stdin", "--reset-password"], stdin,
                    "another long password\n")
    assert out == ["user maria has a new password"]
    code, out = run(app, ["users", "list", "--json"])
    assert [u["name"] for u in out[0]] == ["maria"]
    code, out = run(app, ["users", "remove", "maria"])
    with transaction(app.engine) as session:
        assert session.scalars(select(UserRow)).all() == []


@pytest.mark.parametrize("text", ["", "\n", "short\n"])
def test_users_add_refuses_empty_or_short_passwords(app: App, stdin: io.StringIO, text: str) -> None:
    with pytest.raises(UsageError):
        run(app, ["users", "add", "maria", "--password-stdin"], stdin, text)
    with transaction(app.engine) as session:
        assert session.scalars(select(UserRow)).all() == []


def test_users_add_without_a_terminal_asks_for_password_stdin(app: App, stdin: io.StringIO) -> None:
    with pytest.raises(UsageError, match="--password-stdin"):
        run(app, ["users", "add", "maria"], stdin, "a long enough password\n")


def test_tokens_add_prints_the_token_once_and_revoke(app: App) -> None:
    code, out = run(app, ["tokens", "add", "website", "--campaign", SLUG, "--json"])
    assert code == 0
    token = out[0]["token"]
    with transaction(app.engine) as session:
        info = accounts.verify_token(session, token)
        assert info is not None and info.campaign_id == app.campaign_id(session, app.campaigns[SLUG])
    _, out = run(app, ["tokens", "list", "--json"])
    assert token not in json.dumps(out) and out[0][0]["name"] == "website"
    _, out = run(app, ["tokens", "add", "global"])
    assert out[0].splitlines()[0].startswith("pd_") and "not shown again" in out[0]
    _, out = run(app, ["tokens", "revoke", "website"])
    assert out == ["token website revoked"]
    with transaction(app.engine) as session:
        assert accounts.verify_token(session, token) is None
        actions = list(session.scalars(select(AuditRow.action)))
        assert actions == ["token.add", "token.add", "token.revoke"]
    with pytest.raises(NotFound):
        run(app, ["tokens", "add", "x", "--campaign", "no-such-campaign"])
