"""One job of a kind at a time per store, so that two terminals never encode the same
clips twice.

The lock is ``fcntl.flock`` on a file in the store root: the kernel frees it when
its process dies (a killed job never leaves a stale lock), and it works on the local
and NFSv4 filesystems a store lives on.  A second job waits for the first, saying
once who holds it, then plans from what the first committed (so it skips that).
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from vida.store.errors import disk_full, is_disk_full


@contextmanager
def job_lock(store_root: Path, kind: str) -> Iterator[None]:
    """Hold the store's lock named ``kind`` (a job kind, or a job and its target set,
    e.g. ``generate-generated/<run>``) for the block."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in kind)
    path = Path(store_root) / ".locks" / f"{safe}.lock"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(path, "a+")  # closed by the with below
    except OSError as exc:  # not even a lock file fits: the job cannot start
        if is_disk_full(exc):
            raise disk_full(Path(store_root)) from None
        raise
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            try:
                holder = json.loads(fh.read() or "{}")
            except json.JSONDecodeError:
                holder = {}
            who = (f"pid {holder.get('pid')} on {holder.get('host')}" if holder
                   else "another process")
            print(f"vida: another {kind} ({who}) is running on this store; waiting for it, "
                  "then doing only what it left", file=sys.stderr, flush=True)
            fcntl.flock(fh, fcntl.LOCK_EX)
        _say_who_holds(fh)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _say_who_holds(fh: IO[str]) -> None:
    """Write this process into the lock file, for a second job to name who it waits
    for.  Best effort, and unbuffered (a buffer that cannot be flushed would fail
    again as the file closes): the lock is the ``flock``, not the text, so a full
    disk leaves the file empty and the job goes on, to fail, if it must, where it
    writes its features, with its run recorded and the disk named."""
    fd = fh.fileno()
    os.ftruncate(fd, 0)
    text = json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                       "since": time.time()})
    try:
        os.pwrite(fd, text.encode(), 0)
    except OSError as exc:
        if not is_disk_full(exc):
            raise
        os.ftruncate(fd, 0)
