"""A PyTorch Dataset that serves the clips of a catalog query from the store.

Locations (shard path, row) are resolved once, in the parent process.  HDF5 files
are opened lazily, per process: an h5py handle inherited through ``fork`` shares
HDF5's global state with the parent and returns garbage or crashes, so a worker
that finds handles opened by another PID drops them and opens its own.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import h5py
import numpy as np
import torch
from torch.utils.data import Dataset

from vida.store.store import FeatureStore


class CatalogDataset(Dataset):
    """Items ``{"clip_key", "label", <feature set>: tensor, ...}`` for a query's clips.

    ``query`` is a read-only SELECT returning at least ``clip_key`` and
    ``class_name``; ``classes`` fixes the label indices (default: sorted classes of
    the query).
    """

    def __init__(
        self,
        store: FeatureStore,
        query: str,
        feature_sets: Sequence[str],
        classes: Sequence[str] | None = None,
    ) -> None:
        frame = store.catalog.sql(query)
        for column in ("clip_key", "class_name"):
            if column not in frame.columns:
                raise ValueError(f"the query must return a {column} column; it returned "
                                 f"{', '.join(frame.columns)}")
        self.clip_keys: list[str] = frame["clip_key"].tolist()
        self.classes = list(classes) if classes is not None else sorted(set(frame["class_name"]))
        index = {c: i for i, c in enumerate(self.classes)}
        unknown = sorted(set(frame["class_name"]) - set(index))
        if unknown:
            raise ValueError(f"classes {unknown} are not in the given class list")
        self.labels = np.array([index[c] for c in frame["class_name"]], dtype=np.int64)
        self.feature_sets = list(feature_sets)
        self._where = {
            name: store.locate(name, self.clip_keys)[["path", "row"]].to_records(index=False)
            for name in self.feature_sets
        }
        self._files: dict[str, h5py.File] = {}
        self._pid = os.getpid()

    def __len__(self) -> int:
        return len(self.clip_keys)

    def _file(self, path: str) -> h5py.File:
        if self._pid != os.getpid():  # forked into a worker: never reuse the parent's handles
            self._files = {}
            self._pid = os.getpid()
        handle = self._files.get(path)
        if handle is None:
            handle = self._files[path] = h5py.File(path, "r")
        return handle

    def __getitem__(self, i: int) -> dict[str, Any]:
        item: dict[str, Any] = {
            "clip_key": self.clip_keys[i],
            "label": torch.tensor(self.labels[i]),
        }
        for name in self.feature_sets:
            path, row = self._where[name][i]
            item[name] = torch.from_numpy(np.asarray(self._file(str(path))["data"][int(row)]))
        return item

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_files"] = {}
        return state

    def close(self) -> None:
        for handle in self._files.values():
            handle.close()
        self._files = {}
