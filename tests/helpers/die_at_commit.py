"""Run one ``vida-batch`` command that SIGKILLs its own process just *before* or just
*after* its first commit of sealed shards (``vida.store.writers.commit_sealed``, which
every job that writes features goes through), for the kill tests of the jobs that
write one feature set in one go (prototypes, condition).

Usage: python -m tests.helpers.die_at_commit before|after <vida-batch arguments...>

The kill is real (``SIGKILL``: no cleanup, no ``finally``); only its moment is
chosen: *before* leaves sealed shard files that no catalog row points at, *after*
leaves the features committed and the run never finished.
"""

from __future__ import annotations

import os
import signal
import sys

import vida.store.writers
from vida.cli import main as cli_main


def main() -> None:
    moment, args = sys.argv[1], sys.argv[2:]
    if moment not in ("before", "after"):
        raise SystemExit("usage: die_at_commit before|after ARGS...")
    commit = vida.store.writers.commit_sealed

    def dying(catalog, bundle, wait=None):
        if not bundle.shards:  # nothing sealed yet: not the moment
            return commit(catalog, bundle, wait)
        if moment == "before":
            os.kill(os.getpid(), signal.SIGKILL)
        commit(catalog, bundle, wait)
        os.kill(os.getpid(), signal.SIGKILL)

    vida.store.writers.commit_sealed = dying
    cli_main(args=args, prog_name="vida-batch")


if __name__ == "__main__":
    main()
