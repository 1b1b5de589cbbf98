"""A killed experiment driver (SIGKILL after its 24th committed step, in the midst of
the missing-rate grid): its run, opened first, shows abandoned; the same command
resumes it, trains only what is missing and ends with the tables of an unbroken run;
no child run ever points at an experiment run that does not exist.  On DuckDB and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import ROOT, run_cli
from tests.faults.test_lost_paths import stop_server_under
from tests.test_experiment_plan import prepare, results_csv
from vida import open_catalog


def _orphans(url: str) -> int:
    """Child runs whose experiment run does not exist."""
    return int(open_catalog(url).sql(
        "SELECT count(*) AS n FROM runs WHERE experiment_id IS NOT NULL AND kind <> "
        "'experiment' AND experiment_id NOT IN (SELECT run_id FROM runs)")["n"][0])


def _scratch_folders(root) -> list:
    return sorted(root.glob("vida-shared-*"))


def test_a_killed_experiment_is_resumed_by_the_same_command(synthetic, catalog_url, tmp_path):
    """... and the shared copies its trainings mapped are left by the kill, then removed
    by the rerun, which trips on none of them."""
    scratch = tmp_path / "scratch"
    env = {"VIDA_CATALOG": catalog_url, "VIDA_SCRATCH": str(scratch)}
    args = [*prepare(synthetic, "svdmap", env), "--train-missing", "0.6"]
    killed = subprocess.run([sys.executable, "-m", "tests.helpers.die_after_trainings", "24",
                             *args, "--workers", "2"], cwd=synthetic,
                            env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
                            capture_output=True, text=True, timeout=900,
                            start_new_session=True)
    assert killed.returncode == -9, killed.stderr
    left = _scratch_folders(scratch)
    assert len(left) == 1 and list(left[0].glob("*.npy")), left  # the killed driver's copies
    catalog = open_catalog(catalog_url)
    experiment = catalog.sql("SELECT run_id, params FROM runs WHERE kind = 'experiment'")
    assert len(experiment) == 1  # opened first, with its plan
    assert '"plan"' in experiment["params"][0] and _orphans(catalog_url) == 0
    trained = int(catalog.sql("SELECT count(*) AS n FROM runs WHERE status = 'finished' AND "
                              "kind IN ('train-classifier', 'train-generator')")["n"][0])
    in_grid = catalog.sql("SELECT count(*) AS n FROM runs WHERE status = 'finished' AND "
                          "params LIKE '%train_missing=0.6%'")["n"][0]
    assert 0 < in_grid < 3 + 6 + 6 * 2  # mid-grid: its generators, trainings and tests
    status = run_cli("status", cwd=synthetic, env=env)
    assert experiment["run_id"][0] in status.stdout and "abandoned" in status.stdout

    resumed = run_cli(*args, "--workers", "2", cwd=synthetic, env=env, timeout=900)
    assert resumed.returncode == 0, resumed.stderr
    assert f"experiment {experiment['run_id'][0]}: resumed" in resumed.stdout
    # 24 commits: trainings, generated sets and test-only steps
    assert 0 < trained <= 24
    assert f"{trained} trainings finished before are reused" in resumed.stdout
    assert _scratch_folders(scratch) == []  # the dead driver's and its own, removed
    unbroken = run_cli(*args, "--workers", "1", cwd=synthetic, env=env, timeout=900)
    assert unbroken.returncode == 0, unbroken.stderr
    for table in ("results.csv", "missing_grid.csv"):
        assert results_csv(resumed.stdout, table) == results_csv(unbroken.stdout, table)
    finished = catalog.sql("SELECT experiment_id, count(*) AS n FROM runs WHERE kind IN "
                           "('train-classifier', 'train-generator') AND status = 'finished' "
                           "GROUP BY 1 ORDER BY 1")
    assert finished["n"].nunique() == 1  # every training once per experiment
    assert _orphans(catalog_url) == 0




def _trainings(url: str) -> dict[str, list[int]]:
    """Per experiment: its training runs by status (finished, others)."""
    runs = open_catalog(url).sql(
        "SELECT experiment_id, count(*) FILTER (WHERE status = 'finished') AS done, "
        "count(*) FILTER (WHERE status <> 'finished') AS other FROM runs WHERE kind IN "
        "('train-classifier', 'train-generator') GROUP BY 1 ORDER BY 1")
    return {row.experiment_id: [int(row.done), int(row.other)] for row in runs.itertuples()}


def _helper(when: str, args: list[str], cwd, env: dict[str, str], **kw):
    return subprocess.Popen([sys.executable, "-m", "tests.helpers.die_after_trainings", when,
                             *args], cwd=cwd, env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def test_a_dask_worker_killed_mid_training_has_it_redone_elsewhere(synthetic, catalog_url,
                                                                  tmp_path):
    env = {"VIDA_CATALOG": catalog_url, "VIDA_SCRATCH": str(tmp_path / "scratch")}
    args = prepare(synthetic, "svdmap", env)
    job = _helper("kill-worker:2", ["--executor", "dask-local:2", *args], synthetic, env)
    out, err = job.communicate(timeout=900)
    assert job.returncode == 0, err
    assert "killed a worker running" in out, out
    assert _scratch_folders(tmp_path / "scratch") == []  # removed on the workers too
    unbroken = run_cli(*args, "--workers", "1", cwd=synthetic, env=env, timeout=900)
    assert unbroken.returncode == 0, unbroken.stderr
    assert results_csv(out) == results_csv(unbroken.stdout)
    counts = list(_trainings(catalog_url).values())
    # each training once, none failed or left running: the redone one counted once
    assert len(counts) == 2 and counts[0] == counts[1] and counts[0][1] == 0, counts
    assert _orphans(catalog_url) == 0


def test_a_postgresql_server_restarted_mid_experiment(synthetic, own_pg_server):
    """The server stops while trainings run: the driver stops in one line naming it;
    restarted, the same command resumes and ends with an unbroken run's table."""
    url = own_pg_server.new_database()
    assert run_cli("catalog", "copy", str(synthetic / "catalog.db"), url).returncode == 0
    env = {"VIDA_CATALOG": url}
    args = prepare(synthetic, "svdmap", env)
    job = _helper("pause:3", [*args, "--workers", "2"], synthetic, env, stdin=subprocess.PIPE)
    while (line := job.stdout.readline()) and line.strip() != "paused":
        pass
    assert line.strip() == "paused", job.stderr.read()
    stop_server_under(job, own_pg_server)

    own_pg_server.start()
    resumed = run_cli(*args, "--workers", "2", cwd=synthetic, env=env, timeout=900)
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed" in resumed.stdout and "3 trainings finished before are reused" in \
        resumed.stdout, resumed.stdout
    unbroken = run_cli(*args, "--workers", "1", cwd=synthetic, env=env, timeout=900)
    assert results_csv(resumed.stdout) == results_csv(unbroken.stdout)
    finished = [done for done, _ in _trainings(url).values()]
    assert len(finished) == 2 and finished[0] == finished[1]  # nothing lost, none twice
    assert _orphans(url) == 0
