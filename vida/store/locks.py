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


@contextmanager
def job_lock(store_root: Path, kind: str) -> Iterator[None]:
    """Hold the store's lock named ``kind`` (a job kind, or a job and its target set,
    e.g. ``generate-generated/<run>``) for the block."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in kind)
    path = Path(store_root) / ".locks" / f"{safe}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
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
        fh.seek(0)
        fh.truncate()
        fh.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                             "since": time.time()}))
        fh.flush()
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
