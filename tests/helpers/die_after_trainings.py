"""Run one ``vida-batch experiment ...`` whose driver, right after it has committed its
N-th training, SIGKILLs itself, pauses, or kills a busy Dask worker, for the resume and
fault tests.

Usage: python -m tests.helpers.die_after_trainings N <vida-batch arguments...>
       python -m tests.helpers.die_after_trainings pause:N <vida-batch arguments...>
       python -m tests.helpers.die_after_trainings kill-worker:N <vida-batch arguments...>

``N`` kills the driver and its workers (``SIGKILL``: no cleanup); only its moment is
chosen, so that what a rerun must reuse is known exactly: N finished trainings.
``pause:N`` prints "paused" and waits for a line on stdin, then goes on (the test stops
the catalog's server meanwhile).  ``kill-worker:N`` SIGKILLs the process of one Dask
worker that is running a training at that moment, prints "killed a worker running K",
and goes on: the cluster must redo that training elsewhere.
"""

from __future__ import annotations

import os
import signal
import sys

import vida.jobs.experiments.driver as driver
from vida.cli import main as cli_main
from vida.jobs.experiments.driver import PlanRunner


def _kill_a_busy_worker(pool) -> None:
    client = pool._client
    busy = [addr for addr, keys in client.processing().items() if keys]
    if not busy:
        raise SystemExit("no Dask worker was running a training to kill")
    pid = client.run(os.getpid, workers=[busy[0]])[busy[0]]
    os.kill(pid, signal.SIGKILL)
    print(f"killed a worker running {len(client.processing()[busy[0]])}", flush=True)


def main() -> None:
    when, args = sys.argv[1], sys.argv[2:]
    action, _, n = when.rpartition(":")
    n = int(n)
    commit, open_pool = PlanRunner._commit, driver.open_pool
    made, pools = [0], []

    def opened(*a, **k):
        pools.append(open_pool(*a, **k))
        return pools[-1]

    def commit_then_act(self, *a, **k):
        commit(self, *a, **k)
        made[0] += 1
        if made[0] != n:
            return
        if action == "pause":
            print("paused", flush=True)
            sys.stdin.readline()
        elif action == "kill-worker":
            _kill_a_busy_worker(pools[-1])
        else:
            os.killpg(os.getpgrp(), signal.SIGKILL)  # the driver and its workers

    PlanRunner._commit = commit_then_act
    driver.open_pool = opened
    cli_main(args=args, prog_name="vida-batch")


if __name__ == "__main__":
    main()
