"""A killed experiment driver (SIGKILL after its fourth committed training): its run,
opened first, shows abandoned; the same command resumes it, trains only what is
missing and ends with the table of an unbroken run; no child run ever points at an
experiment run that does not exist.  On DuckDB and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import ROOT, run_cli
from tests.test_experiment_plan import prepare, results_csv
from vida import open_catalog


def _orphans(url: str) -> int:
    """Child runs whose experiment run does not exist."""
    return int(open_catalog(url).sql(
        "SELECT count(*) AS n FROM runs WHERE experiment_id IS NOT NULL AND kind <> "
        "'experiment' AND experiment_id NOT IN (SELECT run_id FROM runs)")["n"][0])


def test_a_killed_experiment_is_resumed_by_the_same_command(synthetic, catalog_url):
    env = {"VIDA_CATALOG": catalog_url}
    args = prepare(synthetic, "svdmap", env)
    killed = subprocess.run([sys.executable, "-m", "tests.helpers.die_after_trainings", "4",
                             *args, "--workers", "2"], cwd=synthetic,
                            env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
                            capture_output=True, text=True, timeout=900,
                            start_new_session=True)
    assert killed.returncode == -9, killed.stderr
    catalog = open_catalog(catalog_url)
    experiment = catalog.sql("SELECT run_id, params FROM runs WHERE kind = 'experiment'")
    assert len(experiment) == 1  # opened first, with its plan
    assert '"plan"' in experiment["params"][0] and _orphans(catalog_url) == 0
    status = run_cli("status", cwd=synthetic, env=env)
    assert experiment["run_id"][0] in status.stdout and "abandoned" in status.stdout

    resumed = run_cli(*args, "--workers", "2", cwd=synthetic, env=env, timeout=900)
    assert resumed.returncode == 0, resumed.stderr
    assert f"experiment {experiment['run_id'][0]}: resumed" in resumed.stdout
    assert "4 trainings finished before are reused" in resumed.stdout
    unbroken = run_cli(*args, "--workers", "1", cwd=synthetic, env=env, timeout=900)
    assert unbroken.returncode == 0, unbroken.stderr
    assert results_csv(resumed.stdout) == results_csv(unbroken.stdout)
    finished = catalog.sql("SELECT experiment_id, count(*) AS n FROM runs WHERE kind IN "
                           "('train-classifier', 'train-generator') AND status = 'finished' "
                           "GROUP BY 1 ORDER BY 1")
    assert finished["n"].nunique() == 1  # every training once per experiment
    assert _orphans(catalog_url) == 0


