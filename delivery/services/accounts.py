"""Names, passwords, roles and tokens → users and api_tokens rows (audited); a login or a bearer
token → who it is; a session cookie's (name, session id) → whether it still stands; a first-run
setup link → the first account, its owner.

Passwords are kept as Argon2id hashes (argon2-cffi); API tokens are random strings shown once and
kept as their SHA-256, so a stolen database holds neither.

Login limits (`log_in`, `LoginLimits`) live in the database's login_attempts table, so every
instance counts the same attempts and a restart forgets none. Each password check is written there
*before* it runs, in a transaction that first counts the earlier ones and refuses when a limit is
reached: the count and the new row are one step (SQLite: the write lock of BEGIN IMMEDIATE;
PostgreSQL: a transaction-scoped advisory lock on the client's address), so parallel attempts
cannot all pass. Two limits, both keyed on the client's address (an IPv6 address as its /64),
which a client cannot choose:

* per (name, address): `per_pair` failures, then a wait that starts at `first_wait` and doubles
  with each further failure up to `longest_wait`; a successful login clears that pair. An attacker
  thereby locks only their own address out of a name: its organizer still logs in from any other.
* per address, whatever the names: `per_address` failures within `window` (a looser limit
  against one client trying many names).

Failures are forgotten after `remember`; each attempt also deletes a batch of rows older than
that, so the table holds about a day of attempts, at most `per_address` per `window` per address.

Every session cookie carries the user's session_id (users.session_id, random, made at the first
login): logout, a new password and removing the user end it (None), so every cookie made before
stops working, and a user made again under the same name never accepts an old one.

Roles: an *owner* manages accounts and API tokens, an *organizer* previews, sends and imports. No
change (a role, a removal) may leave the installation without an owner; those changes take one
lock (`_lock`), so two owners demoting each other at once cannot both pass the count.

First run: while no account exists, `serve` asks for a setup link (`issue_setup_token`): 256 random
bits, kept only as their SHA-256 in setup_tokens, valid for SETUP_VALID. Any instance on the same
database accepts any live one; the first used makes the owner (`complete_setup`) and deletes them
all, and from then on, an account existing, none is accepted.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
import logging
import math
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from delivery.campaigns.config import Campaign
from delivery.campaigns.languages import read_languages
from delivery.errors import NotFound, StateConflict, UsageError
from delivery.services.app import App
from delivery.storage import audit
from delivery.storage.db import reading, transaction
from delivery.storage.models import ApiTokenRow, CampaignRow, LoginAttemptRow, SetupTokenRow, UserRow

TOKEN_PREFIX = "pd_"  # noqa: S105 - a marker, not a secret
OWNER, ORGANIZER = "owner", "organizer"
ROLES = (OWNER, ORGANIZER)
SETUP_VALID = timedelta(hours=1)
MIN_PASSWORD = 10
MAX_PASSWORD = 1024
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
_hasher = PasswordHasher()
PRUNE_BATCH = 500  # old attempt rows deleted per attempt: more than an attempt ever adds
log = logging.getLogger("delivery.services.accounts")


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the user does not exist, so a login takes as long either way. Made
    on first use: a hash costs about a second, which every command's start would otherwise pay."""
    return _hasher.hash(secrets.token_hex(16))


@dataclass(frozen=True)
class LoginLimits:
    """How many password checks a client gets (see the module's docstring)."""

    per_pair: int = 5  # failures of one name from one address before it must wait
    first_wait: timedelta = timedelta(minutes=1)  # that wait; doubled after each further failure
    longest_wait: timedelta = timedelta(hours=1)
    per_address: int = 20  # failures from one address, whatever the names, ...
    window: timedelta = timedelta(minutes=15)  # ... within this long
    remember: timedelta = timedelta(days=1)  # older failures are forgotten and deleted


@dataclass(frozen=True)
class Login:
    """What a login attempt came to."""

    session_id: str | None = None  # logged in: the value its session cookie must carry
    retry_after: int = 0  # > 0: refused without checking the password; seconds to wait
    role: str | None = None  # logged in: the user's role

    def __bool__(self) -> bool:
        return self.session_id is not None


@dataclass(frozen=True)
class TokenInfo:
    name: str
    campaign: str | None  # the slug of the one campaign it may use; None: any


