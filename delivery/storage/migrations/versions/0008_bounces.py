"""Bounces: messages.bounced_at/bounce_kind/bounce_status/bounce_diagnostic, the bounces read
(one row per report, by fingerprint) and where reading each mailbox stopped

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("bounced_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("bounce_kind", sa.String(length=10), nullable=True))
        batch.add_column(sa.Column("bounce_status", sa.String(length=20), nullable=True))
        batch.add_column(sa.Column("bounce_diagnostic", sa.Text(), nullable=True))
    op.create_table(
        "bounces",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("mailbox", sa.String(length=400), nullable=False),
        sa.Column("uid", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=True),
        sa.Column("diagnostic", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"], name="fk_bounces_message_id_messages"),
        sa.PrimaryKeyConstraint("id", name="pk_bounces"),
        sa.UniqueConstraint("fingerprint", name="uq_bounces_fingerprint"),
    )
    op.create_index("ix_bounces_message_id", "bounces", ["message_id"])
    op.create_table(
        "mailbox_cursors",
        sa.Column("account", sa.String(length=400), nullable=False),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=False),
        sa.Column("last_uid", sa.BigInteger(), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("account", name="pk_mailbox_cursors"),
    )


def downgrade() -> None:
    op.drop_table("mailbox_cursors")
    op.drop_index("ix_bounces_message_id", table_name="bounces")
    op.drop_table("bounces")
    with op.batch_alter_table("messages") as batch:
        for column in ("bounce_diagnostic", "bounce_status", "bounce_kind", "bounced_at"):
            batch.drop_column(column)
