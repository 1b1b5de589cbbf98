"""A notebook holds the catalog open read-only while `ingest` runs: the job waits,
says so once, keeps its work, and ends with every clip exactly once."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT, run_cli
from tests.media_factory import write_class_folders
from vida import open_catalog
from vida.store import FeatureStore
from vida.store.integrity import fsck

HOLD = """
import sys, time, duckdb
while True:
    try:
        con = duckdb.connect(sys.argv[1], read_only=True)
        break
    except duckdb.Error:
        time.sleep(0.05)
print("holding", flush=True)
con.execute("SELECT count(*) FROM clips").fetchall()
time.sleep(float(sys.argv[2]))
con.close()
"""


HOLD_UNTIL_TOLD = """
import sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
con.execute("SELECT count(*) FROM clips").fetchall()
print("holding", flush=True)
sys.stdin.readline()  # until the test says the job has seen it (or gone)
con.close()
"""


def _run_while_held(args, cwd, env, db) -> tuple[subprocess.CompletedProcess, float]:
    """Run ``vida-batch ARGS`` while a notebook holds ``db``, which lets go only once
    the job has said that it waits (or has ended): however slow the job is to reach its
    first write, it meets the held catalog.  Returns the job and how long it was held."""
    import threading

    holder = subprocess.Popen([sys.executable, "-c", HOLD_UNTIL_TOLD, str(db)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "holding"
    held_at = time.monotonic()
    job = subprocess.Popen([sys.executable, "-m", "vida.cli", *args], cwd=cwd, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    err: list[str] = []
    said = threading.Event()

    def read_stderr() -> None:
        for line in job.stderr:
            err.append(line)
            if "in use" in line:
                said.set()

    reader = threading.Thread(target=read_stderr)
    reader.start()
    deadline = held_at + 300  # a job that waits without saying so is let go, and fails below
    while not said.is_set() and job.poll() is None and time.monotonic() < deadline:
        said.wait(0.1)
    held = time.monotonic() - held_at
    holder.communicate("release\n", timeout=60)
    out = job.stdout.read()
    job.wait(timeout=600)
    reader.join()
    return subprocess.CompletedProcess(job.args, job.returncode, out, "".join(err)), held


def _first_commit(db, proc, timeout: float = 120.0) -> None:
    """Wait until the ingest has committed its first chunk: the work is under way,
    and (with 2-clip chunks of 36 clips) most of it is still to come."""
    import duckdb

    end = time.monotonic() + timeout
    while time.monotonic() < end and proc.poll() is None:
        try:
            con = duckdb.connect(str(db), read_only=True)
            try:
                if con.execute("SELECT count(*) FROM clips").fetchone()[0]:
                    return
            finally:
                con.close()
        except duckdb.Error:
            pass  # the ingest is writing: look again
        time.sleep(0.05)


def test_ingest_waits_for_a_reader_and_loses_nothing(tmp_path):
    root = write_class_folders(tmp_path / "v", per_class=12)
    assert run_cli("init", cwd=tmp_path).returncode == 0
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("VIDA_LOCK_TIMEOUT", None)
    ingest = subprocess.Popen(
        [sys.executable, "-m", "vida.cli", "ingest", str(root), "--workers", "2",
         "--rows-per-shard", "2", "--no-progress"], cwd=tmp_path, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _first_commit(tmp_path / "catalog.db", ingest)
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path / "catalog.db"), "20"],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "holding"
    held_at = time.monotonic()
    assert ingest.poll() is None, 'the ingest ended before the reader came: make it longer'
    out, err = ingest.communicate(timeout=600)
    holder.wait(timeout=60)
    assert ingest.returncode == 0, err
    assert time.monotonic() - held_at > 15  # it did wait for the reader
    said = [line for line in err.splitlines() if "in use" in line]
    assert 1 <= len(said) <= 2, err  # said once (and once that the work goes on)
    assert "Traceback" not in err
    assert "36 clips: 36 ok" in out
    cat = open_catalog(tmp_path / "catalog.db", create=True)
    counts = cat.sql("SELECT count(*) AS n, count(DISTINCT clip_key) AS d, "
                     "sum(CASE WHEN status = 'ok' THEN 1 ELSE 0 END) AS ok FROM clips")
    assert counts.to_dict("records") == [{"n": 36, "d": 36, "ok": 36}]
    features = cat.sql("SELECT feature_set, count(*) AS n FROM features GROUP BY 1")
    assert set(features["n"]) == {36}
    assert fsck(FeatureStore(cat, tmp_path / "store")).clean  # no orphans left behind


WRITERS = {  # the other jobs that write the catalog, each as a user runs it
    "frames": lambda m: ["frames"],
    "tag": lambda m: ["tag", "--model", str(m["ast"]), "--source", "t"],
    "train": lambda m: ["train", "classifier", "--epochs", "1", "--batch-size", "16"],
    "train-generator": lambda m: ["train", "generator", "--epochs", "1", "--batch-size", "16"],
    "encode": lambda m: ["encode", "--encoder", f"audio=ast:{m['ast']}", "--device", "cpu",
                         "--no-progress"],
    "prototypes": lambda m: ["prototypes", "--from-catalog", "--tags", "synth-ref", "--name",
                             "p"],
    "caption": lambda m: ["caption", "--model", str(m["blip"]), "--captioner", "c"],
    "condition": lambda m: ["condition", "--prototypes", "prototype/p", "--name", "c"],
}
CAFMAP_INPUTS = [["frames"], ["caption", "--import", "data/captions"],
                 ["prototypes", "--from-catalog", "--tags", "synth-ref", "--name", "p"]]
# what a job needs done first, before the reader comes
BEFORE = {"caption": [["frames"]], "condition": CAFMAP_INPUTS}


@pytest.mark.parametrize("job", list(WRITERS))
def test_every_writing_job_waits_for_a_reader(job, synthetic, tiny_ast, tiny_blip):
    """The notebook opens the catalog first and keeps it until the job has said (once)
    that it waits: the job does not fail, and its rows are there when it ends."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("VIDA_LOCK_TIMEOUT", None)
    for args in BEFORE.get(job, []):
        assert run_cli(*args, cwd=synthetic, env=env).returncode == 0, args
    cat = open_catalog(synthetic / "catalog.db")
    runs_before = int(cat.sql("SELECT count(*) AS n FROM runs")["n"][0])
    cat.dispose()
    models = {"ast": tiny_ast, "blip": tiny_blip[0]}
    done, held = _run_while_held(WRITERS[job](models), synthetic, env,
                                 synthetic / "catalog.db")
    assert done.returncode == 0, done.stderr
    assert held > 2  # it waited for the reader to go (it says so after 2 s)
    said = [line for line in done.stderr.splitlines() if "in use" in line]
    assert len(said) == 1 and "Traceback" not in done.stderr, done.stderr
    cat = open_catalog(synthetic / "catalog.db")
    runs = cat.sql("SELECT status FROM runs ORDER BY started_at")["status"].tolist()
    assert len(runs) > runs_before and runs[-1] == "finished"
