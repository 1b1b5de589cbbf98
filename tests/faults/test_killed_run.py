"""`kill -9` of a training: the run is shown as abandoned, with when it was last seen."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from tests.conftest import ROOT, run_cli
from vida import open_catalog


def test_a_killed_training_is_shown_abandoned_with_when_it_was_last_seen(synthetic, catalog_url):
    env = {"VIDA_CATALOG": catalog_url}
    proc = subprocess.Popen(
        [sys.executable, "-m", "vida.cli", "train", "classifier", "--epochs", "500",
         "--batch-size", "2"], cwd=synthetic, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(ROOT), **env})
    deadline = time.monotonic() + 120
    running = []
    while time.monotonic() < deadline and not running:
        time.sleep(0.5)
        try:
            cat = open_catalog(catalog_url)
            running = cat.sql("SELECT run_id, pid FROM runs WHERE kind = 'train-classifier' "
                              "AND status = 'running'").to_dict("records")
            cat.dispose()
        except Exception:  # the writer holds the file lock for a moment: look again
            running = []
    assert running, "the training never showed up as running"
    assert running[0]["pid"] == proc.pid
    time.sleep(2)  # let it train (and beat) for a moment
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    result = run_cli("status", cwd=synthetic, env=env)
    assert result.returncode == 0, result.stderr
    listed = result.stdout.split("runs not finished")[1]
    assert running[0]["run_id"] in listed and "abandoned" in listed
    row = open_catalog(catalog_url).sql(
        "SELECT status, error, heartbeat_at FROM runs WHERE run_id = :r",
        {"r": running[0]["run_id"]}).iloc[0]
    assert row["status"] == "abandoned"
    assert f"process {proc.pid}" in row["error"] and "last seen" in row["error"]
    assert row["heartbeat_at"] is not None

    # a live run is left alone: a second status changes nothing else
    again = run_cli("status", cwd=synthetic, env=env)
    assert again.returncode == 0 and again.stdout.count("abandoned") >= 1
