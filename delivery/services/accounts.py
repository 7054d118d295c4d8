"""Names, passwords and tokens → users and api_tokens rows (audited); a login or a bearer token →
who it is.

Passwords are kept as Argon2id hashes (argon2-cffi); API tokens are random strings shown once and
kept as their SHA-256, so a stolen database holds neither.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from delivery.campaigns.config import Campaign
from delivery.errors import NotFound, StateConflict, UsageError
from delivery.services.app import App
from delivery.storage import audit
from delivery.storage.db import reading, transaction
from delivery.storage.models import ApiTokenRow, CampaignRow, UserRow

TOKEN_PREFIX = "pd_"  # noqa: S105 - a marker, not a secret
MIN_PASSWORD = 10
MAX_PASSWORD = 1024
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the user does not exist, so a login takes as long either way. Made
    on first use: a hash costs about a second, which every command's start would otherwise pay."""
    return _hasher.hash(secrets.token_hex(16))


@dataclass(frozen=True)
class TokenInfo:
    name: str
    campaign: str | None  # the slug of the one campaign it may use; None: any


@dataclass(frozen=True)
class UserView:
    name: str
    created_at: datetime


@dataclass(frozen=True)
class TokenView:
    name: str
    campaign: str | None  # None: any campaign
    created_at: datetime
    revoked_at: datetime | None


def check_name(name: str, what: str) -> str:
    if not _NAME.match(name):
        raise UsageError(f"{what} name '{name[:70]}' is not usable: 1–63 letters, digits, '.', '_' or '-', "
                         "starting with a letter or digit")
    return name


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise UsageError(f"the password is too short: at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise UsageError(f"the password is too long: at most {MAX_PASSWORD} characters")
    return password


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def password_matches(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def add_user(app: App, name: str, password: str, *, now: datetime, actor: str,
             replace: bool = False) -> bool:
    """Create the user (or, with replace, set a new password) → True when the user is new."""
    check_name(name, "user")
    check_password(password)
    password_hash = hash_password(password)  # outside the transaction: it takes a second
    with transaction(app.engine) as session:
        row = session.scalar(select(UserRow).where(UserRow.name == name))
        if row is not None:
            if not replace:
                raise StateConflict(f"user '{name}' exists already (use --reset-password to set a new one)")
            row.password_hash = password_hash
            created = False
        else:
            session.add(UserRow(name=name, password_hash=password_hash, created_at=now))
            try:
                session.flush()
            except IntegrityError:
                raise StateConflict(f"user '{name}' exists already") from None
            created = True
        audit.record(session, at=now, actor=actor, action="user.add" if created else "user.password",
                     subject=name)
    return created


def remove_user(app: App, name: str, *, now: datetime, actor: str) -> None:
    with transaction(app.engine) as session:
        row = session.scalar(select(UserRow).where(UserRow.name == name))
        if row is None:
            raise NotFound(f"no user '{name}'")
        session.delete(row)
        audit.record(session, at=now, actor=actor, action="user.remove", subject=name)


def list_users(app: App) -> list[UserView]:
    with reading(app.engine) as session:
        rows = session.scalars(select(UserRow).order_by(UserRow.name))
        return [UserView(r.name, r.created_at) for r in rows]


def authenticate(app: App, name: str, password: str) -> bool:
    """Whether name and password belong to an organizer; as slow for unknown names as for known."""
    if len(password) > MAX_PASSWORD:
        return False
    with reading(app.engine) as session:
        stored = session.scalar(select(UserRow.password_hash).where(UserRow.name == name))
    if stored is None:
        password_matches(_dummy_hash(), password)
        return False
    return password_matches(stored, password)


def log_in(app: App, name: str, password: str, *, now: datetime, actor: str, ip: str) -> bool:
    """`authenticate`, and a successful login audited with the client's address."""
    if not authenticate(app, name, password):
        return False
    with transaction(app.engine) as session:
        audit.record(session, at=now, actor=actor, action="user.login", subject=name, ip=ip)
    return True


def user_exists(app: App, name: str) -> bool:
    with reading(app.engine) as session:
        return session.scalar(select(UserRow.id).where(UserRow.name == name)) is not None


def add_token(app: App, name: str, *, campaign: Campaign | None, now: datetime, actor: str) -> str:
    """Create a token → the token itself, which is stored only as its hash and never shown again."""
    check_name(name, "token")
    with transaction(app.engine) as session:
        campaign_id = app.campaign_id(session, campaign) if campaign else None
        if session.scalar(select(ApiTokenRow.id).where(ApiTokenRow.name == name)) is not None:
            raise StateConflict(f"a token named '{name}' exists already")
        token = new_token()
        session.add(ApiTokenRow(name=name, token_hash=token_hash(token), campaign_id=campaign_id,
                                created_at=now, revoked_at=None))
        session.flush()
        audit.record(session, at=now, actor=actor, action="token.add", campaign_id=campaign_id,
                     subject=name)
    return token


def revoke_token(app: App, name: str, *, now: datetime, actor: str) -> bool:
    """Revoke the named token → False when it was revoked already."""
    with transaction(app.engine) as session:
        row = session.scalar(select(ApiTokenRow).where(ApiTokenRow.name == name))
        if row is None:
            raise NotFound(f"no token '{name}'")
        if row.revoked_at is not None:
            return False
        row.revoked_at = now
        audit.record(session, at=now, actor=actor, action="token.revoke", subject=name)
    return True


def list_tokens(app: App) -> list[TokenView]:
    """Every token with the slug of its campaign, never the token."""
    with reading(app.engine) as session:
        return [TokenView(r.name, slug, r.created_at, r.revoked_at)
                for r, slug in session.execute(
                    select(ApiTokenRow, CampaignRow.slug)
                    .join(CampaignRow, ApiTokenRow.campaign_id == CampaignRow.id, isouter=True)
                    .order_by(ApiTokenRow.name))]


def verify_token(app: App, token: str) -> TokenInfo | None:
    """The live token this bearer string is, or None (unknown, malformed or revoked)."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    digest = token_hash(token)
    with reading(app.engine) as session:
        found = session.execute(select(ApiTokenRow, CampaignRow.slug).join(
            CampaignRow, ApiTokenRow.campaign_id == CampaignRow.id, isouter=True).where(
            ApiTokenRow.token_hash == digest)).first()
        if found is None:
            return None
        row, slug = found
        if row.revoked_at is not None or not hmac.compare_digest(row.token_hash, digest):
            return None
        return TokenInfo(name=row.name, campaign=slug)
