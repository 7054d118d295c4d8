"""volume_facts: what each volume of stored signers holds, so a build reads only changed ones;
an index for the withdrawals a dossier applies

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "volume_facts",
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("first_id", sa.BigInteger(), nullable=False),
        sa.Column("last_id", sa.BigInteger(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("facts", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"],
                                name=op.f("fk_volume_facts_campaign_id_campaigns")),
        sa.PrimaryKeyConstraint("campaign_id", "fingerprint", name=op.f("pk_volume_facts")),
    )
    op.create_index("ix_signers_campaign_withdrawn", "signers", ["campaign_id", "withdrawn_at"])


def downgrade() -> None:
    op.drop_index("ix_signers_campaign_withdrawn", "signers")
    op.drop_table("volume_facts")
