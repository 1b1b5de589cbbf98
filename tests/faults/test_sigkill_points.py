"""SIGKILL at seeded random moments of `generate` and `experiment`, then the same
command again: whole commits only, the killed runs shown abandoned, every clip's
generated row exactly once, and `fsck --repair` clean.  The seed is printed, so a
failure reproduces."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

from tests.conftest import ROOT, run_cli
from vida import open_catalog
from vida.store import FeatureStore
from vida.store.integrity import fsck

SEED = int(os.environ.get("VIDA_FAULT_SEED", "7"))


def _kill_after(args: list[str], cwd, delay: float, started: str | None = None) -> None:
    """Run the command and SIGKILL it with its workers ``delay`` seconds in; with
    ``started``, ``delay`` seconds after it printed a line that begins so (its run is
    open then: the moment is random within the work, not within the start-up)."""
    proc = subprocess.Popen([sys.executable, "-m", "vida.cli", *args], cwd=cwd,
                            stdout=subprocess.PIPE if started else subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, text=True, start_new_session=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT),
                                 "PYTHONUNBUFFERED": "1"})
    if started:
        for line in proc.stdout:
            if line.startswith(started):
                break
    time.sleep(delay)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def test_generate_and_experiment_survive_sigkill_at_random_moments(synthetic):
    rng = random.Random(SEED)
    print(f"VIDA_FAULT_SEED={SEED}")
    trained = run_cli("train", "generator", "--epochs", "1", "--batch-size", "16",
                      cwd=synthetic)
    assert trained.returncode == 0, trained.stderr
    run_id = trained.stdout.split("run ", 1)[1].split(";")[0]
    cat = open_catalog(synthetic / "catalog.db")
    assert cat.sql("SELECT count(*) AS n FROM runs WHERE run_id = :r", {"r": run_id})["n"][0]
    cat.dispose()

    generate = ["generate", "--run", run_id, "--cross-fit", "3"]
    experiment = ["experiment", "svdmap", "--tags", "synth-ref", "--dictionary", "d",
                  "--seeds", "1", "--epochs", "1", "--generator-epochs", "1",
                  "--cross-fit", "0", "--min-iou", "0"]
    assert run_cli("dictionary", "build", "--name", "d", "--top-n", "3", cwd=synthetic
                   ).returncode == 0
    for delay in (rng.uniform(3, 8), rng.uniform(3, 8)):
        _kill_after(generate, synthetic, delay)
    _kill_after(experiment, synthetic, rng.uniform(1, 4), started="experiment ")

    done = run_cli(*generate, cwd=synthetic, timeout=600)
    assert done.returncode == 0, done.stderr
    status = run_cli("status", cwd=synthetic)
    assert status.returncode == 0 and "abandoned" in status.stdout

    cat = open_catalog(synthetic / "catalog.db")
    name = f"generated/{run_id}-xf3"
    rows = cat.sql("SELECT count(*) AS n, count(DISTINCT clip_key) AS d FROM features "
                   "WHERE feature_set = :s", {"s": name})
    assert rows.to_dict("records") == [{"n": 40, "d": 40}]
    assert not len(cat.sql("SELECT run_id FROM runs WHERE status = 'running'"))
    # the killed experiment: its run shown abandoned, every child pointing at it
    killed = cat.sql("SELECT run_id, status FROM runs WHERE kind = 'experiment'")
    assert killed["status"].tolist() == ["abandoned"], killed
    orphans = cat.sql("SELECT run_id FROM runs WHERE experiment_id IS NOT NULL AND "
                      "experiment_id NOT IN (SELECT run_id FROM runs WHERE kind = 'experiment')")
    assert orphans.empty, orphans
    cat.dispose()
    # the same command again takes the experiment up where it stopped and finishes it
    again = run_cli(*experiment, cwd=synthetic, timeout=600)
    assert again.returncode == 0, again.stderr
    assert f"experiment {killed['run_id'][0]}: resumed" in again.stdout
    cat = open_catalog(synthetic / "catalog.db")
    assert cat.sql("SELECT status FROM runs WHERE kind = 'experiment'")["status"].tolist() == [
        "finished"]
    report = fsck(FeatureStore(cat, synthetic / "store"), repair=True)
    assert report.clean, report.problems
