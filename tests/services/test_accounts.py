"""Organizer accounts and API tokens (delivery.services.accounts) and their commands (delivery.cli.admin),
on SQLite and PostgreSQL."""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from delivery.cli import admin
from delivery.errors import NotFound, StateConflict, UsageError
from delivery.services import accounts
from delivery.services.app import App
from delivery.storage.db import make_engine, reading
from delivery.storage.models import ApiTokenRow, AuditRow, LoginAttemptRow, SetupTokenRow, UserRow
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


def test_a_login_is_audited_with_its_address_and_a_failed_one_only_counted(app: App) -> None:
    accounts.add_user(app, "maria", "a long enough password", now=NOW, actor="cli:tester")
    assert not accounts.log_in(app, "maria", "wrong password here", now=NOW, actor="web:maria", ip="10.0.0.9")
    assert accounts.log_in(app, "maria", "a long enough password", now=NOW, actor="web:maria", ip="10.0.0.7")
    with reading(app.engine) as session:
        logins = [(actor, json.loads(detail)["ip"]) for actor, detail in session.execute(
            select(AuditRow.actor, AuditRow.detail).where(AuditRow.action == "user.login"))]
        counted = [(r.address, r.name) for r in session.scalars(select(LoginAttemptRow))]
    assert counted == [("10.0.0.9", "maria")]
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


# --- login limits (login_attempts) and session ids ---------------------------------------------------

# 5 per (name, address), then waits from 1 min doubling to 1 h; 20 per address per 15 min.
LIMITS = accounts.LoginLimits()


def attempt(app: App, name: str, password: str, ip: str, at: datetime = NOW) -> accounts.Login:
    return accounts.log_in(app, name, password, now=at, actor=f"web:{name}", ip=ip, limits=LIMITS)


def attempt_rows(app: App) -> list[tuple[str, str]]:
    with reading(app.engine) as session:
        rows = session.scalars(select(LoginAttemptRow).order_by(LoginAttemptRow.id))
        return [(r.address, r.name) for r in rows]


def test_thirty_parallel_wrong_passwords_get_only_five_checks(app: App) -> None:
    """The count and the new attempt are one step: parallel attempts cannot all see room left."""
    accounts.add_user(app, "maria", "a long enough password", now=NOW, actor="cli:tester")
    start = threading.Barrier(30)

    def one(_: int) -> accounts.Login:
        start.wait()
        return attempt(app, "maria", "wrong password here", "198.51.100.7")

    with ThreadPoolExecutor(max_workers=30) as pool:
        results = list(pool.map(one, range(30)))
    checked = [r for r in results if not r.retry_after]
    assert len(checked) == 5 and not any(checked)
    assert all(r.retry_after == 60 for r in results if r.retry_after)
    assert attempt_rows(app) == [("198.51.100.7", "maria")] * 5


def test_two_instances_and_a_restart_count_the_same_attempts(app: App, database_url: str) -> None:
    accounts.add_user(app, "maria", "a long enough password", now=NOW, actor="cli:tester")
    other = App(settings=app.settings, engine=make_engine(database_url), campaigns=app.campaigns)
    try:
        for _ in range(3):
            assert not attempt(app, "maria", "wrong password here", "198.51.100.7")
        for _ in range(2):
            assert not attempt(other, "maria", "wrong password here", "198.51.100.7").retry_after
        assert attempt(app, "maria", "a long enough password", "198.51.100.7").retry_after == 60
        assert attempt(other, "maria", "a long enough password", "198.51.100.7").retry_after == 60
    finally:
        other.close()


def test_the_wait_doubles_with_each_failure_and_a_login_clears_it(app: App) -> None:
    accounts.add_user(app, "maria", "a long enough password", now=NOW, actor="cli:tester")
    ip, t = "198.51.100.7", NOW
    for _ in range(5):
        assert attempt(app, "maria", "wrong password here", ip, t).retry_after == 0
    for wait in (60, 120, 240, 480):
        assert attempt(app, "maria", "a long enough password", ip, t).retry_after == wait
        t += timedelta(seconds=wait - 1)
        assert attempt(app, "maria", "a long enough password", ip, t).retry_after == 1
        t += timedelta(seconds=1)
        # (case-folded: the same name)
        assert not attempt(app, "Maria", "wrong password here", ip, t).retry_after
    t += timedelta(seconds=960)
    assert attempt(app, "maria", "a long enough password", ip, t)
    assert attempt_rows(app) == []  # the login cleared that pair
    for _ in range(5):
        assert not attempt(app, "maria", "wrong password here", ip, t).retry_after


