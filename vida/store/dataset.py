"""A PyTorch Dataset that serves the clips of a catalog query from the store.

Locations (shard path, row) are resolved once, in the parent process, by one
catalog join.  A batch is read with ``__getitems__`` (which the DataLoader calls
for a whole batch): each shard once, rows in order.  HDF5 files are opened lazily,
per process (:class:`~vida.store.reader.ShardHandles`): a handle inherited through
``fork`` returns garbage, so a worker opens its own.

Shuffling every clip of a large set makes each batch touch as many chunks as it
has clips, far more than a chunk cache holds once the features outgrow memory (a
Moments-in-Time scale set is ~80 GB).  :class:`ChunkShuffleSampler` shuffles in two
levels instead, as streaming loaders do: the order of chunk-sized blocks of rows,
then the clips within a window of blocks; each chunk is read once per epoch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from vida.errors import UsageError
from vida.store.reader import ShardHandles, read_located
from vida.store.shards import CHUNK_ROWS
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
                raise UsageError(f"the query must return a {column} column; it returned "
                                 f"{', '.join(frame.columns)}")
        self.clip_keys: list[str] = frame["clip_key"].tolist()
        self.classes = list(classes) if classes is not None else sorted(set(frame["class_name"]))
        index = {c: i for i, c in enumerate(self.classes)}
        unknown = sorted(set(frame["class_name"]) - set(index))
        if unknown:
            raise UsageError(f"classes {unknown} are not in the given class list")
        self.labels = np.array([index[c] for c in frame["class_name"]], dtype=np.int64)
        self.feature_sets = list(feature_sets)
        self._where = store.located_sets(self.feature_sets, self.clip_keys)
        self._handles = ShardHandles()

    def __len__(self) -> int:
        return len(self.clip_keys)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.__getitems__([i])[0]

    def __getitems__(self, indices: Sequence[int]) -> list[dict[str, Any]]:
        """A whole batch at once (the DataLoader asks for it so): each shard read once,
        in row order, instead of one HDF5 selection per clip and set."""
        idx = np.asarray(indices, dtype=np.int64)
        arrays = {}
        for name, (paths, rows) in self._where.items():
            arrays[name] = torch.from_numpy(read_located(self._handles, paths[idx], rows[idx]))
        labels = torch.from_numpy(self.labels[idx])
        return [{"clip_key": self.clip_keys[i], "label": labels[j],
                 **{name: a[j] for name, a in arrays.items()}}
                for j, i in enumerate(idx.tolist())]

    def close(self) -> None:
        self._handles.close()


class ChunkShuffleSampler(Sampler[int]):
    """Indices of a :class:`CatalogDataset` in an order that reads each chunk once.

    Clips are grouped in blocks by (shard, chunk) of the dataset's first feature set
    (blocks of :data:`~vida.store.shards.CHUNK_ROWS` rows, the layout shards are
    written in); the blocks are shuffled, and the clips of each run of ``window``
    consecutive blocks are shuffled together.  A batch therefore mixes clips of
    ``window`` chunks (of several shards, hence classes and videos), and the chunk
    cache needs to hold only two windows of chunks per set (a batch may straddle
    two).  ``set_epoch`` (or a new ``seed``) gives another order; the same seed and
    epoch give the same order.

    Use: ``DataLoader(dataset, batch_size=64, sampler=ChunkShuffleSampler(dataset))``.
    """

    def __init__(self, dataset: CatalogDataset, window: int = 16, seed: int = 0) -> None:
        self._blocks = chunk_blocks(*dataset._where[dataset.feature_sets[0]])
        self.window, self.seed, self.epoch = max(1, window), seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return sum(len(b) for b in self._blocks)

    def __iter__(self):
        return iter(chunk_shuffled(self._blocks, self.window, self.seed, self.epoch))


def chunk_blocks(paths: np.ndarray, rows: np.ndarray) -> list[np.ndarray]:
    """Positions of the located rows grouped by the stored chunk that holds them."""
    shard_codes = np.unique(paths, return_inverse=True)[1]
    block_of = shard_codes.astype(np.int64) * (1 << 40) + rows // CHUNK_ROWS
    order = np.argsort(block_of, kind="stable")
    return np.split(order, np.flatnonzero(np.diff(block_of[order])) + 1)


def chunk_shuffled(blocks: list[np.ndarray], window: int, seed: int, epoch: int) -> list[int]:
    """The blocks in a seeded order, the positions within each window of blocks shuffled."""
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(blocks))
    out: list[int] = []
    for start in range(0, len(order), window):
        group = np.concatenate([blocks[i] for i in order[start:start + window]])
        out += rng.permutation(group).tolist()
    return out
