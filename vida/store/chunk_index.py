"""A sealed shard's chunk index, kept in the HDF5 user block at the front of its file.

HDF5 leaves a file's first bytes (its *user block*, a power of two from 512) to the
application and starts its own structures after them.  Since layout 5 a shard
writes there where each chunk of its ``data`` lies and its CRC-32C, so a reader
gets everything it needs to ``pread`` and check chunks from one small read at
offset 0, without opening the file through HDF5 (which costs far more than the
read of a small shard's chunks: a cold read opens every shard it touches).

The block::

    b"VIDACIX1"       magic (older shards start with HDF5's own signature)
    uint32 LE         length of the JSON below
    uint32 LE         CRC-32C of the JSON
    JSON              {"dataset", "dtype", "shape", "chunk_rows", "offsets", "crc32c"}
    zeros             up to the user block's size

The writer builds the index from HDF5's own chunk index of the finished image and
checks every chunk's bytes at those offsets against its CRC before writing it, so
the two cannot disagree in a sealed file; ``fsck`` compares them again.  A block
whose own CRC fails is damage, reported as such, never silently skipped.
"""

from __future__ import annotations

import io
import json
import os
import struct
from dataclasses import dataclass

import crc32c
import h5py
import numpy as np

CRC32C_DATASET = "chunk_crc32c"  # the shard's own copy of the CRCs (layout 4 on)
MAGIC = b"VIDACIX1"
_HEAD = struct.Struct("<8sII")
_FIRST_READ = 512  # the smallest user block HDF5 allows


@dataclass(frozen=True)
class ChunkIndex:
    """Where each chunk of one dataset lies in the file, and its CRC-32C."""

    dataset: str
    dtype: str
    shape: tuple[int, ...]
    chunk_rows: int
    offsets: np.ndarray  # int64, one per chunk
    crc32c: np.ndarray  # uint32, one per chunk

    def encode(self) -> bytes:
        body = json.dumps({"dataset": self.dataset, "dtype": self.dtype,
                           "shape": list(self.shape), "chunk_rows": self.chunk_rows,
                           "offsets": self.offsets.tolist(),
                           "crc32c": self.crc32c.tolist()}, separators=(",", ":")).encode()
        return _HEAD.pack(MAGIC, len(body), crc32c.crc32c(body)) + body

    @classmethod
    def decode(cls, body: bytes) -> ChunkIndex:
        d = json.loads(body)
        return cls(d["dataset"], d["dtype"], tuple(d["shape"]), int(d["chunk_rows"]),
                   np.array(d["offsets"], dtype=np.int64),
                   np.array(d["crc32c"], dtype=np.uint32))


def user_block_size(n_chunks: int) -> int:
    """A user block (a power of two, at least 512 bytes) that holds the index of
    ``n_chunks`` chunks whatever their offsets (each entry at most 32 bytes)."""
    need = _HEAD.size + 512 + 32 * n_chunks
    return max(_FIRST_READ, 1 << (need - 1).bit_length())


def write_into_user_block(image: bytearray, dataset: str, crcs: np.ndarray) -> None:
    """Write the chunk index of ``dataset`` into the user block of the HDF5 ``image``
    (made with one big enough: :func:`user_block_size`), after checking that each
    chunk's bytes at HDF5's offsets have the CRC computed from the array."""
    with h5py.File(io.BytesIO(bytes(image)), "r") as h5:
        data = h5[dataset]
        size, rows = h5.userblock_size, data.chunks[0]
        index = ChunkIndex(dataset, data.dtype.str, data.shape, rows,
                           chunk_offsets(data.id, rows), np.asarray(crcs, np.uint32))
    row_bytes = np.dtype(index.dtype).itemsize * int(np.prod(index.shape[1:], dtype=np.int64))
    for i, (at, crc) in enumerate(zip(index.offsets.tolist(), index.crc32c.tolist(),
                                      strict=True)):
        n = min(rows, index.shape[0] - i * rows) * row_bytes
        if at < size or crc32c.crc32c(image[at:at + n]) != crc:
            raise AssertionError(f"chunk {i} of {dataset} is not where HDF5 says")
    block = index.encode()
    if len(block) > size:
        raise AssertionError(f"chunk index of {len(block)} bytes > user block of {size}")
    image[:len(block)] = block


def read_from_user_block(fd: int) -> ChunkIndex | None:
    """The chunk index at the front of the open file ``fd``; None when the file has
    none (a shard of layout 4 or older).  OSError when the index is damaged."""
    first = os.pread(fd, _FIRST_READ, 0)
    if len(first) < _HEAD.size or not first.startswith(MAGIC):
        return None
    _, length, crc = _HEAD.unpack_from(first)
    end = _HEAD.size + length
    body = first[_HEAD.size:end] if end <= len(first) else \
        first[_HEAD.size:] + os.pread(fd, end - len(first), len(first))
    if len(body) != length or crc32c.crc32c(body) != crc:
        raise OSError("the chunk index in the shard's user block fails its CRC-32C check")
    return ChunkIndex.decode(body)


def chunk_offsets(data: h5py.h5d.DatasetID, rows: int) -> np.ndarray:
    """HDF5's byte offset of each chunk (by its first row), -1 where none was written."""
    offsets = np.full(-(-data.shape[0] // rows), -1, dtype=np.int64)

    def note(info: h5py.h5d.StoreInfo) -> None:
        offsets[info.chunk_offset[0] // rows] = info.byte_offset

    each = getattr(data, "chunk_iter", None)
    if each is not None:  # one pass over the index (HDF5 >= 1.12.3)
        each(note)
    else:
        for i in range(data.get_num_chunks()):
            note(data.get_chunk_info(i))
    return offsets


def user_block_disagreement(path: str) -> str | None:
    """What the shard's chunk index says that HDF5's own index and checksums do not
    (None: they agree, or the shard has no chunk index): for ``fsck``."""
    fd = os.open(path, os.O_RDONLY)
    try:
        index = read_from_user_block(fd)
    except OSError as exc:
        return str(exc)
    finally:
        os.close(fd)
    if index is None:
        return None
    with h5py.File(path, "r") as h5:
        data = h5[index.dataset]
        theirs = (data.dtype.str, data.shape, data.chunks[0] if data.chunks else None)
        if theirs != (index.dtype, index.shape, index.chunk_rows):
            return f"chunk index says {index.dtype} {index.shape} in chunks of " \
                   f"{index.chunk_rows} rows, HDF5 {theirs}"
        crcs = h5[CRC32C_DATASET][:] if CRC32C_DATASET in h5 else None
        if not np.array_equal(chunk_offsets(data.id, index.chunk_rows), index.offsets):
            return "chunk index's offsets differ from HDF5's"
    if crcs is None or not np.array_equal(crcs, index.crc32c):
        return "chunk index's CRC-32C values differ from the shard's chunk_crc32c"
    return None
