"""Settings of the catalog as a whole, one row per key: first the media root that
clips' relative source paths are resolved against, so that a catalog works from any
folder and moves with its data (``vida-batch catalog relocate``).

Revision ID: 0008_catalog_settings
Revises: 0007_run_liveness
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_catalog_settings"
down_revision = "0007_run_liveness"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "catalog_settings",
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("value", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_catalog_settings"),
    )


def downgrade() -> None:
    op.drop_table("catalog_settings")
