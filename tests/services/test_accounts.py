"""Organizer accounts and API tokens (delivery.services.accounts) and their commands (delivery.cli.admin),
on SQLite and PostgreSQL."""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from delivery.cli import admin
from delivery.errors import NotFound, StateConflict, UsageError
from delivery.services import accounts
from delivery.services.app import App
from delivery.storage.db import reading
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
    assert accounts.add_user(app, "maria", "a long enough password", now=NOW, actor="cli:tester")
    assert accounts.authenticate(app, "maria", "a long enough password")
    assert not accounts.authenticate(app, "maria", "wrong password here")
    assert not accounts.authenticate(app, "nobody", "a long enough password")
    assert not accounts.authenticate(app, "maria", "x" * 5000)
    with pytest.raises(StateConflict):
        accounts.add_user(app, "maria", "another long password", now=NOW, actor="cli:tester")
    assert accounts.add_user(app, "maria", "another long password", now=NOW, actor="cli:tester",
                             replace=True) is False
    assert accounts.authenticate(app, "maria", "another long password")
    with reading(app.engine) as session:
        assert list(session.execute(select(AuditRow.action, AuditRow.actor).order_by(AuditRow.id))) == [
            ("user.add", "cli:tester"), ("user.password", "cli:tester")]


def test_a_login_is_audited_with_its_address_and_a_failed_one_changes_nothing(app: App) -> None:
    accounts.add_user(app, "maria", "a long enough password", now=NOW, actor="cli:tester")
    assert not accounts.log_in(app, "maria", "wrong password here", now=NOW, actor="web:maria", ip="10.0.0.9")
    assert accounts.log_in(app, "maria", "a long enough password", now=NOW, actor="web:maria", ip="10.0.0.7")
    with reading(app.engine) as session:
        logins = [(actor, json.loads(detail)["ip"]) for actor, detail in session.execute(
            select(AuditRow.actor, AuditRow.detail).where(AuditRow.action == "user.login"))]
    assert logins == [("web:maria", "10.0.0.7")]


@pytest.mark.parametrize(("name", "password"), [("maria", "short"), ("", "a long enough password"),
                                                ("has space", "a long enough password"),
                                                ("-dash", "a long enough password")])
def test_bad_names_and_short_passwords_are_refused(app: App, name: str, password: str) -> None:
    with pytest.raises(UsageError):
        accounts.add_user(app, name, password, now=NOW, actor="cli:tester")
    assert accounts.list_users(app) == []


def test_tokens_are_stored_as_sha256_and_can_be_revoked(app: App) -> None:
    token = accounts.add_token(app, "website", campaign=None, now=NOW, actor="cli:tester")
    assert token.startswith("pd_") and len(token) > 40
    with reading(app.engine) as session:
        row = session.scalars(select(ApiTokenRow)).one()
        assert row.token_hash == accounts.token_hash(token) and token not in row.token_hash
    assert accounts.verify_token(app, token) == accounts.TokenInfo("website", None)
    assert accounts.verify_token(app, token + "x") is None
    assert accounts.verify_token(app, "website") is None
    assert accounts.revoke_token(app, "website", now=NOW, actor="cli:tester")
    assert not accounts.revoke_token(app, "website", now=NOW, actor="cli:tester")
    assert accounts.verify_token(app, token) is None
    with pytest.raises(NotFound):
        accounts.revoke_token(app, "nothing", now=NOW, actor="cli:tester")
    with pytest.raises(StateConflict):
        accounts.add_token(app, "website", campaign=None, now=NOW, actor="cli:tester")
    assert [(t.name, t.revoked_at) for t in accounts.list_tokens(app)] == [("website", NOW)]


def test_importing_the_accounts_service_computes_no_hash() -> None:
    """The login's stand-in hash costs about a second: made at import, every command would pay it."""
    code = ("import time, argon2; calls = []; real = argon2.PasswordHasher.hash\n"
            "argon2.PasswordHasher.hash = lambda self, p: calls.append(p) or real(self, p)\n"
            "import delivery.services.accounts, delivery.cli.main\n"
            "delivery.cli.main.build_parser(); print(len(calls))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "0"


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
    assert accounts.authenticate(app, "maria", "a long enough password")
    with reading(app.engine) as session:
        assert session.scalars(select(AuditRow.action)).all() == ["user.add"]
    with pytest.raises(StateConflict):
        run(app, ["users", "add", "maria", "--password-stdin"], stdin, "another long password\n")
    code, out = run(app, ["users", "add", "maria", "--password-stdin", "--reset-password"], stdin,
                    "another long password\n")
    assert out == ["user maria has a new password"]
    code, out = run(app, ["users", "list", "--json"])
    assert [u.name for u in out[0]] == ["maria"]
    code, out = run(app, ["users", "remove", "maria"])
    with reading(app.engine) as session:
        assert session.scalars(select(UserRow)).all() == []


@pytest.mark.parametrize("text", ["", "\n", "short\n"])
def test_users_add_refuses_empty_or_short_passwords(app: App, stdin: io.StringIO, text: str) -> None:
    with pytest.raises(UsageError):
        run(app, ["users", "add", "maria", "--password-stdin"], stdin, text)
    with reading(app.engine) as session:
        assert session.scalars(select(UserRow)).all() == []


def test_users_add_without_a_terminal_asks_for_password_stdin(app: App, stdin: io.StringIO) -> None:
    with pytest.raises(UsageError, match="--password-stdin"):
        run(app, ["users", "add", "maria"], stdin, "a long enough password\n")


def test_tokens_add_prints_the_token_once_and_revoke(app: App) -> None:
    code, out = run(app, ["tokens", "add", "website", "--campaign", SLUG, "--json"])
    assert code == 0
    token = out[0]["token"]
    info = accounts.verify_token(app, token)
    assert info is not None and info.campaign == SLUG
    _, out = run(app, ["tokens", "list", "--json"])
    assert token not in repr(out) and out[0][0].name == "website"
    _, out = run(app, ["tokens", "add", "global"])
    assert out[0].splitlines()[0].startswith("pd_") and "not shown again" in out[0]
    _, out = run(app, ["tokens", "revoke", "website"])
    assert out == ["token website revoked"]
    assert accounts.verify_token(app, token) is None
    with reading(app.engine) as session:
        actions = list(session.scalars(select(AuditRow.action)))
        assert actions == ["token.add", "token.add", "token.revoke"]
    with pytest.raises(NotFound):
        run(app, ["tokens", "add", "x", "--campaign", "no-such-campaign"])
