"""vida-batch init and status, run as a user would."""

from __future__ import annotations

import numpy as np

from tests.conftest import run_cli
from vida import open_catalog
from vida.catalog.schema import Clip
from vida.store import FeatureStore


def test_init_creates_catalog_and_store_in_the_working_directory(tmp_path):
    result = run_cli("init", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "catalog.db").is_file() and (tmp_path / "store").is_dir()
    from vida.catalog.revisions import head_revision

    assert head_revision() in result.stdout


def test_a_command_exits_with_its_heap_frozen_and_its_catalog_closed(tmp_path):
    """The interpreter's last garbage collections are skipped (the heap is frozen
    when finalization starts: a torch-sized heap is slow to collect), and that loses
    nothing: the catalog was closed and checkpointed (no DuckDB write-ahead log left
    behind)."""
    import subprocess
    import sys

    probe = ("import atexit, gc, sys\n"
             "atexit.register(lambda: print('frozen', gc.get_freeze_count() > 0))\n"
             "from vida.cli import main\n"
             "sys.argv = ['vida-batch', 'init']\n"
             "main()\n")
    done = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("frozen True"), done.stdout
    assert (tmp_path / "catalog.db").is_file()
    assert not (tmp_path / "catalog.db.wal").exists()


def test_an_internal_key_error_is_a_bug_with_its_traceback_not_a_user_error(tmp_path):
    """A KeyError inside VIDA (a bug) keeps its traceback and says it is a bug; the
    user's own mistake (a run id that is not there) is one line, no traceback."""
    import subprocess
    import sys

    from vida.errors import BUG_LINE

    assert run_cli("init", cwd=tmp_path).returncode == 0
    probe = ("import sys\n"
             "from vida.catalog.database import Catalog\n"
             "def broken(self, *a, **k):\n"
             "    return {}['clip_key']\n"
             "Catalog.sql = broken\n"
             "from vida.cli import main\n"
             "sys.argv = ['vida-batch', 'sql', 'SELECT 1']\n"
             "main()\n")
    bug = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True,
                         text=True)
    assert bug.returncode == 1
    assert "Traceback (most recent call last)" in bug.stderr and "KeyError: 'clip_key'" in \
        bug.stderr
    assert bug.stderr.rstrip().endswith(BUG_LINE)
    mistake = run_cli("report", "no-such-run", cwd=tmp_path)
    assert mistake.returncode == 1 and "Traceback" not in mistake.stderr
    assert mistake.stderr.strip().splitlines() == [
        "Error: no experiment 'no-such-run' in the catalog; list them with: vida-batch sql "
        "\"SELECT run_id, arch, status FROM runs WHERE kind = 'experiment'\""]


def test_catalog_and_store_from_environment(tmp_path):
    env = {"VIDA_CATALOG": str(tmp_path / "x" / "c.db"), "VIDA_STORE": str(tmp_path / "s")}
    (tmp_path / "x").mkdir()
    assert run_cli("init", env=env, cwd=tmp_path).returncode == 0
    assert (tmp_path / "x" / "c.db").is_file() and (tmp_path / "s").is_dir()
    assert not (tmp_path / "catalog.db").exists()


def test_status_counts_clips_and_feature_sets(tmp_path):
    cat = open_catalog(tmp_path / "catalog.db", create=True)
    with cat.transaction() as s:
        for i, (cls, split, status) in enumerate(
            [("barking", "train", "ok"), ("barking", "train", "ok"), ("barking", None, "failed"),
             ("boiling", "test", "flagged")]
        ):
            s.add(Clip(clip_key=f"{cls}/{i}", class_name=cls, clip_id=str(i), split=split,
                       status=status))
    store = FeatureStore(cat, tmp_path / "store")
    store.register("audio/fbank", modality="audio", encoder="fbank", shape=(18, 128))
    with store.writer("audio/fbank") as w:
        w.add("barking/0", np.zeros((18, 128)))
        w.add("barking/1", np.zeros((18, 128)))
    cat.dispose()

    result = run_cli("status", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()]
    assert ["barking", "train", "ok", "2"] in rows
    assert ["barking", "-", "failed", "1"] in rows
    assert ["boiling", "test", "flagged", "1"] in rows
    assert ["audio/fbank", "audio", "fbank", "[18,", "128]", "2", "1"] in rows


def test_every_command_is_listed_lazily_and_loading_the_cli_imports_no_command():
    """`vida-batch` loads a command when it runs: the lazy table names every command of
    every module (a new one cannot be left out), and importing the CLI -- which every
    worker a local pool spawns from the `vida-batch` script does again -- imports no
    catalog, pandas or media library."""
    import importlib

    from tests.helpers.imports import imported_after
    from vida.cli import LAZY_COMMANDS, main

    modules = ("catalog", "media", "semantics", "cafmap", "learning", "experiments", "data",
               "ratings")
    defined = {c.name: c for m in modules
               for c in importlib.import_module(f"vida.cli.{m}").COMMANDS}
    assert set(LAZY_COMMANDS) == set(defined)
    for name, command in defined.items():
        assert main.get_command(None, name) is command  # type: ignore[arg-type]
    assert imported_after("from vida.cli import main", (
        "pandas", "sqlalchemy", "duckdb", "h5py", "cv2", "av", "vida.catalog",
        "vida.jobs.data.ingest")) == []
    shown = run_cli("--help")
    assert shown.returncode == 0, shown.stderr
    assert all(name in shown.stdout for name in LAZY_COMMANDS)