@dataclass(frozen=True)
class UserView:
    name: str
    created_at: datetime
    role: str = ORGANIZER


class SetupClosed(NotFound):
    """A setup link used once an account exists: the setup is over, whatever the link."""


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


def usable_name(name: str) -> bool:
    return bool(_NAME.match(name))


def password_problem(password: str) -> str | None:
    """Why a password may not be used: "short", "long", or None when it may."""
    if len(password) < MIN_PASSWORD:
        return "short"
    if len(password) > MAX_PASSWORD:
        return "long"
    return None


def check_password(password: str) -> str:
    problem = password_problem(password)
    if problem == "short":
        raise UsageError(f"the password is too short: at least {MIN_PASSWORD} characters")
    if problem == "long":
        raise UsageError(f"the password is too long: at most {MAX_PASSWORD} characters")
    return password


def check_role(role: str) -> str:
    if role not in ROLES:
        raise UsageError(f"'{role[:20]}' is not a role: {' or '.join(ROLES)}")
    return role


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


def _lock(session: Session, what: str) -> None:
    """Serialise the transactions about `what` until this one ends. SQLite needs nothing: every
    write transaction holds the database's write lock from its start."""
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        digest = hashlib.sha256(what.encode()).digest()
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                        {"key": int.from_bytes(digest[:8], "big", signed=True)})


ACCOUNTS_LOCK = "delivery.accounts"


def _keep_an_owner(session: Session, leaving: UserRow, doing: str) -> None:
    """Refuse (StateConflict) when `leaving`, an owner about to stop being one, is the last."""
    if leaving.role != OWNER:
        return
    others = session.scalar(select(func.count()).select_from(UserRow).where(
        UserRow.role == OWNER, UserRow.id != leaving.id))
    if not others:
        raise StateConflict(f"'{leaving.name}' is the only owner: make another account an owner "
                            f"before {doing}")


def add_user(app: App, name: str, password: str, *, now: datetime, actor: str,
             replace: bool = False, role: str | None = None) -> bool:
    """Create the user with `role` (None: an organizer) → True; or, with replace, set a new password
    for an existing one (and its role when given) → False."""
    check_name(name, "user")
    check_password(password)
    if role is not None:
        check_role(role)
    password_hash = hash_password(password)  # outside the transaction: it takes a second
    with transaction(app.engine) as session:
        _lock(session, ACCOUNTS_LOCK)
        row = session.scalar(select(UserRow).where(UserRow.name == name))
        if row is not None:
            if not replace:
                raise StateConflict(f"user '{name}' exists already (use --reset-password to set a new one)")
            _new_password(session, row, password_hash, now=now, actor=actor)
            if role is not None and role != row.role:
                _change_role(session, row, role, now=now, actor=actor)
            return False
        session.add(UserRow(name=name, password_hash=password_hash, created_at=now,
                            role=role or ORGANIZER))
        try:
            session.flush()
        except IntegrityError:
            raise StateConflict(f"user '{name}' exists already") from None
        audit.record(session, at=now, actor=actor, action="user.add", subject=name, role=role or ORGANIZER)
    return True


def _new_password(session: Session, row: UserRow, password_hash: str, *, now: datetime, actor: str) -> None:
    row.password_hash = password_hash
    row.session_id = None  # every session made with the old password ends
    # ... and the failures counted against the old one are forgotten: an organizer who locked
    # themselves out can log in with the new password at once.
    session.execute(delete(LoginAttemptRow).where(LoginAttemptRow.name == attempt_name(row.name)))
    audit.record(session, at=now, actor=actor, action="user.password", subject=row.name)


def set_password(app: App, name: str, password: str, *, now: datetime, actor: str) -> None:
    """A new password for an existing user (NotFound otherwise), audited: every session of theirs
    ends and their failed logins are forgotten."""
    check_password(password)
    password_hash = hash_password(password)
    with transaction(app.engine) as session:
        row = session.scalar(select(UserRow).where(UserRow.name == name).with_for_update())
        if row is None:
            raise NotFound(f"no user '{name}'")
        _new_password(session, row, password_hash, now=now, actor=actor)


