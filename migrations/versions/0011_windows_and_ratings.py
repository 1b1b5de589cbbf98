"""Clips that are a window of their file (``start_s``, ``end_s`` beside ``source_uri``),
and per-clip ratings imported from a dataset's annotations (AVMIT's).

Revision ID: 0011_windows_and_ratings
Revises: 0010_missing_audio
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_windows_and_ratings"
down_revision = "0010_missing_audio"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("clips", sa.Column("start_s", sa.Double(), nullable=True))
    op.add_column("clips", sa.Column("end_s", sa.Double(), nullable=True))
    op.create_table(
        "clip_ratings",
        sa.Column("clip_key", sa.String(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("n_score1", sa.Integer(), nullable=True),
        sa.Column("n_score2", sa.Integer(), nullable=True),
        sa.Column("n_score3", sa.Integer(), nullable=True),
        sa.Column("audible", sa.Boolean(), nullable=True),
        sa.Column("rated_class", sa.String(), nullable=True),
        sa.Column("source_class", sa.String(), nullable=True),
        sa.Column("location", sa.String(), nullable=True),
        sa.Column("test_set", sa.Boolean(), nullable=True),
        sa.PrimaryKeyConstraint("clip_key", "source", name="pk_clip_ratings"),
    )


def downgrade() -> None:
    op.drop_table("clip_ratings")
    op.drop_column("clips", "end_s")
    op.drop_column("clips", "start_s")
