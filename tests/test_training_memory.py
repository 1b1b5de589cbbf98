"""A training holds its features once: each clip read once at the store, one read-only
copy shared by the trainings of a machine, streamed past the memory budget with the
same model when the batch order is the same; old shards still read and pass fsck."""

from __future__ import annotations

import io
import json
from collections import Counter
from dataclasses import replace

import h5py
import numpy as np
import pytest
import torch

from tests.conftest import run_cli
from vida import open_catalog
from vida.jobs.training.classifier import ClassifierSpec, fit_classifier, plan_classifier
from vida.jobs.training.generator import GeneratorSpec, fit_generator, plan_generator
from vida.jobs.training.inputs import Blocks, Standardizer, to_device
from vida.store import FeatureStore
from vida.store.located import locate
from vida.store.shared import shared_rows

QUERY = "SELECT clip_key, class_name, split FROM clips"
SETS = ("rgb/hog-color", "flow/flow-hist", "audio/ast-fbank")


def _open(work):
    catalog = open_catalog(work / "catalog.db")
    return catalog, FeatureStore(catalog, work / "store")


@pytest.fixture
def counted(monkeypatch):
    """Every (set's array, shard, row) read from the store, counted."""
    import vida.store.located as located

    seen: Counter = Counter()
    real = located.read_located

    def counting(handles, paths, rows, dataset="data", out=None):
        seen.update((dataset, str(p), int(r)) for p, r in zip(paths, rows, strict=True))
        return real(handles, paths, rows, dataset, out)

    monkeypatch.setattr(located, "read_located", counting)
    return seen


def _located_rows(parts) -> Counter:
    return Counter((p.dataset, str(path), int(row)) for p in parts
                   for path, row in zip(p.paths, p.rows, strict=True))


def test_a_training_reads_each_clips_features_exactly_once(synthetic, counted):
    catalog, store = _open(synthetic)
    spec = ClassifierSpec(audio="audio/ast-fbank", epochs=3, batch_size=4)
    task = plan_classifier(catalog, store, QUERY, spec, threads=1)
    fit_classifier(task)
    expected = _located_rows([p for parts in task.inputs.values() for p in parts])
    assert counted == expected  # every row of every set once: three epochs, no rereads

    counted.clear()
    generator = plan_generator(catalog, store, QUERY, GeneratorSpec(epochs=2), threads=1)
    fit_generator(generator)
    parts = [p for ps in generator.inputs.values() for p in ps] + list(generator.targets.values())
    assert counted == _located_rows(parts)


def test_trainings_sharing_a_scratch_folder_read_the_store_once_between_them(
        synthetic, counted, tmp_path):
    """Vision only, vision + real audio and a generator on a fold of the train clips:
    every row of every shard they touch is read once between them, and each gives the
    numbers it gives on its own copy."""
    catalog, store = _open(synthetic)
    scratch = tmp_path / "scratch"
    tasks = [plan_classifier(catalog, store, QUERY, ClassifierSpec(audio=a, epochs=2),
                             threads=1) for a in (None, "audio/ast-fbank")]
    train = tasks[0].keys["train"]
    fold = plan_generator(catalog, store, QUERY, GeneratorSpec(epochs=1), train[::3], threads=1)
    own = [fit_classifier(t).metrics for t in tasks] + [fit_generator(fold).best_val_loss]
    counted.clear()
    shared = [fit_classifier(replace(t, scratch=str(scratch))).metrics for t in tasks]
    shared.append(fit_generator(replace(fold, scratch=str(scratch))).best_val_loss)
    assert shared == own
    parts = [p for t in tasks for ps in t.inputs.values() for p in ps]
    shards = {(p.dataset, str(path)) for p in parts for path in p.paths}
    whole = Counter()
    for dataset, path in shards:
        with h5py.File(path, "r") as h5:
            whole.update((dataset, path, r) for r in range(len(h5[dataset])))
    assert counted == whole  # each stored row once, for the three trainings together
    copies = sorted(scratch.glob("*.npy"))
    assert len(copies) == len(shards) and not list(scratch.glob("*.partial"))
    mapped = np.load(copies[0], mmap_mode="r")
    assert mapped.dtype == np.float32 and not mapped.flags.writeable


@pytest.mark.parametrize("kind", ["classifier", "generator"])
def test_streamed_and_in_memory_trainings_give_the_same_model_in_the_same_order(
        synthetic, kind):
    """The order forced to be the stored-chunk shuffle on both sides: the same weights,
    bit for bit, and the same epochs."""
    catalog, store = _open(synthetic)
    if kind == "classifier":
        task = plan_classifier(catalog, store, QUERY,
                               ClassifierSpec(audio="audio/ast-fbank", epochs=3, batch_size=4),
                               threads=1)
        fit = fit_classifier
    else:
        task = plan_generator(catalog, store, QUERY, GeneratorSpec(epochs=3), threads=1)
        fit = fit_generator
    memory = fit(replace(task, holding="memory", chunk_order=True))
    streamed = fit(replace(task, holding="stream"))
    assert memory.epochs == streamed.epochs
    weights = [torch.load(io.BytesIO(r.checkpoint), weights_only=True)["state_dict"]
               for r in (memory, streamed)]
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    if kind == "classifier":
        np.testing.assert_allclose(memory.probs, streamed.probs, rtol=1e-5, atol=1e-6)
    shuffled = fit(replace(task, holding="memory"))  # every clip shuffled: another order
    assert shuffled.epochs != memory.epochs


