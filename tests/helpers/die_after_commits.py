"""Run one ``vida-batch`` command that SIGKILLs its own process right after its N-th
commit of results, for the resume tests of the row jobs (tag, frames, caption).

Usage: python -m tests.helpers.die_after_commits N <vida-batch arguments...>

The kill is real (``SIGKILL``: no cleanup, no ``finally``); only its moment is
chosen, so that what a rerun must skip is known exactly: N commits of 2 results.
"""

from __future__ import annotations

import os
import signal
import sys

import vida.jobs.cafmap
import vida.jobs.tagging
from vida.cli import main as cli_main
from vida.jobs.shape import commit_as_you_go


def main() -> None:
    n_commits, args = int(sys.argv[1]), sys.argv[2:]
    made = [0]

    def dying(results, commit, **_):
        def commit_then_die(batch):
            commit(batch)
            made[0] += 1
            if made[0] == n_commits:
                os.kill(os.getpid(), signal.SIGKILL)

        return commit_as_you_go(results, commit_then_die, every_n=2, every_s=1e9)

    vida.jobs.tagging.commit_as_you_go = dying
    vida.jobs.cafmap.commit_as_you_go = dying
    cli_main(args=args, prog_name="vida-batch")


if __name__ == "__main__":
    main()
