"""Per clip and feature set, why `encode` could not produce it (the clip itself is fine).

Revision ID: 0006_feature_failures
Revises: 0005_cafmap
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_feature_failures"
down_revision = "0005_cafmap"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feature_failures",
        sa.Column("feature_set", sa.String(), nullable=False),
        sa.Column("clip_key", sa.String(), nullable=False),
        sa.Column("run_id", sa.String(), nullable=True),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("failed_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("feature_set", "clip_key", name="pk_feature_failures"),
    )


def downgrade() -> None:
    op.drop_table("feature_failures")
