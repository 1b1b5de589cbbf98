"""Two `ingest` of the same source at once (two terminals): the second waits for the
first and then skips what it did; no clip is encoded twice, no shard row is dead."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from tests.conftest import ROOT
from tests.media_factory import write_class_folders
from vida import open_catalog
from vida.store import FeatureStore
from vida.store.integrity import fsck


def test_two_ingests_at_once_encode_each_clip_once(tmp_path, empty_catalog_url):
    root = write_class_folders(tmp_path / "v", per_class=4)
    args = [sys.executable, "-m", "vida.cli", "ingest", str(root), "--workers", "1",
            "--rows-per-shard", "2", "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "VIDA_CATALOG": empty_catalog_url}
    first = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)
    second = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    out1, err1 = first.communicate(timeout=600)
    out2, err2 = second.communicate(timeout=600)
    assert first.returncode == 0, err1
    assert second.returncode == 0, err2
    said = [line for line in err1.splitlines() + err2.splitlines() if "another ingest" in line]
    assert len(said) == 1, (err1, err2)  # the one that waited said so, once
    outs = sorted([out1, out2], key=lambda o: "12 skipped" in o)
    assert "12 ok" in outs[0] and "12 skipped" in outs[1]
    cat = open_catalog(empty_catalog_url, create=True)
    rows = cat.sql("SELECT feature_set, sum(n_rows) AS rows FROM shards GROUP BY 1")
    assert set(rows["rows"]) == {12}  # 12 rows per set: nothing encoded twice
    report = fsck(FeatureStore(cat, tmp_path / "store"))
    assert report.clean and report.dead_rows == 0


def test_two_generates_of_the_same_run_at_once_write_each_row_once(synthetic):
    from tests.conftest import run_cli

    trained = run_cli("train", "generator", "--epochs", "1", "--batch-size", "16",
                      cwd=synthetic)
    assert trained.returncode == 0, trained.stderr
    run_id = trained.stdout.split("run ", 1)[1].split(";")[0]
    args = [sys.executable, "-m", "vida.cli", "generate", "--run", run_id, "--cross-fit", "2"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen(args, cwd=synthetic, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=600) for p in procs]
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
    cat = open_catalog(synthetic / "catalog.db")
    name = f"generated/{run_id}-xf2"
    rows = cat.sql("SELECT sum(n_rows) AS n FROM shards WHERE feature_set = :s", {"s": name})
    assert int(rows["n"][0]) == 40  # the second found everything done: no row twice
    folds = cat.sql("SELECT count(*) AS n FROM runs WHERE kind = 'train-generator' AND "
                    "json_extract_string(params, '$.fold') LIKE '%of " + run_id + "'")
    assert folds["n"][0] == 2  # and trained no fold generator twice
