"""Whether a process is alive: the one check that run records (a run whose process is
gone is abandoned) and local workers (a worker ends with its driver) share.  Imports
nothing of VIDA, so a worker may use it without the catalog."""

from __future__ import annotations

import os


def process_alive(pid: int) -> bool:
    """True while process ``pid`` exists on this host (anyone's)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True
