"""CAFMap tables: representative frames, and the labels chosen for each condition.

Revision ID: 0005_cafmap
Revises: 0004_double_precision
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_cafmap"
down_revision = "0004_double_precision"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "representative_frames",
        sa.Column("clip_key", sa.String(), nullable=False),
        sa.Column("frame_index", sa.Integer(), nullable=False),
        sa.Column("motion", sa.Double(), nullable=True),
        sa.Column("rule", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("clip_key", "frame_index", name="pk_representative_frames"),
    )
    op.create_table(
        "condition_labels",
        sa.Column("condition_set", sa.String(), nullable=False),
        sa.Column("clip_key", sa.String(), nullable=False),
        sa.Column("frame_index", sa.Integer(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(), nullable=False),
        sa.Column("similarity", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("condition_set", "clip_key", "frame_index", "rank",
                                name="pk_condition_labels"),
    )


def downgrade() -> None:
    op.drop_table("condition_labels")
    op.drop_table("representative_frames")
