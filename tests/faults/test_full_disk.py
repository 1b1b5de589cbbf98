"""The store's disk fills up mid-ingest (a real, small tmpfs): the job stops with one
line naming the path and the free space, blames no clip, and after space is freed a
rerun ends with every clip exactly once."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.conftest import run_cli
from tests.media_factory import tone, write_video
from vida import open_catalog
from vida.store import FeatureStore
from vida.store.fsck import fsck


@pytest.fixture
def small_disk(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1200k", "tmpfs", str(mount)],
                   check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_store_disk_stops_the_job_and_a_rerun_finishes_it(small_disk, tmp_path,
                                                                 empty_catalog_url):
    root = tmp_path / "v"
    for c in range(3):
        (root / f"class{c}").mkdir(parents=True)
        for i in range(8):
            write_video(root / f"class{c}" / f"clip{i}.mp4", n_frames=90,
                        audio=tone(3, 16000, freq=200 + 40 * i + 300 * c))
    store = small_disk / "store"
    args = ("--store", str(store), "ingest", str(root), "--workers", "2", "--rows-per-shard",
            "2", "--no-progress")
    env = {"VIDA_CATALOG": empty_catalog_url}
    full = run_cli(*args, cwd=tmp_path, env=env, timeout=600)
    assert full.returncode == 1, full.stdout + full.stderr
    assert "Traceback" not in full.stderr
    lines = [line for line in full.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, full.stderr
    assert "no space left on the disk of" in lines[0] and str(store) in lines[0]
    assert "MB free" in lines[0]
    cat = open_catalog(empty_catalog_url)
    clips = cat.sql("SELECT status, count(*) AS n FROM clips GROUP BY 1")
    assert "failed" not in set(clips["status"])  # no clip blamed for the disk
    committed = int(clips["n"].sum())
    assert 0 < committed < 24
    run = cat.sql("SELECT status, error FROM runs WHERE kind = 'ingest'").iloc[0]
    assert run["status"] == "failed" and "no space left" in run["error"]
    cat.dispose()

    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    again = run_cli(*args, cwd=tmp_path, env=env, timeout=600)
    assert again.returncode == 0, again.stderr
    assert f"{committed} skipped" in again.stdout
    cat = open_catalog(empty_catalog_url)
    counts = cat.sql("SELECT count(*) AS n, count(DISTINCT clip_key) AS d, "
                     "sum(CASE WHEN status = 'ok' THEN 1 ELSE 0 END) AS ok FROM clips")
    assert counts.to_dict("records") == [{"n": 24, "d": 24, "ok": 24}]
    assert set(cat.sql("SELECT count(*) AS n FROM features GROUP BY feature_set")["n"]) == {24}
    report = fsck(FeatureStore(cat, store), repair=True)
    assert report.clean, report.problems
