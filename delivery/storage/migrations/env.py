"""Alembic environment: runs on the connection handed over by delivery.storage.db.upgrade_schema."""

from __future__ import annotations

from alembic import context

from delivery.storage.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `petition-delivery init`")
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
