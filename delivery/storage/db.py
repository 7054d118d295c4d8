"""Database URL → Engine and sessions; schema creation through Alembic.

SQLite is the embedded default: WAL, a busy timeout and `BEGIN IMMEDIATE` for write
transactions, so that claims made by several processes serialise instead of failing.
PostgreSQL is the production database: claims use `FOR UPDATE SKIP LOCKED`.

A SQLite database file is made mode 0600 (its folder 0700) before SQLite opens it, so that its
-wal, -shm and -journal files, which SQLite gives the database file's mode, are 0600 too; an
upgrade (`init`) takes group and other permissions off files made before that rule.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker

from delivery.errors import ConfigError
from delivery.storage.keys import SignerKeys, create_private_file, restrict_to_owner

MIGRATIONS = Path(__file__).parent / "migrations"
READ_ONLY = "delivery_read_only"


def make_engine(url: str, **kwargs: Any) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError("environment", "DELIVERY_DATABASE_URL", "is not a database URL") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            folder = Path(parsed.database).parent
            # Make the data folder itself, not a whole mistyped path.
            if not folder.parent.is_dir():
                raise ConfigError("environment", "DELIVERY_DATABASE_URL",
                                  f"the folder {folder.parent} does not exist")
            folder.mkdir(mode=0o700, exist_ok=True)
            if not parsed.query.get("uri"):
                create_private_file(Path(parsed.database))
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)
        _sqlite_pragmas(engine)
        return engine
    if backend != "postgresql":
        raise ConfigError("environment", "DELIVERY_DATABASE_URL",
                          f"'{backend}' is not supported: use sqlite:///PATH or postgresql://…")
    if parsed.drivername == "postgresql":
        url = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    return create_engine(url, pool_pre_ping=True, **kwargs)


def _sqlite_pragmas(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def on_begin(conn: Any) -> None:
        # Take the write lock up front: a read-then-write claim must not be interleaved.
        # Read-only work (`reading`) begins deferred, so it never waits for or blocks writers.
        read_only = conn.get_execution_options().get(READ_ONLY, False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def sessions(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """One unit of work: committed when the block ends, rolled back on any exception."""
    with sessions(engine).begin() as session:
        yield session


@contextmanager
def reading(engine: Engine) -> Iterator[Session]:
    """A read-only unit of work: a consistent snapshot that takes no write lock."""
    with sessions(engine.execution_options(**{READ_ONLY: True})).begin() as session:
        yield session


def upgrade_schema(engine: Engine, revision: str = "head", *,
                   signer_keys: SignerKeys | None = None) -> None:
    """Move the schema to the newest migration (or up or down to `revision`), in one
    transaction; safe to rerun. Migrations that rewrite stored signer keys need `signer_keys`
    once signers exist."""
    from alembic import command
    from alembic.script import ScriptDirectory

    _restrict_sqlite_files(engine)
    with engine.begin() as conn:
        cfg = _alembic_config()
        cfg.attributes["connection"] = conn
        cfg.attributes["signer_keys"] = signer_keys
        if revision == "head":
            command.upgrade(cfg, revision)
            return
        from alembic.runtime.migration import MigrationContext

        current = MigrationContext.configure(conn).get_current_revision()
        ahead = {r.revision for r in ScriptDirectory.from_config(cfg).iterate_revisions(revision, "base")}
        if current is None or (current in ahead and current != revision):
            command.upgrade(cfg, revision)
        else:
            command.downgrade(cfg, revision)


def applied_revisions(engine: Engine) -> set[str]:
    """The database's migration and every one before it (empty before any)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    if current is None:
        return set()
    script = ScriptDirectory.from_config(_alembic_config())
    return {r.revision for r in script.iterate_revisions(current, "base")}


def _restrict_sqlite_files(engine: Engine) -> None:
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:" or engine.url.query.get("uri"):
        return
    for suffix in ("", "-wal", "-shm", "-journal"):
        restrict_to_owner(Path(database + suffix))


def schema_revisions(engine: Engine) -> tuple[str | None, str]:
    """(the database's migration, None before any; the newest this version knows)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision(), head


def _alembic_config() -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg
