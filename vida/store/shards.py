"""Writing feature arrays into sealed HDF5 shards, then pointing the catalog at them.

A shard is one HDF5 file of one feature set::

    data     [n, *shape]  chunks of CHUNK_ROWS rows (older shards: 1 row, gzip)
    keys     [n]          UTF-8 clip keys (label names for prototype sets)
    extras/<name> [n, ...] optional per-row side arrays (e.g. a condition mask)

Order of operations, so that a crash at any instant leaves the catalog consistent:

1. rows gather in memory; the HDF5 file is built in memory and its bytes written
   to ``<name>.h5.partial`` (never referenced by the catalog);
2. the file is fsynced, its SHA-256 computed, and it is
   renamed to ``<name>.h5`` (atomic on POSIX): the shard is *sealed*;
3. one catalog transaction inserts the ``shards`` row and every ``features`` row.

Steps 1-2 need no catalog (:class:`ShardBundle`, this module: it imports nothing of
the catalog, so a worker process stays light), so they run in workers, on any
machine that sees the store; step 3 (:func:`vida.store.writers.commit_sealed`)
runs in the driver.

A crash before 3 leaves only files the catalog does not know (a ``.partial`` or a
sealed orphan); ``vida-batch fsck --repair`` removes them.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import crc32c
import h5py
import numpy as np

from vida.clock import utcnow
from vida.errors import UsageError
from vida.store.atomic import write_whole
from vida.store.chunk_index import CRC32C_DATASET, user_block_size, write_into_user_block
from vida.store.errors import disk_full, is_disk_full

PARTIAL_SUFFIX = ".partial"
SHARD_SUFFIX = ".h5"
_STR = h5py.string_dtype(encoding="utf-8")


def sha256_of(path: Path, block: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(block):
            digest.update(chunk)
    return digest.hexdigest()


# How new shards lay out their data, chosen by ``bin/bench --only layouts`` (its
# figures are in docs/performance.md): uncompressed 64-row chunks, because
# decompression, not the disk, bounds a compressed read at any chunk size.
# Each chunk carries one checksum, its CRC-32C in ``chunk_crc32c`` (layout 4),
# which the reader checks when it reads the chunk: the CPU's CRC instruction
# computes it at memory speed.  Since layout 5 the shard's first bytes (HDF5's
# user block) also hold where each chunk lies and its CRC
# (:mod:`vida.store.chunk_index`), so a reader needs no HDF5 call to read the data.
# Layout 3 carried HDF5's Fletcher-32 plus a zlib CRC-32 (Fletcher-32 cannot tell a
# 0x0000 word from 0xFFFF, so a block of zeros with every bit flipped passed it),
# both far slower.  Either way a damaged row is detected when it is read and named,
# not served.  Recorded in every shard's ``layout`` attribute; shards written before
# (version 4: no user block; version 3: Fletcher-32 + CRC-32; version 2: no CRC;
# 1-row gzip chunks, no attribute) read through the same code.
CHUNK_ROWS = 64
COMPRESSION: str | None = None
LAYOUT_VERSION = 5
CRC_DATASET = "chunk_crc32"  # layout 3


def chunk_crcs(data: np.ndarray, chunk_rows: int) -> np.ndarray:
    """CRC-32C of each run of ``chunk_rows`` rows of a C-contiguous array."""
    return np.array([crc32c.crc32c(data[i:i + chunk_rows])
                     for i in range(0, len(data), chunk_rows)], dtype=np.uint32)


class ShardFile:
    """One shard being written.

    Rows are kept in memory (a shard is at most a few hundred rows); :meth:`seal`
    builds the HDF5 file in memory, so the chunking is free to span many rows, and
    writes its bytes with plain file I/O under the ``.partial`` name: a full disk is
    then one clean ``OSError`` of ours, never an HDF5 library call failing halfway
    (h5py retries such closes when collecting the object and prints tracebacks)."""

    def __init__(self, folder: Path, shape: tuple[int, ...], dtype: np.dtype) -> None:
        self.folder = folder
        stem = f"{utcnow():%Y%m%dT%H%M%S}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.final_path = folder / f"{stem}{SHARD_SUFFIX}"
        self.partial_path = folder / f"{stem}{SHARD_SUFFIX}{PARTIAL_SUFFIX}"
        self.shape = shape
        self.dtype = np.dtype(dtype)
        self.keys: list[str] = []
        self._rows: list[np.ndarray] = []
        self._extras: dict[str, list[np.ndarray]] = {}

    def __len__(self) -> int:
        return len(self.keys)

    def append(self, key: str, array: np.ndarray, extras: dict[str, np.ndarray]) -> None:
        if self.keys and set(extras) != set(self._extras):
            raise ValueError(f"row {key!r}: extras {sorted(extras)} != {sorted(self._extras)}"
                             " (extra arrays must be given for every row)")
        row = np.asarray(array, dtype=self.dtype)
        if self.dtype.itemsize < 4 and not np.isfinite(row).all() and \
                np.isfinite(np.asarray(array)).all():
            raise UsageError(f"row {key!r}: values beyond {self.dtype.name}'s range "
                             f"(largest {np.finfo(self.dtype).max:g}); store this set as "
                             "float32")
        self._rows.append(row)
        for name, value in extras.items():
            self._extras.setdefault(name, []).append(np.asarray(value))
        self.keys.append(key)

    def _image(self) -> bytes:
        """The shard as HDF5 bytes, built in memory."""
        n = len(self.keys)
        chunk = max(1, min(CHUNK_ROWS, n))
        buffer = io.BytesIO()
        data = np.ascontiguousarray(np.stack(self._rows))
        crcs = chunk_crcs(data, chunk)
        with h5py.File(buffer, "w", userblock_size=user_block_size(len(crcs))) as h5:
            h5.create_dataset("data", data=data, chunks=(chunk, *self.shape),
                              compression=COMPRESSION)
            h5.create_dataset(CRC32C_DATASET, data=crcs)
            h5.create_dataset("keys", data=np.array(self.keys, dtype=object), dtype=_STR)
            for name, values in self._extras.items():
                stacked = np.stack(values)
                h5.create_dataset(f"extras/{name}", data=stacked,
                                  chunks=(chunk, *stacked.shape[1:]))
            h5.attrs["n_rows"] = n
            h5.attrs["layout"] = json.dumps({"version": LAYOUT_VERSION, "chunk_rows": chunk,
                                             "compression": COMPRESSION,
                                             "checksum": "crc32c",
                                             "chunk_index": "user block"})
        image = bytearray(buffer.getbuffer())
        write_into_user_block(image, "data", crcs)
        return bytes(image)

    def seal(self) -> tuple[Path, str]:
        """Write under the temporary name, fsync, rename; returns the final path and
        the SHA-256 of its bytes."""
        image = self._image()
        self._rows, self._extras = [], {}
        self.folder.mkdir(parents=True, exist_ok=True)
        write_whole(self.final_path, image, self.partial_path)
        return self.final_path, hashlib.sha256(image).hexdigest()

    def discard(self) -> None:
        self._rows, self._extras = [], {}
        self.partial_path.unlink(missing_ok=True)


@dataclass(frozen=True)
class SetLayout:
    """What a shard writer needs of a feature set (no catalog handle: picklable)."""

    name: str
    shape: tuple[int, ...]
    dtype: str

    @classmethod
    def of(cls, fs: Any) -> SetLayout:
        return cls(fs.name, tuple(int(s) for s in fs.shape), str(fs.dtype))


@dataclass
class SealedShard:
    feature_set: str
    path: str  # relative to the store root
    sha256: str
    keys: list[str]


# A catalog record to commit with the shards: (table, row, key columns).  The table is
# named (``"clips"``) or given as its ORM class; a name keeps the worker that builds
# the record from importing the catalog's schema.
Record = tuple[Any, dict[str, Any], tuple[str, ...]]


@dataclass
class SealedBundle:
    """Sealed shards and the catalog records that go with them: what a worker hands
    back, and what the driver commits in one transaction
    (:func:`vida.store.writers.commit_sealed`)."""

    shards: list[SealedShard] = field(default_factory=list)
    records: list[Record] = field(default_factory=list)

    @property
    def n_rows(self) -> int:
        return sum(len(s.keys) for s in self.shards)

    def paths(self, root: Path) -> list[Path]:
        return [root / s.path for s in self.shards]


class ShardBundle:
    """Streams rows of several feature sets into shard files and seals them on
    request, without touching the catalog: the part of writing a worker does."""

    def __init__(self, store_root: Path, layouts: list[SetLayout]) -> None:
        self.root = store_root
        self.sets = {layout.name: layout for layout in layouts}
        self._shards: dict[str, ShardFile] = {}
        self._seen: dict[str, set[str]] = {name: set() for name in self.sets}
        self._records: list[Record] = []

    def add(
        self,
        key: str,
        arrays: dict[str, Any],
        extras: dict[str, dict[str, Any]] | None = None,
        records: list[Record] = (),
    ) -> None:
        """Append ``arrays`` (feature set -> array) of ``key`` and queue catalog
        ``records`` (table, row, key columns: :data:`Record`) to be committed with them."""
        for name, array in arrays.items():
            layout = self.sets.get(name)
            if layout is None:
                raise ValueError(f"feature set {name!r} is not part of this writer")
            array = np.asarray(array)
            if array.shape != layout.shape:
                raise UsageError(f"{name}: row {key!r} has shape {array.shape}, the feature "
                                 f"set expects {layout.shape}")
            if key in self._seen[name]:
                raise UsageError(f"{name}: key {key!r} given twice in one write")
        for name, array in arrays.items():
            self._seen[name].add(key)
            shard = self._shards.get(name)
            if shard is None:
                layout = self.sets[name]
                shard = self._shards[name] = ShardFile(self.root / name, layout.shape,
                                                       np.dtype(layout.dtype))
            shard.append(key, np.asarray(array),
                         (extras or {}).get(name, {}))
        self._records.extend(records)

    @property
    def pending(self) -> int:
        return max([len(s) for s in self._shards.values()] + [len(self._records)])

    def seal(self) -> SealedBundle:
        """Seal every open shard; returns them with the queued records.  A full disk
        is the job's fault, said in one line (:class:`~vida.store.errors.StoreFull`)."""
        shards, self._shards = self._shards, {}
        records, self._records = self._records, []
        bundle = SealedBundle(records=records)
        pending = list(shards.items())
        try:
            while pending:
                name, shard = pending.pop(0)
                if len(shard):
                    path, digest = shard.seal()
                    bundle.shards.append(SealedShard(
                        name, path.relative_to(self.root).as_posix(), digest, list(shard.keys)))
                else:
                    shard.discard()
        except OSError as exc:
            for _, shard in pending:
                shard.discard()
            for sealed in bundle.shards:  # sealed, never to be committed: not orphans
                (self.root / sealed.path).unlink(missing_ok=True)
            if is_disk_full(exc):
                raise disk_full(self.root) from None
            raise
        return bundle

    def discard(self) -> None:
        for shard in self._shards.values():
            shard.discard()
        self._shards = {}
        self._records = []
