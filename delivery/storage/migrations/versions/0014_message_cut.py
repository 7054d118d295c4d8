"""messages.cut: 0 for the e-mails as first built, 1 for a recipient's dossier cut again in smaller
e-mails after a part was refused as too large; one message per (delivery, recipient, cut, part)

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("cut", sa.Integer(), nullable=False, server_default="0"))
        batch.drop_constraint("uq_messages_delivery_recipient_part", type_="unique")
        batch.create_unique_constraint("uq_messages_delivery_recipient_cut_part",
                                       ["delivery_id", "recipient", "cut", "part"])


def downgrade() -> None:
    op.execute("DELETE FROM messages WHERE cut > 0")
    with op.batch_alter_table("messages") as batch:
        batch.drop_constraint("uq_messages_delivery_recipient_cut_part", type_="unique")
        batch.create_unique_constraint("uq_messages_delivery_recipient_part",
                                       ["delivery_id", "recipient", "part"])
        batch.drop_column("cut")
