"""Where one shard dataset's chunks come from, and how each is checked.

A chunk source answers "chunk ``i``, checked, into this memory".  Two kinds:

* :class:`RawChunks` -- an unfiltered dataset of a sealed shard.  Its chunks are its
  rows, in order, at byte offsets that the shard's user block gives (layout 5,
  :mod:`vida.store.chunk_index`), or HDF5's chunk index once for older shards
  (sealed shards never change), so a chunk is one ``pread`` straight into its
  destination, as fast as reading the file itself.  Once built it holds a file
  descriptor, the offsets and the checksums, and never touches HDF5 again: reading
  a shard a second time costs no open, and a chunk read releases the GIL, so
  several threads read at once.
* :class:`H5Chunks` -- anything else (a filtered or compressed dataset, a shard not
  sealed): HDF5 reads it.

Each chunk is checked against its checksum when it is read: CRC-32C since layout 4,
zlib CRC-32 in layout 3 (see :mod:`vida.store.shards`); shards written before
checksums are served unchecked.
"""

from __future__ import annotations

import os
import zlib

import crc32c
import h5py
import numpy as np

from vida.store.chunk_index import ChunkIndex, chunk_offsets, read_from_user_block
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
    """The chunks of one dataset of ``shape``: ``chunk_rows`` rows each."""

    def __init__(self, shape: tuple[int, ...], dtype: np.dtype, sums: Checksums | None,
                 chunk_rows: int) -> None:
        self.chunk_rows, self.length = chunk_rows, shape[0]
        self.dtype, self.row_shape = np.dtype(dtype), tuple(shape[1:])
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
        super().__init__(data.shape, data.dtype, sums,
                         data.chunks[0] if data.chunks else len(data))
        self.data = data

    def _read(self, index: int, dest: np.ndarray) -> None:
        lo = index * self.chunk_rows
        self.data.read_direct(dest, np.s_[lo:lo + len(dest)], np.s_[0:len(dest)])


class RawChunks(ChunkSource):
    """Chunks read as the file's bytes, one ``pread`` each, without HDF5."""

    def __init__(self, index: ChunkIndex, sums: Checksums | None, fd: int) -> None:
        super().__init__(index.shape, np.dtype(index.dtype), sums, index.chunk_rows)
        self.fd, self.offsets = fd, index.offsets

    @classmethod
    def open(cls, path: str, name: str, checked: bool) -> RawChunks | None:
        """The raw chunks of dataset ``name`` (checked against the shard's checksums
        when ``checked``); None where HDF5 must read them (filtered, contiguous, not
        in native byte order, a chunk never written).  The chunk index comes from
        the shard's user block (layout 5: one small read, no HDF5), else from HDF5's
        low-level interface, which opens only what it needs."""
        fd = os.open(path, os.O_RDONLY)
        try:
            index = read_from_user_block(fd)
            if index is not None and index.dataset == name:
                sums = Checksums(CRC32C_DATASET, index.crc32c) if checked else None
            else:
                index, sums = _index_through_hdf5(path, name, checked)
        except BaseException:
            os.close(fd)
            raise
        if index is None:
            os.close(fd)
            return None
        return cls(index, sums, fd)

    def _read(self, index: int, dest: np.ndarray) -> None:
        view = memoryview(dest).cast("B")
        done = os.preadv(self.fd, [view], int(self.offsets[index]))
        if done != view.nbytes:
            raise OSError(f"chunk {index}: {done} of {view.nbytes} bytes in the file "
                          "(truncated)")

    def close(self) -> None:
        os.close(self.fd)


def _index_through_hdf5(path: str, name: str, checked: bool
                        ) -> tuple[ChunkIndex | None, Checksums | None]:
    """Dataset ``name``'s chunk index as HDF5 keeps it, and the shard's checksums when
    ``checked``; (None, None) when its chunks cannot be read raw."""
    fid = h5py.h5f.open(os.fsencode(path), h5py.h5f.ACC_RDONLY)
    data = h5py.h5d.open(fid, name.encode())
    try:
        layout = data.get_create_plist()
        if layout.get_layout() != h5py.h5d.CHUNKED or layout.get_nfilters() \
                or not data.dtype.isnative:
            return None, None
        rows = layout.get_chunk()[0]
        offsets = chunk_offsets(data, rows)
        if (offsets < 0).any():
            return None, None
        index = ChunkIndex(name, data.dtype.str, data.shape, rows, offsets,
                           np.empty(0, np.uint32))
        return index, Checksums.in_file(fid) if checked else None
    finally:
        data.close()
        fid.close()
