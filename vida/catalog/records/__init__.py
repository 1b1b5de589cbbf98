"""Reading and writing the catalog's tables, one module per group of tables.

The semantics and models rooms compute on plain values (dicts, arrays,
DataFrames); these modules are where those values become rows and rows become
values again.  Jobs call both sides; nothing below ``vida.jobs`` does.

* :mod:`~vida.catalog.records.clips`       clips (what jobs choose work from)
* :mod:`~vida.catalog.records.tags`        audio_tags
* :mod:`~vida.catalog.records.dictionaries` dictionary_entries
* :mod:`~vida.catalog.records.filters`     filter_decisions
* :mod:`~vida.catalog.records.captions`    representative_frames, captions, condition_labels

* :mod:`~vida.catalog.records.runs`        runs and run_metrics (a run's lifecycle: start,
  heartbeat, finish or fail; runs whose process is gone marked abandoned where runs
  are opened)
* :mod:`~vida.catalog.records.predictions` predictions
* :mod:`~vida.catalog.records.features`    feature_sets, features (where rows are),
  feature_failures
* :mod:`~vida.catalog.records.shards`      shards and the store's one-transaction commit
* :mod:`~vida.catalog.records.clip_queries` the clips a training takes: the user's SQL
  narrowed with bound values
* :mod:`~vida.catalog.records.results`     an experiment's stored tables
* :mod:`~vida.catalog.records.settings`, :mod:`~vida.catalog.records.quarantine`

``Catalog.sql`` runs the user's own read-only SQL; everything here binds its values.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd


def sets_by_key(frame: pd.DataFrame) -> dict[str, set[str]]:
    """Two columns (key, value) -> key -> the set of its values."""
    out: dict[str, set[str]] = {}
    for key, value in frame.itertuples(index=False):
        out.setdefault(key, set()).add(value)
    return out


def json_column(value: Any) -> dict[str, Any]:
    """A JSON column's value as a dict: DuckDB returns the text, PostgreSQL the
    decoded object, an empty cell None."""
    return json.loads(value) if isinstance(value, str) else dict(value or {})