def test_the_longest_wait_is_an_hour_and_failures_are_forgotten_after_a_day(app: App) -> None:
    ip, t, failures, waits = "198.51.100.7", NOW, 0, []
    while failures < 12:
        result = attempt(app, "maria", "wrong password here", ip, t)
        if result.retry_after:
            waits.append(result.retry_after)
            t += timedelta(seconds=result.retry_after)
        else:
            failures += 1
    assert waits == [60, 120, 240, 480, 960, 1920, 3600]
    assert attempt(app, "maria", "x" * 12, ip, t).retry_after == 3600
    assert attempt(app, "maria", "x" * 12, ip, t + timedelta(days=1, seconds=1)).retry_after == 0


def test_a_name_locked_from_one_address_still_logs_in_from_another(app: App) -> None:
    accounts.add_user(app, "maria", "a long enough password", now=NOW, actor="cli:tester")
    for _ in range(40):
        attempt(app, "maria", "wrong password here", "198.51.100.66")
    assert attempt(app, "maria", "a long enough password", "198.51.100.66").retry_after > 0
    assert attempt(app, "maria", "a long enough password", "203.0.113.5")
    assert attempt(app, "maria", "a long enough password", "2001:db8:1::5")


def test_one_address_gets_twenty_failures_whatever_the_names(app: App) -> None:
    accounts.add_user(app, "maria", "a long enough password", now=NOW, actor="cli:tester")
    for i in range(20):
        assert attempt(app, f"guess{i}", "wrong password here", "198.51.100.66") == accounts.Login()
    refused = attempt(app, "maria", "a long enough password", "198.51.100.66")
    assert refused.retry_after == 15 * 60
    assert attempt(app, "maria", "a long enough password", "198.51.100.66", NOW + timedelta(minutes=15))
    assert attempt(app, "maria", "a long enough password", "203.0.113.5")


def test_an_ipv6_client_counts_as_its_64_and_a_mapped_ipv4_as_the_ipv4(app: App) -> None:
    accounts.add_user(app, "maria", "a long enough password", now=NOW, actor="cli:tester")
    for i in range(5):
        attempt(app, "maria", "wrong password here", f"2001:db8:0:7::{i + 1:x}")
    assert attempt(app, "maria", "a long enough password", "2001:db8:0:7:ffff::1").retry_after == 60
    assert attempt(app, "maria", "a long enough password", "2001:db8:0:8::1")
    for _ in range(5):
        attempt(app, "maria", "wrong password here", "::ffff:198.51.100.9")
    assert attempt(app, "maria", "a long enough password", "198.51.100.9").retry_after == 60
    assert {address for address, _ in attempt_rows(app)} == {"2001:db8:0:7::/64", "198.51.100.9"}


def test_attempts_older_than_a_day_are_pruned(app: App) -> None:
    for i in range(50):
        attempt(app, f"guess{i % 3}", "wrong password here", f"198.51.100.{i}")
    assert len(attempt_rows(app)) == 50
    attempt(app, "maria", "wrong password here", "203.0.113.5", NOW + timedelta(hours=23))
    assert len(attempt_rows(app)) == 51
    attempt(app, "maria", "wrong password here", "203.0.113.5", NOW + timedelta(days=1, seconds=1))
    assert attempt_rows(app) == [("203.0.113.5", "maria")] * 2


def test_a_new_password_forgets_the_failures_of_that_name(app: App) -> None:
    accounts.add_user(app, "maria", "a long enough password", now=NOW, actor="cli:tester")
    for _ in range(6):
        attempt(app, "maria", "wrong password here", "198.51.100.7")
    attempt(app, "other", "wrong password here", "198.51.100.7")
    accounts.add_user(app, "maria", "another long password", now=NOW, actor="cli:tester", replace=True)
    assert attempt_rows(app) == [("198.51.100.7", "other")]
    assert attempt(app, "maria", "another long password", "198.51.100.7")


