"""The jobs whose results are catalog rows (tag, frames, caption): SIGKILLed after
some commits, their rerun does only the rest; a second started while the first
works does each unit once (it waits for the first, says so, and finds nothing
left)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

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
    cat = open_catalog(url, create=True)
    try:
        return int(cat.sql(sql)["n"][0])
    finally:
        cat.dispose()


class _Collected:
    """A process's stderr, read on a thread (so that its pipe never fills)."""

    def __init__(self, proc: subprocess.Popen, marker: str) -> None:
        import threading

        self.lines: list[str] = []
        self.seen = threading.Event()
        self.thread = threading.Thread(target=self._read, args=(proc, marker))
        self.thread.start()

    def _read(self, proc: subprocess.Popen, marker: str) -> None:
        for line in proc.stderr:
            self.lines.append(line)
            if marker in line:
                self.seen.set()

    def result(self) -> str:
        self.thread.join()
        return "".join(self.lines)


def _stderr_until(proc: subprocess.Popen, marker: str, timeout: float) -> _Collected:
    """Start collecting ``proc``'s stderr; return once ``marker`` is in it, ``proc`` has
    ended, or ``timeout`` seconds have passed."""
    collected = _Collected(proc, marker)
    end = time.monotonic() + timeout
    while not collected.seen.is_set() and proc.poll() is None and time.monotonic() < end:
        collected.seen.wait(0.1)
    return collected


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

    # the first holds its lock (paused after a commit) until the second says it waits
    first = subprocess.Popen([sys.executable, "-m", "tests.helpers.die_after_commits",
                              "pause:told", *args], cwd=synthetic, env=env,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    assert first.stdout.readline().strip() == "paused", first.stderr.read()
    second = subprocess.Popen([sys.executable, "-m", "vida.cli", *args], cwd=synthetic,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    second_err = _stderr_until(second, f"another {job}-", timeout=300)
    first.stdin.write("go on\n")
    first.stdin.flush()
    procs = [first, second]
    outputs = [first.communicate(timeout=600)]
    second.wait(timeout=600)
    outputs.append((second.stdout.read(), second_err.result()))
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
    waited = [err for _, err in outputs if f"another {job}-" in err]
    assert len(waited) == 1, outputs  # one waited for the other, and said so

    cat = open_catalog(catalog_url, create=True)
    runs = cat.sql(f"SELECT run_id, status FROM runs WHERE kind = '{job}' ORDER BY started_at")
    new = [float(cat.sql("SELECT value FROM run_metrics WHERE run_id = :r AND name IN "
                         "('clips_tagged', 'clips', 'frames_captioned')",
                         {"r": r})["value"][0]) for r in runs["run_id"].tolist()[1:]]
    cat.dispose()
    assert runs["status"].tolist()[0] == "abandoned"  # the killed one, as status shows it
    assert runs["status"].tolist()[1:] == ["finished", "finished"]
    total = _done(catalog_url, count)
    assert sorted(new) == [0, total - 4]  # the rest once, then nothing left to do
