"""The HDF5 feature store: round trips, batched reads, the torch Dataset, fsck."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from tests.conftest import run_cli
from vida.catalog import CatalogError
from vida.store.dataset import CatalogDataset
from vida.store.errors import StoreError
from vida.store.integrity import fsck


def _fill(store, name="rgb/test", n=11, shape=(18, 6), dtype="float32", per_shard=4, seed=0):
    store.register(name, modality="rgb", encoder="test", shape=shape, dtype=dtype,
                   params={"seed": seed})
    rng = np.random.default_rng(seed)
    values = (rng.standard_normal((n, *shape)) * 100).astype(dtype)
    keys = [f"cls{i % 3}/clip{i:02d}" for i in range(n)]
    with store.writer(name, rows_per_shard=per_shard) as writer:
        for key, value in zip(keys, values, strict=True):
            writer.add(key, value)
    return keys, values


@pytest.mark.parametrize("dtype", ["float32", "float16", "int16"])
def test_round_trip_values_dtype_and_order(store, dtype):
    keys, values = _fill(store, dtype=dtype)
    order = [7, 0, 10, 3, 3, 5]  # across shards, out of order, with a repeat
    got = store.read("rgb/test", [keys[i] for i in order])
    assert got.dtype == np.dtype(dtype)
    assert got.shape == (len(order), 18, 6)
    np.testing.assert_array_equal(got, values[order])


def test_shards_are_chunked_for_reading_many_rows_and_cataloged(store):
    import json

    from vida.store.shards import CHUNK_ROWS, COMPRESSION

    keys, _ = _fill(store, n=11, per_shard=4)
    shards = store.catalog.sql("SELECT path, n_rows FROM shards ORDER BY id")
    assert shards["n_rows"].tolist() == [4, 4, 3]
    with h5py.File(store.root / shards["path"][0], "r") as h5:
        assert h5["data"].chunks == (min(4, CHUNK_ROWS), 18, 6)
        assert h5["data"].compression == COMPRESSION
        assert json.loads(h5.attrs["layout"])["chunk_rows"] == min(4, CHUNK_ROWS)
        assert [k.decode() for k in h5["keys"][:]] == keys[:4]
    assert sorted(store.keys("rgb/test")) == sorted(keys)


def test_shards_of_the_old_layout_still_read(store):
    """Shards written before the layout change (1-row gzip chunks, rows appended one
    by one, no layout attribute) read through the same code, beside new ones."""
    from vida.store.shards import SealedBundle, SealedShard, sha256_of
    from vida.store.writers import commit_sealed

    keys, values = _fill(store, n=6, per_shard=6)
    old = (np.arange(5 * 18 * 6, dtype="float32").reshape(5, 18, 6)) / 7
    old_keys = [f"old/clip{i}" for i in range(5)]
    path = store.root / "rgb/test" / "20250101T000000-1-old.h5"
    with h5py.File(path, "w") as h5:
        data = h5.create_dataset("data", shape=(0, 18, 6), maxshape=(None, 18, 6),
                                 dtype="float32", chunks=(1, 18, 6), compression="gzip",
                                 compression_opts=4, shuffle=True)
        names = h5.create_dataset("keys", shape=(0,), maxshape=(None,),
                                  dtype=h5py.string_dtype(encoding="utf-8"))
        for i, (key, row) in enumerate(zip(old_keys, old, strict=True)):
            data.resize(i + 1, axis=0)
            data[i] = row
            names.resize(i + 1, axis=0)
            names[i] = key
        h5.attrs["n_rows"] = 5
    commit_sealed(store.catalog, SealedBundle([SealedShard(
        "rgb/test", path.relative_to(store.root).as_posix(), sha256_of(path), old_keys)]))
    wanted = [old_keys[3], keys[2], old_keys[0], old_keys[3], keys[5]]
    got = store.read("rgb/test", wanted)
    np.testing.assert_array_equal(got, np.stack([old[3], values[2], old[0], old[3], values[5]]))
    assert fsck(store).clean


def test_new_shards_read_their_chunks_without_hdf5(store, monkeypatch):
    """A layout-5 shard carries its chunk index in its user block: a new store reads
    its rows, in any order, with HDF5's file opening made to fail."""
    from vida.store.chunk_index import MAGIC

    keys, values = _fill(store, n=11, per_shard=4)
    for rel in store.catalog.sql("SELECT path FROM shards")["path"]:
        assert (store.root / rel).read_bytes().startswith(MAGIC)

    def no_hdf5(*args, **kwargs):
        raise AssertionError("HDF5 opened a shard")

    monkeypatch.setattr(h5py, "File", no_hdf5)
    monkeypatch.setattr(h5py.h5f, "open", no_hdf5)
    order = [10, 0, 7, 7, 3, 4]
    np.testing.assert_array_equal(store.read("rgb/test", [keys[i] for i in order]),
                                  values[order])


