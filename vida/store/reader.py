"""Reading many rows out of sealed shards at once, the way HDF5 serves them fastest.

Rows are grouped per shard, and each HDF5 chunk that holds a wanted row is read
once (a selection per row made HDF5 read and check the same chunk again for every
row, hundreds of times slower).  Sealed shards never change, so what was read
stays valid: datasets stay open (a few, per process) and their decoded, checked
chunks are kept in a per-process cache with a byte budget (``$VIDA_READ_CACHE_MB``,
default 512), from which rows are gathered with numpy indexing.  The next shuffled
batch, or the next epoch, then costs a memory copy instead of a read and a
checksum; HDF5's own chunk cache cannot serve this, because it only answers
hyperslab selections, and a selection of scattered rows is slow in HDF5 itself.
Each chunk of a shard is checked against its checksum when it is read: CRC-32C
since layout 4, CRC-32 in layout 3 (see :mod:`vida.store.shards`).  A chunk whose
every row is wanted, the usual case of reading a query's clips, is read by HDF5
straight into the caller's array and checked there, uncached: one copy, no cache
churn.  Chunks read in part (shuffled batches) go through the cache.  Shards with
small chunks and no checksums (the old 1-row layout) are read in runs, uncached.
A process forked with handles open drops them and opens its own, because an h5py
handle shared across ``fork`` returns garbage.
"""

from __future__ import annotations

import mmap
import os
import zlib
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

import crc32c
import h5py
import numpy as np
import pandas as pd

from vida.store.shards import CRC32C_DATASET, CRC_DATASET


class DamagedRead(Exception):
    """Raised by :func:`read_located`: which shard, which positions were asked of it."""

    def __init__(self, path: str, positions: np.ndarray, detail: str) -> None:
        super().__init__(path, detail)
        self.path, self.positions, self.detail = path, positions, detail


def _cache_bytes() -> int:
    """The chunk-cache budget of one process (``$VIDA_READ_CACHE_MB``, default 512)."""
    return int(float(os.environ.get("VIDA_READ_CACHE_MB", "512")) * (1 << 20))


# chunks of fewer rows than this (old shards: 1 row) are read in runs, not cached
_MIN_CACHED_CHUNK_ROWS = 8


