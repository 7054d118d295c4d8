"""message_bodies.attachments: the attachments of an e-mail that are files of its delivery are
kept once, as those files, and put in the e-mail when it is sent (NULL: the bytes are whole)

Revision ID: 0017
Revises: 0016

Going down puts every such attachment back in its e-mail's bytes first, so that nothing the
older code would send is missing.
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("message_bodies", sa.Column("attachments", sa.Text(), nullable=True))


def downgrade() -> None:
    from delivery.mail.message import stand_ins, with_bodies

    conn = op.get_bind()
    kept = conn.execute(sa.text(
        "SELECT b.message_id, b.attachments, m.delivery_id, m.message_id AS mid "
        "FROM message_bodies b JOIN messages m ON m.id = b.message_id "
        "WHERE b.attachments IS NOT NULL")).all()
    for row_id, attachments, delivery_id, mid in kept:
        bodies = []
        for n, name, _sha256 in json.loads(attachments):
            data = conn.execute(sa.text("SELECT content FROM delivery_files "
                                        "WHERE delivery_id = :d AND name = :n"),
                                {"d": delivery_id, "n": name}).scalar_one()
            bodies.append((n, bytes(data)))
        content = conn.execute(sa.text("SELECT content FROM message_bodies WHERE message_id = :i"),
                               {"i": row_id}).scalar_one()
        conn.execute(sa.text("UPDATE message_bodies SET content = :c WHERE message_id = :i"),
                     {"c": with_bodies(bytes(content), stand_ins(mid, bodies)), "i": row_id})
    with op.batch_alter_table("message_bodies") as batch:
        batch.drop_column("attachments")
