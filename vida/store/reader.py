"""Reading many rows out of sealed shards at once, the way the shards serve them fastest.

Rows are grouped per shard, and each chunk that holds a wanted row is read once (a
selection per row made HDF5 read and check the same chunk again for every row,
hundreds of times slower).  Each shard dataset is a chunk source
(:mod:`vida.store.chunks`): most are raw, a ``pread`` per chunk with no HDF5 once
their chunk index is known, which a process keeps for a few hundred shards.

Two ways through, by what the caller wants:

* A bulk read (``out`` given, a whole set loaded once, or a read of 64 MB or more):
  every chunk is read once and nothing would read it again, so nothing is cached.
  A chunk whose rows are all wanted in order goes straight into the caller's array
  and is checked there: one copy.  Raw shards are read on a few threads (``pread``
  and CRC-32C release the GIL), each thread filling its own part of ``out``, so the
  pages of a new array are also faulted in on those threads.
* Shuffled batches (small reads): decoded, checked chunks are kept in a per-process
  cache with a byte budget (``$VIDA_READ_CACHE_MB``, default 512), from which rows
  are gathered with numpy indexing, so the next batch, or the next epoch, costs a
  memory copy instead of a read and a checksum.  HDF5's own chunk cache cannot serve
  this: it only answers hyperslab selections, and a selection of scattered rows is
  slow in HDF5 itself.

Shards with small chunks and no checksums (the old 1-row layout) are read in runs
through HDF5, uncached.  A process forked with handles open drops them and opens its
own, because an h5py handle shared across ``fork`` returns garbage.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import h5py
import numpy as np
import pandas as pd

from vida.store.chunks import Checksums, ChunkSource, H5Chunks, RawChunks


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
_RAW_OPEN = 512  # raw shards (an open descriptor and a chunk index each) a process keeps
_PARALLEL_FROM = 1 << 26  # bulk reads this large run on several threads
_READ_THREADS = min(4, os.cpu_count() or 1)


class ShardHandles:
    """Per process: open shard datasets, their chunk sources and a cache of chunks."""

    def __init__(self, size: int = 32, cache_bytes: int | None = None) -> None:
        self.size = size
        self.cache_bytes = _cache_bytes() if cache_bytes is None else cache_bytes
        self._raw: OrderedDict[tuple[str, str], RawChunks | None] = OrderedDict()
        self._reset()

    def _reset(self) -> None:
        self._files: OrderedDict[str, tuple[h5py.File, dict[str, h5py.Dataset]]] = OrderedDict()
        self._chunks: OrderedDict[tuple[str, str, int], np.ndarray] = OrderedDict()
        self._cached = 0
        self._sums: dict[str, Checksums | None] = {}
        self._buffers: dict[tuple, np.ndarray] = {}
        for raw in self._raw.values():  # a forked child's copies of the parent's fds
            if raw is not None:
                raw.close()
        self._raw = OrderedDict()
        self._pid = os.getpid()

    def dataset(self, path: str, name: str) -> h5py.Dataset:
        """The open dataset ``name`` of the file at ``path``."""
        handle, datasets = self._entry(path)
        found = datasets.get(name)
        if found is None:
            found = datasets[name] = handle[name]
        return found

    def source(self, path: str, name: str) -> ChunkSource:
        """The chunks of dataset ``name`` of ``path``: raw where they can be (kept,
        so a shard read again costs no HDF5 open), else through HDF5."""
        if self._pid != os.getpid():
            self._reset()
        key = (path, name)
        if key in self._raw:
            self._raw.move_to_end(key)
            found = self._raw[key]
            return found if found is not None else H5Chunks(self.dataset(path, name),
                                                            self.sums(path, name))
        found = self._raw[key] = RawChunks.open(path, name, checked=name == "data")
        if len(self._raw) > _RAW_OPEN:
            gone = self._raw.popitem(last=False)[1]
            if gone is not None:
                gone.close()
        return found if found is not None else H5Chunks(self.dataset(path, name),
                                                        self.sums(path, name))

    def sums(self, path: str, name: str) -> Checksums | None:
        """The per-chunk checksums of a shard's ``data`` (None: none kept)."""
        if name != "data":
            return None
        if path not in self._sums:
            self._sums[path] = Checksums.in_file(self._entry(path)[0].id)
        return self._sums[path]

    def kept(self, path: str, name: str, source: ChunkSource, index: int) -> np.ndarray:
        """Chunk ``index`` of ``source``, read once and then served from the cache."""
        key = (path, name, index)
        found = self._chunks.get(key)
        if found is not None:
            self._chunks.move_to_end(key)
            return found
        found = np.empty((source.rows_in(index), *source.row_shape), dtype=source.dtype)
        source.into(index, found)
        if found.nbytes <= self.cache_bytes:
            self._chunks[key] = found
            self._cached += found.nbytes
            while self._cached > self.cache_bytes:
                self._cached -= self._chunks.popitem(last=False)[1].nbytes
        return found

    def buffer(self, source: ChunkSource) -> np.ndarray:
        """This process's reused buffer for one chunk of ``source`` (a fresh array per
        chunk would pay the kernel's page faults again each time)."""
        return _buffer_in(self._buffers, source)

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
        self._reset()

    def __getstate__(self) -> dict:
        return {"size": self.size, "cache_bytes": self.cache_bytes}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["size"], state.get("cache_bytes"))