def _change_role(session: Session, row: UserRow, role: str, *, now: datetime, actor: str) -> None:
    if role != OWNER:
        _keep_an_owner(session, row, "making it an organizer")
    previous, row.role = row.role, role
    audit.record(session, at=now, actor=actor, action="user.role", subject=row.name, role=role,
                 previous=previous)


def set_role(app: App, name: str, role: str, *, now: datetime, actor: str,
             end_sessions: bool = True) -> bool:
    """Give the user `role` (audited) → False when it had it already. StateConflict when that would
    leave no owner. With end_sessions, every session of theirs ends, so that each browser they
    use learns the new role at its next login (a page's rights are checked against the database
    on every request either way)."""
    check_role(role)
    with transaction(app.engine) as session:
        _lock(session, ACCOUNTS_LOCK)
        row = session.scalar(select(UserRow).where(UserRow.name == name).with_for_update())
        if row is None:
            raise NotFound(f"no user '{name}'")
        if row.role == role:
            return False
        _change_role(session, row, role, now=now, actor=actor)
        if end_sessions:
            row.session_id = None
    return True


def remove_user(app: App, name: str, *, now: datetime, actor: str) -> None:
    """Delete the user (audited); StateConflict for the only owner."""
    with transaction(app.engine) as session:
        _lock(session, ACCOUNTS_LOCK)
        row = session.scalar(select(UserRow).where(UserRow.name == name))
        if row is None:
            raise NotFound(f"no user '{name}'")
        _keep_an_owner(session, row, "removing it")
        session.delete(row)
        audit.record(session, at=now, actor=actor, action="user.remove", subject=name, role=row.role)


def list_users(app: App) -> list[UserView]:
    with reading(app.engine) as session:
        rows = session.scalars(select(UserRow).order_by(UserRow.name))
        return [UserView(r.name, r.created_at, r.role) for r in rows]


def user_role(app: App, name: str) -> str | None:
    """The user's role, or None for no such user."""
    with reading(app.engine) as session:
        return session.scalar(select(UserRow.role).where(UserRow.name == name))


def owners(app: App) -> list[str]:
    with reading(app.engine) as session:
        return list(session.scalars(select(UserRow.name).where(UserRow.role == OWNER).order_by(UserRow.name)))


def any_user(app: App) -> bool:
    """Whether any account exists (the first-run setup is over once one does)."""
    with reading(app.engine) as session:
        return session.scalar(select(UserRow.id).limit(1)) is not None


def issue_setup_token(app: App, *, now: datetime, actor: str) -> str | None:
    """A new first-run setup token, valid for SETUP_VALID (audited, the token never), or None when
    an account exists already. Expired tokens are deleted; live ones made by other instances stay
    valid."""
    token = secrets.token_urlsafe(32)
    with transaction(app.engine) as session:
        _lock(session, ACCOUNTS_LOCK)
        if session.scalar(select(UserRow.id).limit(1)) is not None:
            session.execute(delete(SetupTokenRow))
            return None
        session.execute(delete(SetupTokenRow).where(SetupTokenRow.expires_at <= now))
        session.add(SetupTokenRow(token_hash=token_hash(token), created_at=now, expires_at=now + SETUP_VALID))
        audit.record(session, at=now, actor=actor, action="setup.link", subject="setup",
                     expires_at=(now + SETUP_VALID).isoformat(timespec="seconds"))
    return token


def _live_setup_token(session: Session, token: str, now: datetime) -> SetupTokenRow | None:
    if not token or len(token) > 200:
        return None
    digest = token_hash(token)
    row = session.scalar(select(SetupTokenRow).where(SetupTokenRow.token_hash == digest))
    if row is None or row.expires_at <= now or not hmac.compare_digest(row.token_hash, digest):
        return None
    return row


def check_setup_token(app: App, token: str, *, now: datetime) -> None:
    """Nothing when this setup token may make the first account now; SetupClosed when an account
    exists, NotFound when the token is unknown, used or expired."""
    with reading(app.engine) as session:
        if session.scalar(select(UserRow.id).limit(1)) is not None:
            raise SetupClosed("an account exists already: the setup link no longer works")
        if _live_setup_token(session, token, now) is None:
            raise NotFound("this setup link is unknown or has expired")


