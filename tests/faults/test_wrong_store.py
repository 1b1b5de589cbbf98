"""A typo in --store, a mount that is down, another catalog's store: refused in one line,
with nothing in the catalog or the store changed (and read-only commands create nothing)."""

from __future__ import annotations

import shutil

from tests.conftest import run_cli
from vida import open_catalog


def catalog_state(url: str) -> tuple[int, int, int, int]:
    """Rows of features, shards, quarantined shards and clips with a content hash."""
    catalog = open_catalog(url)
    try:
        return tuple(int(catalog.sql(sql)["n"][0]) for sql in (
            "SELECT count(*) AS n FROM features", "SELECT count(*) AS n FROM shards",
            "SELECT count(*) AS n FROM quarantined_shards WHERE restored_at IS NULL",
            "SELECT count(*) AS n FROM clips WHERE content_sha256 IS NOT NULL"))
    finally:
        catalog.dispose()


def store_files(root) -> list[tuple[str, int, int]]:
    """Every file of the store with its size and time, but the jobs' lock files."""
    return sorted((p.relative_to(root).as_posix(), p.stat().st_size, p.stat().st_mtime_ns)
                  for p in root.rglob("*") if p.is_file() and p.parent.name != ".locks")


def one_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_fsck_repair_on_a_mistyped_store_refuses_and_keeps_the_index(synthetic, catalog_url):
    env = {"VIDA_CATALOG": catalog_url}
    before, files = catalog_state(catalog_url), store_files(synthetic / "store")
    assert before[0] > 0
    for args in (["fsck", "--repair"], ["fsck"], ["train", "classifier", "--epochs", "1"],
                 ["ingest", "data/manifest.csv", "--no-progress"]):
        result = run_cli("--store", "typo-store", *args, cwd=synthetic, env=env)
        assert result.returncode == 1, args
        line = one_line(result)
        assert "typo-store" in line and "is missing or empty" in line
        assert "--store" in line and "mounted" in line
        assert not (synthetic / "typo-store").exists()
    assert catalog_state(catalog_url) == before
    assert store_files(synthetic / "store") == files


def test_an_empty_mount_point_is_refused(synthetic, catalog_url):
    """A mount point whose file system is not mounted is an empty folder."""
    mount = synthetic / "mnt-store"
    mount.mkdir()
    before = catalog_state(catalog_url)
    result = run_cli("--store", str(mount), "fsck", "--repair", cwd=synthetic,
                     env={"VIDA_CATALOG": catalog_url})
    assert result.returncode == 1 and "is missing or empty" in one_line(result)
    assert list(mount.iterdir()) == [] and catalog_state(catalog_url) == before


def test_another_catalogs_store_is_refused(synthetic, catalog_url, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    assert run_cli("init", cwd=other).returncode == 0
    result = run_cli("--store", str(other / "store"), "fsck", "--repair", cwd=synthetic,
                     env={"VIDA_CATALOG": catalog_url})
    assert result.returncode == 1 and "belongs to another catalog" in one_line(result)
    result = run_cli("--catalog", str(other / "catalog.db"), "--store",
                     str(synthetic / "store"), "fsck", cwd=other)
    assert result.returncode == 1 and "belongs to another catalog" in one_line(result)


def test_a_pair_from_before_store_ids_gets_one_and_says_so(synthetic, catalog_url):
    (synthetic / "store" / "VIDA_STORE.json").unlink()
    catalog = open_catalog(catalog_url)
    with catalog.transaction() as session:
        from sqlalchemy import text

        session.execute(text("DELETE FROM catalog_settings WHERE key = 'store_id'"))
    catalog.dispose()
    env = {"VIDA_CATALOG": catalog_url}
    first = run_cli("fsck", cwd=synthetic, env=env)
    assert first.returncode == 0, first.stderr
    assert "now know each other" in one_line(first)
    assert (synthetic / "store" / "VIDA_STORE.json").is_file()
    again = run_cli("fsck", cwd=synthetic, env=env)
    assert again.returncode == 0 and "now know each other" not in again.stderr


def test_a_missing_shard_is_not_called_damaged(synthetic, catalog_url):
    env = {"VIDA_CATALOG": catalog_url}
    shard = sorted((synthetic / "store" / "rgb").rglob("*.h5"))[0]
    shard.unlink()
    before = catalog_state(catalog_url)
    trained = run_cli("train", "classifier", "--epochs", "1", cwd=synthetic,
                      env=env)
    assert trained.returncode == 1
    line = one_line(trained)
    assert shard.name in line and "is missing from store" in line and "put it back" in line
    assert "damaged" not in line
    assert catalog_state(catalog_url) == before
    checked = run_cli("fsck", cwd=synthetic, env=env)
    assert checked.returncode == 1 and "missing_shard" in checked.stdout


def test_many_missing_shards_ask_for_force_and_restore_undoes_it(synthetic, catalog_url):
    """Half the shards gone at once (a folder of the store not mounted): repair wants
    --force; forced, it quarantines; once the files are back, --restore undoes it."""
    env = {"VIDA_CATALOG": catalog_url}
    before = catalog_state(catalog_url)
    shards = sorted((synthetic / "store").rglob("*.h5"))
    away = synthetic / "away"
    moved = {shard: away / shard.relative_to(synthetic / "store") for shard in
             shards[: len(shards) // 2]}
    for shard, target in moved.items():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(shard), target)
    refused = run_cli("fsck", "--repair", cwd=synthetic, env=env)
    assert refused.returncode == 1
    line = one_line(refused)
    assert f"would quarantine {len(moved)} of {len(shards)} shards" in line
    assert "--force" in line and catalog_state(catalog_url) == before
    forced = run_cli("fsck", "--repair", "--force", cwd=synthetic, env=env)
    assert forced.returncode == 0, forced.stderr
    after = catalog_state(catalog_url)
    assert after[0] < before[0] and after[2] == len(moved)

    for shard, target in moved.items():  # the folder is mounted again
        shard.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(target), shard)
    checked = run_cli("fsck", "--repair", cwd=synthetic, env=env)  # never removes them
    assert checked.stdout.count("quarantined_file") == len(moved)
    assert all(shard.exists() for shard in moved)
    restored = run_cli("fsck", "--restore", cwd=synthetic, env=env)
    assert restored.returncode == 0, restored.stderr
    assert f"{len(moved)} shard(s) restored, 0 left" in restored.stdout
    assert catalog_state(catalog_url) == before
    clean = run_cli("fsck", cwd=synthetic, env=env)
    assert clean.returncode == 0, clean.stdout
    reingest = run_cli("ingest", "data/manifest.csv", "--no-progress", cwd=synthetic, env=env)
    assert reingest.returncode == 0 and "0 ok, 0 flagged, 0 failed" in reingest.stdout, (
        reingest.stdout)


def test_restore_leaves_a_damaged_shard_in_quarantine(synthetic, catalog_url):
    env = {"VIDA_CATALOG": catalog_url}
    shard = sorted((synthetic / "store" / "rgb").rglob("*.h5"))[0]
    with open(shard, "r+b") as fh:
        fh.seek(shard.stat().st_size // 2)
        fh.write(b"\xff" * 64)
    assert run_cli("fsck", "--repair", cwd=synthetic, env=env).returncode == 0
    quarantined = catalog_state(catalog_url)
    restored = run_cli("fsck", "--restore", cwd=synthetic, env=env)
    assert restored.returncode == 0
    assert "still damaged" in restored.stdout and "0 shard(s) restored, 1 left" in restored.stdout
    assert catalog_state(catalog_url) == quarantined


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