def _buffer_in(buffers: dict, source: ChunkSource) -> np.ndarray:
    key = (source.dtype.str, source.row_shape)
    found = buffers.get(key)
    if found is None or len(found) < source.chunk_rows:
        found = buffers[key] = source.buffer()
    return found


_thread = threading.local()


def _thread_buffer(source: ChunkSource) -> np.ndarray:
    """A reading thread's own buffer for one chunk of ``source``."""
    if not hasattr(_thread, "buffers"):
        _thread.buffers = {}
    return _buffer_in(_thread.buffers, source)


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


def _read_runs(dataset: h5py.Dataset, rows: np.ndarray, out: np.ndarray,
               where: np.ndarray) -> None:
    """``out[where] = dataset[rows]`` through HDF5, uncached; straight into ``out``
    when both sides are one run in order."""
    if _one_run(where) and _one_run(rows) and out.flags.c_contiguous:
        a, lo, n = int(where[0]), int(rows[0]), len(rows)
        dataset.read_direct(out, np.s_[lo:lo + n], np.s_[a:a + n])
    else:
        out[where] = read_dataset_rows(dataset, rows)


def _by_chunk(rows: np.ndarray, where: np.ndarray, chunk_rows: int
              ) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """(chunk index, rows within it, their places in ``out``) for each chunk touched,
    in chunk order."""
    chunk_of = rows // chunk_rows
    if len(rows) > 1 and (np.diff(chunk_of) < 0).any():
        order = np.argsort(chunk_of, kind="stable")
        rows, where, chunk_of = rows[order], where[order], chunk_of[order]
    starts = np.flatnonzero(np.r_[True, chunk_of[1:] != chunk_of[:-1]])
    for i, j in zip(starts.tolist(), np.r_[starts[1:], len(rows)].tolist(), strict=True):
        index = int(chunk_of[i])
        yield index, rows[i:j] - index * chunk_rows, where[i:j]


Fetch = Callable[[int], np.ndarray]  # chunk index -> the chunk, checked


def _gather(source: ChunkSource, rows: np.ndarray, out: np.ndarray, where: np.ndarray,
            once: Fetch, kept: Fetch) -> None:
    """``out[where] = source[rows]``, chunk by chunk: a chunk wanted whole and in order
    straight into ``out``; one wanted whole in another order through ``once`` (a
    reused buffer); a part of one through ``kept`` (the cache, where there is one)."""
    direct = out.dtype == source.dtype and out.flags.c_contiguous
    for index, local, dest in _by_chunk(rows, where, source.chunk_rows):
        whole = source.rows_in(index)
        in_order = int(local[0]) == 0 and _one_run(local) and _one_run(dest)
        if len(local) == whole and in_order:
            at = int(dest[0])
            if direct:
                source.into(index, out[at:at + whole])
            else:  # another dtype (float16 stored, float32 wanted): cast as copied
                out[at:at + whole] = once(index)
        elif len(local) == whole and len(np.unique(local)) == whole:
            _scatter(once(index), dest[np.argsort(local)], out)
        else:
            block = kept(index)
            if _one_run(local) and _one_run(dest):
                a, at = int(local[0]), int(dest[0])
                out[at:at + len(local)] = block[a:a + len(local)]
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