def test_a_session_id_lasts_until_logout_password_change_or_removal(app: App) -> None:
    accounts.add_user(app, "maria", "a long enough password", now=NOW, actor="cli:tester")
    first = attempt(app, "maria", "a long enough password", "198.51.100.7").session_id
    assert first and accounts.session_user(app, "maria", first) == "maria"
    assert attempt(app, "maria", "a long enough password", "203.0.113.5").session_id == first  # a 2nd browser
    assert accounts.session_user(app, "maria", first + "x") is None
    assert accounts.session_user(app, "maria", None) is None
    assert accounts.session_user(app, None, first) is None

    assert accounts.log_out(app, "maria", first, now=NOW, actor="web:maria", ip="198.51.100.7")
    assert accounts.session_user(app, "maria", first) is None
    assert not accounts.log_out(app, "maria", first, now=NOW, actor="web:maria", ip="198.51.100.7")
    second = attempt(app, "maria", "a long enough password", "198.51.100.7").session_id
    assert second and second != first and accounts.session_user(app, "maria", second) == "maria"

    accounts.add_user(app, "maria", "another long password", now=NOW, actor="cli:tester", replace=True)
    assert accounts.session_user(app, "maria", second) is None
    third = attempt(app, "maria", "another long password", "198.51.100.7").session_id
    assert third and third not in (first, second)

    accounts.remove_user(app, "maria", now=NOW, actor="cli:tester")
    accounts.add_user(app, "maria", "a long enough password", now=NOW, actor="cli:tester")
    assert accounts.session_user(app, "maria", third) is None
    fourth = attempt(app, "maria", "a long enough password", "198.51.100.7").session_id
    assert fourth not in (first, second, third)
    with reading(app.engine) as session:
        audited = [(a.action, json.loads(a.detail).get("ip")) for a in session.scalars(
            select(AuditRow).where(AuditRow.action.in_(["user.login", "user.logout"])).order_by(AuditRow.id))]
    assert audited == [("user.login", "198.51.100.7"), ("user.login", "203.0.113.5"),
                       ("user.logout", "198.51.100.7"), ("user.login", "198.51.100.7"),
                       ("user.login", "198.51.100.7"), ("user.login", "198.51.100.7")]


# --- roles ---------------------------------------------------------------------------------------

def roles(app: App) -> dict[str, str]:
    return {u.name: u.role for u in accounts.list_users(app)}


def test_a_new_account_is_an_organizer_unless_made_an_owner(app: App) -> None:
    accounts.add_user(app, "maria", "a long enough password", now=NOW, actor="cli:tester")
    accounts.add_user(app, "anna", "a long enough password", now=NOW, actor="cli:tester", role="owner")
    assert roles(app) == {"anna": "owner", "maria": "organizer"}
    assert accounts.owners(app) == ["anna"] and accounts.user_role(app, "nobody") is None
    with pytest.raises(UsageError):
        accounts.add_user(app, "x", "a long enough password", now=NOW, actor="cli:tester", role="admin")
    assert accounts.set_role(app, "maria", "owner", now=NOW, actor="web:anna")
    assert not accounts.set_role(app, "maria", "owner", now=NOW, actor="web:anna")
    with reading(app.engine) as session:
        audited = [(a.actor, a.action, a.subject, json.loads(a.detail)) for a in
                   session.scalars(select(AuditRow).where(AuditRow.action == "user.role"))]
    assert audited == [("web:anna", "user.role", "maria", {"role": "owner", "previous": "organizer"})]


def test_the_last_owner_can_be_neither_demoted_nor_removed(app: App) -> None:
    accounts.add_user(app, "anna", "a long enough password", now=NOW, actor="cli:tester", role="owner")
    accounts.add_user(app, "maria", "a long enough password", now=NOW, actor="cli:tester")
    with pytest.raises(StateConflict, match="only owner"):
        accounts.set_role(app, "anna", "organizer", now=NOW, actor="web:anna")
    with pytest.raises(StateConflict, match="only owner"):
        accounts.remove_user(app, "anna", now=NOW, actor="web:anna")
    with pytest.raises(StateConflict, match="only owner"):
        accounts.add_user(app, "anna", "another long password", now=NOW, actor="cli:tester", replace=True,
                          role="organizer")
    assert accounts.authenticate(app, "anna", "a long enough password")  # that refusal changed nothing
    accounts.remove_user(app, "maria", now=NOW, actor="web:anna")  # an organizer may go
    accounts.set_role(app, "anna", "owner", now=NOW, actor="web:anna")
    accounts.add_user(app, "maria", "a long enough password", now=NOW, actor="web:anna", role="owner")
    accounts.remove_user(app, "anna", now=NOW, actor="web:anna")  # yourself, with another owner left
    assert roles(app) == {"maria": "owner"}