def test_the_train_command_streams_past_its_memory_budget(synthetic):
    result = run_cli("train", "classifier", "--epochs", "2", "--memory-budget", "0",
                     cwd=synthetic)
    assert result.returncode == 0, result.stderr
    run_id = next(line.split()[1].rstrip(":") for line in result.stdout.splitlines()
                  if line.startswith("run "))
    params = open_catalog(synthetic / "catalog.db").sql(
        f"SELECT params FROM runs WHERE run_id = '{run_id}'")["params"][0]
    assert json.loads(params)["holding"] == "stream"
    refused = run_cli("train", "classifier", "--memory-budget", "-1", cwd=synthetic)
    assert refused.returncode == 2 and "--memory-budget" in refused.stderr


def test_standardising_blocks_gives_the_bits_of_standardising_their_concatenation():
    rng = np.random.default_rng(0)
    blocks = [(rng.standard_normal((300, 7, d)) * 3 + 1).astype(np.float32) for d in (5, 3, 2)]
    whole = np.concatenate(blocks, axis=-1)
    before = Standardizer.fit(whole)
    after = Standardizer.fit_blocks(Blocks.of(blocks))
    assert np.array_equal(before.mean, after.mean) and np.array_equal(before.std, after.std)
    assert np.array_equal(before(whole), Blocks.of(blocks).whole(after))
    # what a GPU gets, filled a few clips at a time (here on the CPU device)
    on_device = to_device(Blocks.of(blocks), after, "cpu", clips=7)
    assert torch.equal(on_device, torch.from_numpy(before(whole)))


def _old_layout_image(self) -> bytes:
    """A shard as layout 3 wrote it: HDF5's Fletcher-32 plus a zlib CRC-32 per chunk."""
    import zlib

    buffer = io.BytesIO()
    data = np.ascontiguousarray(np.stack(self._rows))
    chunk = max(1, min(64, len(data)))
    with h5py.File(buffer, "w") as h5:
        h5.create_dataset("data", data=data, chunks=(chunk, *self.shape), fletcher32=True)
        h5.create_dataset("chunk_crc32", data=np.array(
            [zlib.crc32(data[i:i + chunk]) for i in range(0, len(data), chunk)], np.uint32))
        h5.create_dataset("keys", data=np.array(self.keys, dtype=object),
                          dtype=h5py.string_dtype())
        h5.attrs["n_rows"] = len(data)
        h5.attrs["layout"] = json.dumps({"version": 3, "chunk_rows": chunk,
                                         "checksum": "fletcher32+crc32"})
    return buffer.getvalue()


def test_old_layout_shards_read_pass_fsck_and_their_damage_is_caught(store, monkeypatch):
    from vida.store.errors import ShardDamaged
    from vida.store.integrity import fsck
    from vida.store.shards import ShardFile

    values = np.random.default_rng(2).standard_normal((100, 18, 6)).astype(np.float32)
    keys = [f"c/{i:03d}" for i in range(100)]
    for name, image in (("rgb/old", _old_layout_image), ("rgb/new", ShardFile._image)):
        monkeypatch.setattr(ShardFile, "_image", image)
        store.register(name, modality="rgb", encoder="test", shape=(18, 6))
        with store.writer(name, rows_per_shard=100) as writer:
            for key, value in zip(keys, values, strict=True):
                writer.add(key, value)
    for name, checksum in (("rgb/old", "chunk_crc32"), ("rgb/new", "chunk_crc32c")):
        np.testing.assert_array_equal(store.read(name, keys), values)
        np.testing.assert_array_equal(store.read(name, keys[::-3]), values[::-3])
        path = store.root / store.locate(name, keys[:1])["path"][0]
        with h5py.File(path, "r") as h5:
            assert checksum in h5 and (checksum == "chunk_crc32") == bool(h5["data"].fletcher32)
    assert fsck(store).clean
    store.close()
    for name in ("rgb/old", "rgb/new"):  # a flipped block of 16 zeros... of data bytes
        path = store.root / store.locate(name, keys[:1])["path"][0]
        with h5py.File(path, "r") as h5:
            offset = h5["data"].id.get_chunk_info(1).byte_offset
        with open(path, "r+b") as fh:
            fh.seek(offset + 100)
            fh.write(b"\xff" * 16)
        fresh = FeatureStore(store.catalog, store.root)
        with pytest.raises(ShardDamaged):
            fresh.read(name, keys)
        fresh.close()
    assert not fsck(store).clean


