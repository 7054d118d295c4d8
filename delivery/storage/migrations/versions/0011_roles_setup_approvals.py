"""users.role: "owner" or "organizer", every existing user an owner; setup_tokens: the first-run
setup links `serve` prints while no account exists; send_requests: manual sends waiting for a
second account's approval

Every account made before roles may already manage the others (through the CLI), so none of them
loses that: an installation keeps its administrators.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("role", sa.String(length=16), nullable=True))
    op.execute("UPDATE users SET role = 'owner'")
    with op.batch_alter_table("users") as batch:
        batch.alter_column("role", existing_type=sa.String(length=16), nullable=False)
    op.create_table(
        "setup_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_setup_tokens"),
        sa.UniqueConstraint("token_hash", name="uq_setup_tokens_token_hash"),
    )
    op.create_table(
        "send_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("request_key", sa.String(length=64), nullable=False),
        sa.Column("recipients", sa.Text(), nullable=False),
        sa.Column("requested_by", sa.String(length=100), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("decided_by", sa.String(length=100), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"],
                                name="fk_send_requests_campaign_id_campaigns"),
        sa.PrimaryKeyConstraint("id", name="pk_send_requests"),
        sa.UniqueConstraint("campaign_id", "request_key", name="uq_send_requests_campaign_request_key"),
    )


def downgrade() -> None:
    op.drop_table("send_requests")
    op.drop_table("setup_tokens")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("role")
