"""What ``fsck --repair`` quarantined, with every row it took from the catalog, so
that ``fsck --restore`` can put back a shard whose file turns out to be intact (a
folder that was not mounted, a copy that had not finished).

Revision ID: 0009_quarantined_shards
Revises: 0008_catalog_settings
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_quarantined_shards"
down_revision = "0008_catalog_settings"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "quarantined_shards",
        sa.Column("shard_id", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("feature_set", sa.String(), nullable=False),
        sa.Column("path", sa.String(), nullable=False),
        sa.Column("n_rows", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(), nullable=False),
        sa.Column("sealed_at", sa.DateTime(), nullable=True),
        sa.Column("problem", sa.String(), nullable=False),
        sa.Column("features", sa.Text(), nullable=False),
        sa.Column("cleared_hashes", sa.Text(), nullable=False),
        sa.Column("quarantined_at", sa.DateTime(), nullable=False),
        sa.Column("restored_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("shard_id", name="pk_quarantined_shards"),
    )


def downgrade() -> None:
    op.drop_table("quarantined_shards")