def test_sets_stored_as_float16_take_half_the_bytes_and_train(synthetic, tmp_path):
    """Ingest with --store-dtype float16 from another folder: the sets are float16 on
    disk, half the bytes; a training reads them into float32 and runs."""
    work = tmp_path / "half"
    work.mkdir()
    env = {"VIDA_CATALOG": str(work / "catalog.db"), "VIDA_STORE": str(work / "store")}
    done = run_cli("ingest", str(synthetic / "data" / "manifest.csv"), "--store-dtype",
                   "float16", "--workers", "1", "--no-progress", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert run_cli("split", cwd=tmp_path, env=env).returncode == 0
    trained = run_cli("train", "classifier", "--epochs", "1", "--audio", "audio/ast-fbank",
                      cwd=tmp_path, env=env)
    assert trained.returncode == 0, trained.stderr
    catalog = open_catalog(work / "catalog.db")
    assert set(catalog.sql("SELECT dtype FROM feature_sets")["dtype"]) == {"float16"}
    sizes = {}
    for name, root in (("half", work / "store"), ("full", synthetic / "store")):
        sizes[name] = sum(p.stat().st_size for p in (root / "rgb").rglob("*.h5"))
    assert 0.45 < sizes["half"] / sizes["full"] < 0.6, sizes
    store = FeatureStore(catalog, work / "store")
    keys = store.keys("rgb/hog-color")[:5]
    full = _open(synthetic)[1].read("rgb/hog-color", keys)
    half = store.read("rgb/hog-color", keys)
    assert half.dtype == np.float16
    np.testing.assert_allclose(half.astype(np.float32), full, rtol=1e-3, atol=1e-3)
    shared = shared_rows(locate(store, "rgb/hog-color", keys), tmp_path / "scratch")
    assert {m.dtype for m in shared.maps} == {np.dtype(np.float16)}  # half the memory too
    assert np.array_equal(shared.take(np.arange(5)), half.astype(np.float32))
    wrong = run_cli("ingest", str(synthetic / "data" / "manifest.csv"), "--store-dtype",
                    "float8", cwd=tmp_path, env=env)
    assert wrong.returncode == 2 and "--store-dtype" in wrong.stderr


def test_gpu_check_without_cuda_says_so_and_exits_0():
    import subprocess
    import sys

    from tests.conftest import ROOT

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is here: run bin/gpu_check itself (minutes)")
    done = subprocess.run([sys.executable, str(ROOT / "bin" / "gpu_check")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "no CUDA device here" in done.stdout and "nothing to check" in done.stdout


def test_bulk_reads_on_threads_give_the_rows_asked_for_and_name_damage(store, monkeypatch):
    import vida.store.reader as reader
    from vida.store.errors import ShardDamaged

    monkeypatch.setattr(reader, "_PARALLEL_FROM", 0)  # every read a bulk read
    monkeypatch.setattr(reader, "_READ_THREADS", 3)
    threaded = []
    real = reader._thread_reader
    monkeypatch.setattr(reader, "_thread_reader", lambda *a: threaded.append(1) or real(*a))
    values = np.random.default_rng(5).standard_normal((300, 18, 6)).astype(np.float32)
    keys = [f"c/{i:03d}" for i in range(300)]
    store.register("rgb/bulk", modality="rgb", encoder="test", shape=(18, 6))
    with store.writer("rgb/bulk", rows_per_shard=100) as writer:  # 3 shards of 2 chunks
        for key, value in zip(keys, values, strict=True):
            writer.add(key, value)
    order = np.random.default_rng(6).permutation(300)[:250]  # scattered, partial chunks
    for asked in (np.arange(300), order, np.arange(0, 300, 7)):
        wanted = [keys[i] for i in asked]
        np.testing.assert_array_equal(store.read("rgb/bulk", wanted), values[asked])
        into = {"rgb/bulk": np.zeros((len(asked), 18, 6), np.float32)}
        store.read_sets(["rgb/bulk"], wanted, into=into)
        np.testing.assert_array_equal(into["rgb/bulk"], values[asked])
    assert len(threaded) == 6 * 3  # each read's 3 shards, on the threads
    hdf5_only = str(store.root / store.locate("rgb/bulk", keys[:1])["path"][0])
    raw_open = reader.RawChunks.open
    monkeypatch.setattr(reader.RawChunks, "open", staticmethod(  # one shard HDF5 must read
        lambda path, *a, **k: None if path == hdf5_only else raw_open(path, *a, **k)))
    fresh = FeatureStore(store.catalog, store.root)
    into = {"rgb/bulk": np.zeros((250, 18, 6), np.float32)}
    fresh.read_sets(["rgb/bulk"], [keys[i] for i in order], into=into)
    np.testing.assert_array_equal(into["rgb/bulk"], values[order])
    assert len(threaded) == 6 * 3 + 2  # the two raw shards on the threads
    fresh.close()
    path = store.root / store.locate("rgb/bulk", keys[150:151])["path"][0]
    with h5py.File(path, "r") as h5:
        offset = h5["data"].id.get_chunk_info(1).byte_offset
    with open(path, "r+b") as fh:
        fh.seek(offset + 40)
        fh.write(b"\xff" * 8)
    store.close()
    with pytest.raises(ShardDamaged, match="CRC-32C"):
        FeatureStore(store.catalog, store.root).read("rgb/bulk", keys)
