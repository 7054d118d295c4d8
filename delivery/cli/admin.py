"""`users add|remove|list` and `tokens add|revoke|list` → accounts calls, with their reports.

Passwords are read with getpass, or from the first line of stdin with `--password-stdin`; a
token is printed once, when it is created, and never again.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any, TextIO

from sqlalchemy import select

from delivery.errors import UsageError
from delivery.services import accounts
from delivery.services.app import App
from delivery.storage import audit
from delivery.storage.db import transaction
from delivery.storage.models import CampaignRow

Emit = Callable[[argparse.Namespace, Any, str], None]


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--campaign", metavar="SLUG", default=argparse.SUPPRESS)
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    return common


def add_user_parsers(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="users_command", required=True, metavar="ACTION")
    common = _common()
    p = sub.add_parser("add", parents=[common], help="create an organizer account for the web admin")
    p.add_argument("name")
    p.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    p.add_argument("--reset-password", action="store_true", help="set a new password for an existing user")
    p = sub.add_parser("remove", parents=[common], help="delete an organizer account")
    p.add_argument("name")
    sub.add_parser("list", parents=[common], help="the organizer accounts")


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
    return accounts.check_password(password)


def run(app: App, args: argparse.Namespace, emit: Emit, now: datetime, actor: str) -> int:
    if args.command == "users":
        return _users(app, args, emit, now, actor)
    return _tokens(app, args, emit, now, actor)


def _users(app: App, args: argparse.Namespace, emit: Emit, now: datetime, actor: str) -> int:
    action = args.users_command
    if action == "list":
        with transaction(app.engine) as session:
            users = accounts.list_users(session)
        emit(args, users, "\n".join(f"{u['name']}  (since {u['created_at']})" for u in users) or "no users")
        return 0
    accounts.check_name(args.name, "user")
    if action == "add":
        password = read_password(args)
        with transaction(app.engine) as session:
            created = accounts.add_user(session, args.name, password, now=now, replace=args.reset_password)
            audit.record(session, at=now, actor=actor, action="user.add" if created else "user.password",
                         subject=args.name)
        emit(args, {"user": args.name, "created": created},
             f"user {args.name} {'created' if created else 'has a new password'}")
        return 0
    with transaction(app.engine) as session:
        accounts.remove_user(session, args.name)
        audit.record(session, at=now, actor=actor, action="user.remove", subject=args.name)
    emit(args, {"user": args.name, "removed": True}, f"user {args.name} removed")
    return 0


def _tokens(app: App, args: argparse.Namespace, emit: Emit, now: datetime, actor: str) -> int:
    action = args.tokens_command
    if action == "list":
        with transaction(app.engine) as session:
            tokens = accounts.list_tokens(session)
            slugs: dict[object, str] = {row_id: slug for row_id, slug in session.execute(
                select(CampaignRow.id, CampaignRow.slug))}
        emit(args, tokens, "\n".join(
            f"{t['name']}  campaign {slugs.get(t['campaign_id'], 'any')}  created {t['created_at']}"
            + (f"  REVOKED {t['revoked_at']}" if t["revoked_at"] else "") for t in tokens) or "no tokens")
        return 0
    if action == "add":
        slug = getattr(args, "campaign", None)
        with transaction(app.engine) as session:
            campaign_id = app.campaign_id(session, app.campaign(slug)) if slug else None
            token = accounts.add_token(session, args.name, campaign_id=campaign_id, now=now)
            audit.record(session, at=now, actor=actor, action="token.add", campaign_id=campaign_id,
                         subject=args.name)
        scope = f"campaign {slug}" if slug else "every campaign"
        emit(args, {"name": args.name, "campaign": slug, "token": token},
             f"{token}\n(token {args.name} for {scope}: copy it now, it is not shown again)")
        return 0
    with transaction(app.engine) as session:
        revoked = accounts.revoke_token(session, args.name, now=now)
        if revoked:
            audit.record(session, at=now, actor=actor, action="token.revoke", subject=args.name)
    emit(args, {"name": args.name, "revoked": True},
         f"token {args.name} revoked" if revoked else f"token {args.name} was revoked already")
    return 0
