"""The bad paths and files a lab meets, each met as a user meets it: a store and a
media folder on a file system that is unmounted, a PostgreSQL server stopped under a
running job, AudioSet TFRecords cut short or overwritten, a catalog file that is not
DuckDB's or is from a newer DuckDB.  Each is one line, no traceback, a non-zero exit,
and nothing in the catalog or the store changed."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import ROOT, run_cli
from tests.faults.test_damaged_shard import PROGRESS_BAR
from tests.faults.test_wrong_store import catalog_state, one_line, store_files
from vida import open_catalog


@pytest.fixture
def tmpfs(tmp_path):
    """Mounts a tmpfs at a folder on request; unmounts whatever is left at the end."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    mounted = []

    def mount(folder):
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256m", "tmpfs", str(folder)],
                       check=True)
        mounted.append(folder)
        return folder

    yield mount
    for folder in mounted:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)  # if still mounted


def _umount(folder) -> None:
    subprocess.run(["umount", str(folder)], check=True)
    assert list(folder.iterdir()) == []  # a mount point with nothing mounted on it


def test_a_store_on_an_unmounted_file_system_is_refused(synthetic, catalog_url, tmpfs):
    mount = tmpfs(synthetic / "nfs")
    shutil.copytree(synthetic / "store", mount / "store")
    env = {"VIDA_CATALOG": catalog_url, "VIDA_STORE": str(mount / "store")}
    assert run_cli("fsck", cwd=synthetic, env=env).returncode == 0
    before = catalog_state(catalog_url)
    _umount(mount)
    for args in (["fsck", "--repair", "--force"], ["train", "classifier", "--epochs", "1"],
                 ["ingest", "data/manifest.csv", "--no-progress"], ["frames"]):
        result = run_cli(*args, cwd=synthetic, env=env)
        assert result.returncode == 1, (args, result.stderr)
        line = one_line(result)
        assert str(mount / "store") in line and "is missing or empty" in line, line
        assert "mounted" in line
    assert catalog_state(catalog_url) == before
    assert list(mount.iterdir()) == []  # nothing was created on the mount point


def _media_root(url: str) -> str:
    catalog = open_catalog(url)
    try:
        return catalog.sql("SELECT value FROM catalog_settings WHERE key = 'media_root'"
                           )["value"][0]
    finally:
        catalog.dispose()


def test_a_media_root_on_an_unmounted_file_system_is_one_line(synthetic, catalog_url, tmpfs):
    mount = tmpfs(synthetic / "media")
    old = _media_root(catalog_url)
    new = mount / "mit"
    shutil.copytree(old, new)
    env = {"VIDA_CATALOG": catalog_url}
    moved = run_cli("catalog", "relocate", old, str(new), cwd=synthetic, env=env)
    assert moved.returncode == 0, moved.stderr
    before, files = catalog_state(catalog_url), store_files(synthetic / "store")
    _umount(mount)
    result = run_cli("frames", cwd=synthetic, env=env)
    assert result.returncode == 1
    line = one_line(result)
    assert str(new) in line and "not mounted?" in line and "--media-root" in line
    assert catalog_state(catalog_url) == before
    assert store_files(synthetic / "store") == files
    frames = open_catalog(catalog_url).sql("SELECT count(*) AS n FROM representative_frames")
    assert int(frames["n"][0]) == 0


def stop_server_under(job: subprocess.Popen, server) -> None:
    """Stop ``server`` while ``job`` is paused, let the job go on: it must end in one
    line naming the server (a progress bar ends its own line)."""
    server.stop()
    _, err = job.communicate("go on\n", timeout=300)
    assert job.returncode == 1, err
    lines = [line for line in err.splitlines() if line.strip() and not PROGRESS_BAR.match(line)]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert f"127.0.0.1:{server.port}" in lines[0] and "catalog's server" in lines[0]


