"""Migration 0011 → every account made before roles is an owner, on SQLite and PostgreSQL, and it
goes back down cleanly."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, inspect, text

from delivery.storage.db import upgrade_schema


def test_existing_users_become_owners_and_the_downgrade_drops_the_role(engine: Engine) -> None:
    upgrade_schema(engine, "0010")
    at = datetime(2026, 1, 1, tzinfo=UTC).replace(tzinfo=None)
    with engine.begin() as conn:
        for name in ("anna", "maria"):
            conn.execute(text("INSERT INTO users (name, password_hash, created_at) VALUES (:n, 'x', :at)"),
                         {"n": name, "at": at})
    upgrade_schema(engine)
    with engine.connect() as conn:
        assert list(conn.execute(text("SELECT name, role FROM users ORDER BY name"))) == [
            ("anna", "owner"), ("maria", "owner")]
    tables = set(inspect(engine).get_table_names())
    assert {"setup_tokens", "send_requests"} <= tables
    upgrade_schema(engine, "0010")
    inspector = inspect(engine)
    assert "role" not in {c["name"] for c in inspector.get_columns("users")}
    assert not {"setup_tokens", "send_requests"} & set(inspector.get_table_names())
    upgrade_schema(engine)
    with engine.connect() as conn:
        conn.execute(text("DELETE FROM users"))
        conn.commit()
