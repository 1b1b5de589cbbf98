"""What can go wrong under the store, said in one line with what to do.

Both are job-level faults, never a clip's: a job that meets one stops, records its
run as failed and exits non-zero; what it committed before stays.
"""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

from vida.errors import VidaError


class StoreError(VidaError, RuntimeError):
    """A fault of the store itself (not of one clip's media)."""


class StoreFull(StoreError):
    """The disk under the store (or the catalog) has no space left."""


class ShardDamaged(StoreError):
    """A sealed shard's bytes no longer match what was written."""


class ShardMissing(StoreError):
    """A shard the catalog indexes is not in its (reachable) store."""


class StoreUnreachable(StoreError):
    """The store was there when the job began and is not now (unmounted, NFS down)."""


def is_disk_full(exc: BaseException) -> bool:
    """ENOSPC, whether raised by the OS or reported in h5py's or DuckDB's message."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(exc)
    return "No space left on device" in text or "errno = 28" in text or "Disk quota" in text


def disk_full(path: Path) -> StoreFull:
    """The error to raise: names the path and how much space is left there."""
    probe = Path(path)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free / 1e6
    return StoreFull(f"no space left on the disk of {path} ({free:.1f} MB free): free some "
                     "space, then run the same command again (what was committed is kept)")
