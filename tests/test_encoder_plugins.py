"""Encoders as plugins: built-ins without an import circle, third parties by entry point."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import run_cli
from tests.helpers.plugins import fake_distribution
from tests.media_factory import tone, write_video
from vida import open_catalog
from vida.encoders import available, get_encoder
from vida.store import FeatureStore

PLUGIN = '''
"""A third-party encoder: the mean colour of each frame."""
import numpy as np


class MeanColorEncoder:
    name = "mean-color"
    modality = "rgb"

    def __init__(self, n_frames=18, **_):
        self.shape = (n_frames, 3)
        self.params = {"what": "mean rgb per frame"}

    def encode(self, batch):
        return batch.astype(np.float32).mean(axis=(2, 3)) / 255.0
'''


def test_builtins_load_without_an_import_circle():
    code = ("import sys, vida.encoders.registry as r; "
            "assert 'vida.encoders.builtin' not in sys.modules; "
            "e = r.get_encoder('hog-color', n_frames=4); "
            "assert e.shape == (4, 768) and 'vida.encoders.builtin' in sys.modules; "
            "import vida.encoders.builtin as b; assert not hasattr(b, 'register')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert {"hog-color", "flow-hist", "ast-fbank"} <= set(available())


def test_unknown_encoder_names_the_known_ones_and_the_entry_point_group():
    try:
        get_encoder("no-such-encoder")
    except ValueError as exc:
        assert "hog-color" in str(exc) and "vida.encoders" in str(exc)
    else:
        raise AssertionError("an unknown encoder was built")


def test_a_plugin_encoder_found_by_entry_point_ingests_in_worker_processes(tmp_path):
    site = fake_distribution(tmp_path / "site", "vida_mean_color", PLUGIN, "mean-color",
                             "MeanColorEncoder")
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(site),
                                                       os.environ.get("PYTHONPATH")]))}
    listed = subprocess.run(
        [sys.executable, "-c", "from vida.encoders import available; print(available())"],
        capture_output=True, text=True, env={**os.environ, **env})
    assert "mean-color" in listed.stdout, listed.stderr

    media = tmp_path / "media"
    rng = np.random.default_rng(0)
    colors = {}
    for i in range(4):
        color = rng.integers(30, 220, size=3)
        colors[f"clip{i}"] = color / 255.0
        frames = [np.full((64, 64, 3), color, np.uint8) for _ in range(20)]
        (media / "waving").mkdir(parents=True, exist_ok=True)
        write_video(media / "waving" / f"clip{i}.mp4", frames, fps=6, audio=tone(4, 16000))
    result = run_cli("ingest", str(media), "--rgb-encoder", "mean-color", "--workers", "2",
                     "--frames", "4", "--no-progress", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    catalog = open_catalog(tmp_path / "catalog.db", create=True)
    statuses = catalog.sql("SELECT status, count(*) AS n FROM clips GROUP BY 1")
    assert statuses.to_dict("records") == [{"status": "ok", "n": 4}], result.stdout
    store = FeatureStore(catalog, tmp_path / "store")
    info = store.info("rgb/mean-color")
    assert info.encoder == "mean-color" and tuple(info.shape) == (4, 3)
    assert info.params["what"] == "mean rgb per frame"
    keys = sorted(store.keys("rgb/mean-color"))
    assert keys == [f"waving/clip{i}" for i in range(4)]
    values = store.read("rgb/mean-color", keys)
    expected = np.stack([np.tile(colors[k.split("/")[1]], (4, 1)) for k in keys])
    np.testing.assert_allclose(values, expected, atol=0.03)  # H.264 moves colours slightly


@pytest.mark.filterwarnings("ignore:At least one mel filter")  # AST's own setting
def test_ast_fbank_is_ast_feature_extractor_and_its_workers_never_import_torch():
    """``ast-fbank`` computes AST's own input (equal to ``ASTFeatureExtractor``, whose
    module imports torch) in a process that never imports torch: the default
    encoders start in a second, not three."""
    from transformers import ASTFeatureExtractor

    from vida.encoders.builtin import AstFbankEncoder

    rng = np.random.default_rng(0)
    wave = (0.3 * np.sin(np.linspace(0, 900, 48000)) + 0.05 * rng.standard_normal(48000))
    for frames in (298, 250, 400):  # exact, truncated, padded
        ours = AstFbankEncoder.fbank(wave.astype(np.float32), frames)
        theirs = ASTFeatureExtractor(max_length=frames)(
            wave.astype(np.float32), sampling_rate=16000, return_tensors="np")["input_values"][0]
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)
    code = ("import sys, numpy as np; from vida.encoders import get_encoder; "
            "f = get_encoder('ast-fbank').encode(np.zeros((1, 48000), np.float32)); "
            "assert f.shape == (1, 18, 128), f.shape; "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
