"""Rows located in the driver, read anywhere: what a training item carries so that a
worker process (or a Dask worker that mounts the same store) reads its features
without the catalog.

The driver asks the catalog once where each clip's row is (:func:`locate`); the
worker opens the shards itself (:func:`read_rows`), through one cache of open files
per process, so that the many trainings a worker runs share their reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from vida.errors import UsageError
from vida.store.identity import shard_read_failure
from vida.store.reader import DamagedRead, ShardHandles, read_located
from vida.store.store import FeatureStore

_HANDLES: ShardHandles | None = None


@dataclass(frozen=True)
class Located:
    """One set's rows for ``keys``, in their order: absolute shard paths and rows."""

    name: str
    root: str
    keys: tuple[str, ...]
    paths: np.ndarray
    rows: np.ndarray
    dataset: str = "data"  # or an extras array: "extras/mask"
    shape: tuple[int, ...] = ()  # one row's shape

    def subset(self, index: np.ndarray) -> Located:
        """The rows at positions ``index`` (in that order)."""
        return replace(self, keys=tuple(self.keys[i] for i in index.tolist()),
                       paths=self.paths[index], rows=self.rows[index])


def locate(store: FeatureStore, name: str, keys: Sequence[str], extra: str | None = None
           ) -> Located:
    paths, rows = store.located(name, keys)
    dataset = "data" if extra is None else f"extras/{extra}"
    return Located(name, str(store.root), tuple(keys), paths, rows, dataset,
                   row_shape(store, name, paths, dataset))


def row_shape(store: FeatureStore, name: str, paths: np.ndarray, dataset: str
              ) -> tuple[int, ...]:
    """One row's shape: the set's, or an extras array's (read from its first shard)."""
    if dataset == "data":
        return tuple(store.info(name).shape)
    if len(paths) == 0:
        return ()
    return tuple(_handles().dataset(str(paths[0]), dataset).shape[1:])


def _handles() -> ShardHandles:
    global _HANDLES
    if _HANDLES is None:
        _HANDLES = ShardHandles()
    return _HANDLES


def read_rows(where: Located, out: np.ndarray | None = None) -> np.ndarray:
    """The located rows, stacked ``[len(keys), ...]`` (into ``out`` when given: a
    preallocated array, cast to its dtype as they are read)."""
    try:
        values = read_located(_handles(), where.paths, where.rows, where.dataset, out)
    except DamagedRead as exc:
        clip = where.keys[int(exc.positions[0])]
        raise shard_read_failure(Path(where.root), Path(exc.path), where.name, clip,
                                 exc.detail) from None
    if values is None:
        raise UsageError(f"no rows of {where.name} to read")
    return values


def read_concatenated(parts: Sequence[Located]) -> np.ndarray:
    """Several sets' rows for the same keys, as float32, concatenated on the last axis."""
    arrays = [read_rows(part).astype(np.float32, copy=False) for part in parts]
    lengths = {a.shape[1] for a in arrays}
    if len(lengths) != 1:
        raise UsageError(f"feature sets {[p.name for p in parts]} have different T: "
                         f"{sorted(lengths)}")
    return np.concatenate(arrays, axis=-1)
