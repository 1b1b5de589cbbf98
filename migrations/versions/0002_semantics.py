"""Semantic tables: audio tags, dictionaries, filter decisions, captions.

Revision ID: 0002_semantics
Revises: 0001_core
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_semantics"
down_revision = "0001_core"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audio_tags",
        sa.Column("clip_key", sa.String(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("clip_key", "source", "rank", name="pk_audio_tags"),
    )
    op.create_table(
        "dictionary_entries",
        sa.Column("dictionary", sa.String(), nullable=False),
        sa.Column("class_name", sa.String(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("audio_label", sa.String(), nullable=False),
        sa.Column("similarity", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("dictionary", "class_name", "rank", name="pk_dictionary_entries"),
    )
    op.create_table(
        "filter_decisions",
        sa.Column("filter_name", sa.String(), nullable=False),
        sa.Column("clip_key", sa.String(), nullable=False),
        sa.Column("iou", sa.Float(), nullable=True),
        sa.Column("keep", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("filter_name", "clip_key", name="pk_filter_decisions"),
    )
    op.create_table(
        "captions",
        sa.Column("clip_key", sa.String(), nullable=False),
        sa.Column("captioner", sa.String(), nullable=False),
        sa.Column("frame_index", sa.Integer(), nullable=False),
        sa.Column("caption", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("clip_key", "captioner", "frame_index", name="pk_captions"),
    )


def downgrade() -> None:
    for table in ("captions", "filter_decisions", "dictionary_entries", "audio_tags"):
        op.drop_table(table)
