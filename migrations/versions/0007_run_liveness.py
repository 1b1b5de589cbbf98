"""Which process runs a run, and when it was last seen alive, so that a run whose
process was killed is shown as abandoned instead of running forever.

Revision ID: 0007_run_liveness
Revises: 0006_feature_failures
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_run_liveness"
down_revision = "0006_feature_failures"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("runs", sa.Column("host", sa.String(), nullable=True))
    op.add_column("runs", sa.Column("pid", sa.Integer(), nullable=True))
    op.add_column("runs", sa.Column("heartbeat_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    op.drop_column("runs", "heartbeat_at")
    op.drop_column("runs", "pid")
    op.drop_column("runs", "host")