def _gather_shard(handles: ShardHandles, path: str, name: str, rows: np.ndarray,
                  out: np.ndarray, where: np.ndarray, cache: bool) -> None:
    """:func:`_gather` of one shard on this thread, through the cache when ``cache``."""
    source = handles.source(path, name)
    if source.sums is None and (source.chunk_rows < _MIN_CACHED_CHUNK_ROWS
                                or handles.cache_bytes == 0):
        _read_runs(handles.dataset(path, name), rows, out, where)  # older shards
        return
    buffer = handles.buffer(source)

    def once(index: int) -> np.ndarray:
        return source.read(index, buffer)

    def kept(index: int) -> np.ndarray:
        return handles.kept(path, name, source, index)

    _gather(source, rows, out, where, once, kept if cache else once)


def _read_shards_in_parallel(handles: ShardHandles, groups: list[tuple[str, np.ndarray]],
                             rows: np.ndarray, name: str, out: np.ndarray) -> bool:
    """A bulk read's raw shards on a few threads, each thread filling its own part of
    ``out`` through a buffer of its own (False: too small to be worth them, or too
    many shards to keep open at once).  This thread opens each shard (HDF5 serves one
    thread at a time) and hands it to the pool, which meanwhile reads the shards
    opened before it; shards that HDF5 must read are read here after the others."""
    if out.nbytes < _PARALLEL_FROM or _READ_THREADS < 2 or not out.flags.c_contiguous \
            or len(groups) > _RAW_OPEN:  # more would evict (close) shards being read
        return False

    def one(path: str, where: np.ndarray, source: RawChunks) -> None:
        with _damage_named(path, where):
            _gather(source, rows[where], out, where, *[_thread_reader(source)] * 2)

    through_hdf5, pending, pool = [], [], ThreadPoolExecutor(_READ_THREADS)
    try:
        for path, where in groups:
            with _damage_named(path, where):
                source = handles.source(path, name)
            if isinstance(source, RawChunks):
                pending.append(pool.submit(one, path, where, source))
            else:
                through_hdf5.append((path, where))
    finally:
        pool.shutdown()  # every thread done with ``out`` before this returns
        for done in pending:
            done.result()
    for path, where in through_hdf5:
        with _damage_named(path, where):
            _gather_shard(handles, path, name, rows[where], out, where, cache=False)
    return True


def _thread_reader(source: ChunkSource) -> Fetch:
    """Chunk index -> the chunk, checked, in this thread's own buffer."""
    def once(index: int) -> np.ndarray:
        return source.read(index, _thread_buffer(source))
    return once


def read_located(handles: ShardHandles, paths: np.ndarray, rows: np.ndarray,
                 dataset: str = "data", out: np.ndarray | None = None
                 ) -> np.ndarray | None:
    """Stack the rows at (``paths[i]``, ``rows[i]``) in the given order; None if empty.
    With ``out`` (a preallocated array: a whole set loaded once), or when the rows
    come to 64 MB or more, the read is a bulk read: chunks are not kept, each is read
    once and nothing would read it again."""
    if len(paths) == 0:
        return out
    codes, uniques = pd.factorize(paths)
    groups = [(str(path), np.flatnonzero(codes == g)) for g, path in enumerate(uniques)]
    bulk = out is not None
    if out is None:
        with _damage_named(*groups[0]):
            first = handles.source(groups[0][0], dataset)
        out = np.empty((len(paths), *first.row_shape), first.dtype)  # numpy asks for huge pages
        bulk = out.nbytes >= _PARALLEL_FROM
    if bulk and _read_shards_in_parallel(handles, groups, rows, dataset, out):
        return out
    for path, where in groups:
        with _damage_named(path, where):
            _gather_shard(handles, path, dataset, rows[where], out, where, cache=not bulk)
    return out


@contextmanager
def _damage_named(path: str, where: np.ndarray) -> Iterator[None]:
    """A checksum or a filter that failed (an OSError) as the shard's damaged read."""
    try:
        yield
    except OSError as exc:
        raise DamagedRead(path, where, str(exc).splitlines()[0]) from None
