"""Files that appear whole or not at all: shards, checkpoints.

The bytes go to a temporary name, are flushed and fsynced, and the file is renamed
over its final name (atomic on POSIX), then its folder is fsynced.  A crash at any
instant leaves the old file or the new one, never half of one; a full disk is a
plain ``OSError`` (ENOSPC) from ``write``, never a library failing halfway.
"""

from __future__ import annotations

import os
from pathlib import Path


def fsync_dir(path: Path) -> None:
    """Make a rename inside ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_whole(target: Path, data: bytes, partial: Path | None = None) -> None:
    """Write ``data`` as ``target`` through ``partial`` (default ``<target>.partial``),
    which is removed if anything fails."""
    partial = partial or target.with_name(target.name + ".partial")
    try:
        with open(partial, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(partial, target)
        fsync_dir(target.parent)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
