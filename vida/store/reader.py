"""Reading many rows out of sealed shards at once, the way HDF5 serves them fastest.

Rows are grouped per shard and read in increasing order; where the wanted rows of
a shard are dense (the usual case: a query's clips of one shard), one contiguous
block is read and indexed in memory instead of a point selection per row, which
HDF5 serves chunk by chunk and which made reads hundreds of times slower.  Sealed
shards never change, so their handles stay open (a few, per process) between
reads; a process forked with handles open drops them and opens its own, because
an h5py handle shared across ``fork`` returns garbage.
"""

from __future__ import annotations

import os
from collections import OrderedDict

import h5py
import numpy as np


class DamagedRead(Exception):
    """Raised by :func:`read_located`: which shard, which positions were asked of it."""

    def __init__(self, path: str, positions: np.ndarray, detail: str) -> None:
        super().__init__(path, detail)
        self.path, self.positions, self.detail = path, positions, detail


# read one block from the first to the last wanted row when it holds at most this
# many rows per wanted row; otherwise read the wanted rows one run at a time
_DENSE = 4


class ShardHandles:
    """A small per-process cache of open, read-only shard files."""

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self._files: OrderedDict[str, h5py.File] = OrderedDict()
        self._pid = os.getpid()

    def get(self, path: str) -> h5py.File:
        if self._pid != os.getpid():
            self._files = OrderedDict()  # inherited from the parent: never reuse
            self._pid = os.getpid()
        handle = self._files.get(path)
        if handle is None:
            handle = h5py.File(path, "r")
            self._files[path] = handle
            if len(self._files) > self.size:
                self._files.popitem(last=False)[1].close()
        else:
            self._files.move_to_end(path)
        return handle

    def close(self) -> None:
        if self._pid == os.getpid():
            for handle in self._files.values():
                handle.close()
        self._files = OrderedDict()

    def __getstate__(self) -> dict:
        return {"size": self.size}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["size"])


def _runs(rows: np.ndarray) -> list[tuple[int, int]]:
    """Sorted unique rows -> [(start, stop)) runs of consecutive rows."""
    breaks = np.flatnonzero(np.diff(rows) != 1) + 1
    starts = np.r_[0, breaks]
    stops = np.r_[breaks, len(rows)]
    return [(int(rows[a]), int(rows[b - 1]) + 1) for a, b in zip(starts, stops, strict=True)]


def read_dataset_rows(dataset: h5py.Dataset, rows: np.ndarray) -> np.ndarray:
    """``dataset[rows]`` for any rows (any order, repeats allowed), read in order."""
    lo, hi = int(rows.min()), int(rows.max()) + 1
    if hi - lo == len(rows) and (np.diff(rows) == 1).all():  # a run in order: one read
        return dataset[lo:hi]
    unique, inverse = np.unique(rows, return_inverse=True)
    if hi - lo <= _DENSE * len(unique):
        values = dataset[lo:hi]
        if len(unique) < hi - lo:
            values = values[unique - lo]
    else:
        values = np.concatenate([dataset[a:b] for a, b in _runs(unique)])
    return values if len(unique) == len(rows) and (np.diff(rows) > 0).all() else values[inverse]


def read_located(handles: ShardHandles, paths: np.ndarray, rows: np.ndarray,
                 dataset: str = "data") -> np.ndarray | None:
    """Stack the rows at (``paths[i]``, ``rows[i]``) in the given order; None if empty."""
    if len(paths) == 0:
        return None
    out: np.ndarray | None = None
    uniques, groups = np.unique(paths, return_inverse=True)
    for g, path in enumerate(uniques):
        where = np.flatnonzero(groups == g)
        try:
            values = read_dataset_rows(handles.get(str(path))[dataset], rows[where])
        except OSError as exc:  # a checksum or a filter failed: the bytes are damaged
            raise DamagedRead(str(path), where, str(exc).splitlines()[0]) from None
        if out is None:
            out = np.empty((len(paths), *values.shape[1:]), dtype=values.dtype)
        out[where] = values
    return out
