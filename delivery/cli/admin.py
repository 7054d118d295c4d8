"""`users add|remove|list` and `tokens add|revoke|list` → accounts calls, with their reports.

A user is an organizer unless `--role owner` makes it an owner (who manages the accounts and
API tokens in the web admin too).

Passwords are read with getpass, or from the first line of stdin with `--password-stdin`; a
token is printed once, when it is created, and never again.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, TextIO

from delivery.errors import UsageError

if TYPE_CHECKING:
    from delivery.services.app import App

Emit = Callable[[argparse.Namespace, Any, str], None]


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--campaign", metavar="SLUG", default=argparse.SUPPRESS)
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    return common


def add_user_parsers(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="users_command", required=True, metavar="ACTION")
    common = _common()
    p = sub.add_parser("add", parents=[common], help="create an account for the web admin")
    p.add_argument("name")
    p.add_argument("--role", choices=("owner", "organizer"), default=None,
                   help="owner: also manages accounts and API tokens; organizer (the default for a new "
                        "account): previews, sends and imports")
    p.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    p.add_argument("--reset-password", action="store_true",
                   help="set a new password for an existing user (and its role, with --role)")
    p = sub.add_parser("remove", parents=[common], help="delete an account (never the only owner)")
    p.add_argument("name")
    sub.add_parser("list", parents=[common], help="the accounts and their roles")


def add_token_parsers(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="tokens_command", required=True, metavar="ACTION")
    common = _common()
    p = sub.add_parser("add", parents=[common],
                       help="create an API token (printed once); --campaign limits it to one campaign")
    p.add_argument("name")
    p = sub.add_parser("revoke", parents=[common], help="revoke an API token")
    p.add_argument("name")
    sub.add_parser("list", parents=[common], help="the API tokens (never the tokens themselves)")


def read_password(args: argparse.Namespace, stdin: TextIO | None = None) -> str:
    if args.password_stdin:
        line = (stdin or sys.stdin).readline()
        password = line.rstrip("\r\n")
    else:
        if not sys.stdin.isatty():
            raise UsageError("no terminal to ask for the password: pipe it in with --password-stdin")
        password = getpass.getpass(f"password for {args.name}: ")
        if getpass.getpass("again: ") != password:
            raise UsageError("the two passwords differ; nothing changed")
    if not password:
        raise UsageError("empty password; nothing changed")
    from delivery.services import accounts

    return accounts.check_password(password)


def run(app: App, args: argparse.Namespace, emit: Emit, now: datetime, actor: str) -> int:
    if args.command == "users":
        return _users(app, args, emit, now, actor)
    return _tokens(app, args, emit, now, actor)


def _users(app: App, args: argparse.Namespace, emit: Emit, now: datetime, actor: str) -> int:
    from delivery.services import accounts

    action = args.users_command
    if action == "list":
        users = accounts.list_users(app)
        lines = [f"{u.name}  {u.role}  (since {u.created_at:%Y-%m-%d %H:%M})" for u in users]
        emit(args, users, "\n".join(lines) or "no users")
        return 0
    accounts.check_name(args.name, "user")
    if action == "add":
        password = read_password(args)
        role = getattr(args, "role", None)
        created = accounts.add_user(app, args.name, password, now=now, actor=actor,
                                    replace=args.reset_password, role=role)
        line = f"user {args.name} {'created' if created else 'has a new password'}"
        if created and role:
            line += f" ({role})"
        elif not created and role:
            line += f" and is an {role}"
        emit(args, {"user": args.name, "created": created, "role": accounts.user_role(app, args.name)}, line)
        return 0
    accounts.remove_user(app, args.name, now=now, actor=actor)
    emit(args, {"user": args.name, "removed": True}, f"user {args.name} removed")
    return 0


def _tokens(app: App, args: argparse.Namespace, emit: Emit, now: datetime, actor: str) -> int:
    from delivery.services import accounts

    action = args.tokens_command
    if action == "list":
        tokens = accounts.list_tokens(app)
        lines = [f"{t.name}  campaign {t.campaign or 'any'}  created {t.created_at:%Y-%m-%d %H:%M}"
                 + (f"  REVOKED {t.revoked_at:%Y-%m-%d %H:%M}" if t.revoked_at else "") for t in tokens]
        emit(args, tokens, "\n".join(lines) or "no tokens")
        return 0
    if action == "add":
        slug = getattr(args, "campaign", None)
        token = accounts.add_token(app, args.name, campaign=app.campaign(slug) if slug else None, now=now,
                                   actor=actor)
        scope = f"campaign {slug}" if slug else "every campaign"
        emit(args, {"name": args.name, "campaign": slug, "token": token},
             f"{token}\n(token {args.name} for {scope}: copy it now, it is not shown again)")
        return 0
    revoked = accounts.revoke_token(app, args.name, now=now, actor=actor)
    emit(args, {"name": args.name, "revoked": True},
         f"token {args.name} revoked" if revoked else f"token {args.name} was revoked already")
    return 0
