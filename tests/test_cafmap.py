"""CAFMap: representative frames, captions, prototypes, conditions, generator, experiment."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pandas as pd

from tests.conftest import run_cli
from vida import open_catalog
from vida.jobs.data.ingest import ingest
from vida.semantics.audioset import label_mids, load_labels
from vida.semantics.representative import representative_frames
from vida.store import FeatureStore


def test_rule_always_gives_a_frame():
    assert representative_frames(np.array([1.0, 1.0, 5.0, 1.0])) == [3]
    assert representative_frames(np.array([2.0, 2.0, 2.0])) == [1]  # even motion: strongest
    assert representative_frames(np.zeros(17)) == [9]  # no motion: the middle frame
    assert representative_frames(np.array([1.0, 3.0, 3.0, 1.0]), ratio=1.2) == [2, 3]


def test_representative_frames_of_the_shared_clips(shared, tmp_path):
    catalog = open_catalog(tmp_path / "catalog.db", create=True)
    store = FeatureStore(catalog, tmp_path / "store")
    ingest(catalog, store, shared / "data/vida-example", workers=1, progress=False)
    catalog.dispose()
    result = run_cli("frames", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "of 10 clips" in result.stdout
    cat = open_catalog(tmp_path / "catalog.db", create=True)
    chosen = cat.sql("SELECT clip_key, frame_index, motion FROM representative_frames")
    assert set(chosen["clip_key"].str.split("/").str[0]) == {"applauding"}
    assert chosen.groupby("clip_key").size().min() >= 1
    # independent: DIS between the clip's frames (as the study read them), 128x128
    clip = "5qPtIfwSN6c_115"
    folder = shared / "data/vida-example/RGB/applauding" / clip
    gray = [cv2.cvtColor(cv2.resize(cv2.imread(str(p)), (128, 128),
                                    interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2GRAY)
            for p in sorted(folder.iterdir())]
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
    mags = np.array([np.linalg.norm(dis.calc(a, b, None), axis=-1).mean()
                     for a, b in zip(gray[:-1], gray[1:], strict=True)])
    expected = [i + 1 for i, m in enumerate(mags) if m >= 1.2 * mags.mean()]
    got = chosen[chosen["clip_key"] == f"applauding/{clip}"].sort_values("frame_index")
    assert got["frame_index"].tolist() == (expected or [int(np.argmax(mags)) + 1])
    np.testing.assert_allclose(got["motion"], mags[np.array(expected) - 1], rtol=1e-5)


def test_captioning_representative_frames_with_a_local_blip(synthetic, tiny_blip):
    folder, words = tiny_blip
    assert run_cli("frames", cwd=synthetic).returncode == 0
    result = run_cli("caption", "--model", str(folder), "--captioner", "tiny",
                     "--batch-size", "4", cwd=synthetic)
    assert result.returncode == 0, result.stderr
    cat = open_catalog(synthetic / "catalog.db")
    joined = cat.sql("SELECT r.clip_key, r.frame_index, c.caption FROM representative_frames r "
                     "LEFT JOIN captions c ON c.clip_key = r.clip_key AND "
                     "c.frame_index = r.frame_index AND c.captioner = 'tiny'")
    assert len(joined) >= 40 and joined["caption"].notna().all()  # every chosen frame
    assert all(set(c.split()) <= words for c in joined["caption"])
    assert f"captioned {len(joined)} frames" in result.stdout


def _write_audioset(folder, records):
    from tfrecord.writer import TFRecordWriter

    folder.mkdir()
    writer = TFRecordWriter(str(folder / "bal_train00.tfrecord"))
    for video_id, labels, embedding in records:
        writer.write(
            {"video_id": (video_id.encode(), "byte"), "labels": (labels, "int"),
             "start_time_seconds": (30.0, "float"), "end_time_seconds": (40.0, "float")},
            {"audio_embedding": ([row.tobytes() for row in embedding], "byte")})
    writer.close()


def test_prototypes_from_audioset_tfrecords(tmp_path):
    rng = np.random.default_rng(0)
    names = load_labels()
    records = [(f"vid{i}", labels, rng.integers(0, 256, (10, 128), dtype=np.uint8))
               for i, labels in enumerate([[0, 137], [137], [0], [500]])]
    _write_audioset(tmp_path / "tf", records)

    def expected(index):
        clips = [e for _, labels, e in records if index in labels]
        return np.mean([(e.astype(np.float32) / 255 * 4 - 2).mean(0) for e in clips], axis=0)

    result = run_cli("prototypes", "--audioset-tfrecords", str(tmp_path / "tf"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "3 label prototypes in prototype/audioset" in result.stdout
    cat = open_catalog(tmp_path / "catalog.db", create=True)
    store = FeatureStore(cat, tmp_path / "store")
    assert store.info("prototype/audioset").modality == "prototype"
    assert sorted(store.keys("prototype/audioset")) == sorted({names[0], names[137], names[500]})
    for index in (0, 137, 500):
        np.testing.assert_allclose(store.read("prototype/audioset", [names[index]])[0],
                                   expected(index), rtol=1e-5)
    listed = cat.sql("SELECT f.clip_key AS label FROM features f JOIN feature_sets s "
                     "ON s.name = f.feature_set WHERE s.modality = 'prototype' ORDER BY 1")
    assert len(listed) == 3  # SQL lists prototypes like any other feature set

    # with the segment list, only balanced-train clips count, with the list's labels
    mids = {v: k for k, v in label_mids().items()}
    (tmp_path / "segments.csv").write_text(
        "# Segments csv created Sun Mar  5 10:54:31 2017\n# num_ytids=2\n"
        "# YTID, start_seconds, end_seconds, positive_labels\n"
        f'vid0, 30.000, 40.000, "{mids[names[5]]}"\nvid1, 30.000, 40.000, "{mids[names[5]]}"\n')
    result = run_cli("prototypes", "--audioset-tfrecords", str(tmp_path / "tf"), "--segments",
                     str(tmp_path / "segments.csv"), "--name", "balanced", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    store = FeatureStore(open_catalog(tmp_path / "catalog.db", create=True), tmp_path / "store")
    assert store.keys("prototype/balanced") == [names[5]]
    both = np.mean([(records[i][2].astype(np.float32) / 255 * 4 - 2).mean(0) for i in (0, 1)],
                   axis=0)
    np.testing.assert_allclose(store.read("prototype/balanced", [names[5]])[0], both, rtol=1e-5)


def test_conditions_from_imported_captions_and_catalog_prototypes(synthetic):
    data = synthetic / "data"
    for args in (["frames"], ["caption", "--import", str(data / "captions")],
                 ["prototypes", "--from-catalog", "--tags", "synth-ref", "--name", "p"],
                 ["condition", "--prototypes", "prototype/p", "--name", "c"]):
        result = run_cli(*args, cwd=synthetic)
        assert result.returncode == 0, (args, result.stderr)
    cat = open_catalog(synthetic / "catalog.db")
    store = FeatureStore(cat, synthetic / "store")
    # prototypes live in the audio features' space: mean of train clips tagged with the label
    tagged = cat.sql("SELECT t.clip_key FROM audio_tags t JOIN clips c ON c.clip_key = "
                     "t.clip_key WHERE t.source = 'synth-ref' AND c.split = 'train' AND "
                     "t.label = 'Knock'")["clip_key"].tolist()
    np.testing.assert_allclose(store.read("prototype/p", ["Knock"])[0],
                               store.read("audio/ast-fbank", tagged).mean(axis=1).mean(axis=0),
                               rtol=1e-4, atol=1e-5)
    key = sorted(store.keys("condition/c"))[0]
    mask = store.read("condition/c", [key], extra="mask")[0]
    frames = cat.sql(f"SELECT frame_index FROM representative_frames WHERE clip_key = '{key}'")
    assert sorted(np.flatnonzero(mask)) == sorted(frames["frame_index"])
    values = store.read("condition/c", [key])[0]
    assert np.all(values[~mask] == 0)
    labels = cat.sql(f"SELECT frame_index, label, similarity FROM condition_labels WHERE "
                     f"clip_key = '{key}' AND condition_set = 'condition/c'")
    for frame, group in labels.groupby("frame_index"):
        protos = store.read("prototype/p", group["label"].tolist())
        np.testing.assert_allclose(values[frame], protos.mean(axis=0), rtol=1e-5)
        assert 1 <= len(group) <= 5
    captions = json.loads(next((data / "captions").glob("*.json")).read_text())
    assert captions  # the imported study-format captions were used


def test_cafmap_generator_and_experiment(synthetic):
    for args in (["frames"], ["caption", "--import", str(synthetic / "data/captions")],
                 ["prototypes", "--from-catalog", "--tags", "synth-ref", "--name", "p"],
                 ["condition", "--prototypes", "prototype/p", "--name", "c"]):
        assert run_cli(*args, cwd=synthetic).returncode == 0
    missing = run_cli("train", "generator", "--arch", "cafmap", cwd=synthetic)
    assert missing.returncode == 1 and "needs --condition" in missing.stderr
    pool = "SELECT clip_key, class_name, split FROM clips WHERE split IN ('train', 'val')"
    result = run_cli("experiment", "cafmap", "--condition", "condition/c", "--seeds", "2",
                     "--epochs", "2", "--generator-epochs", "2", "--generator-query", pool,
                     cwd=synthetic, timeout=900)
    assert result.returncode == 0, result.stderr
    experiment_id = result.stdout.split("experiment ")[-1].split()[0]
    table = pd.read_csv(result.stdout.split("\ntable ", 1)[1].split()[0])  # its results.csv
    assert {"vision only", "+ real audio", "+ generated audio"} <= set(
        table.loc[table["seeds"] == 2, "variant"])
    cat = open_catalog(synthetic / "catalog.db")
    runs = cat.sql(f"SELECT kind, arch, count(*) AS n FROM runs WHERE experiment_id = "
                   f"'{experiment_id}' AND kind <> 'generate' GROUP BY 1, 2 ORDER BY 1")
    assert runs.to_dict("records") == [
        {"kind": "experiment", "arch": "cafmap", "n": 1},
        # the "+ real audio" model tested with generated audio, zeros, the mean, the
        # MLP translator's audio, and zeros after TENT
        {"kind": "test-classifier", "arch": "mlp", "n": 2 * 5},
        # + dropout-trained, + the distilled student, + the joint network
        {"kind": "train-classifier", "arch": "mlp", "n": 2 * (3 + 3)},
        {"kind": "train-generator", "arch": "cafmap", "n": 2 + 2 * 3},  # + cross-fit folds
    ]
    generator_queries = cat.sql(f"SELECT DISTINCT query FROM runs WHERE experiment_id = "
                                f"'{experiment_id}' AND kind = 'train-generator'")["query"]
    assert len(generator_queries) == 1 and pool in generator_queries[0]  # apart from --query
    n_test = cat.sql(f"SELECT count(DISTINCT p.clip_key) AS n, count(DISTINCT p.run_id) AS r "
                     f"FROM predictions p JOIN runs r ON r.run_id = p.run_id "
                     f"WHERE r.experiment_id = '{experiment_id}'")
    # one test set for every run: 2 seeds x 11 variants
    assert n_test.to_dict("records") == [{"n": 8, "r": 2 * 11}]
    assert (synthetic / "runs" / experiment_id / "results.png").exists()
