"""Where one shard dataset's chunks come from, and how each is checked.

A chunk source answers "chunk ``i``, checked, into this memory".  Two kinds:

* :class:`RawChunks` -- an unfiltered dataset of a sealed shard.  Its chunks are its
  rows, in order, at byte offsets that HDF5's chunk index gives once (sealed shards
  never change), so a chunk is one ``pread`` straight into its destination, as fast
  as reading the file itself.  Once built it holds a file descriptor, the offsets and
  the checksums, and never touches HDF5 again: reading a shard a second time costs
  no HDF5 open, and a chunk read releases the GIL, so several threads read at once.
* :class:`H5Chunks` -- anything else (a filtered or compressed dataset, a shard not
  sealed): HDF5 reads it.

Each chunk is checked against its checksum when it is read: CRC-32C since layout 4,
zlib CRC-32 in layout 3 (see :mod:`vida.store.shards`); shards written before
checksums are served unchecked.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable

import crc32c
import h5py
import numpy as np

from vida.store.shards import CRC32C_DATASET, CRC_DATASET

_CHECKS = {CRC32C_DATASET: ("CRC-32C", crc32c.crc32c), CRC_DATASET: ("CRC-32", zlib.crc32)}


class Checksums:
    """One checksum per chunk and the function that computes it."""

    def __init__(self, kind: str, values: np.ndarray) -> None:
        self.label, self._compute = _CHECKS[kind]
        self.values = values

    @classmethod
    def in_file(cls, fid: h5py.h5f.FileID) -> Checksums | None:
        """The shard's per-chunk checksums (None: written before checksums), through
        HDF5's low-level interface."""
        root = h5py.h5g.open(fid, b"/")
        kind = next((k for k in _CHECKS if root.links.exists(k.encode())), None)
        if kind is None:
            return None
        data = h5py.h5d.open(fid, kind.encode())
        values = np.empty(data.shape, dtype=data.dtype)
        data.read(h5py.h5s.ALL, h5py.h5s.ALL, values)
        data.close()
        return cls(kind, values)

    def verify(self, index: int, found: np.ndarray) -> None:
        """Raise OSError when chunk ``index``'s bytes fail their checksum."""
        if self._compute(np.ascontiguousarray(found)) != int(self.values[index]):
            first = index * len(found)
            raise OSError(f"chunk {index} (rows {first}-{first + len(found) - 1}) "
                          f"fails its {self.label} check")


class ChunkSource:
    """The chunks of one dataset: ``chunk_rows`` rows each, ``length`` rows in all."""

    def __init__(self, data: h5py.Dataset | h5py.h5d.DatasetID, sums: Checksums | None,
                 chunk_rows: int) -> None:
        self.chunk_rows, self.length = chunk_rows, data.shape[0]
        self.dtype, self.row_shape = data.dtype, tuple(data.shape[1:])
        self.sums = sums

    def rows_in(self, index: int) -> int:
        """How many rows chunk ``index`` holds (the last may be short)."""
        return min(self.chunk_rows, self.length - index * self.chunk_rows)

    def into(self, index: int, dest: np.ndarray) -> None:
        """Chunk ``index``, checked, into ``dest``: C-contiguous, the stored type, the
        chunk's rows (or its first ``len(dest)`` rows)."""
        self._read(index, dest)
        if self.sums is not None:
            self.sums.verify(index, dest)

    def read(self, index: int, buffer: np.ndarray) -> np.ndarray:
        """Chunk ``index``, checked, in ``buffer`` (at least a chunk of the stored type)."""
        found = buffer[:self.rows_in(index)]
        self.into(index, found)
        return found

    def buffer(self) -> np.ndarray:
        """Memory for one chunk of this source."""
        return np.empty((self.chunk_rows, *self.row_shape), dtype=self.dtype)

    def _read(self, index: int, dest: np.ndarray) -> None:
        raise NotImplementedError


class H5Chunks(ChunkSource):
    """Chunks that HDF5 reads (and unfilters)."""

    def __init__(self, data: h5py.Dataset, sums: Checksums | None) -> None:
        super().__init__(data, sums, data.chunks[0] if data.chunks else len(data))
        self.data = data

    def _read(self, index: int, dest: np.ndarray) -> None:
        lo = index * self.chunk_rows
        self.data.read_direct(dest, np.s_[lo:lo + len(dest)], np.s_[0:len(dest)])


class RawChunks(ChunkSource):
    """Chunks read as the file's bytes, one ``pread`` each, without HDF5."""

    def __init__(self, data: h5py.h5d.DatasetID, sums: Checksums | None, chunk_rows: int,
                 fd: int, offsets: np.ndarray) -> None:
        super().__init__(data, sums, chunk_rows)
        self.fd, self.offsets = fd, offsets

    @classmethod
    def open(cls, path: str, name: str, checked: bool) -> RawChunks | None:
        """The raw chunks of dataset ``name`` (and the shard's checksums when
        ``checked``); None where HDF5 must read them (filtered, contiguous, not in
        native byte order, a chunk never written).  HDF5's low-level interface opens
        only what this needs: a cold read opens every shard it touches."""
        fid = h5py.h5f.open(os.fsencode(path), h5py.h5f.ACC_RDONLY)
        data = h5py.h5d.open(fid, name.encode())
        try:
            layout = data.get_create_plist()
            if layout.get_layout() != h5py.h5d.CHUNKED or layout.get_nfilters() \
                    or not data.dtype.isnative:
                return None
            rows = layout.get_chunk()[0]
            offsets = _chunk_offsets(data, rows)
            if (offsets < 0).any():
                return None
            sums = Checksums.in_file(fid) if checked else None
            return cls(data, sums, rows, os.open(path, os.O_RDONLY), offsets)
        finally:
            data.close()
            fid.close()

    def _read(self, index: int, dest: np.ndarray) -> None:
        view = memoryview(dest).cast("B")
        done = os.preadv(self.fd, [view], int(self.offsets[index]))
        if done != view.nbytes:
            raise OSError(f"chunk {index}: {done} of {view.nbytes} bytes in the file "
                          "(truncated)")

    def close(self) -> None:
        os.close(self.fd)


def _chunk_offsets(data: h5py.h5d.DatasetID, rows: int) -> np.ndarray:
    """The byte offset of each chunk (by its first row), -1 where none was written."""
    offsets = np.full(-(-data.shape[0] // rows), -1, dtype=np.int64)

    def note(info: h5py.h5d.StoreInfo) -> None:
        offsets[info.chunk_offset[0] // rows] = info.byte_offset

    each: Callable | None = getattr(data, "chunk_iter", None)
    if each is not None:  # one pass over the index (HDF5 >= 1.12.3)
        each(note)
    else:
        for i in range(data.get_num_chunks()):
            note(data.get_chunk_info(i))
    return offsets
