"""The synthetic dataset: deterministic, in the MiT layout, with tags and captions."""

from __future__ import annotations

import hashlib
import json

import numpy as np

from tests.conftest import run_cli
from vida.media.decode import decode_clip
from vida.synth import synthesize
from vida.synth.classes import SOUND_TAGS


def _digest(root):
    h = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.is_file():
            h.update(path.relative_to(root).as_posix().encode() + path.read_bytes())
    return h.hexdigest()


def test_same_seed_same_bytes_other_seed_other_clips(tmp_path):
    a = synthesize(tmp_path / "a", 3, 2, seed=5)
    b = synthesize(tmp_path / "b", 3, 2, seed=5)
    c = synthesize(tmp_path / "c", 3, 2, seed=6)
    assert _digest(a.root) == _digest(b.root) != _digest(c.root)


def test_layout_tags_and_captions(tmp_path, shared):
    result = run_cli("synth", str(tmp_path / "s"), "--classes", "4", "--clips-per-class", "3",
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    root = tmp_path / "s"
    videos = sorted(root.glob("training/*/*.mp4"))
    assert len(videos) == 12
    clip = decode_clip(videos[0])
    assert clip.frames.shape == (18, 128, 128, 3) and clip.audio is not None
    assert clip.n_frames == 18 and not clip.padded and clip.fps == 30

    tags = json.loads((root / "ast_tags.json").read_text())
    assert len(tags) == 12
    audioset = {line.split(",", 2)[2].strip().strip('"') for line in
                (shared / "data/audioset/class_labels_indices.csv").read_text().splitlines()[1:]}
    real = json.loads((shared / "data/ast_pred_test.json").read_text())
    some_real = next(iter(real.values()))
    for key, value in tags.items():
        assert "|" in key and set(value) == set(some_real)  # the study's format
        assert len(value["topk_labels"]) == 5 and set(value["topk_labels"]) <= audioset
        assert value["topk_scores"] == sorted(value["topk_scores"], reverse=True)
    for labels in SOUND_TAGS.values():
        assert set(labels) <= audioset

    caption_files = sorted((root / "captions").glob("training_*_captions.json"))
    assert len(caption_files) == 4
    captions = json.loads(caption_files[0].read_text())
    first = next(iter(captions.values()))
    assert [c["frame"] for c in first] == list(range(18)) and all(c["caption"] for c in first)
    lines = (root / "manifest.csv").read_text().splitlines()
    assert lines[0] == "path,class,split" and len(lines) == 13


def test_audio_follows_the_visual_events(tmp_path):
    """Thuds happen when the ball touches the floor: loud audio frames are impact frames."""
    from vida.synth.render import RATE, event_times, make_audio, sample_scene

    rng = np.random.default_rng(0)
    scene = sample_scene("bounce", (255, 0, 0), rng)
    scene.audio_noise = 0.0
    audio = make_audio(scene, "thud", rng)
    envelope = np.abs(audio).reshape(-1, RATE // 100).max(axis=1)  # 10 ms frames
    loud = np.flatnonzero(envelope > 0.5 * envelope.max()) / 100
    events = event_times(scene)
    assert all(np.min(np.abs(events - t)) < 0.1 for t in loud)
    assert all(np.min(np.abs(loud - e)) < 0.1 for e in events if e < 2.9)
