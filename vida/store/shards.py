"""Writing feature arrays into sealed HDF5 shards, then pointing the catalog at them.

A shard is one HDF5 file of one feature set::

    data     [n, *shape]  chunked one row per chunk, gzip + shuffle
    keys     [n]          UTF-8 clip keys (label names for prototype sets)
    extras/<name> [n, ...] optional per-row side arrays (e.g. a condition mask)

Order of operations, so that a crash at any instant leaves the catalog consistent:

1. rows stream into ``<name>.h5.partial`` (never referenced by the catalog);
2. the file is flushed, closed and fsynced, its SHA-256 computed, and it is
   renamed to ``<name>.h5`` (atomic on POSIX): the shard is *sealed*;
3. one catalog transaction inserts the ``shards`` row and every ``features`` row.

A crash before 3 leaves only files the catalog does not know (a ``.partial`` or a
sealed orphan); ``vida-batch fsck --repair`` removes them.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any

import h5py
import numpy as np

from vida.catalog.database import Catalog
from vida.catalog.schema import Feature, FeatureSet, Shard, utcnow
from vida.catalog.writes import upsert

PARTIAL_SUFFIX = ".partial"
SHARD_SUFFIX = ".h5"
_STR = h5py.string_dtype(encoding="utf-8")


def sha256_of(path: Path, block: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class ShardFile:
    """One shard being written row by row under its temporary name."""

    def __init__(self, folder: Path, shape: tuple[int, ...], dtype: np.dtype) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        stem = f"{utcnow():%Y%m%dT%H%M%S}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.final_path = folder / f"{stem}{SHARD_SUFFIX}"
        self.partial_path = folder / f"{stem}{SHARD_SUFFIX}{PARTIAL_SUFFIX}"
        self.shape = shape
        self.keys: list[str] = []
        self._h5 = h5py.File(self.partial_path, "w")
        self._data = self._h5.create_dataset(
            "data",
            shape=(0, *shape),
            maxshape=(None, *shape),
            dtype=dtype,
            chunks=(1, *shape),
            compression="gzip",
            compression_opts=4,
            shuffle=True,
        )
        self._keys = self._h5.create_dataset("keys", shape=(0,), maxshape=(None,), dtype=_STR)
        self._extras: dict[str, h5py.Dataset] = {}

    def __len__(self) -> int:
        return len(self.keys)

    def append(self, key: str, array: np.ndarray, extras: dict[str, np.ndarray]) -> None:
        n = len(self.keys)
        self._data.resize(n + 1, axis=0)
        self._data[n] = array
        self._keys.resize(n + 1, axis=0)
        self._keys[n] = key
        for name, value in extras.items():
            value = np.asarray(value)
            ds = self._extras.get(name)
            if ds is None:
                if n:
                    raise ValueError(f"extra array {name!r} must be given for every row")
                ds = self._h5.create_dataset(
                    f"extras/{name}",
                    shape=(0, *value.shape),
                    maxshape=(None, *value.shape),
                    dtype=value.dtype,
                    chunks=(1, *value.shape) if value.shape else (1024,),
                )
                self._extras[name] = ds
            ds.resize(n + 1, axis=0)
            ds[n] = value
        if set(extras) != set(self._extras):
            raise ValueError(f"row {key!r}: extras {sorted(extras)} != {sorted(self._extras)}")
        self.keys.append(key)

    def seal(self) -> tuple[Path, str]:
        """Flush, close, fsync and rename; returns the final path and its SHA-256."""
        self._h5.attrs["n_rows"] = len(self.keys)
        self._h5.flush()
        self._h5.close()
        with open(self.partial_path, "rb+") as fh:
            os.fsync(fh.fileno())
        digest = sha256_of(self.partial_path)
        os.replace(self.partial_path, self.final_path)
        _fsync_dir(self.final_path.parent)
        return self.final_path, digest

    def discard(self) -> None:
        try:
            self._h5.close()
        finally:
            self.partial_path.unlink(missing_ok=True)


class FeatureWriter:
    """Streams ``(key, array)`` rows of one feature set into sealed, cataloged shards.

    Use as a context manager; on normal exit the last shard is sealed and
    committed, on an exception it is discarded (rows already committed stay).
    """

    def __init__(
        self,
        catalog: Catalog,
        store_root: Path,
        feature_set: FeatureSet,
        rows_per_shard: int = 256,
    ) -> None:
        self.catalog = catalog
        self.root = store_root
        self.name = feature_set.name
        self.shape = tuple(feature_set.shape)
        self.dtype = np.dtype(feature_set.dtype)
        self.rows_per_shard = rows_per_shard
        self.folder = store_root / feature_set.name
        self._shard: ShardFile | None = None
        self._seen: set[str] = set()
        self.committed = 0

    def add(self, key: str, array: Any, **extras: Any) -> None:
        array = np.asarray(array)
        if array.shape != self.shape:
            raise ValueError(
                f"{self.name}: row {key!r} has shape {array.shape}, the feature set "
                f"expects {self.shape}"
            )
        if key in self._seen:
            raise ValueError(f"{self.name}: key {key!r} given twice in one write")
        self._seen.add(key)
        if self._shard is None:
            self._shard = ShardFile(self.folder, self.shape, self.dtype)
        self._shard.append(key, array.astype(self.dtype, copy=False), extras)
        if len(self._shard) >= self.rows_per_shard:
            self.flush()

    def flush(self) -> None:
        """Seal the current shard and commit its catalog rows (no-op when empty)."""
        shard, self._shard = self._shard, None
        if shard is None or not len(shard):
            if shard is not None:
                shard.discard()
            return
        path, digest = shard.seal()
        rel = path.relative_to(self.root).as_posix()
        with self.catalog.transaction() as session:
            row = Shard(feature_set=self.name, path=rel, n_rows=len(shard), sha256=digest)
            session.add(row)
            session.flush()
            upsert(
                session,
                Feature,
                (
                    {"feature_set": self.name, "clip_key": k, "shard_id": row.id, "row": i}
                    for i, k in enumerate(shard.keys)
                ),
                key=("feature_set", "clip_key"),
            )
        self.committed += len(shard)

    def close(self) -> None:
        self.flush()

    def __enter__(self) -> FeatureWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.flush()
        elif self._shard is not None:
            self._shard.discard()
            self._shard = None
