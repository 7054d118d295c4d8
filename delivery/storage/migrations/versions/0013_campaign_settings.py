"""campaign_settings: versions of each campaign's settings (the campaign file's text), from the
file or the web admin; letter_versions: versions of each language's cover letter edited in the
web admin

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "campaign_settings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("origin", sa.String(length=16), nullable=False),
        sa.Column("file_digest", sa.String(length=64), nullable=True),
        sa.Column("changes", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"],
                                name="fk_campaign_settings_campaign_id_campaigns"),
        sa.PrimaryKeyConstraint("id", name="pk_campaign_settings"),
        sa.UniqueConstraint("campaign_id", "version", name="uq_campaign_settings_campaign_version"),
    )
    op.create_table(
        "letter_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("language", sa.String(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("origin", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"],
                                name="fk_letter_versions_campaign_id_campaigns"),
        sa.PrimaryKeyConstraint("id", name="pk_letter_versions"),
        sa.UniqueConstraint("campaign_id", "language", "version",
                            name="uq_letter_versions_campaign_language_version"),
    )


def downgrade() -> None:
    op.drop_table("letter_versions")
    op.drop_table("campaign_settings")
