"""Experiment record: runs, per-epoch metrics, predictions.

Revision ID: 0003_runs
Revises: 0002_semantics
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_runs"
down_revision = "0002_semantics"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("run_id", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("arch", sa.String(), nullable=True),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("query", sa.Text(), nullable=True),
        sa.Column("feature_sets", sa.Text(), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("checkpoint", sa.String(), nullable=True),
        sa.Column("code_version", sa.String(), nullable=True),
        sa.Column("experiment_id", sa.String(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("run_id", name="pk_runs"),
    )
    op.create_index("ix_runs_experiment_id", "runs", ["experiment_id"])
    op.execute(sa.schema.CreateSequence(sa.Sequence("run_metrics_id_seq")))
    op.create_table(
        "run_metrics",
        sa.Column(
            "id",
            sa.Integer(),
            server_default=sa.text("nextval('run_metrics_id_seq')"),
            nullable=False,
        ),
        sa.Column("run_id", sa.String(), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=True),
        sa.Column("split", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_run_metrics"),
    )
    op.create_index("ix_run_metrics_run_id", "run_metrics", ["run_id"])
    op.create_table(
        "predictions",
        sa.Column("run_id", sa.String(), nullable=False),
        sa.Column("clip_key", sa.String(), nullable=False),
        sa.Column("split", sa.String(), nullable=False),
        sa.Column("true_class", sa.String(), nullable=False),
        sa.Column("pred_class", sa.String(), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("run_id", "clip_key", name="pk_predictions"),
    )


def downgrade() -> None:
    op.drop_table("predictions")
    op.drop_table("run_metrics")
    op.execute(sa.schema.DropSequence(sa.Sequence("run_metrics_id_seq")))
    op.drop_index("ix_runs_experiment_id", table_name="runs")
    op.drop_table("runs")
