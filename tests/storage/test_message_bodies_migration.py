"""Migration 0015 → every stored e-mail's bytes move to message_bodies whole, on SQLite (whose
batch mode copies the messages table and drops the old one, foreign keys on) and PostgreSQL, and
they come back into messages on the way down."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, inspect, text

from delivery.storage.db import upgrade_schema

AT = datetime(2026, 1, 1, tzinfo=UTC).replace(tzinfo=None)
BYTES = {1: b"From: a\r\n\r\nfirst\r\n", 2: bytes(range(256)) * 40}


def _bytes(rows: Iterable[Sequence[Any]]) -> dict[int, bytes]:
    return {int(row[0]): bytes(row[1]) for row in rows}


def test_the_bytes_move_out_of_messages_and_back(engine: Engine) -> None:
    upgrade_schema(engine, "0014")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO campaigns (id, slug, title, goal, created_at) "
                          "VALUES (1, 't', 'T', 10, :at)"), {"at": AT})
        conn.execute(text("INSERT INTO deliveries (id, campaign_id, public_id, trigger, status, "
                          "created_at, created_by, last_signer_id, signer_count, recipients) "
                          "VALUES (1, 1, 'd-1', 'manual', 'sending', :at, 'test', 0, 0, '[]')"),
                     {"at": AT})
        for n, content in BYTES.items():
            conn.execute(text(
                "INSERT INTO messages (id, delivery_id, recipient, kind, part, parts, cut, status, "
                "message_id, content, size, attempts, created_at, next_attempt_at, crash_resends) "
                "VALUES (:n, 1, 'a@example.org', 'dossier', :n, 2, 0, 'queued', :mid, :content, "
                ":size, 0, :at, :at, 0)"),
                {"n": n, "mid": f"<m{n}@example.org>", "content": content, "size": len(content),
                 "at": AT})
    upgrade_schema(engine)
    with engine.connect() as conn:
        assert _bytes(conn.execute(text("SELECT message_id, content FROM message_bodies"))) == BYTES
        assert conn.execute(text("SELECT count(*) FROM messages")).scalar() == 2
    assert "content" not in {c["name"] for c in inspect(engine).get_columns("messages")}
    upgrade_schema(engine, "0014")
    with engine.connect() as conn:
        assert _bytes(conn.execute(text("SELECT id, content FROM messages"))) == BYTES
    assert "message_bodies" not in inspect(engine).get_table_names()
    upgrade_schema(engine)
    with engine.begin() as conn:
        for table in ("message_bodies", "messages", "deliveries", "campaigns"):
            conn.execute(text(f"DELETE FROM {table}"))
