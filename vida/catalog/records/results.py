"""Reads of an experiment's results: its run, and the summary its record step wrote to
``run_metrics`` (rows named ``<group>/<measure>``, split ``test``, no epoch).

Each table is one query with the experiment's id bound, kept here as text so that a
report can print the very SQL it ran: a reader pastes it into ``vida-batch sql`` or a
notebook and gets the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import text

from vida.catalog.database import Catalog
from vida.catalog.records import json_column
from vida.errors import UsageError

_SUMMARY = ("SELECT name, value FROM run_metrics WHERE run_id = :run_id AND split = 'test' "
            "AND epoch IS NULL AND ")

# table -> the rows of run_metrics it is built from
TABLE_QUERIES = {
    "main": _SUMMARY + ("name NOT LIKE 'labels=%' AND name NOT LIKE 'class=%' AND name NOT "
                        "LIKE 'rank_correlation/%' AND name NOT LIKE 'study/%' AND name NOT "
                        "LIKE 'generator=%' AND name NOT LIKE 'test_missing=%' AND name NOT LIKE "
                        "'train_missing=%' AND name NOT LIKE 'group=%' ORDER BY id"),
    "study": _SUMMARY + "name LIKE 'study/%' ORDER BY id",
    "labels": _SUMMARY + "name LIKE 'labels=%' ORDER BY id",
    "per_class": _SUMMARY + "name LIKE 'class=%' ORDER BY id",
    "correlations": _SUMMARY + "name LIKE 'rank_correlation/%' ORDER BY id",
    "quality": _SUMMARY + "name LIKE 'generator=%' ORDER BY id",
    "missing": _SUMMARY + ("(name LIKE 'test_missing=%' OR name LIKE 'train_missing=%') "
                           "ORDER BY id"),
    "per_group": _SUMMARY + "name LIKE 'group=%' ORDER BY id",
}

_RUN = ("SELECT run_id, arch, status, params, started_at, finished_at, error FROM runs "
        "WHERE run_id = :run_id AND kind = 'experiment'")
_LATEST = ("SELECT run_id FROM runs WHERE kind = 'experiment' AND status = 'finished' "
           "AND arch = :arch ORDER BY finished_at DESC LIMIT 1")


@dataclass(frozen=True)
class ExperimentRun:
    run_id: str
    arch: str
    status: str
    params: dict[str, Any]
    started_at: datetime
    finished_at: datetime | None
    error: str | None


def experiment_run(catalog: Catalog, run_id: str) -> ExperimentRun:
    """The experiment's run row; a one-line error for an id that names none."""
    rows = catalog.read(text(_RUN), {"run_id": run_id})
    if rows.empty:
        raise UsageError(f"no experiment {run_id!r} in the catalog; list them with: "
                          "vida-batch sql \"SELECT run_id, arch, status FROM runs WHERE "
                          "kind = 'experiment'\"")
    row = rows.iloc[0]
    return ExperimentRun(run_id=row["run_id"], arch=row["arch"], status=row["status"],
                         params=json_column(row["params"]),
                         started_at=pd.Timestamp(row["started_at"]).to_pydatetime(),
                         finished_at=None if pd.isna(row["finished_at"])
                         else pd.Timestamp(row["finished_at"]).to_pydatetime(),
                         error=row["error"])


def latest_experiment(catalog: Catalog, arch: str) -> str | None:
    """The newest finished experiment of ``arch`` (svdmap, cafmap), or None."""
    rows = catalog.read(text(_LATEST), {"arch": arch})
    return None if rows.empty else str(rows["run_id"].iloc[0])


def summary_rows(catalog: Catalog, run_id: str, table: str) -> pd.DataFrame:
    """One table's summary as (group, measure, value) rows, in the order written."""
    rows = catalog.read(text(TABLE_QUERIES[table]), {"run_id": run_id})
    parts = rows["name"].str.rsplit("/", n=1, expand=True) if len(rows) else None
    return pd.DataFrame({"group": [] if parts is None else parts[0],
                         "measure": [] if parts is None else parts[1],
                         "value": rows["value"].to_numpy(dtype=float)})


def query_text(table: str, run_id: str) -> str:
    """The table's query with the id written in, for a person to paste."""
    return TABLE_QUERIES[table].replace(":run_id", "'" + run_id.replace("'", "''") + "'")
