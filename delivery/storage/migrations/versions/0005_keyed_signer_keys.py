"""Signer keys become keyed hashes (HMAC-SHA-256 with the installation's secret)

Each stored `signers.email_key` (the SHA-256 hex of an e-mail, or of name and place) becomes
HMAC-SHA-256(secret, that value), as delivery.storage.keys computes it for new signers, so a copy
of the database no longer tells whether an address signed. The secret comes from the key file,
handed over by delivery.storage.db.upgrade_schema (`init` makes the file first); it is used in
this process only and never sent to the database server.

Rows are read and rewritten in id order, BATCH at a time (PostgreSQL: one UPDATE … FROM unnest()
per batch; SQLite: one executemany), inside the upgrade's one transaction: an interrupted upgrade
leaves every key as it was, never half of them rewritten. The new values are as unique as the old
ones (uq_signers_campaign_email_key holds throughout: an HMAC output meeting another row's
not-yet-rewritten digest has probability 2^-256). On PostgreSQL the table is locked against
writers for the duration, so that a process of the previous version cannot add an unkeyed row
while it runs: stop the service before `init`.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

from delivery.errors import DeliveryError
from delivery.storage.keys import SignerKeys

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

BATCH = 10_000
_PG_REWRITE = ("UPDATE signers SET email_key = u.email_key FROM unnest(%s::bigint[], %s::text[]) "
               "AS u(id, email_key) WHERE signers.id = u.id")
_SQLITE_REWRITE = "UPDATE signers SET email_key = ? WHERE id = ?"
_NEXT = sa.text("SELECT id, email_key FROM signers WHERE id > :after ORDER BY id LIMIT :n")


def _has_signers(conn: sa.Connection) -> bool:
    return conn.execute(sa.text("SELECT 1 FROM signers LIMIT 1")).first() is not None


def upgrade() -> None:
    conn = op.get_bind()
    postgres = conn.dialect.name == "postgresql"
    if postgres:
        conn.exec_driver_sql("LOCK TABLE signers IN EXCLUSIVE MODE")
    if not _has_signers(conn):
        return
    keys = context.config.attributes.get("signer_keys")
    if not isinstance(keys, SignerKeys):
        raise DeliveryError("migration 0005 rewrites the stored signer keys with the installation's "
                            "signer key: run it through `petition-delivery init`")
    after = 0
    while rows := conn.execute(_NEXT, {"after": after, "n": BATCH}).all():
        ids = [row[0] for row in rows]
        new = keys.stored_keys(row[1] for row in rows)
        if postgres:
            conn.exec_driver_sql(_PG_REWRITE, (ids, new))
        else:
            conn.exec_driver_sql(_SQLITE_REWRITE, list(zip(new, ids, strict=True)))
        after = ids[-1]


def downgrade() -> None:
    if _has_signers(op.get_bind()):
        raise DeliveryError("migration 0005 cannot be undone while signers are stored: their keys "
                            "are keyed hashes now and the digests they were made from are not kept; "
                            "restore a backup of the database made before the upgrade instead")