def test_a_damaged_chunk_index_is_named_by_the_read_and_by_fsck(store):
    from vida.store.errors import ShardDamaged

    keys, _ = _fill(store, n=8, per_shard=4)
    rel = store.catalog.sql("SELECT path FROM shards ORDER BY id")["path"][0]
    with open(store.root / rel, "r+b") as fh:  # a byte of the index's JSON
        fh.seek(40)
        digit = fh.read(1)
        fh.seek(40)
        fh.write(b"7" if digit != b"7" else b"3")
    with pytest.raises(ShardDamaged, match="chunk index .* CRC-32C.*fsck --repair"):
        store.read("rgb/test", keys)
    for thorough in (True, False):
        problems = fsck(store, verify_checksums=thorough).problems
        assert [(p.kind, p.where) for p in problems] == [("checksum", rel)]
        assert "chunk index" in problems[0].detail


def test_shards_of_layout_4_without_a_user_block_read_raw_and_pass_fsck(store):
    """Shards sealed before the chunk index moved into the user block: their chunks
    are still read raw (HDF5's index read once) and checked against their CRC-32C."""
    from vida.store.chunks import RawChunks
    from vida.store.errors import ShardDamaged
    from vida.store.shards import SealedBundle, SealedShard, chunk_crcs, sha256_of
    from vida.store.writers import commit_sealed

    store.register("rgb/old4", modality="rgb", encoder="test", shape=(18, 6))
    values = np.random.default_rng(3).standard_normal((10, 18, 6)).astype("float32")
    keys = [f"c/{i}" for i in range(10)]
    path = store.root / "rgb/old4" / "20260101T000000-1-old4.h5"
    path.parent.mkdir(parents=True)
    with h5py.File(path, "w") as h5:
        h5.create_dataset("data", data=values, chunks=(4, 18, 6))
        h5.create_dataset("chunk_crc32c", data=chunk_crcs(values, 4))
        h5.create_dataset("keys", data=np.array(keys, dtype=object),
                          dtype=h5py.string_dtype(encoding="utf-8"))
    commit_sealed(store.catalog, SealedBundle([SealedShard(
        "rgb/old4", path.relative_to(store.root).as_posix(), sha256_of(path), keys)]))
    assert isinstance(RawChunks.open(str(path), "data", True), RawChunks)
    order = [9, 0, 5, 5, 2]
    np.testing.assert_array_equal(store.read("rgb/old4", [keys[i] for i in order]),
                                  values[order])
    assert fsck(store).clean
    with h5py.File(path, "r") as h5:
        offset = h5["data"].id.get_chunk_info(1).byte_offset
    with open(path, "r+b") as fh:
        fh.seek(offset + 8)
        fh.write(b"\xff" * 4)
    store.close()
    with pytest.raises(ShardDamaged, match="CRC-32C"):
        store.read("rgb/old4", keys)


@pytest.mark.parametrize("backend", ["duckdb", "postgresql"])
def test_two_sets_located_together_on_each_backend(request, tmp_path, backend):
    """One catalog round trip locates the rows of several sets (numbers, then the
    shards' paths): rows in the order asked, repeats kept, a missing key named."""
    from vida import open_catalog
    from vida.errors import NotFound
    from vida.store import FeatureStore

    url = str(tmp_path / "c.db") if backend == "duckdb" else request.getfixturevalue("pg_url")
    store = FeatureStore(open_catalog(url, create=True), tmp_path / "store")
    keys, rgb = _fill(store, "rgb/a", n=9, per_shard=4, seed=1)
    _, audio = _fill(store, "audio/a", n=9, shape=(5,), per_shard=2, seed=2)
    order = [8, 0, 4, 4, 1]
    got = store.read_sets(["rgb/a", "audio/a"], [keys[i] for i in order])
    np.testing.assert_array_equal(got["rgb/a"], rgb[order])
    np.testing.assert_array_equal(got["audio/a"], audio[order])
    with pytest.raises(NotFound, match="'rgb/a' has no rows for nope"):
        store.read_sets(["rgb/a", "audio/a"], [keys[0], "nope"])
    store.catalog.dispose()


