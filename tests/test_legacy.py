"""The study's pickled feature dicts: imported safely, malicious ones refused."""

from __future__ import annotations

import os

import numpy as np
import pytest

from tests.conftest import run_cli
from vida import open_catalog
from vida.media.legacy import UnsafePickle, load_feature_dict
from vida.store import FeatureStore


def _study_dict(seed: int, dim: int, n: int = 4, split: str = "train") -> dict:
    rng = np.random.default_rng(seed)
    # clip ids repeat across classes, as in MiT
    return {(cls, f"{split}{i}"): rng.standard_normal((18, dim)).astype(np.float32)
            for cls in ("barking", "boiling") for i in range(n)}


class _Exploit:
    """Unpickling this runs a shell command (what np.load(allow_pickle=True) allows)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_round_trip_of_study_files(tmp_path):
    folder = tmp_path / "features"
    folder.mkdir()
    files = {"rgb_filtered_train": _study_dict(0, 768), "flow_filtered_train": _study_dict(1, 768),
             "audio_val": _study_dict(2, 128, n=2, split="val"),
             "gen_audio_filtered_test": _study_dict(3, 128, split="test")}
    for name, data in files.items():
        np.save(folder / f"{name}.npy", data, allow_pickle=True)  # exactly as the study did

    result = run_cli("ingest", str(folder), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "imported rgb_filtered_train.npy: 8 clips" in result.stdout

    cat = open_catalog(tmp_path / "catalog.db", create=True)
    store = FeatureStore(cat, tmp_path / "store")
    sets = cat.sql("SELECT name, modality, shape FROM feature_sets ORDER BY name")
    assert sets.to_dict("records") == [
        {"name": "legacy/audio", "modality": "audio", "shape": "[18, 128]"},
        {"name": "legacy/flow", "modality": "flow", "shape": "[18, 768]"},
        {"name": "legacy/gen_audio", "modality": "generated", "shape": "[18, 128]"},
        {"name": "legacy/rgb", "modality": "rgb", "shape": "[18, 768]"},
    ]
    kinds = {"rgb_filtered_train": "rgb", "flow_filtered_train": "flow", "audio_val": "audio",
             "gen_audio_filtered_test": "gen_audio"}
    for name, data in files.items():
        kind = kinds[name]
        keys = [f"{c}/{i}" for c, i in data]
        np.testing.assert_array_equal(store.read(f"legacy/{kind}", keys),
                                      np.stack(list(data.values())))
    splits = cat.sql("SELECT split, count(*) AS n FROM clips GROUP BY 1 ORDER BY 1")
    assert splits.to_dict("records") == [
        {"split": "test", "n": 8}, {"split": "train", "n": 8}, {"split": "val", "n": 4}]


def test_malicious_pickle_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    folder = tmp_path / "features"
    folder.mkdir()
    evil = {("barking", "train0"): _Exploit(str(marker))}
    np.save(folder / "rgb_train.npy", np.array(evil, dtype=object), allow_pickle=True)
    np.save(folder / "audio_train.npy", _study_dict(5, 128), allow_pickle=True)

    with pytest.raises(UnsafePickle, match=r"rgb_train.npy: refused to load.*posix.system"):
        load_feature_dict(folder / "rgb_train.npy")
    assert not marker.exists()

    result = run_cli("ingest", str(folder), cwd=tmp_path)
    assert not marker.exists()  # nothing was executed
    assert result.returncode == 1
    refused = [line for line in result.stderr.splitlines() if line.startswith("refused")]
    assert len(refused) == 1 and "rgb_train.npy" in refused[0] and "posix.system" in refused[0]
    # the good file beside it was still imported
    assert "imported audio_train.npy: 8 clips" in result.stdout
    cat = open_catalog(tmp_path / "catalog.db", create=True)
    assert cat.sql("SELECT count(*) AS n FROM features")["n"][0] == 8
    # the classic sanity check: the exploit really would have run under np.load
    np.load(folder / "rgb_train.npy", allow_pickle=True)
    assert marker.exists()


def test_wrong_names_and_plain_arrays_get_clear_errors(tmp_path):
    np.save(tmp_path / "weights.npy", np.zeros(3))
    with pytest.raises(ValueError, match="plain float64 array"):
        load_feature_dict(tmp_path / "weights.npy")
    (tmp_path / "junk.npy").write_text("nope")
    with pytest.raises(ValueError, match="junk.npy: not a .npy file"):
        load_feature_dict(tmp_path / "junk.npy")
