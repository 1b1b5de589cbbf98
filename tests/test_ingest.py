"""vida-batch ingest on real media: the shared clips, generated videos, hostile files."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest

from tests.conftest import ROOT, run_cli
from tests.media_factory import tone, write_audio_only, write_video
from vida import open_catalog
from vida.jobs.data.ingest import IngestOptions, ingest
from vida.media.decode import decode_audio, decode_clip
from vida.store import FeatureStore
from vida.store.integrity import fsck

EXAMPLE = "data/vida-example"
QUIET_CLIP = ("an-array-of-hands-being-raised-in-applause-and-gesturing-in-agreement-"
              "video-idmr_00057569")
SETS = ("rgb/hog-color", "flow/flow-hist", "audio/ast-fbank")


def _ingest(tmp_path: Path, root: Path, **kwargs):
    catalog = open_catalog(tmp_path / "catalog.db", create=True)
    store = FeatureStore(catalog, tmp_path / "store")
    options = kwargs.pop("options", IngestOptions())
    summary = ingest(catalog, store, root, options=options, workers=1, progress=False, **kwargs)
    return catalog, store, summary


def _copy_example(shared: Path, dest: Path, n: int | None = None) -> Path:
    src = shared / EXAMPLE
    clips = sorted(p.name for p in (src / "RGB/applauding").iterdir())[:n]
    for clip in clips:
        shutil.copytree(src / "RGB/applauding" / clip, dest / "RGB/applauding" / clip)
        (dest / "Audio/applauding").mkdir(parents=True, exist_ok=True)
        shutil.copy(src / "Audio/applauding" / f"{clip}.wav", dest / "Audio/applauding")
    return dest


def test_frame_folder_layout_of_the_shared_clips(shared, tmp_path):
    catalog, store, summary = _ingest(tmp_path, shared / EXAMPLE)
    assert summary.by_status["ok"] == 10 and summary.total == 10
    clips = catalog.sql("SELECT clip_id, class_name, n_frames, has_audio, audio_dbfs, silent, "
                        "status FROM clips ORDER BY clip_id")
    assert set(clips["status"]) == {"ok"} and set(clips["n_frames"]) == {18}
    assert clips["has_audio"].all()
    quiet = clips.set_index("clip_id").loc[QUIET_CLIP]
    assert quiet["silent"] and quiet["audio_dbfs"] < -50
    assert not clips.set_index("clip_id").drop(QUIET_CLIP)["silent"].any()

    keys = [f"applauding/{c}" for c in clips["clip_id"]]
    for name, dim in zip(SETS, (768, 256, 128), strict=True):
        x = store.read(name, keys)
        assert x.shape == (10, 18, dim) and x.dtype == np.float32
        assert np.isfinite(x).all()
        assert x.std(axis=0).mean() > 0  # clips differ from each other
    params = catalog.sql("SELECT name, params FROM feature_sets WHERE name = 'rgb/hog-color'")
    assert '"fps": 6.0' in params["params"][0] and '"n_frames": 18' in params["params"][0]
    run = catalog.sql("SELECT kind, status FROM runs")
    assert run.to_dict("records") == [{"kind": "ingest", "status": "finished"}]


@pytest.fixture
def example_as_videos(shared, tmp_path) -> Path:
    """Three shared clips re-encoded by the test: their 18 frames at 6 fps (H.264) with
    their WAV as lossless ALAC audio, in a <class>/<clip>.mp4 tree."""
    src = shared / EXAMPLE
    root = tmp_path / "videos"
    (root / "applauding").mkdir(parents=True)
    for clip in sorted(p.name for p in (src / "RGB/applauding").iterdir())[:3]:
        frames = [av.open(str(f)).decode(video=0).__next__().to_ndarray(format="rgb24")
                  for f in sorted((src / "RGB/applauding" / clip).iterdir())]
        h, w = frames[0].shape[:2]
        frames = [f[: h // 2 * 2, : w // 2 * 2] for f in frames]
        wav = decode_audio(src / "Audio/applauding" / f"{clip}.wav")
        write_video(root / "applauding" / f"{clip}.mp4", frames, fps=6,
                    size=(frames[0].shape[1], frames[0].shape[0]),
                    audio=wav[None], audio_codec="alac")
    return root


def test_videos_and_frame_folders_agree(shared, tmp_path, example_as_videos):
    folders = _copy_example(shared, tmp_path / "frames", n=3)
    cat_f, store_f, _ = _ingest(tmp_path / "a", folders)
    cat_v, store_v, summary = _ingest(tmp_path / "b", example_as_videos)
    assert summary.by_status["ok"] == 3
    keys = store_f.keys("audio/ast-fbank")
    assert keys == store_v.keys("audio/ast-fbank") and len(keys) == 3
    # same waveform, same window, same features: the audio paths agree exactly
    np.testing.assert_allclose(store_v.read("audio/ast-fbank", keys),
                               store_f.read("audio/ast-fbank", keys), atol=1e-4)
    # the frames went through H.264, so visual features agree closely, not exactly
    a, b = store_f.read("rgb/hog-color", keys), store_v.read("rgb/hog-color", keys)
    corr = np.corrcoef(a.reshape(-1), b.reshape(-1))[0, 1]
    assert corr > 0.95, corr
    facts = cat_v.sql("SELECT n_frames, fps, has_audio FROM clips")
    assert set(facts["n_frames"]) == {18} and set(facts["fps"]) == {6.0}


@pytest.mark.parametrize(
    "fps,pts",
    [(30, None), (Fraction(30000, 1001), None), (25, None),
     (30, list(np.cumsum([0.0] + [0.05, 0.1] * 30))[:60])],  # variable frame rate
    ids=["30", "29.97", "25", "vfr"],
)
def test_frames_are_sampled_by_timestamp(tmp_path, fps, pts):
    n = 120 if pts is None else 60
    times = pts if pts is not None else [i / float(fps) for i in range(n)]
    frames = [np.full((48, 64, 3), 2 * i, np.uint8) for i in range(n)]  # brightness = index
    path = write_video(tmp_path / "v.mp4", frames, fps=fps, pts_seconds=pts)
    clip = decode_clip(path, n_frames=18, fps=6.0, size=32)
    got = np.round(clip.frames[:, 16, 16, 0] / 2).astype(int)
    for k in range(18):
        want = int(np.argmin([abs(t - k / 6.0) for t in times]))  # nearest frame to k/6 s
        assert abs(got[k] - want) <= 1, (k, got[k], want)  # +-1: lossy coding of brightness
    assert not clip.padded


@pytest.fixture
def hostile_tree(tmp_path) -> Path:
    root = tmp_path / "hostile"
    d = root / "mixed"
    d.mkdir(parents=True)
    (d / "zero.mp4").write_bytes(b"")
    (d / "junk.mp4").write_text("this is not a video\n" * 50)
    good = write_video(d / "normal.mp4", audio=tone(3, 16000))
    (d / "truncated.mp4").write_bytes(good.read_bytes()[: good.stat().st_size // 3])
    write_audio_only(d / "audio_only.m4a")
    write_video(d / "one_frame.mp4", n_frames=1, audio=tone(0.2, 16000))
    write_video(d / "tiny.mp4", size=(16, 16), n_frames=30, fps=10)
    write_video(d / "large.mp4", size=(1920, 1080), n_frames=19, fps=6)
    write_video(d / "rotated.mp4", size=(48, 64), rotation=90, audio=tone(3, 16000))
    write_video(d / "surround.mkv", audio=tone(3, 48000, channels=6), audio_rate=48000,
                audio_layout="5.1")
    write_video(d / "silent_track.mp4", audio=np.zeros((1, 48000), np.float32))
    write_video(d / "no_audio.webm", codec="libvpx-vp9" if "libvpx-vp9" in av.codecs_available
                else "libx264")
    return root


EXPECTED = {
    "zero": ("failed", "empty_file"), "junk": ("failed", "not_media"),
    "audio_only": ("failed", "no_video_stream"), "one_frame": ("flagged", "too_short"),
    "normal": ("ok", None), "tiny": ("ok", None), "large": ("ok", None),
    "rotated": ("ok", None), "surround": ("ok", None), "silent_track": ("ok", None),
    "no_audio": ("ok", None),
}


def test_hostile_files_are_recorded_and_the_batch_goes_on(hostile_tree, tmp_path):
    result = run_cli("ingest", str(hostile_tree), "--workers", "2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "clip/s" in result.stderr or "s/clip" in result.stderr  # the progress bar
    assert "12 clips:" in result.stdout
    cat = open_catalog(tmp_path / "catalog.db", create=True)
    rows = cat.sql("SELECT clip_id, status, error, has_audio, silent FROM clips").set_index(
        "clip_id")
    assert len(rows) == 12
    for clip, (status, reason) in EXPECTED.items():
        assert rows.loc[clip, "status"] == status, (clip, rows.loc[clip, "error"])
        if reason:
            error = rows.loc[clip, "error"]
            assert error.startswith(reason) and "\n" not in error, error
    assert rows.loc["truncated", "status"] in ("failed", "flagged")
    assert rows.loc["truncated", "error"]
    assert rows.loc["surround", "has_audio"] and not rows.loc["surround", "silent"]
    assert rows.loc["silent_track", "silent"]
    assert not rows.loc["no_audio", "has_audio"]
    audio_keys = set(FeatureStore(cat, tmp_path / "store").keys("audio/ast-fbank"))
    assert "mixed/no_audio" not in audio_keys and "mixed/surround" in audio_keys
    rgb = set(FeatureStore(cat, tmp_path / "store").keys("rgb/hog-color"))
    assert rgb == {f"mixed/{c}" for c, (s, _) in EXPECTED.items() if s != "failed"} | (
        {"mixed/truncated"} if rows.loc["truncated", "status"] == "flagged" else set())
    assert "failed: empty_file" in result.stdout  # the summary by reason


def test_strict_fails_short_clips_instead_of_padding(tmp_path):
    root = tmp_path / "v"
    (root / "c").mkdir(parents=True)
    write_video(root / "c" / "short.mp4", n_frames=30)  # 1 s of a 3 s window
    catalog, store, summary = _ingest(tmp_path, root, options=IngestOptions(strict=True))
    row = catalog.sql("SELECT status, error FROM clips").iloc[0]
    assert row["status"] == "failed" and row["error"].startswith("too_short")
    assert store.keys("rgb/hog-color") == []


def test_rerun_skips_done_clips_and_notices_changes(shared, tmp_path):
    root = _copy_example(shared, tmp_path / "src", n=3)
    (root / "RGB/applauding/broken").mkdir()
    (root / "RGB/applauding/broken/frame_0000.jpg").write_text("not a jpeg")
    catalog, store, first = _ingest(tmp_path, root)
    assert (first.by_status["ok"], first.by_status["failed"]) == (3, 1)
    shards = catalog.sql("SELECT count(*) AS n FROM shards")["n"][0]

    _, _, again = _ingest(tmp_path, root)
    assert again.by_status["skipped"] == 4
    assert catalog.sql("SELECT count(*) AS n FROM shards")["n"][0] == shards

    retry = _ingest(tmp_path, root, options=IngestOptions(retry_failed=True))[2]
    assert (retry.by_status["skipped"], retry.by_status["failed"]) == (3, 1)

    clip = sorted((root / "RGB/applauding").iterdir())[0]
    first_frame = sorted(clip.iterdir())[0]
    shutil.copy(sorted(clip.iterdir())[5], first_frame)  # the media changed
    changed = _ingest(tmp_path, root)[2]
    assert changed.by_status["ok"] == 1 and changed.by_status["skipped"] == 3
    counts = catalog.sql("SELECT count(*) AS n, count(DISTINCT clip_key) AS d FROM clips")
    assert counts.to_dict("records") == [{"n": 4, "d": 4}]
    assert catalog.sql("SELECT count(*) AS n FROM features WHERE feature_set = 'rgb/hog-color'"
                       )["n"][0] == 3


def test_sigkill_at_any_moment_then_rerun_gives_each_clip_once(tmp_path):
    root = tmp_path / "v"
    for c in range(3):
        (root / f"class{c}").mkdir(parents=True)
        for i in range(5):
            write_video(root / f"class{c}" / f"clip{i}.mp4", n_frames=90 + 3 * i,
                        audio=tone(3, 16000, freq=200 + 50 * i))
    args = [sys.executable, "-m", "vida.cli", "ingest", str(root), "--workers", "2",
            "--rows-per-shard", "2", "--no-progress"]
    seed = int(os.environ.get("VIDA_FAULT_SEED", "7"))  # printed: a failure reproduces
    rng = random.Random(seed)
    print(f"VIDA_FAULT_SEED={seed}")
    for delay in (rng.uniform(3.0, 5.0), rng.uniform(5.0, 8.0)):
        proc = subprocess.Popen(args, cwd=tmp_path, start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    done = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    cat = open_catalog(tmp_path / "catalog.db", create=True)
    counts = cat.sql("SELECT count(*) AS n, count(DISTINCT clip_key) AS d, "
                     "sum(CASE WHEN status = 'ok' THEN 1 ELSE 0 END) AS ok FROM clips")
    assert counts.to_dict("records") == [{"n": 15, "d": 15, "ok": 15}]
    for name in SETS:
        rows = cat.sql(f"SELECT count(*) AS n, count(DISTINCT clip_key) AS d FROM features "
                       f"WHERE feature_set = '{name}'")
        assert rows.to_dict("records") == [{"n": 15, "d": 15}], name
    store = FeatureStore(cat, tmp_path / "store")
    assert np.isfinite(store.read("audio/ast-fbank", store.keys("audio/ast-fbank"))).all()
    assert fsck(store, repair=True).clean and fsck(store).clean


def test_splits_are_per_class_deterministic_and_recorded(tmp_path):
    from vida.catalog.schema import Clip
    from vida.jobs.data.split import assign_splits

    cat = open_catalog(tmp_path / "catalog.db", create=True)
    with cat.transaction() as s:
        for cls, n in (("a", 20), ("b", 40)):
            for i in range(n):
                s.add(Clip(clip_key=f"{cls}/{i}", class_name=cls, clip_id=str(i), status="ok"))
        s.add(Clip(clip_key="a/bad", class_name="a", clip_id="bad", status="failed"))
    table = assign_splits(cat, seed=42).set_index(["class_name", "split"])["clips"]
    assert table.to_dict() == {("a", "test"): 3, ("a", "train"): 14, ("a", "val"): 3,
                               ("b", "test"): 6, ("b", "train"): 28, ("b", "val"): 6}
    first = cat.sql("SELECT clip_key, split FROM clips ORDER BY clip_key")
    assign_splits(cat, seed=42)
    assert cat.sql("SELECT clip_key, split FROM clips ORDER BY clip_key").equals(first)
    assign_splits(cat, seed=7)
    assert not cat.sql("SELECT clip_key, split FROM clips ORDER BY clip_key").equals(first)
    assert pd.isna(first.set_index("clip_key").loc["a/bad", "split"])
    runs = cat.sql("SELECT kind, seed, params FROM runs ORDER BY started_at")
    assert runs["kind"].tolist() == ["split"] * 3 and runs["seed"].tolist() == [42, 42, 7]


def test_split_from_source_folders(tmp_path):
    root = tmp_path / "mit"
    for split, n in (("training", 3), ("validation", 2)):
        (root / split / "barking").mkdir(parents=True)
        for i in range(n):
            write_video(root / split / "barking" / f"{split}{i}.mp4", n_frames=20, fps=6)
    assert run_cli("ingest", str(root), "--workers", "1", "--no-progress",
                   cwd=tmp_path).returncode == 0
    result = run_cli("split", "--from-source", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    splits = open_catalog(tmp_path / "catalog.db", create=True).sql(
        "SELECT source_split, split, count(*) AS n FROM clips GROUP BY 1, 2 ORDER BY 1")
    assert splits.to_dict("records") == [
        {"source_split": "training", "split": "train", "n": 3},
        {"source_split": "validation", "split": "val", "n": 2},
    ]


def test_manifest_csv_with_and_without_header(tmp_path):
    media = tmp_path / "media"
    media.mkdir()
    for name in ("a", "b", "c"):
        write_video(media / f"{name}.mp4", n_frames=20, fps=6)
    # MiT's trainingSet.csv style: no header, paths relative to the CSV
    (tmp_path / "plain.csv").write_text("media/a.mp4,barking\nmedia/b.mp4,boiling\n")
    (tmp_path / "header.csv").write_text("path,class,split\nmedia/c.mp4,barking,validation\n")
    for csv_name in ("plain.csv", "header.csv"):
        result = run_cli("ingest", str(tmp_path / csv_name), "--workers", "1", "--no-progress",
                         cwd=tmp_path)
        assert result.returncode == 0, result.stderr
    rows = open_catalog(tmp_path / "catalog.db", create=True).sql(
        "SELECT clip_key, coalesce(source_split, '-') AS source_split, status FROM clips "
        "ORDER BY 1")
    assert rows.to_dict("records") == [
        {"clip_key": "barking/a", "source_split": "-", "status": "ok"},
        {"clip_key": "barking/c", "source_split": "validation", "status": "ok"},
        {"clip_key": "boiling/b", "source_split": "-", "status": "ok"},
    ]
    (tmp_path / "bad.csv").write_text("media/a.mp4\n")
    bad = run_cli("ingest", str(tmp_path / "bad.csv"), cwd=tmp_path)
    assert bad.returncode == 1 and "bad.csv: no rows to ingest (line 1:" in bad.stderr
    assert "empty class" in bad.stderr


def test_other_grid_needs_its_own_feature_sets(shared, tmp_path):
    root = _copy_example(shared, tmp_path / "src", n=2)
    _ingest(tmp_path, root)
    with pytest.raises(Exception, match="exists with other params .*fps.*--name-suffix"):
        _ingest(tmp_path, root, options=IngestOptions(fps=5.0, retry_failed=True))
    catalog, store, summary = _ingest(
        tmp_path, root, options=IngestOptions(n_frames=9, fps=3.0, flow_method="dis",
                                              name_suffix="t9"))
    assert summary.by_status["ok"] == 2  # the same media, decoded again on the new grid
    keys = catalog.sql("SELECT clip_key FROM clips ORDER BY clip_key")["clip_key"].tolist()
    for base in ("rgb/hog-color", "flow/flow-hist", "audio/ast-fbank"):
        nine, eighteen = store.read(f"{base}-t9", keys), store.read(base, keys)
        assert nine.shape[:2] == (2, 9) and eighteen.shape[:2] == (2, 18)
        assert store.info(f"{base}-t9").params["fps"] == 3.0
    again = _ingest(tmp_path, root, options=IngestOptions(
        n_frames=9, fps=3.0, flow_method="dis", name_suffix="t9"))[2]
    assert again.by_status["skipped"] == 2  # now complete on both grids


def test_loudness_has_no_integer_overflow():
    from vida.media.loudness import dbfs

    full_scale = np.array([32767, -32768] * 1000, dtype=np.int16)
    assert dbfs(full_scale) == pytest.approx(0.0, abs=0.01)  # squaring int16 would overflow
    assert dbfs(np.full(1000, 0.01, np.float32)) == pytest.approx(-40.0, abs=0.01)
    assert dbfs(np.zeros(10, np.float32)) == -120.0


def test_dis_flow_is_an_option():
    from vida.media.flow import flow_sequence

    frames = np.zeros((4, 64, 64, 3), np.uint8)
    for i in range(4):
        frames[i, 20:40, 10 + 3 * i:30 + 3 * i] = 255  # a square moving right 3 px a frame
    for method in ("farneback", "dis"):
        flow = flow_sequence(frames, method)
        assert flow.shape == (4, 64, 64, 2)
        np.testing.assert_array_equal(flow[0], flow[1])  # the first flow is repeated
        assert flow[1, 25:35, 20:30, 0].mean() > 1.0  # moving right: positive dx