def test_sparse_and_dense_selections_read_the_same_rows():
    from vida.store.reader import read_dataset_rows

    data = np.arange(1000 * 3, dtype="float32").reshape(1000, 3)
    with h5py.File("mem.h5", "w", driver="core", backing_store=False) as h5:
        ds = h5.create_dataset("data", data=data, chunks=(64, 3))
        for rows in ([999, 0, 500, 0], list(range(100, 140))[::-1], [5, 6, 7, 900, 901]):
            np.testing.assert_array_equal(read_dataset_rows(ds, np.array(rows)), data[rows])


@pytest.mark.parametrize("cache_bytes", [0, 3 * 16 * 3 * 4 * 4, 1 << 20])
def test_chunk_cache_gathers_the_same_rows_uncached_evicting_and_cached(tmp_path, cache_bytes):
    """Rows in any order, with repeats, across chunks and shards: the same through
    plain runs (no cache), a cache that holds three chunks (evicting), and one that
    holds everything, read twice (the second time from the cache)."""
    from vida.store.reader import ShardHandles, read_located

    rng = np.random.default_rng(1)
    data = {}
    for f in range(3):
        data[f] = rng.standard_normal((100, 3, 4)).astype("float32")
        with h5py.File(tmp_path / f"s{f}.h5", "w") as h5:
            h5.create_dataset("data", data=data[f], chunks=(16, 3, 4), fletcher32=True)
    paths = np.array([str(tmp_path / f"s{f}.h5") for f in rng.integers(0, 3, 500)], object)
    rows = rng.integers(0, 100, 500)
    rows[:40], paths[:40] = np.arange(30, 70), str(tmp_path / "s1.h5")  # one run
    expected = np.stack([data[int(p[-4])][r] for p, r in zip(paths, rows, strict=True)])
    handles = ShardHandles(cache_bytes=cache_bytes)
    for _ in range(2):
        np.testing.assert_array_equal(read_located(handles, paths, rows), expected)
    assert handles._cached <= cache_bytes


def test_a_flipped_block_of_zeros_fletcher_misses_is_caught_by_the_chunk_crc(store):
    """Fletcher-32 cannot tell 0x0000 from 0xFFFF: a block of zero features (an empty
    HOG cell, silence) with every bit flipped passes HDF5's own check and would be
    served as NaNs; the chunk's CRC-32 catches it and the read names the shard."""
    from vida.store.errors import ShardDamaged

    store.register("rgb/zeros", modality="rgb", encoder="test", shape=(18, 6))
    keys = [f"c/{i}" for i in range(10)]
    values = np.abs(np.random.default_rng(0).standard_normal((10, 18, 6))).astype(np.float32)
    values[5] = 0  # one clip of zero features
    with store.writer("rgb/zeros") as writer:
        for key, value in zip(keys, values, strict=True):
            writer.add(key, value)
    path = store.root / store.catalog.sql("SELECT path FROM shards")["path"][0]
    with h5py.File(path, "r") as h5:
        info = h5["data"].id.get_chunk_info(0)
    with open(path, "r+b") as fh:  # every bit of 16 of its zeros flipped
        fh.seek(info.byte_offset + 5 * 18 * 6 * 4)
        fh.write(b"\xff" * 64)
    with h5py.File(path, "r") as h5:
        assert np.isnan(h5["data"][:]).any()  # HDF5's Fletcher-32 let it through
    with pytest.raises(ShardDamaged, match="CRC-32.*fsck --repair"):
        store.read("rgb/zeros", keys)


def test_a_repeated_read_skips_the_catalog_until_something_commits(store, monkeypatch):
    """The located rows of a repeated read are reused only while the catalog's change
    stamp holds: a rewrite in between is read, never the stale row."""
    import time

    from vida.catalog import records

    keys, values = _fill(store, n=6)
    time.sleep(0.1)  # older than the racy window: the stamp can be trusted
    stamp = store.catalog.change_stamp()
    assert stamp is not None and store.catalog.change_stamp() == stamp
    np.testing.assert_array_equal(store.read("rgb/test", keys), values)
    asked = []
    real = records.features.locate_many
    monkeypatch.setattr("vida.store.store.locate_many",
                        lambda *a: asked.append(1) or real(*a))
    np.testing.assert_array_equal(store.read("rgb/test", keys), values)
    assert asked == []  # served from the kept answer
    new = np.full((18, 6), 7.0, dtype="float32")
    with store.writer("rgb/test") as writer:
        writer.add(keys[2], new)
    time.sleep(0.1)
    assert store.catalog.change_stamp() not in (None, stamp)
    got = store.read("rgb/test", keys)
    assert asked == [1]
    np.testing.assert_array_equal(got[2], new)