def complete_setup(app: App, token: str, name: str, password: str, *, now: datetime, ip: str) -> str:
    """Make the first account, an owner, with a live setup token, and log it in → its session id.
    Every setup token is deleted; audited as "user.add" and "user.login" by "web:NAME". Raises as
    check_setup_token does, and UsageError for an unusable name or password."""
    check_name(name, "user")
    check_password(password)
    password_hash = hash_password(password)
    with transaction(app.engine) as session:
        _lock(session, ACCOUNTS_LOCK)
        if session.scalar(select(UserRow.id).limit(1)) is not None:
            raise SetupClosed("an account exists already: the setup link no longer works")
        if _live_setup_token(session, token, now) is None:
            raise NotFound("this setup link is unknown or has expired")
        session.execute(delete(SetupTokenRow))
        session_id = secrets.token_urlsafe(32)
        session.add(UserRow(name=name, password_hash=password_hash, created_at=now, role=OWNER,
                            session_id=session_id))
        actor = f"web:{name}"
        audit.record(session, at=now, actor=actor, action="user.add", subject=name, role=OWNER,
                     via="setup link")
        audit.record(session, at=now, actor=actor, action="user.login", subject=name, ip=ip)
    return session_id


def _stored_hash(app: App, name: str) -> str | None:
    with reading(app.engine) as session:
        return session.scalar(select(UserRow.password_hash).where(UserRow.name == name))


def _verify(stored: str | None, password: str) -> bool:
    """Whether the password fits the stored hash; as slow when there is none."""
    if len(password) > MAX_PASSWORD:
        return False
    if stored is None:
        password_matches(_dummy_hash(), password)
        return False
    return password_matches(stored, password)


def authenticate(app: App, name: str, password: str) -> bool:
    """Whether name and password belong to an organizer; as slow for unknown names as for known.
    Counts nothing: the web's logins go through `log_in`."""
    return _verify(_stored_hash(app, name), password)


def attempt_name(name: str) -> str:
    """The name as login attempts count it: case-folded, so that 'Maria' and 'MARIA' share one."""
    return name.casefold()[:100]


def attempt_address(ip: str) -> str:
    """The client address as login attempts count it: an IPv4 address (also when IPv4-mapped) as
    itself, an IPv6 one as its /64 network, which a single client usually holds entirely."""
    try:
        address = ipaddress.ip_address(ip.strip("[]"))
    except ValueError:
        return ip[:64] or "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def _lock_address(session: Session, address: str) -> None:
    """Serialise the login attempts of one address until this transaction ends."""
    _lock(session, "delivery.login:" + address)


def _prune(session: Session, now: datetime, limits: LoginLimits) -> None:
    """Delete a batch of forgotten attempts, skipping rows another transaction is deleting."""
    old = (select(LoginAttemptRow.id).where(LoginAttemptRow.at < now - limits.remember)
           .order_by(LoginAttemptRow.at).limit(PRUNE_BATCH).with_for_update(skip_locked=True))
    session.execute(delete(LoginAttemptRow).where(LoginAttemptRow.id.in_(old.scalar_subquery())))


def _wait_until(session: Session, name: str, address: str, now: datetime,
                limits: LoginLimits) -> datetime | None:
    """When this (name, address) may try again, or None when it may now."""
    until: list[datetime] = []
    pair = session.execute(select(func.count(), func.max(LoginAttemptRow.at)).where(
        LoginAttemptRow.address == address, LoginAttemptRow.name == name,
        LoginAttemptRow.at > now - limits.remember)).one()
    failures, last = pair[0], pair[1]
    if failures >= limits.per_pair and last is not None:
        doublings = min(failures - limits.per_pair, 32)
        until.append(last + min(limits.first_wait * 2 ** doublings, limits.longest_wait))
    recent = list(session.scalars(
        select(LoginAttemptRow.at).where(LoginAttemptRow.address == address,
                                         LoginAttemptRow.at > now - limits.window)
        .order_by(LoginAttemptRow.at.desc()).limit(limits.per_address)))
    if len(recent) >= limits.per_address:
        until.append(recent[-1] + limits.window)  # when the oldest of those leaves the window
    latest = max(until, default=None)
    return latest if latest is not None and latest > now else None


