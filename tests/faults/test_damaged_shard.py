"""One flipped 64-byte block in a sealed shard: the read names the shard, the clip
and the fix; the run is recorded as failed; `fsck --repair` quarantines the shard;
the next ingest recomputes exactly its clips; `fsck --compact` reclaims the rows
that recomputing left dead."""

from __future__ import annotations

import h5py

from tests.conftest import run_cli
from vida import open_catalog


def test_a_damaged_shard_is_named_quarantined_and_recomputed(synthetic, catalog_url):
    env = {"VIDA_CATALOG": catalog_url}
    cat = open_catalog(catalog_url)
    shard = cat.sql("SELECT id, path, n_rows FROM shards WHERE feature_set = 'rgb/hog-color' "
                    "ORDER BY id LIMIT 1").iloc[0]
    lost = set(cat.sql("SELECT clip_key FROM features WHERE shard_id = :s",
                       {"s": int(shard["id"])})["clip_key"])
    cat.dispose()
    path = synthetic / "store" / shard["path"]
    with h5py.File(path, "r") as h5:  # the middle of the first chunk of rows
        info = h5["data"].id.get_chunk_info(0)
        offset = info.byte_offset + info.size // 2
    with open(path, "r+b") as fh:
        fh.seek(offset)
        block = fh.read(64)
        fh.seek(offset)
        fh.write(bytes(b ^ 0xFF for b in block))

    train = run_cli("train", "classifier", "--epochs", "1", cwd=synthetic, env=env)
    assert train.returncode == 1
    assert "Traceback" not in train.stderr
    message = train.stderr.strip()
    assert len(message.splitlines()) == 1, message
    assert shard["path"] in message and "fsck --repair" in message
    assert any(key in message for key in lost)
    cat = open_catalog(catalog_url)
    run = cat.sql("SELECT status, error FROM runs WHERE kind = 'train-classifier'").iloc[0]
    assert run["status"] == "failed" and "damaged" in run["error"]
    cat.dispose()

    check = run_cli("fsck", cwd=synthetic, env=env)
    assert check.returncode == 1 and "checksum" in check.stdout
    repair = run_cli("fsck", "--repair", cwd=synthetic, env=env)
    assert repair.returncode == 0, repair.stdout
    assert (synthetic / "store" / "quarantine" / shard["path"]).exists()

    again = run_cli("ingest", "data/manifest.csv", "--workers", "1", "--no-progress",
                    cwd=synthetic, env=env)
    assert again.returncode == 0, again.stderr
    assert f"{len(lost)} ok" in again.stdout and f"{40 - len(lost)} skipped" in again.stdout
    cat = open_catalog(catalog_url)
    per_set = cat.sql("SELECT feature_set, count(*) AS n, count(DISTINCT clip_key) AS d "
                      "FROM features GROUP BY 1")
    assert set(per_set["n"]) == {40} and set(per_set["d"]) == {40}
    cat.dispose()

    # recomputing rewrote the flow and audio rows of those clips: the old ones are dead
    dead = run_cli("fsck", cwd=synthetic, env=env)
    assert dead.returncode == 0 and "dead rows" in dead.stdout
    compacted = run_cli("fsck", "--compact", cwd=synthetic, env=env)
    assert compacted.returncode == 0 and "compacted" in compacted.stdout
    clean = run_cli("fsck", cwd=synthetic, env=env)
    assert clean.returncode == 0 and "dead rows" not in clean.stdout
    trained = run_cli("train", "classifier", "--epochs", "1", cwd=synthetic, env=env)
    assert trained.returncode == 0, trained.stderr
