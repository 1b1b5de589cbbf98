"""The driver's catalog reads for the trainings of one plan, each asked once.

An experiment's trainings share their queries and their feature sets: every
classifier of a seed reads the same clips' rgb and flow rows.  Asked per training,
the catalog would answer the same questions once a training (a DuckDB connection
each).  Here each query's clips, each set's description and each clip's row in a set are
read once per plan.  The sets a plan reads do not change while it runs (what it
generates gets new names), so nothing here goes stale.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from vida.catalog.database import Catalog
from vida.catalog.records.clip_queries import clips_of
from vida.store.located import Located, row_shape
from vida.store.store import FeatureSetInfo, FeatureStore


class PlanReads:
    """``clips``, ``info`` and ``locate`` of one catalog and store, remembered."""

    def __init__(self, catalog: Catalog, store: FeatureStore) -> None:
        self.catalog, self.store = catalog, store
        self._clips: dict[str, pd.DataFrame] = {}
        self._info: dict[str, FeatureSetInfo] = {}
        self._rows: dict[str, dict[str, tuple[str, int]]] = {}

    def clips(self, query: str) -> pd.DataFrame:
        """The query's clips in clip_key order (:func:`.clip_queries.clips_of`)."""
        if query not in self._clips:
            self._clips[query] = clips_of(self.catalog, query)
        return self._clips[query]

    def info(self, name: str) -> FeatureSetInfo:
        if name not in self._info:
            self._info[name] = self.store.info(name)
        return self._info[name]

    def locate(self, name: str, keys: Sequence[str], extra: str | None = None) -> Located:
        """Where ``keys``' rows of set ``name`` are (a KeyError names a missing clip)."""
        known = self._rows.setdefault(name, {})
        missing = [key for key in keys if key not in known]
        if missing:
            paths, rows = self.store.located(name, missing)
            known.update(zip(missing, zip(paths, rows, strict=True), strict=True))
        where = [known[key] for key in keys]
        paths = np.array([p for p, _ in where], dtype=object)
        dataset = "data" if extra is None else f"extras/{extra}"
        shape = (tuple(self.info(name).shape) if extra is None
                 else row_shape(self.store, name, paths, dataset))
        return Located(name, str(self.store.root), tuple(keys), paths,
                       np.array([r for _, r in where], dtype=np.int64), dataset, shape)