def test_two_owners_demoting_each_other_at_once_leave_one_owner(app: App) -> None:
    for name in ("anna", "maria"):
        accounts.add_user(app, name, "a long enough password", now=NOW, actor="cli:tester", role="owner")
    start = threading.Barrier(2)

    def demote(name: str) -> str:
        start.wait()
        try:
            accounts.set_role(app, name, "organizer", now=NOW, actor="web:other")
        except StateConflict:
            return "refused"
        return "done"

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = sorted(pool.map(demote, ["anna", "maria"]))
    assert results == ["done", "refused"]
    assert sorted(roles(app).values()) == ["organizer", "owner"]


def test_a_role_change_ends_the_sessions_of_that_account_unless_told_not_to(app: App) -> None:
    accounts.add_user(app, "anna", "a long enough password", now=NOW, actor="cli:tester", role="owner")
    accounts.add_user(app, "maria", "a long enough password", now=NOW, actor="cli:tester")
    login = attempt(app, "maria", "a long enough password", "198.51.100.7")
    assert login.role == "organizer" and login.session_id
    accounts.set_role(app, "maria", "owner", now=NOW, actor="web:anna")
    assert accounts.session_user(app, "maria", login.session_id) is None
    again = attempt(app, "maria", "a long enough password", "198.51.100.7")
    assert again.role == "owner" and again.session_id
    accounts.set_role(app, "maria", "organizer", now=NOW, actor="web:maria", end_sessions=False)
    assert accounts.session_user(app, "maria", again.session_id) == "maria"


def test_set_password_needs_an_existing_account_and_ends_its_sessions(app: App) -> None:
    accounts.add_user(app, "maria", "a long enough password", now=NOW, actor="cli:tester")
    first = attempt(app, "maria", "a long enough password", "198.51.100.7").session_id
    with pytest.raises(NotFound):
        accounts.set_password(app, "nobody", "a long enough password", now=NOW, actor="web:anna")
    with pytest.raises(UsageError):
        accounts.set_password(app, "maria", "short", now=NOW, actor="web:anna")
    accounts.set_password(app, "maria", "another long password", now=NOW, actor="web:anna")
    assert accounts.session_user(app, "maria", first) is None
    assert accounts.authenticate(app, "maria", "another long password")
    assert accounts.list_users(app)[0].role == "organizer"


def test_users_add_takes_a_role_and_list_shows_it(app: App, stdin: io.StringIO) -> None:
    code, out = run(app, ["users", "add", "anna", "--role", "owner", "--password-stdin"], stdin,
                    "a long enough password\n")
    assert code == 0 and out == ["user anna created (owner)"]
    run(app, ["users", "add", "maria", "--password-stdin"], stdin, "a long enough password\n")
    assert roles(app) == {"anna": "owner", "maria": "organizer"}
    _, out = run(app, ["users", "add", "maria", "--password-stdin", "--reset-password", "--role", "owner"],
                 stdin, "another long password\n")
    assert out == ["user maria has a new password and is an owner"]
    _, out = run(app, ["users", "list"])
    assert out[0].splitlines()[0].startswith("anna  owner  (since ")
    with pytest.raises(SystemExit):
        run(app, ["users", "add", "x", "--role", "admin", "--password-stdin"], stdin, "long enough pass\n")
    run(app, ["users", "remove", "anna"])
    with pytest.raises(StateConflict):
        run(app, ["users", "remove", "maria"])


# --- the first-run setup link --------------------------------------------------------------------

def setup_rows(app: App) -> list[SetupTokenRow]:
    with reading(app.engine) as session:
        return list(session.scalars(select(SetupTokenRow)))


