"""Run one ``vida-batch`` command that SIGKILLs its own process right after its N-th
commit of results, for the resume tests of the row jobs (tag, frames, caption) and of
ingest (a commit there is one sealed chunk).

Usage: python -m tests.helpers.die_after_commits N <vida-batch arguments...>
       python -m tests.helpers.die_after_commits pause:S <vida-batch arguments...>
       python -m tests.helpers.die_after_commits pause:told <vida-batch arguments...>

The kill is real (``SIGKILL``: no cleanup, no ``finally``); only its moment is
chosen, so that what a rerun must skip is known exactly: N commits of 2 results.
With ``pause:S`` the command instead prints "paused" after its first commit and
sleeps S seconds (or, with ``pause:told``, until a line comes on its stdin) holding its
job lock, then goes on: a second command started then must wait for it (the lock
test, without a race between two starts).
"""

from __future__ import annotations

import os
import signal
import sys
import time

import vida.jobs.data.ingest
import vida.jobs.semantics.conditions
import vida.jobs.semantics.tagging
from vida.cli import main as cli_main
from vida.jobs.core.batch_job import commit_as_you_go


def main() -> None:
    when, args = sys.argv[1], sys.argv[2:]
    pause = when.split(":")[1] if when.startswith("pause:") else None
    n_commits = 1 if pause is not None else int(when)
    made = [0]

    def after_a_commit() -> None:
        made[0] += 1
        if made[0] == n_commits and pause is not None:
            print("paused", flush=True)
            if pause == "told":
                sys.stdin.readline()
            else:
                time.sleep(float(pause))
        elif made[0] == n_commits:
            os.kill(os.getpid(), signal.SIGKILL)

    def dying(results, commit, **_):
        def commit_then_die(batch):
            commit(batch)
            after_a_commit()

        return commit_as_you_go(results, commit_then_die, every_n=2, every_s=1e9)

    commit_sealed = vida.jobs.data.ingest.commit_sealed

    def commit_sealed_then_die(*a, **k):
        commit_sealed(*a, **k)
        after_a_commit()

    vida.jobs.semantics.tagging.commit_as_you_go = dying
    vida.jobs.semantics.conditions.commit_as_you_go = dying
    vida.jobs.data.ingest.commit_sealed = commit_sealed_then_die
    cli_main(args=args, prog_name="vida-batch")


if __name__ == "__main__":
    main()
