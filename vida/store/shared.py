"""One copy of a training set per machine: each shard a training reads is copied once
(in the type it is stored in) into a scratch file that every training on the machine
maps read-only.

The trainings of an experiment read the same clips of the same sets again and
again: every variant and seed, and subsets of them (a cross-fitting fold, a
labelled subset, a split).  Each shard they touch is written once, by the first
process that needs it, to ``<scratch>/<digest>.npy`` (the digest names the shard
file and its array; sealed shards never change); the others wait on its lock and
map the finished file, and take their rows from it (:class:`SharedRows`).  The OS
keeps one copy of its pages, shared by every process that maps it, and can drop
them under pressure (they are file pages, never swap).

A file appears whole (written as ``.partial``, renamed), its space is reserved
before it is filled (a full disk is one clean ``OSError``, never a SIGBUS in a
mapped page), and the lock is the kernel's (``flock``), so a process killed while
writing leaves a ``.partial`` that nobody reads and a lock that is free.  The
folder belongs to one driver (:func:`scratch_folder`), which removes it when it
ends; a driver killed with ``kill -9`` leaves its folder, which the next driver
on the machine removes (its owner's process is gone).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import socket
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from vida.processes import process_alive
from vida.store.errors import disk_full, is_disk_full
from vida.store.located import Located, read_rows

_PREFIX = "vida-shared-"
HOST = socket.gethostname().replace("-", "_")


def scratch_root() -> Path:
    """Where drivers make their scratch folders: ``$VIDA_SCRATCH`` or the temp dir."""
    return Path(os.environ.get("VIDA_SCRATCH") or tempfile.gettempdir())


@contextmanager
def scratch_folder(root: Path | None = None) -> Iterator[Path]:
    """A scratch folder owned by this process, removed when the block ends (also on
    an exception or SIGTERM turned into one); stale folders of dead owners first."""
    root = root or scratch_root()
    root.mkdir(parents=True, exist_ok=True)
    remove_stale(root)
    folder = root / f"{_PREFIX}{HOST}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def remove_stale(root: Path, owners: dict[str, bool] | None = None) -> list[str]:
    """Remove the scratch folders of this host's drivers whose process is gone;
    returns their names.  On another machine (a Dask worker) pass ``owners``: each
    folder's name -> whether its driver is alive, as the driver's host sees it."""
    removed = []
    for name in owned_folders(root):
        alive = owners.get(name, True) if owners is not None else _owner_alive(name)
        if not alive:
            shutil.rmtree(root / name, ignore_errors=True)
            removed.append(name)
    return removed


def owned_folders(root: str | os.PathLike[str], host: str | None = None) -> list[str]:
    """The scratch folders under ``root`` made by drivers on ``host`` (default: here)."""
    prefix = f"{_PREFIX}{host or HOST}-"
    return sorted(p.name for p in Path(root).glob(f"{prefix}*"))


def _owner_alive(name: str) -> bool:
    pid = name[len(_PREFIX) + len(HOST) + 1:].split("-")[0]
    return not pid.isdigit() or process_alive(int(pid))


def owners_alive(names: list[str]) -> dict[str, bool]:
    """For folders found elsewhere: whether each one's driver (on this host) lives."""
    return {name: _owner_alive(name) for name in names}


def digest(path: str, dataset: str) -> str:
    """A name for one shard's array (sealed shards never change)."""
    return hashlib.sha256(f"{path}\0{dataset}".encode()).hexdigest()[:32]


class SharedRows:
    """Located rows served from the shared copies of the shards that hold them: one
    read-only map per shard, shared by every training on the machine that reads any
    of its rows (a fold, a labelled subset and the full set read the same pages)."""

    def __init__(self, maps: list[np.ndarray], codes: np.ndarray, rows: np.ndarray,
                 shape: tuple[int, ...]) -> None:
        self.maps, self.codes, self.rows, self.shape = maps, codes, rows, shape

    def __len__(self) -> int:
        return len(self.rows)

    def take(self, index: np.ndarray) -> np.ndarray:
        """Rows ``index`` (positions among the located rows), as a new float32 array."""
        out = np.empty((len(index), *self.shape), dtype=np.float32)
        codes, rows = self.codes[index], self.rows[index]
        for code in np.unique(codes).tolist():
            where = np.flatnonzero(codes == code)
            out[where] = self.maps[code][rows[where]]
        return out


def shared_rows(where: Located, scratch: str | os.PathLike[str]) -> SharedRows:
    """The located rows, through the shared copies of their shards in the scratch
    folder (each written there first by whichever process asks first)."""
    codes, shards = pd.factorize(where.paths)
    maps = [shared_shard(str(path), where, scratch) for path in shards]
    return SharedRows(maps, codes.astype(np.int64), where.rows, tuple(where.shape))


def shared_shard(path: str, where: Located, scratch: str | os.PathLike[str]) -> np.ndarray:
    """Every row of the shard's array, mapped read-only from the scratch folder."""
    folder = Path(scratch)
    folder.mkdir(parents=True, exist_ok=True)
    name = digest(path, where.dataset)
    target = folder / f"{name}.npy"
    with _locked(folder / f"{name}.lock"):
        if not target.exists():
            _write(whole_shard(path, where), folder / f"{name}.{os.getpid()}.partial", target)
    return np.load(target, mmap_mode="r")


def whole_shard(path: str, where: Located) -> tuple[Located, np.dtype]:
    """Every row of one shard's array, located, and the type it is stored in."""
    import h5py

    with h5py.File(path, "r") as h5:
        n, dtype = len(h5[where.dataset]), h5[where.dataset].dtype
    return replace(where, keys=("",) * n, paths=np.full(n, path, dtype=object),
                   rows=np.arange(n, dtype=np.int64)), dtype


def _write(whole: tuple[Located, np.dtype], partial: Path, target: Path) -> None:
    """The shard's rows in the type they are stored in (a float16 set's copy takes
    half the memory; :meth:`SharedRows.take` gives float32)."""
    where, dtype = whole
    shape = (len(where.keys), *where.shape)
    try:
        out = np.lib.format.open_memmap(partial, mode="w+", dtype=dtype, shape=shape)
        with open(partial, "r+b") as fh:  # reserve the blocks: no SIGBUS on a full disk
            os.posix_fallocate(fh.fileno(), 0, os.path.getsize(partial))
        read_rows(where, out=out)
        out.flush()
        del out
        os.replace(partial, target)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        if is_disk_full(exc):
            raise disk_full(partial.parent) from None
        raise
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
