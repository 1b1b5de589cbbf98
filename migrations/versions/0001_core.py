"""Core tables: clips, feature sets, shards, features.

Revision ID: 0001_core
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_core"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "clips",
        sa.Column("clip_key", sa.String(), nullable=False),
        sa.Column("class_name", sa.String(), nullable=False),
        sa.Column("clip_id", sa.String(), nullable=False),
        sa.Column("source_uri", sa.String(), nullable=True),
        sa.Column("source_split", sa.String(), nullable=True),
        sa.Column("split", sa.String(), nullable=True),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("fps", sa.Float(), nullable=True),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("n_frames", sa.Integer(), nullable=True),
        sa.Column("has_audio", sa.Boolean(), nullable=True),
        sa.Column("audio_dbfs", sa.Float(), nullable=True),
        sa.Column("silent", sa.Boolean(), nullable=True),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("content_sha256", sa.String(), nullable=True),
        sa.Column("ingested_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("clip_key", name="pk_clips"),
    )
    op.create_index("ix_clips_class_name", "clips", ["class_name"])
    op.create_table(
        "feature_sets",
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("modality", sa.String(), nullable=False),
        sa.Column("encoder", sa.String(), nullable=False),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("shape", sa.Text(), nullable=False),
        sa.Column("dtype", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("produced_by_run", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("name", name="pk_feature_sets"),
    )
    op.execute(sa.schema.CreateSequence(sa.Sequence("shards_id_seq")))
    op.create_table(
        "shards",
        sa.Column(
            "id", sa.Integer(), server_default=sa.text("nextval('shards_id_seq')"), nullable=False
        ),
        sa.Column("feature_set", sa.String(), nullable=False),
        sa.Column("path", sa.String(), nullable=False),
        sa.Column("n_rows", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(), nullable=False),
        sa.Column("sealed_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_shards"),
        sa.UniqueConstraint("path", name="uq_shards_path"),
    )
    op.create_index("ix_shards_feature_set", "shards", ["feature_set"])
    op.create_table(
        "features",
        sa.Column("feature_set", sa.String(), nullable=False),
        sa.Column("clip_key", sa.String(), nullable=False),
        sa.Column("shard_id", sa.Integer(), nullable=False),
        sa.Column("row", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("feature_set", "clip_key", name="pk_features"),
    )
    op.create_index("ix_features_shard_id", "features", ["shard_id"])


def downgrade() -> None:
    op.drop_table("features")
    op.drop_table("shards")
    op.execute(sa.schema.DropSequence(sa.Sequence("shards_id_seq")))
    op.drop_table("feature_sets")
    op.drop_table("clips")
