"""Where ingest's map runs: local processes or Dask, the same rows and values either way;
a lost worker (a crashing decoder, a killed Dask worker) costs no clip twice."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import run_cli
from tests.helpers.plugins import fake_distribution
from tests.media_factory import tone, write_video
from vida import open_catalog
from vida.jobs.core.executor import open_pool, parse_executor
from vida.jobs.data.ingest import chunk_size, ingest
from vida.store import FeatureStore
from vida.store.integrity import fsck

SETS = ("rgb/hog-color", "flow/flow-hist", "audio/ast-fbank")


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("media") / "v"
    for c in range(2):
        (root / f"class{c}").mkdir(parents=True)
        for i in range(6):
            write_video(root / f"class{c}" / f"clip{i}.mp4", n_frames=90 + 3 * i,
                        audio=tone(3, 16000, freq=200 + 50 * i + 300 * c))
    return root


def test_a_local_pool_starts_and_warms_every_worker_before_its_first_item(tmp_path):
    """Workers start as the pool opens and run the job's warm-up (its models) while
    the driver still plans: every item then runs in a warmed worker."""
    from functools import partial

    from tests.helpers.warmups import mark_warm, warmed

    with open_pool("local", 2, prepare=partial(mark_warm, str(tmp_path))) as pool:
        deadline = time.monotonic() + 60
        while len(list(tmp_path.iterdir())) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(list(tmp_path.iterdir())) == 2  # both, and no item given yet
        assert all(pool.submit(warmed, str(tmp_path)).result() for _ in range(8))


def test_workers_fork_from_a_server_that_imported_the_job_modules_early(tmp_path):
    """``start_workers_early`` (what `vida-batch ingest` calls first) has a server
    import the job's modules while the driver goes on; the pool's workers are forks
    of it, so they begin with those modules loaded -- imported in another process,
    not each worker's -- yet see the driver's environment as the pool opens, as a
    spawned worker would.  (In a fresh interpreter: the server is one per process.)"""
    script = (
        "import os\n"
        "from vida.jobs.core.executor import open_pool, start_workers_early\n"
        "start_workers_early('local', 2, ['tests.helpers.preloaded'])\n"
        "os.environ['VIDA_TEST_SET_LATER'] = 'seen'\n"
        "from tests.helpers.preloaded import where\n"
        "with open_pool('local', 2) as pool:\n"
        "    for server, worker, seen in (pool.submit(where, 'VIDA_TEST_SET_LATER').result()\n"
        "                                 for _ in range(6)):\n"
        "        print(server != worker, server != os.getpid(), seen)\n")
    done = _python_in_checkout(script, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:6] == ["True True seen"] * 6


def test_the_demos_workers_fork_with_its_modules_imported(tmp_path):
    """The demo's server imports them early, best effort: a misspelt or broken one
    would be skipped silently, and every worker would import it itself again.  A
    process forked from that server must find each of them already imported."""
    import subprocess
    import sys

    script = tmp_path / "preloaded.py"
    script.write_text(  # nothing of VIDA imported at the top: the child re-imports this
        "import multiprocessing as mp\n"
        "import sys\n"
        "def missing(modules, answer):\n"
        "    answer.put([m for m in modules if m not in sys.modules])\n"
        "if __name__ == '__main__':\n"
        "    from vida.jobs.core.preload import DEMO\n"
        "    from vida.jobs.core.executor import start_workers_early\n"
        "    start_workers_early(None, 2, DEMO)\n"
        "    context = mp.get_context('forkserver')\n"
        "    answer = context.Queue()\n"
        "    child = context.Process(target=missing, args=(DEMO, answer))\n"
        "    child.start()\n"
        "    print('missing', answer.get(timeout=120))\n"
        "    child.join()\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "missing []"


def test_local_workers_end_with_a_sigkilled_driver_and_free_its_pipes():
    """A driver killed with SIGKILL cannot shut its pool down: its workers must end
    on their own, or they wait for work forever and hold the caller's pipes open
    (a caller reading the driver's output would never see it end)."""
    script = (
        "import os, signal\n"
        "from vida.jobs.core.executor import open_pool, _started\n"
        "pool = open_pool('local', 2)\n"
        "print(*sorted({pool.executor.submit(_started).result() for _ in range(8)}),\n"
        "      flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n")
    # the output is captured: run() returns only once every holder of the pipes ended
    killed = _python_in_checkout(script, timeout=60)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    workers = [int(pid) for pid in killed.stdout.split()]
    assert workers and os.getpid() not in workers
    deadline = time.monotonic() + 10
    while any(_running(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_running(pid) for pid in workers)


def _python_in_checkout(script: str, timeout: float):
    """``script`` run by a fresh interpreter from the repository's root (the workers'
    server is one per process, so these tests need a process of their own)."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    return subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True,
                          text=True, timeout=timeout)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat")  # a zombie is gone, only not yet reaped
    return not (state.exists() and state.read_text().split(")")[-1].split()[0] == "Z")


def test_a_warm_up_that_fails_leaves_the_error_to_the_items():
    """A warm-up is best effort: a pool whose warm-up raises still runs items (an
    initialiser that raised would break the pool for good), and an item that needs
    what failed to load says why itself."""
    from tests.helpers.warmups import fail_warm, needs_the_model

    with open_pool("local", 2, prepare=fail_warm) as pool:
        assert [pool.submit(int, "7").result() for _ in range(4)] == [7] * 4
        with pytest.raises(RuntimeError, match="could not be loaded"):
            pool.submit(needs_the_model, "clip").result()


def _ingest_into(folder, root, executor, workers=2):
    cat = open_catalog(folder / "catalog.db", create=True)
    store = FeatureStore(cat, folder / "store")
    summary = ingest(cat, store, root, workers=workers, executor=executor, progress=False)
    return cat, store, summary


def _snapshot(cat, store):
    rows = cat.sql("SELECT clip_key, class_name, status, has_audio, n_frames, content_sha256 "
                   "FROM clips ORDER BY clip_key")
    keys = rows["clip_key"].tolist()
    return rows, {name: store.read(name, keys) for name in SETS}


def test_executor_names_parse_and_bad_ones_say_what_to_write():
    assert parse_executor("local", 1).kind == "serial"
    assert parse_executor("local", 3).workers == 3
    assert parse_executor("dask://10.0.0.5:8786").address == "tcp://10.0.0.5:8786"
    assert parse_executor("dask-local:2").workers == 2
    for bad in ("dask://nohost", "spark://x:1", "dask-local:two"):
        with pytest.raises(ValueError, match="local, dask://HOST:PORT or dask-local:N|HOST:PORT"):
            parse_executor(bad)
    # small jobs are cut into one chunk per slot (two per worker); large ones per shard
    assert chunk_size(12, 4, 128) == 3 and chunk_size(300, 4, 128) == 75
    assert chunk_size(1_000_000, 64, 128) == 128


def test_dask_ingest_gives_the_rows_and_values_of_local_processes(clips, tmp_path):
    local = _snapshot(*_ingest_into(tmp_path / "local", clips, "local")[:2])
    cat, store, summary = _ingest_into(tmp_path / "dask", clips, "dask-local:2")
    assert summary.by_status["ok"] == 12
    dask = _snapshot(cat, store)
    assert local[0].equals(dask[0])
    for name in SETS:
        np.testing.assert_array_equal(local[1][name], dask[1][name], err_msg=name)
    run = cat.sql("SELECT params FROM runs WHERE kind = 'ingest'")["params"][0]
    assert "dask" in run
    # the workers wrote and sealed; only the driver committed: every shard is known
    assert fsck(store).clean


def test_a_killed_dask_worker_still_ends_with_every_clip_once(clips, tmp_path):
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                           dashboard_address=None)
    client = Client(cluster)
    killed = []

    def kill_one_worker() -> None:
        # wait until the workers are busy, then SIGKILL one worker process
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not killed:
            busy = [w for w, tasks in client.processing().items() if tasks]
            if busy:
                pid = client.run(os.getpid, workers=[busy[0]])[busy[0]]
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            time.sleep(0.05)

    try:
        killer = threading.Thread(target=kill_one_worker, daemon=True)
        killer.start()
        address = cluster.scheduler_address.removeprefix("tcp://")
        cat, store, summary = _ingest_into(tmp_path / "kill", clips, f"dask://{address}")
        killer.join()
    finally:
        client.close()
        cluster.close()
    assert killed, "no worker was killed: the test did not test anything"
    counts = cat.sql("SELECT count(*) AS n, count(DISTINCT clip_key) AS d, "
                     "sum(CASE WHEN status = 'ok' THEN 1 ELSE 0 END) AS ok FROM clips")
    assert counts.to_dict("records") == [{"n": 12, "d": 12, "ok": 12}]
    for name in SETS:
        rows = cat.sql(f"SELECT count(*) AS n, count(DISTINCT clip_key) AS d FROM features "
                       f"WHERE feature_set = '{name}'")
        assert rows.to_dict("records") == [{"n": 12, "d": 12}], name
    # what the killed worker had written but not handed back is an orphan, repaired away
    assert fsck(store, repair=True).clean and fsck(store).clean


CRASHING = '''
"""An rgb encoder that kills its process on an all-white clip, like a decoder crash."""
import os
import numpy as np


class CrashOnWhite:
    name = "crash-on-white"
    modality = "rgb"

    def __init__(self, n_frames=18, **_):
        self.shape = (n_frames, 3)
        self.params = {}

    def encode(self, batch):
        if batch.mean() > 250:
            os._exit(3)
        return batch.astype(np.float32).mean(axis=(2, 3)) / 255.0
'''


def test_a_clip_that_kills_its_worker_is_recorded_and_the_rest_commit(tmp_path):
    site = fake_distribution(tmp_path / "site", "vida_crash", CRASHING, "crash-on-white",
                             "CrashOnWhite")
    root = tmp_path / "v" / "c"
    root.mkdir(parents=True)
    for i in range(7):
        write_video(root / f"clip{i}.mp4", n_frames=90)
    white = [np.full((48, 64, 3), 255, np.uint8)] * 90
    write_video(root / "white.mp4", white)
    result = run_cli("ingest", str(tmp_path / "v"), "--workers", "2", "--rgb-encoder",
                     "crash-on-white", "--no-progress", cwd=tmp_path,
                     env={"PYTHONPATH": f"{site}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"},
                     timeout=600)
    assert result.returncode == 0, result.stderr
    assert "8 clips: 7 ok, 0 flagged, 1 failed" in result.stdout
    cat = open_catalog(tmp_path / "catalog.db", create=True)
    rows = cat.sql("SELECT clip_id, status, error FROM clips").set_index("clip_id")
    assert rows.loc["white", "status"] == "failed"
    assert rows.loc["white", "error"].startswith("worker_crashed")
    assert (rows.drop(index="white")["status"] == "ok").all()
    store = FeatureStore(cat, tmp_path / "store")
    assert len(store.keys("rgb/crash-on-white")) == 7
    assert fsck(store, repair=True).clean


def test_every_mapped_job_goes_to_dask_when_chosen_results_in_plan_order():
    """`map_items`, the map of tag, caption, frames and generate, runs on the Dask
    cluster that --executor names, and gives its results in the plan's order."""
    from vida.jobs.core.batch_job import map_items
    from vida.jobs.core.executor import _CURRENT, set_executor

    token = _CURRENT.set(None)
    try:
        set_executor("dask-local:2")
        got = list(map_items(_whose_pid, list(range(12)), desc="t", progress=False))
    finally:
        _CURRENT.reset(token)
    assert [i for i, _ in got] == list(range(12))
    assert os.getpid() not in {pid for _, pid in got}  # not run in this process
    local = list(map_items(_whose_pid, [1, 2], desc="t", progress=False))
    assert {pid for _, pid in local} == {os.getpid()}  # local: the model's own process


def _whose_pid(i: int) -> tuple[int, int]:
    return i, os.getpid()
