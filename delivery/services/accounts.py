"""Names, passwords and tokens → users and api_tokens rows; a login or a bearer token → who it is.

Passwords are kept as Argon2id hashes (argon2-cffi); API tokens are random strings shown once and
kept as their SHA-256, so a stolen database holds neither.
"""

from __future__ import annotations

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
from sqlalchemy.orm import Session

from delivery.errors import NotFound, StateConflict, UsageError
from delivery.storage.models import ApiTokenRow, UserRow

TOKEN_PREFIX = "pd_"  # noqa: S105 - a marker, not a secret
MIN_PASSWORD = 10
MAX_PASSWORD = 1024
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
_hasher = PasswordHasher()
# Verifying against this when the user does not exist keeps a login's timing the same either way.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


@dataclass(frozen=True)
class TokenInfo:
    name: str
    campaign_id: int | None


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


def add_user(session: Session, name: str, password: str, *, now: datetime, replace: bool = False) -> bool:
    """Create the user (or, with replace, set a new password) → True when the user is new."""
    check_name(name, "user")
    check_password(password)
    row = session.scalar(select(UserRow).where(UserRow.name == name))
    if row is not None:
        if not replace:
            raise StateConflict(f"user '{name}' exists already (use --reset-password to set a new one)")
        row.password_hash = hash_password(password)
        return False
    session.add(UserRow(name=name, password_hash=hash_password(password), created_at=now))
    try:
        session.flush()
    except IntegrityError:
        raise StateConflict(f"user '{name}' exists already") from None
    return True


def remove_user(session: Session, name: str) -> None:
    row = session.scalar(select(UserRow).where(UserRow.name == name))
    if row is None:
        raise NotFound(f"no user '{name}'")
    session.delete(row)


def list_users(session: Session) -> list[dict[str, str]]:
    return [{"name": r.name, "created_at": r.created_at.isoformat(timespec="seconds")}
            for r in session.scalars(select(UserRow).order_by(UserRow.name))]


def authenticate(session: Session, name: str, password: str) -> bool:
    """Whether name and password belong to an organizer; as slow for unknown names as for known."""
    if len(password) > MAX_PASSWORD:
        return False
    stored = session.scalar(select(UserRow.password_hash).where(UserRow.name == name))
    if stored is None:
        password_matches(_DUMMY_HASH, password)
        return False
    return password_matches(stored, password)


def user_exists(session: Session, name: str) -> bool:
    return session.scalar(select(UserRow.id).where(UserRow.name == name)) is not None


def add_token(session: Session, name: str, *, campaign_id: int | None, now: datetime) -> str:
    """Create a token → the token itself, which is stored only as its hash and never shown again."""
    check_name(name, "token")
    if session.scalar(select(ApiTokenRow.id).where(ApiTokenRow.name == name)) is not None:
        raise StateConflict(f"a token named '{name}' exists already")
    token = new_token()
    session.add(ApiTokenRow(name=name, token_hash=token_hash(token), campaign_id=campaign_id,
                            created_at=now, revoked_at=None))
    session.flush()
    return token


def revoke_token(session: Session, name: str, *, now: datetime) -> bool:
    """Revoke the named token → False when it was revoked already."""
    row = session.scalar(select(ApiTokenRow).where(ApiTokenRow.name == name))
    if row is None:
        raise NotFound(f"no token '{name}'")
    if row.revoked_at is not None:
        return False
    row.revoked_at = now
    return True


def list_tokens(session: Session) -> list[dict[str, object]]:
    return [{"name": r.name, "campaign_id": r.campaign_id,
             "created_at": r.created_at.isoformat(timespec="seconds"),
             "revoked_at": r.revoked_at.isoformat(timespec="seconds") if r.revoked_at else None}
            for r in session.scalars(select(ApiTokenRow).order_by(ApiTokenRow.name))]


def verify_token(session: Session, token: str) -> TokenInfo | None:
    """The live token this bearer string is, or None (unknown, malformed or revoked)."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    digest = token_hash(token)
    row = session.scalar(select(ApiTokenRow).where(ApiTokenRow.token_hash == digest))
    if row is None or row.revoked_at is not None or not hmac.compare_digest(row.token_hash, digest):
        return None
    return TokenInfo(name=row.name, campaign_id=row.campaign_id)
