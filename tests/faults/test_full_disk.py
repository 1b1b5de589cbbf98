"""The store's disk fills up mid-ingest (a real, small tmpfs): the job stops with one
line naming the path and the free space, blames no clip, and after space is freed a
rerun ends with every clip exactly once."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.conftest import run_cli
from tests.media_factory import write_class_folders
from vida import open_catalog
from vida.store import FeatureStore
from vida.store.integrity import fsck


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
    root = write_class_folders(tmp_path / "v", per_class=8)
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
    cat = open_catalog(empty_catalog_url, create=True)
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
    cat = open_catalog(empty_catalog_url, create=True)
    counts = cat.sql("SELECT count(*) AS n, count(DISTINCT clip_key) AS d, "
                     "sum(CASE WHEN status = 'ok' THEN 1 ELSE 0 END) AS ok FROM clips")
    assert counts.to_dict("records") == [{"n": 24, "d": 24, "ok": 24}]
    assert set(cat.sql("SELECT count(*) AS n FROM features GROUP BY feature_set")["n"]) == {24}
    report = fsck(FeatureStore(cat, store), repair=True)
    assert report.clean, report.problems


def _fill_up(mount) -> None:
    """Leave no byte free on the filesystem at ``mount``."""
    fd = os.open(mount / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)


def _one_line_and_failed(done, synthetic, kind: str) -> None:
    assert done.returncode == 1
    assert "no space left" in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    cat = open_catalog(synthetic / "catalog.db")
    runs = cat.sql("SELECT status, error FROM runs WHERE kind = :k ORDER BY started_at",
                   {"k": kind})
    cat.dispose()
    assert runs["status"].tolist()[-1] == "failed" and "space" in runs["error"].tolist()[-1]


def test_training_with_a_full_runs_disk_fails_in_one_line_then_reruns(small_disk, synthetic):
    """The checkpoint folder's disk is full: `train` stops with one line, its run is
    recorded failed; with space again the same command trains."""
    env = {"VIDA_RUNS": str(small_disk / "runs")}
    _fill_up(small_disk)
    args = ["train", "classifier", "--epochs", "1", "--batch-size", "16"]
    done = run_cli(*args, cwd=synthetic, env=env)
    _one_line_and_failed(done, synthetic, "train-classifier")
    assert str(small_disk / "runs") in done.stderr  # names where, and the space left
    (small_disk / "filler").unlink()
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    again = run_cli(*args, cwd=synthetic, env=env)
    assert again.returncode == 0, again.stderr


def test_generate_on_a_full_store_disk_fails_in_one_line_then_finishes(small_disk, synthetic):
    """The store's disk fills while `generate` writes: one line, run failed, nothing half
    committed; with space again the same command ends with every clip exactly once."""
    import shutil

    trained = run_cli("train", "generator", "--epochs", "1", "--batch-size", "16",
                      cwd=synthetic)
    assert trained.returncode == 0, trained.stderr
    run_id = trained.stdout.split("run ", 1)[1].split(";")[0]
    used = sum(p.stat().st_size for p in (synthetic / "store").rglob("*") if p.is_file())
    subprocess.run(["mount", "-o", f"remount,size={used // 1024 + 64}k", str(small_disk)],
                   check=True)
    shutil.copytree(synthetic / "store", small_disk / "store")
    env = {"VIDA_STORE": str(small_disk / "store")}
    args = ["generate", "--run", run_id]
    _one_line_and_failed(run_cli(*args, cwd=synthetic, env=env), synthetic, "generate")
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    again = run_cli(*args, cwd=synthetic, env=env)
    assert again.returncode == 0, again.stderr
    cat = open_catalog(synthetic / "catalog.db")
    rows = cat.sql("SELECT count(*) AS n, count(DISTINCT clip_key) AS d FROM features "
                   "WHERE feature_set = :s", {"s": f"generated/{run_id}"})
    assert rows.to_dict("records") == [{"n": 40, "d": 40}]
    assert fsck(FeatureStore(cat, small_disk / "store"), repair=True).clean


STORE_WRITERS = {  # a job that writes a new feature set: its arguments, the set
    "encode": (lambda m: ["encode", "--encoder", f"audio=ast:{m['ast']}", "--device", "cpu",
                          "--no-progress"], lambda m: f"audio/{m['ast'].name}-pooled"),
    "prototypes": (lambda m: ["prototypes", "--from-catalog", "--tags", "synth-ref",
                              "--name", "p"], lambda m: "prototype/p"),
    "condition": (lambda m: ["condition", "--prototypes", "prototype/p", "--name", "c"],
                  lambda m: "condition/c"),
}
# what a job needs done first (on the workdir's own store, before the disk fills)
BEFORE = {"condition": [["frames"], ["caption", "--import", "data/captions"],
                        ["prototypes", "--from-catalog", "--tags", "synth-ref", "--name", "p"]]}


@pytest.mark.parametrize("job", list(STORE_WRITERS))
def test_a_job_writing_a_set_to_a_full_store_disk_fails_in_one_line_then_finishes(
        job, small_disk, synthetic, tiny_ast):
    """Where the store is, `encode`, `prototypes` and `condition` meet a full disk:
    with no byte left they cannot start (one line naming the disk); with a few KB
    left they fail as they write the set (one line, run recorded failed, no row
    committed); with space again the same command ends with every row exactly once
    and no orphan shard."""
    import shutil

    for before in BEFORE.get(job, []):
        assert run_cli(*before, cwd=synthetic).returncode == 0, before
    used = sum(p.stat().st_size for p in (synthetic / "store").rglob("*") if p.is_file())
    subprocess.run(["mount", "-o", f"remount,size={used // 1024 + 1024}k", str(small_disk)],
                   check=True)
    shutil.copytree(synthetic / "store", small_disk / "store")
    args, written = (f({"ast": tiny_ast}) for f in STORE_WRITERS[job])
    env = {"VIDA_STORE": str(small_disk / "store")}

    def committed() -> int:
        cat = open_catalog(synthetic / "catalog.db")
        try:
            return int(cat.sql("SELECT count(*) AS n FROM features WHERE feature_set = :s",
                               {"s": written})["n"][0])
        finally:
            cat.dispose()

    _fill_up(small_disk)
    none = run_cli(*args, cwd=synthetic, env=env)
    assert none.returncode == 1 and "Traceback" not in none.stderr, none.stderr
    assert none.stderr.strip().splitlines() == [
        line for line in none.stderr.strip().splitlines()
        if "no space left on the disk of" in line and str(small_disk / "store") in line]
    filler = small_disk / "filler"
    os.truncate(filler, filler.stat().st_size - 8192)  # room for a lock file, not a set
    _one_line_and_failed(run_cli(*args, cwd=synthetic, env=env), synthetic, job)
    assert committed() == 0
    filler.unlink()
    again = run_cli(*args, cwd=synthetic, env=env)
    assert again.returncode == 0, again.stderr
    cat = open_catalog(synthetic / "catalog.db")
    rows = cat.sql("SELECT count(*) AS n, count(DISTINCT clip_key) AS d FROM features "
                   "WHERE feature_set = :s", {"s": written}).iloc[0]
    assert rows["n"] == rows["d"] > 0
    if job == "encode":
        assert rows["n"] == 40  # every clip of the workdir
    assert fsck(FeatureStore(cat, small_disk / "store"), repair=True).clean
