"""login_attempts: failed (and in-flight) web logins, counted per (name, address) and per address
by every instance alike; users.session_id: the value every session cookie of a user must carry

Existing users start with no session id, so every session cookie made before the upgrade (which
carries none) stops working: organizers log in again once.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "login_attempts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True,
                  nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_attempts")),
    )
    with op.batch_alter_table("login_attempts") as batch:
        batch.create_index(batch.f("ix_login_attempts_at"), ["at"], unique=False)
        batch.create_index("ix_login_attempts_address_at", ["address", "at"], unique=False)
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("session_id", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("session_id")
    with op.batch_alter_table("login_attempts") as batch:
        batch.drop_index("ix_login_attempts_address_at")
        batch.drop_index(batch.f("ix_login_attempts_at"))
    op.drop_table("login_attempts")
