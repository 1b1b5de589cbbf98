"""The synthetic dataset: deterministic, in the MiT layout, with tags and captions."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import av
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


def _decoded(root: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Every frame and every audio sample of every clip, fully decoded."""
    out = {}
    for path in sorted(root.rglob("*.mp4")):
        with av.open(str(path)) as container:
            frames = np.stack([f.to_ndarray(format="rgb24")
                               for f in container.decode(video=0)])
        with av.open(str(path)) as container:
            audio = np.concatenate([f.to_ndarray().reshape(-1)
                                    for f in container.decode(audio=0)])
        out[path.relative_to(root).as_posix()] = (frames, audio)
    return out


def _decoded_digest(root: Path, seed: int) -> str:
    """Synthesise into ``root`` and hash what decodes (runs in a worker process)."""
    synthesize(root, 3, 2, seed=seed)
    h = hashlib.sha256()
    for name, (frames, audio) in _decoded(root).items():
        h.update(name.encode() + frames.tobytes() + audio.tobytes())
    return h.hexdigest()


def _assert_same_media(a: Path, b: Path) -> None:
    da, db = _decoded(a), _decoded(b)
    assert sorted(da) == sorted(db)
    for name in da:
        (fa, aa), (fb, ab) = da[name], db[name]
        assert fa.shape == fb.shape and aa.shape == ab.shape, name
        diff = int(np.abs(fa.astype(int) - fb).max())
        assert diff == 0, f"{name}: decoded frames differ by up to {diff} grey levels"
        assert np.array_equal(aa, ab), f"{name}: audio samples differ"


def test_same_seed_same_clips_repeatedly_in_one_process(tmp_path):
    """x264's AVX-512 kernels can make repeated encodes differ: the same seed must
    give the same bytes every time."""
    first = synthesize(tmp_path / "a0", 3, 2, seed=5).root
    for k in range(1, 4):
        again = synthesize(tmp_path / f"a{k}", 3, 2, seed=5).root
        _assert_same_media(first, again)
        assert _digest(first) == _digest(again)
    other = synthesize(tmp_path / "c", 3, 2, seed=6).root
    assert _digest(first) != _digest(other)
    frames_a = _decoded(first)
    frames_c = _decoded(other)
    assert all(not np.array_equal(frames_a[n][0], frames_c[n][0]) for n in frames_a)
    assert all(not np.array_equal(frames_a[n][1], frames_c[n][1]) for n in frames_a)


def test_same_seed_same_clips_across_processes_under_load(tmp_path):
    """Fresh processes, synthesising at the same time as this one, decode to the same."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(2, mp_context=context) as pool:
        futures = [pool.submit(_decoded_digest, tmp_path / f"w{k}", 5) for k in range(4)]
        here = _decoded_digest(tmp_path / "here", 5)  # load on the machine meanwhile
        there = [f.result() for f in futures]
    assert set(there) == {here}
    assert _decoded_digest(tmp_path / "other", 6) != here


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


def test_two_worker_processes_make_the_same_clips(tmp_path):
    from vida.jobs.core.executor import ordered_mapper

    alone = synthesize(tmp_path / "one", 3, 2, seed=5).root
    with ordered_mapper(2) as mapper:
        shared = synthesize(tmp_path / "two", 3, 2, seed=5, mapper=mapper).root
    _assert_same_media(alone, shared)
    assert _digest(alone) == _digest(shared)