def test_rewriting_a_key_points_the_catalog_at_the_new_row(store):
    keys, _ = _fill(store, n=3)
    new = np.full((18, 6), 7.0, dtype="float32")
    with store.writer("rgb/test") as writer:
        writer.add(keys[1], new)
    np.testing.assert_array_equal(store.read("rgb/test", [keys[1]])[0], new)
    assert store.catalog.sql("SELECT count(*) AS n FROM features")["n"][0] == 3


def test_extras_are_stored_per_row(store):
    store.register("condition/x", modality="condition", encoder="t", shape=(4, 2))
    with store.writer("condition/x") as w:
        w.add("a/1", np.ones((4, 2)), mask=np.array([1, 0, 0, 1], dtype=bool))
        w.add("a/2", np.zeros((4, 2)), mask=np.array([0, 1, 0, 0], dtype=bool))
    masks = store.read("condition/x", ["a/2", "a/1"], extra="mask")
    assert masks.tolist() == [[False, True, False, False], [True, False, False, True]]


def test_bad_rows_are_refused_with_clear_errors(store):
    _fill(store, n=2)
    with pytest.raises(ValueError, match=r"shape \(18, 5\).*expects \(18, 6\)"):
        with store.writer("rgb/test") as w:
            w.add("x/1", np.zeros((18, 5)))
    with pytest.raises(ValueError, match="given twice"):
        with store.writer("rgb/test") as w:
            w.add("x/1", np.zeros((18, 6)))
            w.add("x/1", np.zeros((18, 6)))
    with pytest.raises(KeyError, match="no rows for nope/1"):
        store.read("rgb/test", ["nope/1"])
    with pytest.raises(CatalogError, match="exists with shape"):
        store.register("rgb/test", modality="rgb", encoder="t", shape=(18, 7))
    # nothing committed was lost, and the aborted writes left no files behind
    assert len(store.keys("rgb/test")) == 2
    assert fsck(store).clean


def test_dataset_serves_a_query_through_forked_workers(store):
    keys, values = _fill(store, n=12, per_shard=5)
    with store.catalog.transaction() as s:
        from vida.catalog.schema import Clip

        for k in keys:
            cls, cid = k.split("/")
            s.add(Clip(clip_key=k, class_name=cls, clip_id=cid, status="ok",
                       split="train" if cid < "clip08" else "test"))
    ds = CatalogDataset(
        store,
        "SELECT clip_key, class_name FROM clips WHERE split = 'train' ORDER BY clip_key",
        ["rgb/test"],
    )
    assert len(ds) == 8 and ds.classes == ["cls0", "cls1", "cls2"]
    ds[0]  # the parent opens a handle before forking: workers must not reuse it
    loader = DataLoader(ds, batch_size=3, num_workers=2,
                        multiprocessing_context="fork")
    seen = {}
    for batch in loader:
        for key, x, y in zip(batch["clip_key"], batch["rgb/test"], batch["label"], strict=True):
            seen[key] = (x, int(y))
    assert sorted(seen) == sorted(ds.clip_keys)
    for key, (x, y) in seen.items():
        i = keys.index(key)
        torch.testing.assert_close(x, torch.from_numpy(values[i]))
        assert ds.classes[y] == key.split("/")[0]


