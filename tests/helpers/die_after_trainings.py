"""Run one ``vida-batch experiment ...`` that SIGKILLs its own driver right after it
has committed its N-th training, for the resume tests.

Usage: python -m tests.helpers.die_after_trainings N <vida-batch arguments...>

The kill is real (``SIGKILL``: no cleanup); only its moment is chosen, so that what a
rerun must reuse is known exactly: N finished trainings.
"""

from __future__ import annotations

import os
import signal
import sys

from vida.cli import main as cli_main
from vida.jobs.experiment_driver import PlanRunner


def main() -> None:
    n, args = int(sys.argv[1]), sys.argv[2:]
    commit = PlanRunner._commit
    made = [0]

    def commit_then_die(self, *a, **k):
        commit(self, *a, **k)
        made[0] += 1
        if made[0] == n:
            os.killpg(os.getpgrp(), signal.SIGKILL)  # the driver and its workers

    PlanRunner._commit = commit_then_die
    cli_main(args=args, prog_name="vida-batch")


if __name__ == "__main__":
    main()
