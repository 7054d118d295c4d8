"""delivery_links.chased_at: when the organizers were reminded that a link recipient had neither
downloaded nor confirmed the dossier

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("delivery_links") as batch:
        batch.add_column(sa.Column("chased_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("delivery_links") as batch:
        batch.drop_column("chased_at")
