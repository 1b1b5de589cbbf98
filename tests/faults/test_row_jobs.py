"""The jobs whose results are catalog rows (tag, frames, caption): SIGKILLed after
some commits, their rerun does only the rest; a second started while the first
works does each unit once (it waits for the first, says so, and finds nothing
left)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT, run_cli
from vida import open_catalog

# job -> (its arguments, SQL counting the units it has done)
JOBS = {
    "tag": (lambda m: ["tag", "--model", str(m["ast"]), "--source", "t"],
            "SELECT count(DISTINCT clip_key) AS n FROM audio_tags WHERE source = 't'"),
    "frames": (lambda m: ["frames"],
               "SELECT count(DISTINCT clip_key) AS n FROM representative_frames"),
    "caption": (lambda m: ["caption", "--model", str(m["blip"]), "--captioner", "c"],
                "SELECT count(*) AS n FROM captions WHERE captioner = 'c'"),
}


def _done(url: str, sql: str) -> int:
    cat = open_catalog(url)
    try:
        return int(cat.sql(sql)["n"][0])
    finally:
        cat.dispose()


@pytest.mark.parametrize("job", list(JOBS))
def test_a_row_job_killed_midway_resumes_and_two_at_once_share(
        job, synthetic, catalog_url, tiny_ast, tiny_blip):
    args, count = JOBS[job]
    args = args({"ast": tiny_ast, "blip": tiny_blip[0]})
    env = {**os.environ, "PYTHONPATH": str(ROOT), "VIDA_CATALOG": catalog_url}
    if job == "caption":
        assert run_cli("frames", cwd=synthetic, env=env).returncode == 0
    killed = subprocess.run([sys.executable, "-m", "tests.helpers.die_after_commits", "2",
                             *args], cwd=synthetic, env=env, capture_output=True, text=True,
                            timeout=600)
    assert killed.returncode == -9, killed.stderr  # SIGKILL, after its second commit
    assert _done(catalog_url, count) == 4  # two commits of two units survived it

    # the first holds its lock (paused after a commit) as the second starts
    first = subprocess.Popen([sys.executable, "-m", "tests.helpers.die_after_commits",
                              "pause:5", *args], cwd=synthetic, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert first.stdout.readline().strip() == "paused", first.stderr.read()
    second = subprocess.Popen([sys.executable, "-m", "vida.cli", *args], cwd=synthetic,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    procs = [first, second]
    outputs = [p.communicate(timeout=600) for p in procs]
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
    waited = [err for _, err in outputs if f"another {job}-" in err]
    assert len(waited) == 1, outputs  # one waited for the other, and said so

    cat = open_catalog(catalog_url)
    runs = cat.sql(f"SELECT run_id, status FROM runs WHERE kind = '{job}' ORDER BY started_at")
    new = [float(cat.sql("SELECT value FROM run_metrics WHERE run_id = :r AND name IN "
                         "('clips_tagged', 'clips', 'frames_captioned')",
                         {"r": r})["value"][0]) for r in runs["run_id"].tolist()[1:]]
    cat.dispose()
    assert runs["status"].tolist()[0] == "abandoned"  # the killed one, as status shows it
    assert runs["status"].tolist()[1:] == ["finished", "finished"]
    total = _done(catalog_url, count)
    assert sorted(new) == [0, total - 4]  # the rest once, then nothing left to do
