"""Processes: a writer killed mid-shard, and readers racing a writer."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import numpy as np

from tests.conftest import ROOT, run_cli
from vida import open_catalog
from vida.store import FeatureStore, fsck


def _start_writer(catalog, store, n=60, per_shard=5, sleep=0.01):
    return subprocess.Popen(
        [sys.executable, "-m", "tests.helpers.slow_writer", str(catalog), str(store),
         str(n), str(per_shard), str(sleep)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def test_sigkill_mid_shard_leaves_catalog_consistent(tmp_path):
    catalog_path, store_root = tmp_path / "catalog.db", tmp_path / "store"
    rng = np.random.default_rng(0)
    for attempt in range(3):
        proc = _start_writer(catalog_path, store_root)
        seen = 0
        for line in proc.stdout:  # wait until some shards are committed
            seen += line.startswith("committed")
            if seen >= 2:
                break
        time.sleep(float(rng.uniform(0.0, 0.06)))  # land somewhere inside a shard
        proc.send_signal(signal.SIGKILL)
        proc.wait()

        store = FeatureStore(open_catalog(catalog_path, create=True), store_root)
        keys = store.keys("rgb/slow")
        assert keys, f"attempt {attempt}: nothing committed before the kill"
        # every cataloged row is readable and holds what was written for it
        values = store.read("rgb/slow", keys)
        expected = np.array([int(k.rsplit("clip", 1)[1]) for k in keys], dtype=np.float32)
        np.testing.assert_array_equal(values[:, 0, 0], expected)
        report = fsck(store, repair=True)
        assert report.clean, [str(p) for p in report.problems]
        assert fsck(store).clean
        store.catalog.dispose()

    # resuming finishes the job with every row exactly once
    proc = _start_writer(catalog_path, store_root, sleep=0)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    cat = open_catalog(catalog_path, create=True)
    counts = cat.sql("SELECT count(*) AS n, count(DISTINCT clip_key) AS d FROM features")
    assert counts.to_dict("records") == [{"n": 60, "d": 60}]
    assert fsck(FeatureStore(cat, store_root)).clean


def test_readers_during_a_write_get_rows_or_a_clear_message(tmp_path):
    catalog_path, store_root = tmp_path / "catalog.db", tmp_path / "store"
    open_catalog(catalog_path, create=True).dispose()
    writer = _start_writer(catalog_path, store_root, n=120, per_shard=2, sleep=0.01)
    query = "SELECT count(*) AS n FROM features"
    outcomes = []
    try:
        while writer.poll() is None and len(outcomes) < 40:
            # alternate patient readers (they wait the lock out) and impatient ones
            timeout = "30" if len(outcomes) % 2 == 0 else "0"
            result = run_cli("--catalog", str(catalog_path), "sql", query, "--format", "csv",
                             env={"VIDA_LOCK_TIMEOUT": timeout})
            outcomes.append((timeout, result))
    finally:
        out, err = writer.communicate(timeout=120)
    assert writer.returncode == 0, err
    assert "finished" in out

    counts = []
    for timeout, result in outcomes:
        assert "Traceback" not in result.stderr, result.stderr
        if result.returncode == 0:
            counts.append(int(result.stdout.splitlines()[1]))
        else:
            assert timeout == "0", result.stderr
            lines = result.stderr.strip().splitlines()
            assert len(lines) == 1 and "is in use by" in lines[0] and "PID" in lines[0]
    print(f"{len(counts)} readers got rows, {len(outcomes) - len(counts)} met the lock")
    assert counts, "no reader ever got rows"
    assert counts == sorted(counts)  # readers see commits in order, never a torn state
    assert all(c % 2 == 0 for c in counts)  # whole shards (2 rows) or nothing


def test_lock_message_names_the_holder(tmp_path):
    path = tmp_path / "catalog.db"
    open_catalog(path, create=True).dispose()
    holder = subprocess.Popen(
        [sys.executable, "-c",
         f"import duckdb, time; c = duckdb.connect({str(path)!r}); print('held', flush=True); "
         "time.sleep(30)"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        result = run_cli("--catalog", str(path), "status", env={"VIDA_LOCK_TIMEOUT": "0.5"})
        assert result.returncode == 1
        assert f"(PID {holder.pid})" in result.stderr
        assert "retry when it is closed" in result.stderr
    finally:
        holder.kill()
        holder.wait()
    # the file is free again: a normal open works
    assert open_catalog(path, create=True).sql("SELECT 1 AS one")["one"].tolist() == [1]