def test_a_postgresql_server_stopped_under_a_running_job(synthetic, own_pg_server):
    """frames commits, pauses, the server stops: the job ends in one line naming the
    server; restarted, the catalog holds what was committed and the rerun finishes."""
    url = own_pg_server.new_database()
    assert run_cli("catalog", "copy", str(synthetic / "catalog.db"), url).returncode == 0
    env = {**os.environ, "PYTHONPATH": str(ROOT), "VIDA_CATALOG": url}
    job = subprocess.Popen([sys.executable, "-m", "tests.helpers.die_after_commits",
                            "pause:told", "frames"], cwd=synthetic, env=env,
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    assert job.stdout.readline().strip() == "paused"
    files = store_files(synthetic / "store")
    stop_server_under(job, own_pg_server)

    own_pg_server.start()
    assert store_files(synthetic / "store") == files
    count = "SELECT count(DISTINCT clip_key) AS n FROM representative_frames"
    assert int(open_catalog(url).sql(count)["n"][0]) == 2  # the commit before the stop
    again = run_cli("frames", cwd=synthetic, env={"VIDA_CATALOG": url})
    assert again.returncode == 0, again.stderr
    assert int(open_catalog(url).sql(count)["n"][0]) == 40


def _write_tfrecord(path, records) -> None:
    from tfrecord.writer import TFRecordWriter

    writer = TFRecordWriter(str(path))
    for video_id, labels, embedding in records:
        writer.write({"video_id": (video_id.encode(), "byte"), "labels": (labels, "int")},
                     {"audio_embedding": ([row.tobytes() for row in embedding], "byte")})
    writer.close()


def _audioset(folder):
    """A good file, one cut short in its third record, one of random bytes."""
    rng = np.random.default_rng(0)
    folder.mkdir()
    good = [(f"g{i}", [i % 3], rng.integers(0, 256, (10, 128), dtype=np.uint8))
            for i in range(6)]
    _write_tfrecord(folder / "bal_train00.tfrecord", good)
    _write_tfrecord(folder / "bal_train01.tfrecord",
                    [(f"c{i}", [4], rng.integers(0, 256, (10, 128), dtype=np.uint8))
                     for i in range(5)])
    cut = folder / "bal_train01.tfrecord"
    data = cut.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    (folder / "bal_train02.tfrecord").write_bytes(rng.bytes(5000))
    return good


def _prototype_rows(url: str) -> int:
    catalog = open_catalog(url)
    try:
        return int(catalog.sql("SELECT count(*) AS n FROM features f JOIN feature_sets s ON "
                               "s.name = f.feature_set WHERE s.modality = 'prototype'")["n"][0])
    finally:
        catalog.dispose()


def test_damaged_tfrecords_are_named_skipped_or_strict(tmp_path, empty_catalog_url):
    from vida.semantics.audioset import load_labels
    from vida.store import FeatureStore

    good = _audioset(tmp_path / "tf")
    env = {"VIDA_CATALOG": empty_catalog_url}
    assert run_cli("init", cwd=tmp_path, env=env).returncode == 0
    strict = run_cli("prototypes", "--audioset-tfrecords", "tf", "--strict", cwd=tmp_path,
                     env=env)
    assert strict.returncode == 1
    line = one_line(strict)
    assert "bal_train01.tfrecord: record 2 is unreadable" in line and "truncated" in line
    assert _prototype_rows(empty_catalog_url) == 0

    kept = run_cli("prototypes", "--audioset-tfrecords", "tf", cwd=tmp_path, env=env)
    assert kept.returncode == 0, kept.stderr
    warnings = kept.stderr.strip().splitlines()
    assert len(warnings) == 2 and "Traceback" not in kept.stderr  # each bad file, once
    assert "bal_train01.tfrecord: record 2" in warnings[0]
    assert "bal_train02.tfrecord: record 0" in warnings[1]
    names = load_labels()
    store = FeatureStore(open_catalog(empty_catalog_url), tmp_path / "store")
    assert sorted(store.keys("prototype/audioset")) == sorted(names[i] for i in range(3))
    for index in range(3):  # from the good file alone
        clips = [e for _, labels, e in good if labels == [index]]
        expected = np.mean([(e.astype(np.float32) / 255 * 4 - 2).mean(0) for e in clips], 0)
        np.testing.assert_allclose(store.read("prototype/audioset", [names[index]])[0],
                                   expected, rtol=1e-5)

    only_bad = tmp_path / "bad"
    only_bad.mkdir()
    shutil.move(tmp_path / "tf" / "bal_train02.tfrecord", only_bad)
    none_read = run_cli("prototypes", "--audioset-tfrecords", "bad", "--name", "b",
                        cwd=tmp_path, env=env)
    assert none_read.returncode == 1 and "Traceback" not in none_read.stderr
    assert "bal_train02.tfrecord: record 0 is unreadable" in none_read.stderr.splitlines()[-1]
    assert _prototype_rows(empty_catalog_url) == 3


def _duckdb_checksum(block: bytes) -> int:
    """DuckDB's checksum of a header block (src/common/checksum.cpp): 5381 XOR each
    little-endian word times 0xbf58476d1ce4e5b9, mod 2**64."""
    words = np.frombuffer(block, dtype="<u8")
    with np.errstate(over="ignore"):
        products = words * np.uint64(0xBF58476D1CE4E5B9)
    return int(np.bitwise_xor.reduce(products, initial=np.uint64(5381)))


def test_a_catalog_file_duckdb_cannot_open_is_one_line(tmp_path):
    import duckdb

    (tmp_path / "notes.db").write_text("not a database\n")
    written = tmp_path / "written.db"
    duckdb.connect(str(written)).close()
    header = bytearray(written.read_bytes())
    (version,) = struct.unpack_from("<Q", header, 12)  # storage version, after "DUCK"
    struct.pack_into("<Q", header, 12, version + 100)  # what a newer DuckDB would write
    struct.pack_into("<Q", header, 0, _duckdb_checksum(bytes(header[8:4096])))
    (tmp_path / "newer.db").write_bytes(header)
    expected = {"notes.db": "is not a DuckDB database", "newer.db": "newer DuckDB"}
    for name, says in expected.items():
        before = (tmp_path / name).read_bytes()
        for args in (["status"], ["sql", "SELECT 1 AS one"], ["split"]):
            result = run_cli("--catalog", name, *args, cwd=tmp_path)
            assert result.returncode == 1
            line = one_line(result)
            assert name in line and says in line, line
        assert (tmp_path / name).read_bytes() == before


def test_open_catalog_in_python_reads_and_never_creates(tmp_path):
    from vida.catalog import CatalogError

    with pytest.raises(CatalogError, match="does not exist.*vida-batch init"):
        open_catalog(tmp_path / "typo.db")
    assert list(tmp_path.iterdir()) == []
    open_catalog(tmp_path / "new.db", create=True).dispose()
    assert open_catalog(tmp_path / "new.db").sql("SELECT count(*) AS n FROM clips")["n"][0] == 0


def test_a_postgresql_server_stopped_under_a_running_ingest(tmp_path, own_pg_server):
    """ingest commits its first chunk, pauses, the server stops: one line naming the
    server; restarted, the rerun ingests the rest, each clip once."""
    from tests.media_factory import write_class_folders

    url = own_pg_server.new_database()
    root = write_class_folders(tmp_path / "v", per_class=4)
    args = ["ingest", str(root), "--workers", "1", "--rows-per-shard", "2", "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "VIDA_CATALOG": url}
    job = subprocess.Popen([sys.executable, "-m", "tests.helpers.die_after_commits",
                            "pause:told", *args], cwd=tmp_path, env=env,
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    assert job.stdout.readline().strip() == "paused"
    stop_server_under(job, own_pg_server)

    own_pg_server.start()
    clips = "SELECT count(*) AS n FROM clips"
    assert int(open_catalog(url).sql(clips)["n"][0]) == 2  # the chunk committed before
    again = run_cli(*args, cwd=tmp_path, env={"VIDA_CATALOG": url})
    assert again.returncode == 0, again.stderr
    assert "10 ok" in again.stdout and "2 skipped" in again.stdout, again.stdout
    rows = open_catalog(url).sql("SELECT feature_set, sum(n_rows) AS rows FROM shards "
                                 "GROUP BY 1")
    assert set(rows["rows"]) == {12}  # every clip once, in every set
