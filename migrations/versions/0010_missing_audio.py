"""Which clips' audio each experiment treated as missing, per seed, split and missing
rate, so that anyone can select them and a rerun draws the same ones.

Revision ID: 0010_missing_audio
Revises: 0009_quarantined_shards
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_missing_audio"
down_revision = "0009_quarantined_shards"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "missing_audio",
        sa.Column("experiment_id", sa.String(), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.Column("split", sa.String(), nullable=False),
        sa.Column("rate", sa.Double(), nullable=False),
        sa.Column("clip_key", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("experiment_id", "seed", "split", "rate", "clip_key",
                                name="pk_missing_audio"),
    )


def downgrade() -> None:
    op.drop_table("missing_audio")
