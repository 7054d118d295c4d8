"""Alembic environment: runs on the connection handed over by delivery.storage.db.upgrade_schema.

`context.config.attributes["signer_keys"]` holds the installation's SignerKeys (or None) for the
migrations that rewrite stored signer keys (0005).
"""

from __future__ import annotations

from alembic import context

from delivery.storage.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `petition-delivery init`")
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
