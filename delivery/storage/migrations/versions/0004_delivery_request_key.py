"""deliveries.request_key: the key a manual send request carries, unique per campaign, so a replay
or a double click finds the delivery the first request made instead of making another

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("request_key", sa.String(length=64), nullable=True))
        batch.create_unique_constraint("uq_deliveries_campaign_request_key", ["campaign_id", "request_key"])


def downgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_constraint("uq_deliveries_campaign_request_key", type_="unique")
        batch.drop_column("request_key")