class RawChunks:
    """The chunks of an unfiltered HDF5 dataset read as the file's bytes: each chunk
    is its rows, in order, at an offset that HDF5's chunk index gives once (sealed
    shards never change), so a chunk is one ``pread`` straight into its destination,
    as fast as reading the file itself."""

    def __init__(self, fd: int, offsets: np.ndarray) -> None:
        self.fd, self.offsets = fd, offsets

    @classmethod
    def of(cls, path: str, data: h5py.Dataset) -> RawChunks | None:
        if data.chunks is None or not data.dtype.isnative or \
                data.id.get_create_plist().get_nfilters():
            return None
        rows = data.chunks[0]
        offsets = np.full(-(-len(data) // rows), -1, dtype=np.int64)
        for i in range(data.id.get_num_chunks()):
            info = data.id.get_chunk_info(i)
            offsets[info.chunk_offset[0] // rows] = info.byte_offset
        if (offsets < 0).any():
            return None  # a chunk never written (not a sealed shard): through HDF5
        return cls(os.open(path, os.O_RDONLY), offsets)

    def read_into(self, index: int, dest: np.ndarray) -> None:
        """The first ``len(dest)`` rows of chunk ``index`` into ``dest`` (C-contiguous)."""
        view = memoryview(dest).cast("B")
        done = os.preadv(self.fd, [view], int(self.offsets[index]))
        if done != view.nbytes:
            raise OSError(f"chunk {index}: {done} of {view.nbytes} bytes in the file "
                          "(truncated)")


class ShardHandles:
    """Per process: open, read-only shard datasets and a cache of their chunks."""

    def __init__(self, size: int = 32, cache_bytes: int | None = None) -> None:
        self.size = size
        self.cache_bytes = _cache_bytes() if cache_bytes is None else cache_bytes
        self._reset()

    def _reset(self) -> None:
        self._files: OrderedDict[str, tuple[h5py.File, dict[str, h5py.Dataset]]] = OrderedDict()
        self._chunks: OrderedDict[tuple[str, str, int], np.ndarray] = OrderedDict()
        self._cached = 0
        self._crcs_of: dict[str, tuple[str, np.ndarray] | None] = {}
        self._buffers: dict[tuple, np.ndarray] = {}
        self._raw_of: dict[tuple[str, str], RawChunks | None] = {}
        self._pid = os.getpid()

    def dataset(self, path: str, name: str) -> h5py.Dataset:
        """The open dataset ``name`` of the file at ``path``."""
        handle, datasets = self._entry(path)
        found = datasets.get(name)
        if found is None:
            found = datasets[name] = handle[name]
        return found

    def chunk(self, path: str, name: str, data: h5py.Dataset, index: int) -> np.ndarray:
        """Chunk ``index`` of ``data`` (rows ``index * chunk_rows ...``), read once."""
        key = (path, name, index)
        found = self._chunks.get(key)
        if found is not None:
            self._chunks.move_to_end(key)
            return found
        rows = data.chunks[0]
        lo, hi = index * rows, min((index + 1) * rows, len(data))
        raw = self.raw(path, name, data)
        if raw is None:
            found = data[lo:hi]
        else:
            found = np.empty((hi - lo, *data.shape[1:]), dtype=data.dtype)
            raw.read_into(index, found)
        self.verify(path, name, index, found)
        if found.nbytes <= self.cache_bytes:
            self._chunks[key] = found
            self._cached += found.nbytes
            while self._cached > self.cache_bytes:
                self._cached -= self._chunks.popitem(last=False)[1].nbytes
        return found

    def chunk_into(self, path: str, name: str, data: h5py.Dataset, index: int,
                   out: np.ndarray, at: int) -> None:
        """The whole chunk ``index`` into ``out[at:...]``, checked there, uncached
        (straight from HDF5 where ``out`` holds the stored type contiguously)."""
        rows = data.chunks[0]
        lo, hi = index * rows, min((index + 1) * rows, len(data))
        if out.dtype == data.dtype and out.flags.c_contiguous:
            raw = self.raw(path, name, data)
            if raw is None:
                data.read_direct(out, np.s_[lo:hi], np.s_[at:at + hi - lo])
            else:
                raw.read_into(index, out[at:at + hi - lo])
            self.verify(path, name, index, out[at:at + hi - lo])
        else:  # another dtype (float16 stored, float32 wanted): check the stored bytes
            out[at:at + hi - lo] = self.chunk_once(path, name, data, index)

    def chunk_once(self, path: str, name: str, data: h5py.Dataset, index: int
                   ) -> np.ndarray:
        """Chunk ``index``, checked, in a buffer reused for the next such read (its
        rows are all wanted now: nothing to cache; a fresh array per chunk would pay
        the kernel's page faults again each time)."""
        rows = data.chunks[0]
        lo, hi = index * rows, min((index + 1) * rows, len(data))
        key = (data.dtype.str, data.shape[1:])
        buffer = self._buffers.get(key)
        if buffer is None or len(buffer) < hi - lo:
            buffer = self._buffers[key] = prefaulted((rows, *data.shape[1:]), data.dtype)
        raw = self.raw(path, name, data)
        if raw is None:
            data.read_direct(buffer, np.s_[lo:hi], np.s_[0:hi - lo])
        else:
            raw.read_into(index, buffer[:hi - lo])
        self.verify(path, name, index, buffer[:hi - lo])
        return buffer[:hi - lo]

    def raw(self, path: str, name: str, data: h5py.Dataset) -> RawChunks | None:
        """Where the chunks of an unfiltered dataset lie in its file (None: filtered)."""
        key = (path, name)
        if key not in self._raw_of:
            self._raw_of[key] = RawChunks.of(path, data)
            if len(self._raw_of) > _RAW_OPEN:  # an open descriptor each: bounded
                gone = self._raw_of.pop(next(iter(self._raw_of)))
                if gone is not None:
                    os.close(gone.fd)
        return self._raw_of[key]

    def verify(self, path: str, name: str, index: int, found: np.ndarray) -> None:
        """Raise OSError when chunk ``index``'s bytes fail their checksum."""
        sums = self._crcs(path) if name == "data" else None
        if sums is None:
            return
        kind, values = sums
        check = crc32c.crc32c if kind == CRC32C_DATASET else zlib.crc32
        if check(np.ascontiguousarray(found)) != int(values[index]):
            rows = len(found)
            label = "CRC-32C" if kind == CRC32C_DATASET else "CRC-32"
            raise OSError(f"chunk {index} (rows {index * rows}-{index * rows + rows - 1}) "
                          f"fails its {label} check")

    def _crcs(self, path: str) -> tuple[str, np.ndarray] | None:
        """Which checksum the shard's chunks carry and their values (None: written
        before checksums)."""
        if path not in self._crcs_of:
            handle = self._entry(path)[0]
            found = next((k for k in (CRC32C_DATASET, CRC_DATASET) if k in handle), None)
            self._crcs_of[path] = None if found is None else (found, handle[found][:])
        return self._crcs_of[path]

    def checked(self, path: str, name: str) -> bool:
        """Does the dataset carry per-chunk checksums that a chunk read checks?"""
        return name == "data" and self._crcs(path) is not None

    def _entry(self, path: str) -> tuple[h5py.File, dict[str, h5py.Dataset]]:
        if self._pid != os.getpid():
            self._reset()  # inherited from the parent: never reuse
        entry = self._files.get(path)
        if entry is None:
            entry = self._files[path] = (h5py.File(path, "r"), {})
            if len(self._files) > self.size:
                self._files.popitem(last=False)[1][0].close()
        else:
            self._files.move_to_end(path)
        return entry

    def close(self) -> None:
        if self._pid == os.getpid():
            for handle, _ in self._files.values():
                handle.close()
            for raw in self._raw_of.values():
                if raw is not None:
                    os.close(raw.fd)
        self._reset()

    def __getstate__(self) -> dict:
        return {"size": self.size, "cache_bytes": self.cache_bytes}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["size"], state.get("cache_bytes"))


def prefaulted(shape: tuple[int, ...], dtype: np.dtype | str) -> np.ndarray:
    """An empty array whose pages are already mapped (``MAP_POPULATE``: the kernel maps
    them all in one call).  Rows scattered into fresh memory cost a page fault per
    page touched, several times the copy itself."""
    dtype = np.dtype(dtype)
    size = int(np.prod(shape)) * dtype.itemsize
    if size < _POPULATE_FROM:
        return np.empty(shape, dtype=dtype)
    flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | getattr(mmap, "MAP_POPULATE", 0)
    return np.frombuffer(mmap.mmap(-1, size, flags=flags), dtype=dtype).reshape(shape)


_POPULATE_FROM = 1 << 22  # smaller arrays come from the allocator's warm memory


def _chunk_spans(rows: np.ndarray, chunk_rows: int) -> list[tuple[int, int]]:
    """Sorted unique rows -> [(i, j)) index ranges whose rows lie in consecutive chunks.

    HDF5 reads and checks a whole chunk for any selection that touches it, and its
    own cache keeps only a few (1 MiB per dataset, 8 MiB since HDF5 2.0), so each
    touched chunk must be read once: rows in adjacent chunks are served by one slice
    from the first to the last wanted row, rows further apart by separate slices."""
    chunk = rows // chunk_rows
    breaks = np.flatnonzero(np.diff(chunk) > 1) + 1
    return list(zip(np.r_[0, breaks].tolist(), np.r_[breaks, len(rows)].tolist(), strict=True))


def read_dataset_rows(dataset: h5py.Dataset, rows: np.ndarray) -> np.ndarray:
    """``dataset[rows]`` for any rows (any order, repeats allowed): every chunk that
    holds a wanted row is read once, in file order."""
    lo, hi = int(rows.min()), int(rows.max()) + 1
    if hi - lo == len(rows) and (np.diff(rows) == 1).all():  # a run in order: one read
        return dataset[lo:hi]
    unique, inverse = np.unique(rows, return_inverse=True)
    chunk_rows = dataset.chunks[0] if dataset.chunks else len(dataset)
    parts = []
    for i, j in _chunk_spans(unique, chunk_rows):
        a, b = int(unique[i]), int(unique[j - 1]) + 1
        block = dataset[a:b]
        parts.append(block if b - a == j - i else block[unique[i:j] - a])
    values = parts[0] if len(parts) == 1 else np.concatenate(parts)
    return values if len(unique) == len(rows) and (np.diff(rows) > 0).all() else values[inverse]


def _one_run(rows: np.ndarray) -> bool:
    return int(rows[-1]) - int(rows[0]) == len(rows) - 1 and (
        len(rows) == 1 or bool((np.diff(rows) == 1).all()))


def _read_into(dataset: h5py.Dataset, rows: np.ndarray, out: np.ndarray,
               where: np.ndarray) -> None:
    """``out[where] = dataset[rows]``, uncached; straight into ``out`` when both
    sides are one run in order, the usual case of reading a query's clips."""
    if _one_run(where) and _one_run(rows) and out.flags.c_contiguous:
        a, lo, n = int(where[0]), int(rows[0]), len(rows)
        dataset.read_direct(out, np.s_[lo:lo + n], np.s_[a:a + n])
    else:
        out[where] = read_dataset_rows(dataset, rows)


def _gather(handles: ShardHandles, path: str, name: str, rows: np.ndarray,
            out: np.ndarray, where: np.ndarray, cache: bool = True) -> None:
    """``out[where] = <dataset name of path>[rows]``, chunk by chunk through the
    cache (slices where a chunk's rows are one run on both sides)."""
    data = handles.dataset(path, name)
    chunk_rows = data.chunks[0] if data.chunks else 0
    if not handles.checked(path, name) and (chunk_rows < _MIN_CACHED_CHUNK_ROWS
                                            or handles.cache_bytes == 0):
        _read_into(data, rows, out, where)  # older shards: runs straight from HDF5
        return
    chunk_of = rows // chunk_rows
    if len(rows) > 1 and (np.diff(chunk_of) < 0).any():
        order = np.argsort(chunk_of, kind="stable")
        rows, where, chunk_of = rows[order], where[order], chunk_of[order]
    starts = np.flatnonzero(np.r_[True, chunk_of[1:] != chunk_of[:-1]])
    for i, j in zip(starts.tolist(), np.r_[starts[1:], len(rows)].tolist(), strict=True):
        index = int(chunk_of[i])
        local, dest = rows[i:j] - index * chunk_rows, where[i:j]
        whole = min(chunk_rows, len(data) - index * chunk_rows)
        if j - i == whole and _one_run(local) and int(local[0]) == 0 and _one_run(dest):
            handles.chunk_into(path, name, data, index, out, int(dest[0]))
            continue
        if j - i == whole and len(np.unique(local)) == whole:  # all of it, another order
            block = handles.chunk_once(path, name, data, index)
            _scatter(block, dest[np.argsort(local)], out)
            continue
        block = (handles.chunk(path, name, data, index) if cache
                 else handles.chunk_once(path, name, data, index))
        if _one_run(local) and _one_run(dest):
            out[int(dest[0]):int(dest[0]) + j - i] = block[int(local[0]):int(local[0]) + j - i]
        else:
            out[dest] = block[local]


def _scatter(block: np.ndarray, dest: np.ndarray, out: np.ndarray) -> None:
    """``out[dest] = block``: row by row where the rows are large (a plain copy each,
    no gathered temporary), by fancy indexing where they are small."""
    if block[0].nbytes < 4096:
        out[dest] = block
        return
    for row, at in enumerate(dest.tolist()):
        out[at] = block[row]


_RAW_OPEN = 512  # shards whose file descriptor and chunk index a process keeps
_PARALLEL_FROM = 1 << 26  # bulk reads this large run on several threads
_READ_THREADS = min(4, os.cpu_count() or 1)


def _read_shards_in_parallel(handles: ShardHandles, groups: list[tuple[str, np.ndarray]],
                             rows: np.ndarray, dataset: str, out: np.ndarray) -> bool:
    """A bulk read's shards on a few threads (``pread`` and CRC-32C release the GIL),
    each with its own buffer; False (nothing read) unless every shard reads raw."""
    if out.nbytes < _PARALLEL_FROM or _READ_THREADS < 2 or len(groups) > _RAW_OPEN:
        return False
    plans = {}
    for path, where in groups:  # HDF5 is touched here, on this thread only
        with _damage_named(path, where):
            data = handles.dataset(path, dataset)
            raw = handles.raw(path, dataset, data)
            if raw is None or not handles.checked(path, dataset) or data.dtype != out.dtype:
                return False
        plans[path] = (raw, data.chunks[0], len(data))
    from concurrent.futures import ThreadPoolExecutor

    def one(group: tuple[str, np.ndarray]) -> None:
        path, where = group
        with _damage_named(path, where):
            _gather_raw(handles, path, dataset, plans[path], rows[where], out, where)

    with ThreadPoolExecutor(_READ_THREADS) as pool:
        list(pool.map(one, groups))
    return True


def _gather_raw(handles: ShardHandles, path: str, name: str, plan: tuple,
                rows: np.ndarray, out: np.ndarray, where: np.ndarray) -> None:
    """:func:`_gather` of a raw-readable shard without HDF5 or the chunk cache (safe on
    a thread of its own: a buffer of its own, nothing shared is written)."""
    raw, chunk_rows, n = plan
    chunk_of = rows // chunk_rows
    if len(rows) > 1 and (np.diff(chunk_of) < 0).any():
        order = np.argsort(chunk_of, kind="stable")
        rows, where, chunk_of = rows[order], where[order], chunk_of[order]
    starts = np.flatnonzero(np.r_[True, chunk_of[1:] != chunk_of[:-1]])
    buffer = np.empty((chunk_rows, *out.shape[1:]), dtype=out.dtype)
    for i, j in zip(starts.tolist(), np.r_[starts[1:], len(rows)].tolist(), strict=True):
        index = int(chunk_of[i])
        local, dest = rows[i:j] - index * chunk_rows, where[i:j]
        whole = min(chunk_rows, n - index * chunk_rows)
        if j - i == whole and _one_run(local) and int(local[0]) == 0 and _one_run(dest):
            target = out[int(dest[0]):int(dest[0]) + whole]
            raw.read_into(index, target)
            handles.verify(path, name, index, target)
            continue
        raw.read_into(index, buffer[:whole])
        handles.verify(path, name, index, buffer[:whole])
        out[dest] = buffer[local]


def read_located(handles: ShardHandles, paths: np.ndarray, rows: np.ndarray,
                 dataset: str = "data", out: np.ndarray | None = None
                 ) -> np.ndarray | None:
    """Stack the rows at (``paths[i]``, ``rows[i]``) in the given order; None if empty.
    With ``out`` (a preallocated array: a whole set loaded once) the rows go there and
    chunks are not kept: each is read once and nothing would read it again."""
    if len(paths) == 0:
        return out
    codes, uniques = pd.factorize(paths)
    groups = [(str(path), np.flatnonzero(codes == g)) for g, path in enumerate(uniques)]
    with _damage_named(*groups[0]):
        first = handles.dataset(groups[0][0], dataset)
    if out is None and len(paths) * first.dtype.itemsize * int(np.prod(first.shape[1:])) \
            >= _PARALLEL_FROM:  # a large read is a bulk read: nothing in it is read twice
        out = prefaulted((len(paths), *first.shape[1:]), first.dtype)
    cache = out is None
    if out is None:
        out = prefaulted((len(paths), *first.shape[1:]), first.dtype)
    elif out.flags.c_contiguous and _read_shards_in_parallel(handles, groups, rows, dataset,
                                                             out):
        return out
    for path, where in groups:
        with _damage_named(path, where):
            _gather(handles, path, dataset, rows[where], out, where, cache=cache)
    return out


@contextmanager
def _damage_named(path: str, where: np.ndarray) -> Iterator[None]:
    """A checksum or a filter that failed (an OSError) as the shard's damaged read."""
    try:
        yield
    except OSError as exc:
        raise DamagedRead(path, where, str(exc).splitlines()[0]) from None
