"""Store every real number in double precision.

SQLAlchemy's ``Float`` is a 4-byte REAL on DuckDB, which rounds IoUs, scores and
metrics at the 8th digit.  DuckDB cannot alter a column of a table that has a
secondary index, so those indexes are dropped around the change and recreated.

Revision ID: 0004_double_precision
Revises: 0003_runs
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_double_precision"
down_revision = "0003_runs"
branch_labels = None
depends_on = None

COLUMNS = {
    "clips": ("duration_s", "fps", "audio_dbfs"),
    "audio_tags": ("score",),
    "dictionary_entries": ("similarity",),
    "filter_decisions": ("iou",),
    "run_metrics": ("value",),
    "predictions": ("score",),
}
INDEXES = {"clips": ("ix_clips_class_name", ["class_name"]),
           "run_metrics": ("ix_run_metrics_run_id", ["run_id"])}


def _change(to: sa.types.TypeEngine, frm: sa.types.TypeEngine) -> None:
    for table, columns in COLUMNS.items():
        index = INDEXES.get(table)
        if index:
            op.drop_index(index[0], table_name=table)
        for column in columns:
            op.alter_column(table, column, type_=to, existing_type=frm)
        if index:
            op.create_index(index[0], table, index[1])


def upgrade() -> None:
    _change(sa.Double(), sa.Float())


def downgrade() -> None:
    _change(sa.Float(), sa.Double())