def _reserve(app: App, name: str, address: str, now: datetime, limits: LoginLimits) -> int:
    """Count the attempt about to be checked → 0, or the seconds to wait before one may be."""
    with transaction(app.engine) as session:
        _lock_address(session, address)
        _prune(session, now, limits)
        until = _wait_until(session, name, address, now, limits)
        if until is not None:
            return max(1, math.ceil((until - now).total_seconds()))
        session.add(LoginAttemptRow(at=now, address=address, name=name))
    return 0


def _succeeded(app: App, name: str, checked_hash: str, *, now: datetime, actor: str, ip: str,
               address: str) -> Login:
    """The user's session id and role after a right password, audited; no session when the user
    changed (a new password or another user of that name) while the password was being checked."""
    with transaction(app.engine) as session:
        _lock_address(session, address)
        row = session.scalar(select(UserRow).where(UserRow.name == name).with_for_update())
        if row is None or not hmac.compare_digest(row.password_hash.encode(), checked_hash.encode()):
            return Login()
        session.execute(delete(LoginAttemptRow).where(LoginAttemptRow.address == address,
                                                      LoginAttemptRow.name == attempt_name(name)))
        if row.session_id is None:
            row.session_id = secrets.token_urlsafe(32)
        audit.record(session, at=now, actor=actor, action="user.login", subject=name, ip=ip)
        return Login(session_id=row.session_id, role=row.role)


def log_in(app: App, name: str, password: str, *, now: datetime, actor: str, ip: str,
           limits: LoginLimits | None = None) -> Login:
    """Check a password within the login limits (see the module's docstring) → the session id for
    the cookie; a successful login is audited with the client's address `ip`."""
    limits = limits or LoginLimits()
    address = attempt_address(ip)
    wait = _reserve(app, attempt_name(name), address, now, limits)
    if wait:
        log.warning("login refused without a password check: too many failures for this name from "
                    "%s or from that address; it may try again in %d s", address, wait)
        return Login(retry_after=wait)
    stored = _stored_hash(app, name)
    if not _verify(stored, password) or stored is None:  # (an unknown name costs a check too)
        return Login()
    return _succeeded(app, name, stored, now=now, actor=actor, ip=ip, address=address)


def session_user(app: App, name: object, session_id: object) -> str | None:
    """The user a session cookie's name and session id stand for, or None: no such user, or that
    session ended (logout, new password, removal)."""
    if not isinstance(name, str) or not isinstance(session_id, str) or not name or not session_id:
        return None
    with reading(app.engine) as session:
        current = session.scalar(select(UserRow.session_id).where(UserRow.name == name))
    if current is None or not hmac.compare_digest(current.encode(), session_id.encode()):
        return None
    return name


def log_out(app: App, name: str, session_id: str, *, now: datetime, actor: str, ip: str) -> bool:
    """End every session of the user whose session this is (audited) → False when it had ended."""
    with transaction(app.engine) as session:
        row = session.scalar(select(UserRow).where(UserRow.name == name).with_for_update())
        if row is None or row.session_id is None or not hmac.compare_digest(
                row.session_id.encode(), session_id.encode()):
            return False
        row.session_id = None
        audit.record(session, at=now, actor=actor, action="user.logout", subject=name, ip=ip)
    return True


def set_language(app: App, name: str, language: str, *, now: datetime, actor: str) -> None:
    """Store the web admin's language the user chose (a code of templates/languages.toml), audited;
    UsageError for a code not listed there, NotFound for no such user."""
    known = read_languages(app.settings.templates_dir)
    if language not in known:
        raise UsageError(f"'{language[:20]}' is not a language of the admin: one of "
                         f"{', '.join(sorted(known))} (templates/languages.toml)")
    with transaction(app.engine) as session:
        row = session.scalar(select(UserRow).where(UserRow.name == name).with_for_update())
        if row is None:
            raise NotFound(f"no user '{name}'")
        previous, row.language = row.language, language
        audit.record(session, at=now, actor=actor, action="user.language", subject=name,
                     language=language, previous=previous)


def user_language(app: App, name: str) -> str | None:
    """The web admin's language the user chose, or None (none chosen, or no such user)."""
    with reading(app.engine) as session:
        return session.scalar(select(UserRow.language).where(UserRow.name == name))


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
