"""A typo in --store, a mount that is down, another catalog's store: refused in one line,
with nothing in the catalog or the store changed (and read-only commands create nothing)."""

from __future__ import annotations

import shutil

from tests.conftest import run_cli
from vida import open_catalog


def feature_rows(work) -> int:
    catalog = open_catalog(work / "catalog.db", create=True)
    try:
        return int(catalog.sql("SELECT count(*) AS n FROM features")["n"][0])
    finally:
        catalog.dispose()


def one_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_fsck_repair_on_a_mistyped_store_refuses_and_keeps_the_index(synthetic):
    before = feature_rows(synthetic)
    assert before > 0
    for args in (["fsck", "--repair"], ["fsck"], ["train", "classifier", "--epochs", "1"],
                 ["ingest", "data/manifest.csv", "--no-progress"]):
        result = run_cli("--store", "typo-store", *args, cwd=synthetic)
        assert result.returncode == 1, args
        line = one_line(result)
        assert "typo-store" in line and "catalog.db" in line and "is missing or empty" in line
        assert not (synthetic / "typo-store").exists()
    assert feature_rows(synthetic) == before


def test_an_empty_mount_point_is_refused(synthetic):
    """A mount point whose file system is not mounted is an empty folder."""
    mount = synthetic / "mnt-store"
    mount.mkdir()
    result = run_cli("--store", str(mount), "fsck", "--repair", cwd=synthetic)
    assert result.returncode == 1 and "is missing or empty" in one_line(result)
    assert list(mount.iterdir()) == []


def test_another_catalogs_store_is_refused(synthetic, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    assert run_cli("init", cwd=other).returncode == 0
    result = run_cli("--store", str(other / "store"), "fsck", "--repair", cwd=synthetic)
    assert result.returncode == 1 and "belongs to another catalog" in one_line(result)
    result = run_cli("--catalog", str(other / "catalog.db"), "--store",
                     str(synthetic / "store"), "fsck", cwd=other)
    assert result.returncode == 1 and "belongs to another catalog" in one_line(result)


def test_a_pair_from_before_store_ids_gets_one_and_says_so(synthetic):
    (synthetic / "store" / "VIDA_STORE.json").unlink()
    catalog = open_catalog(synthetic / "catalog.db")
    with catalog.transaction() as session:
        from sqlalchemy import text

        session.execute(text("DELETE FROM catalog_settings WHERE key = 'store_id'"))
    catalog.dispose()
    first = run_cli("fsck", cwd=synthetic)
    assert first.returncode == 0, first.stderr
    assert "now know each other" in one_line(first)
    assert (synthetic / "store" / "VIDA_STORE.json").is_file()
    again = run_cli("fsck", cwd=synthetic)
    assert again.returncode == 0 and "now know each other" not in again.stderr


def test_fsck_repair_of_many_missing_shards_asks_for_force(synthetic):
    before = feature_rows(synthetic)
    shards = sorted((synthetic / "store").rglob("*.h5"))
    moved = synthetic / "moved"
    moved.mkdir()
    for shard in shards[: len(shards) // 2]:
        shutil.move(str(shard), moved / shard.name)
    refused = run_cli("fsck", "--repair", cwd=synthetic)
    assert refused.returncode == 1
    line = one_line(refused)
    assert f"would quarantine {len(shards) // 2} of {len(shards)} shards" in line
    assert "--force" in line and feature_rows(synthetic) == before
    forced = run_cli("fsck", "--repair", "--force", cwd=synthetic)
    assert forced.returncode == 0, forced.stderr
    assert feature_rows(synthetic) < before


def test_read_only_commands_create_nothing(tmp_path):
    for args in (["--catalog", str(tmp_path / "nodir" / "catalog.db"), "status"],
                 ["--catalog", str(tmp_path / "typo.db"), "sql", "SELECT 1 AS one"]):
        result = run_cli(*args, cwd=tmp_path)
        assert result.returncode == 1 and "does not exist" in one_line(result)
        assert "vida-batch init" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    assert run_cli("init", cwd=tmp_path).returncode == 0
    result = run_cli("--store", str(tmp_path / "nonexistent2" / "store"), "fsck", cwd=tmp_path)
    assert result.returncode == 1 and "is missing or empty" in one_line(result)
    assert not (tmp_path / "nonexistent2").exists()


def test_an_unreachable_postgresql_server_is_one_line(tmp_path):
    import socket

    with socket.socket() as probe:  # a loopback port where nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = run_cli("--catalog", f"postgresql+psycopg://nobody@127.0.0.1:{port}/x", "status",
                     cwd=tmp_path)
    assert result.returncode == 1
    line = one_line(result)
    assert f"127.0.0.1:{port}/x" in line and "refused" in line