def test_a_setup_token_makes_the_owner_once_and_is_kept_only_as_its_hash(app: App) -> None:
    token = accounts.issue_setup_token(app, now=NOW, actor="serve")
    assert token is not None and len(token) >= 43  # 32 random bytes: 256 bits
    [row] = setup_rows(app)
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest() and token not in row.token_hash
    assert row.expires_at == NOW + timedelta(hours=1)
    accounts.check_setup_token(app, token, now=NOW)
    with pytest.raises(UsageError):
        accounts.complete_setup(app, token, "anna", "short", now=NOW, ip="127.0.0.1")
    session_id = accounts.complete_setup(app, token, "anna", "a long enough password", now=NOW,
                                         ip="127.0.0.1")
    assert accounts.session_user(app, "anna", session_id) == "anna"
    assert roles(app) == {"anna": "owner"} and setup_rows(app) == []
    with pytest.raises(accounts.SetupClosed):
        accounts.complete_setup(app, token, "mallory", "a long enough password", now=NOW, ip="127.0.0.1")
    with pytest.raises(accounts.SetupClosed):
        accounts.check_setup_token(app, token, now=NOW)
    assert accounts.issue_setup_token(app, now=NOW, actor="serve") is None
    assert roles(app) == {"anna": "owner"}
    with reading(app.engine) as session:
        audited = [(a.actor, a.action, a.subject)
                   for a in session.scalars(select(AuditRow).order_by(AuditRow.id))]
        assert token not in repr(list(session.scalars(select(AuditRow.detail))))
    assert audited == [("serve", "setup.link", "setup"), ("web:anna", "user.add", "anna"),
                       ("web:anna", "user.login", "anna")]


def test_a_setup_token_expires_after_an_hour(app: App) -> None:
    token = accounts.issue_setup_token(app, now=NOW, actor="serve")
    assert token is not None
    accounts.check_setup_token(app, token, now=NOW + timedelta(minutes=59))
    with pytest.raises(NotFound) as refused:
        accounts.check_setup_token(app, token, now=NOW + timedelta(hours=1))
    assert not isinstance(refused.value, accounts.SetupClosed)
    with pytest.raises(NotFound):
        accounts.complete_setup(app, token, "anna", "a long enough password", now=NOW + timedelta(hours=2),
                                ip="127.0.0.1")
    with pytest.raises(NotFound):
        accounts.check_setup_token(app, "pd_" + token, now=NOW)
    assert accounts.list_users(app) == []
    # a later start deletes the expired one and makes a new one
    later = accounts.issue_setup_token(app, now=NOW + timedelta(hours=2), actor="serve")
    assert later is not None and len(setup_rows(app)) == 1
    accounts.check_setup_token(app, later, now=NOW + timedelta(hours=2))


def test_setup_links_of_two_instances_on_one_database_work_on_either_once(app: App,
                                                                         database_url: str) -> None:
    other = App(settings=app.settings, engine=make_engine(database_url), campaigns=app.campaigns)
    try:
        first = accounts.issue_setup_token(app, now=NOW, actor="serve")
        second = accounts.issue_setup_token(other, now=NOW, actor="serve")
        assert first and second and first != second
        for instance in (app, other):
            for token in (first, second):
                accounts.check_setup_token(instance, token, now=NOW)
        accounts.complete_setup(other, first, "anna", "a long enough password", now=NOW, ip="127.0.0.1")
        for instance in (app, other):
            for token in (first, second):
                with pytest.raises(accounts.SetupClosed):
                    accounts.check_setup_token(instance, token, now=NOW)
        with pytest.raises(accounts.SetupClosed):
            accounts.complete_setup(app, second, "maria", "a long enough password", now=NOW, ip="127.0.0.1")
    finally:
        other.close()
    assert roles(app) == {"anna": "owner"}


def test_two_setup_links_used_at_once_make_one_owner(app: App) -> None:
    tokens = [accounts.issue_setup_token(app, now=NOW, actor="serve") for _ in range(2)]
    start = threading.Barrier(2)

    def use(i: int) -> str:
        token = tokens[i]
        assert token is not None
        start.wait()
        try:
            accounts.complete_setup(app, token, f"owner{i}", "a long enough password", now=NOW,
                                    ip="127.0.0.1")
        except accounts.SetupClosed:
            return "closed"
        return "made"

    with ThreadPoolExecutor(max_workers=2) as pool:
        assert sorted(pool.map(use, range(2))) == ["closed", "made"]
    assert list(roles(app).values()) == ["owner"]


def test_an_account_made_on_the_command_line_closes_the_setup(app: App) -> None:
    token = accounts.issue_setup_token(app, now=NOW, actor="serve")
    assert token is not None
    accounts.add_user(app, "maria", "a long enough password", now=NOW, actor="cli:tester")
    with pytest.raises(accounts.SetupClosed):
        accounts.check_setup_token(app, token, now=NOW)
    assert accounts.issue_setup_token(app, now=NOW, actor="serve") is None
    assert setup_rows(app) == []