def test_chunk_shuffle_sampler_reads_each_chunk_once_an_epoch(store):
    """A permutation of every clip, another each epoch and the same for the same
    epoch; each window mixes clips of at most ``window`` chunks; and a DataLoader
    through it reads each chunk from disk once an epoch, with a cache of a window."""
    from vida.catalog.schema import Clip
    from vida.store.dataset import ChunkShuffleSampler
    from vida.store.reader import ShardHandles
    from vida.store.shards import CHUNK_ROWS

    keys, values = _fill(store, n=300, shape=(2, 3), per_shard=100)
    with store.catalog.transaction() as s:
        s.add_all(Clip(clip_key=k, class_name=k.split("/")[0], clip_id=k.split("/")[1],
                       status="ok") for k in keys)
    ds = CatalogDataset(store, "SELECT clip_key, class_name FROM clips", ["rgb/test"])
    sampler = ChunkShuffleSampler(ds, window=2, seed=3)
    first = list(sampler)
    assert sorted(first) == list(range(300)) and list(sampler) == first
    sampler.set_epoch(1)
    assert list(sampler) != first and sorted(sampler) == list(range(300))
    paths, rows = ds._where["rgb/test"]
    block = [(paths[i], rows[i] // CHUNK_ROWS) for i in first]
    blocks = sorted(set(block))  # 3 shards of 100 rows: 2 chunks each
    assert len(blocks) == 6
    sizes = {b: block.count(b) for b in blocks}
    pos = 0
    while pos < len(block):  # each window: every clip of at most two blocks, together
        seen, end = set(), pos
        while end < len(block) and (block[end] in seen or len(seen) < 2):
            seen.add(block[end])
            end += 1
        assert all(block[pos:end].count(b) == sizes[b] for b in seen)
        pos = end

    reads = []
    real = ShardHandles.kept

    def counted(self, path, name, source, index):
        if (path, name, index) not in self._chunks:
            reads.append((path, index))
        return real(self, path, name, source, index)

    ShardHandles.kept = counted
    try:
        ds._handles = ShardHandles(cache_bytes=4 * CHUNK_ROWS * 2 * 3 * 4)  # two windows
        got = {}
        for batch in DataLoader(ds, batch_size=32, sampler=sampler):
            for key, x in zip(batch["clip_key"], batch["rgb/test"], strict=True):
                got[key] = x
        chunked = len(reads)
        ds._handles = ShardHandles(cache_bytes=4 * CHUNK_ROWS * 2 * 3 * 4)
        torch.manual_seed(0)
        for _ in DataLoader(ds, batch_size=32, shuffle=True):  # clip-level shuffling
            pass
    finally:
        ShardHandles.kept = real
    assert sorted(got) == sorted(keys) and chunked == 6  # each chunk once
    assert len(reads) - chunked > 2 * 6  # where a plain shuffle reads them again and again
    for key, x in got.items():
        torch.testing.assert_close(x, torch.from_numpy(values[keys.index(key)]))


def test_fsck_finds_each_problem_and_repair_removes_orphans(store):
    _fill(store, n=8, per_shard=3)
    assert fsck(store).clean
    paths = store.catalog.sql("SELECT path FROM shards ORDER BY id")["path"].tolist()

    # corrupt one shard, delete another, drop an orphan and a partial file
    with open(store.root / paths[0], "r+b") as fh:
        fh.seek(-16, 2)
        fh.write(b"\xff" * 16)
    (store.root / paths[1]).unlink()
    (store.root / "rgb/test/orphan.h5").write_bytes(b"x")
    (store.root / "rgb/test/dead.h5.partial").write_bytes(b"x")

    kinds = sorted(p.kind for p in fsck(store).problems)
    assert kinds == ["checksum", "missing_shard", "orphan_file", "partial_file"]
    # 2 of its 3 shards at once: more than a repair does without --force
    with pytest.raises(StoreError, match="would quarantine 2 of 3 shards"):
        fsck(store, repair=True)
    assert sorted(p.kind for p in fsck(store).problems) == kinds  # nothing was touched
    report = fsck(store, repair=True, force=True)
    # orphans and partials are removed; the damaged and the missing shard quarantined
    assert sorted(report.repaired) == sorted(["rgb/test/dead.h5.partial",
                                              "rgb/test/orphan.h5", paths[0], paths[1]])
    assert report.clean and fsck(store).clean
    assert not (store.root / "rgb/test/orphan.h5").exists()
    assert (store.root / "quarantine" / paths[0]).exists()
    assert len(store.keys("rgb/test")) == 8 - 3 - 3  # the rows of both shards are gone


def test_fsck_cli_exit_codes(store, tmp_path):
    _fill(store, n=3)
    args = ["--catalog", str(store.catalog.path), "--store", str(store.root)]
    ok = run_cli(*args, "fsck")
    assert ok.returncode == 0 and "0 problem(s)" in ok.stdout
    (store.root / "rgb/test/orphan.h5").write_bytes(b"x")
    bad = run_cli(*args, "fsck")
    assert bad.returncode == 1 and "orphan_file" in bad.stdout
    fixed = run_cli(*args, "fsck", "--repair")
    assert fixed.returncode == 0 and "repaired rgb/test/orphan.h5" in fixed.stdout
