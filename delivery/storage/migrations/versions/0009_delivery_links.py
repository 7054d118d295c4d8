"""delivery_links: each link recipient's download page (the token's hash, expiry, revocation,
acknowledgement); link_downloads: each download through one

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "delivery_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("delivery_id", sa.Integer(), nullable=False),
        sa.Column("recipient", sa.String(length=320), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["delivery_id"], ["deliveries.id"],
                                name="fk_delivery_links_delivery_id_deliveries"),
        sa.PrimaryKeyConstraint("id", name="pk_delivery_links"),
        sa.UniqueConstraint("delivery_id", "recipient", name="uq_delivery_links_delivery_recipient"),
        sa.UniqueConstraint("token_hash", name="uq_delivery_links_token_hash"),
    )
    op.create_index("ix_delivery_links_delivery_id", "delivery_links", ["delivery_id"])
    op.create_table(
        "link_downloads",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True,
                  nullable=False),
        sa.Column("link_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("file", sa.String(length=200), nullable=False),
        sa.Column("user_agent", sa.String(length=300), nullable=False),
        sa.ForeignKeyConstraint(["link_id"], ["delivery_links.id"],
                                name="fk_link_downloads_link_id_delivery_links"),
        sa.PrimaryKeyConstraint("id", name="pk_link_downloads"),
    )
    op.create_index("ix_link_downloads_link_at", "link_downloads", ["link_id", "at"])


def downgrade() -> None:
    op.drop_index("ix_link_downloads_link_at", table_name="link_downloads")
    op.drop_table("link_downloads")
    op.drop_index("ix_delivery_links_delivery_id", table_name="delivery_links")
    op.drop_table("delivery_links")
