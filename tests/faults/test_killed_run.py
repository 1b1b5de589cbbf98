"""`kill -9` of a training: the run is shown as abandoned, with when it was last seen."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

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
            cat = open_catalog(catalog_url, create=True)
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
    row = _run_row(catalog_url, running[0]["run_id"])
    assert row["status"] == "running"  # status only reads: shown abandoned, not written

    # the next job that opens a run records it abandoned, with when it was last seen
    assert run_cli("split", cwd=synthetic, env=env).returncode == 0
    row = _run_row(catalog_url, running[0]["run_id"])
    assert row["status"] == "abandoned"
    assert f"process {proc.pid}" in row["error"] and "last seen" in row["error"]
    assert row["heartbeat_at"] is not None
    again = run_cli("status", cwd=synthetic, env=env)
    assert again.returncode == 0 and running[0]["run_id"] in again.stdout


def _run_row(url: str, run_id: str):
    cat = open_catalog(url, create=True)
    try:
        return cat.sql("SELECT status, error, heartbeat_at FROM runs WHERE run_id = :r",
                       {"r": run_id}).iloc[0]
    finally:
        cat.dispose()


def test_a_killed_encode_is_abandoned_and_its_rerun_encodes_every_clip_once(synthetic,
                                                                             tiny_ast):
    """`kill -9` of `encode` while it works: its run is shown abandoned, the catalog
    holds whole commits only, and the same command again ends with every clip of the
    new set exactly once; `fsck --repair` leaves a clean store."""
    from vida.store import FeatureStore
    from vida.store.integrity import fsck

    args = ["encode", "--encoder", f"audio=ast:{tiny_ast}", "--device", "cpu",
            "--batch-size", "1", "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "vida.cli", *args], cwd=synthetic,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    url = str(synthetic / "catalog.db")
    deadline = time.monotonic() + 120
    running = []
    while time.monotonic() < deadline and not running and proc.poll() is None:
        time.sleep(0.2)
        try:
            cat = open_catalog(url, create=True)
            running = cat.sql("SELECT run_id FROM runs WHERE kind = 'encode' "
                              "AND status = 'running'")["run_id"].tolist()
            cat.dispose()
        except Exception:  # the writer holds the file lock for a moment: look again
            running = []
    assert running and proc.poll() is None, "the encode never showed up as running"
    time.sleep(1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    assert run_cli("status", cwd=synthetic).returncode == 0  # finds the dead run
    again = run_cli(*args, cwd=synthetic)
    assert again.returncode == 0, again.stderr
    cat = open_catalog(url, create=True)
    runs = cat.sql("SELECT run_id, status FROM runs WHERE kind = 'encode' ORDER BY started_at")
    assert runs["status"].tolist() == ["abandoned", "finished"]
    assert runs["run_id"].tolist()[0] == running[0]
    rows = cat.sql("SELECT count(*) AS n, count(DISTINCT clip_key) AS d FROM features "
                   "WHERE feature_set = :s", {"s": f"audio/{tiny_ast.name}-pooled"}).iloc[0]
    assert rows["n"] == rows["d"] == 40
    fsck(FeatureStore(cat, synthetic / "store"), repair=True)
    assert fsck(FeatureStore(cat, synthetic / "store")).clean


@pytest.mark.parametrize("moment", ["before", "after"])
def test_killed_prototypes_and_condition_are_abandoned_and_their_reruns_write_once(
        synthetic, moment):
    """`kill -9` of `prototypes` and of `condition` just before (sealed shards no row
    points at) or just after (features committed, run unfinished) they commit their
    set: each run is shown abandoned, the same command again ends with every label /
    clip exactly once (and condition's chosen labels stored), and `fsck --repair`
    leaves a clean store."""
    from vida.store import FeatureStore
    from vida.store.integrity import fsck

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for args in (["frames"], ["caption", "--import", "data/captions"]):
        assert run_cli(*args, cwd=synthetic).returncode == 0, args
    jobs = {"prototypes": (["prototypes", "--from-catalog", "--tags", "synth-ref",
                            "--name", "p"], "prototype/p"),
            "condition": (["condition", "--prototypes", "prototype/p", "--name", "c"],
                          "condition/c")}
    url = str(synthetic / "catalog.db")
    for kind, (args, feature_set) in jobs.items():
        killed = subprocess.run([sys.executable, "-m", "tests.helpers.die_at_commit", moment,
                                 *args], cwd=synthetic, env=env, capture_output=True,
                                text=True, timeout=300)
        assert killed.returncode == -signal.SIGKILL, killed.stderr
        assert run_cli("status", cwd=synthetic).returncode == 0  # finds the dead run
        again = run_cli(*args, cwd=synthetic)
        assert again.returncode == 0, again.stderr
        cat = open_catalog(url, create=True)
        runs = cat.sql("SELECT status FROM runs WHERE kind = :k ORDER BY started_at",
                       {"k": kind})["status"].tolist()
        rows = cat.sql("SELECT count(*) AS n, count(DISTINCT clip_key) AS d FROM features "
                       "WHERE feature_set = :s", {"s": feature_set}).iloc[0]
        cat.dispose()
        assert runs == ["abandoned", "finished"], (kind, runs)
        assert rows["n"] == rows["d"] == (20 if kind == "prototypes" else 40), kind
    cat = open_catalog(url, create=True)
    labelled = cat.sql("SELECT count(DISTINCT clip_key) AS n FROM condition_labels "
                       "WHERE condition_set = 'condition/c'")["n"][0]
    store = FeatureStore(cat, synthetic / "store")
    assert labelled == 40
    assert np.isfinite(store.read("condition/c", store.keys("condition/c"))).all()
    repaired = fsck(store, repair=True)
    assert fsck(FeatureStore(cat, synthetic / "store")).clean, repaired.problems
