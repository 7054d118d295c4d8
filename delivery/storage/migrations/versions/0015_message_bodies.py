"""message_bodies: an outbox message's bytes in a table of their own, so that the updates of its
state (each claim, each outcome) do not write them again

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


# SQLite's batch mode copies a table and drops the old one, and with foreign keys on, dropping
# messages while message_bodies refers to it would delete every body (ON DELETE CASCADE). So the
# bodies table gets its foreign key only once messages is rebuilt, and loses it before messages
# is rebuilt on the way down (tests/storage/test_message_bodies_migration.py).
FOREIGN_KEY = "fk_message_bodies_message_id_messages"


def upgrade() -> None:
    op.create_table(
        "message_bodies",
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("message_id"),
    )
    op.execute("INSERT INTO message_bodies (message_id, content) SELECT id, content FROM messages")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("content")
    with op.batch_alter_table("message_bodies") as batch:
        batch.create_foreign_key(FOREIGN_KEY, "messages", ["message_id"], ["id"], ondelete="CASCADE")


def downgrade() -> None:
    with op.batch_alter_table("message_bodies") as batch:
        batch.drop_constraint(FOREIGN_KEY, type_="foreignkey")
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("content", sa.LargeBinary(), nullable=True))
    op.execute("UPDATE messages SET content = (SELECT content FROM message_bodies "
               "WHERE message_bodies.message_id = messages.id)")
    op.drop_table("message_bodies")
    with op.batch_alter_table("messages") as batch:
        batch.alter_column("content", existing_type=sa.LargeBinary(), nullable=False)
