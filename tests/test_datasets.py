"""The audio-visual datasets people use, as they ship: VGGSound, Kinetics (with and
without ``is_cc``), AVE; clips that are windows of a file; AVMIT's ratings beside
MiT's clips; an experiment's main table by any grouping of its test clips."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import run_cli
from tests.helpers.avmit import avmit_files
from tests.helpers.cli_path import ok, sql
from tests.helpers.dataset_trees import (
    ave_tree,
    kinetics_tree,
    synthetic_clips,
    tags_file,
    vggsound_tree,
)
from tests.helpers.mit_tree import mit_tree
from tests.media_factory import write_video
from vida.keys import split_window, with_window
from vida.media.datasets import read_dataset
from vida.media.decode import AUDIO_RATE, clip_waveform, decode_audio, decode_clip
from vida.media.grid import decode_on_grid
from vida.media.sources import detect_layout


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    from vida.synth import synthesize

    root = tmp_path_factory.mktemp("datasets")
    synthesize(root / "synth", n_classes=3, clips_per_class=6, seed=5)
    return root / "synth"


# -- windows ---------------------------------------------------------------------

def _chirp_video(path: Path, seconds: float = 6.0) -> Path:
    t = np.arange(int(seconds * AUDIO_RATE)) / AUDIO_RATE
    wave = (0.3 * np.sin(2 * np.pi * (200 + 100 * t) * t)).astype(np.float32)[None]
    return write_video(path, n_frames=int(seconds * 30), audio=wave)


def test_a_window_decodes_what_an_independent_decode_of_the_same_span_gives(tmp_path):
    video = _chirp_video(tmp_path / "long.mp4")
    whole = decode_clip(video, 36, 6.0, 32)  # from the file's start, no seek
    window = decode_on_grid(Path(with_window(str(video), 2, 5)), 18, 6.0, 32)
    assert not window.padded and window.duration_s == pytest.approx(3.0)
    np.testing.assert_array_equal(window.frames, whole.frames[12:30])
    span = decode_audio(video)[2 * AUDIO_RATE:5 * AUDIO_RATE]  # the whole track, cut
    assert np.corrcoef(span, window.audio[:len(span)])[0, 1] > 0.999
    again = clip_waveform(with_window(str(video), 2, 5), "c", "x", 3.0)
    assert np.corrcoef(span, again[:len(span)])[0, 1] > 0.999
    assert split_window(with_window("a/b.mp4", 2, 5)) == ("a/b.mp4", 2.0, 5.0)


def test_a_window_shorter_than_the_grid_is_padded_and_one_past_the_end_fails(tmp_path):
    from vida.media.decode import MediaError

    video = _chirp_video(tmp_path / "long.mp4")
    short = decode_on_grid(Path(with_window(str(video), 4, 5)), 18, 6.0, 32)
    assert short.padded
    assert np.abs(short.audio[AUDIO_RATE:]).max() == 0  # nothing after the window's end
    with pytest.raises(MediaError, match="window_past_end"):
        decode_on_grid(Path(with_window(str(video), 7, 9)), 18, 6.0, 32)


def test_every_job_that_decodes_again_gets_a_clips_window_with_its_source(catalog, tmp_path):
    from vida.catalog.records.clip_queries import USABLE_CLIPS, clips_of
    from vida.catalog.records.clips import record_clips, record_media_root
    from vida.jobs.semantics.conditions import clip_frames

    video = _chirp_video(tmp_path / "full.mp4")
    record_media_root(catalog, str(tmp_path))
    record_clips(catalog, [
        {"clip_key": f"c/full_{s:06d}_{s + 3:06d}", "class_name": "c",
         "clip_id": f"full_{s:06d}_{s + 3:06d}", "source_uri": "full.mp4", "start_s": s,
         "end_s": s + 3, "status": "ok"} for s in (0, 3)]
        + [{"clip_key": "c/whole", "class_name": "c", "clip_id": "whole",
            "source_uri": "full.mp4", "status": "ok"}])
    sources = clips_of(catalog, USABLE_CLIPS, needs=("source_uri",)).set_index(
        "clip_key")["source_uri"]
    assert sources["c/full_000003_000006"] == f"{video}#t=3,6"
    assert sources["c/whole"] == str(video)
    frames = clip_frames(sources["c/full_000003_000006"], 18, 6.0, 32)  # frames, caption
    np.testing.assert_array_equal(frames, decode_clip(video, 36, 6.0, 32).frames[18:])
    wave = clip_waveform(sources["c/full_000003_000006"], "c", "x", 3.0)  # tag --model
    span = decode_audio(video)[3 * AUDIO_RATE:6 * AUDIO_RATE]
    assert np.corrcoef(span, wave[:len(span)])[0, 1] > 0.999


# -- the annotation files, read as published ---------------------------------------

def test_each_format_is_detected_and_read_as_shipped(synth, tmp_path):
    vgg, kin, ave = (vggsound_tree(synth, tmp_path / "vgg"),
                     kinetics_tree(synth, tmp_path / "kin", is_cc=False),
                     ave_tree(synth, tmp_path / "ave"))
    assert [detect_layout(t.root) for t in (vgg, kin, ave)] == ["vggsound", "kinetics", "ave"]
    assert detect_layout(vgg.root / "vggsound.csv") == "vggsound"
    assert detect_layout(kin.root / "train.csv") == "kinetics"
    assert detect_layout(ave.root / "Annotations.txt") == "ave"
    for tree, layout in ((vgg, "vggsound"), (kin, "kinetics"), (ave, "ave")):
        listing = read_dataset(tree.root, layout)
        keys = {c.clip_key for c in listing.clips}
        assert set(tree.origin) <= keys  # every clip laid out, under the dataset's names
        assert listing.missing == tree.missing
        assert [r.split(":")[0] for r in listing.refused] == tree.bad_lines
    vgg_clip = next(c for c in read_dataset(vgg.root, "vggsound").clips
                    if c.clip_key in vgg.origin)
    assert ", sounding" in vgg_clip.class_name  # a quoted label with a comma
    kinetics = {c.clip_key: c for c in read_dataset(kin.root, "kinetics").clips}
    windows = [c for c in kinetics.values() if c.start_s is not None and Path(c.path).exists()]
    assert sorted((c.start_s, c.end_s) for c in windows) == [(0, 3), (3, 6)]  # one file
    assert {c.source_split for c in kinetics.values()} == {"train", "val"}
    ave_clips = read_dataset(ave.root, "ave").clips
    assert {c.source_split for c in ave_clips if c.clip_key in ave.origin} == {
        "train", "val", "test"}
    assert all(c.start_s == ave.origin[c.clip_key][1] for c in ave_clips
               if c.clip_key in ave.origin)


def test_a_class_subset_keeps_its_classes_and_names_the_ones_it_cannot_find(synth, tmp_path):
    kin = kinetics_tree(synth, tmp_path / "kin")
    names = sorted({c for c, _ in synthetic_clips(synth)})
    subset = tmp_path / "classes.txt"
    subset.write_text(f"# mine\n{names[0]}\nplaying guitarr\n")
    listing = read_dataset(kin.root, "kinetics", classes=str(subset))
    assert {c.class_name for c in listing.clips} == {names[0]}
    assert listing.left_out > 0
    assert any("classes.txt line 3: class 'playing guitarr'" in r for r in listing.refused)
    sounds = read_dataset(kin.root, "kinetics", classes="kinetics-sounds")
    assert not sounds.clips and sum("kinetics-sounds line" in r for r in sounds.refused) == 34


# -- each tree through the CLI, from another folder --------------------------------

LOUDNESS = ("SELECT clip_key, CASE WHEN audio_dbfs > (SELECT median(audio_dbfs) FROM clips) "
            "THEN 'louder half' ELSE 'quieter half' END AS loudness FROM clips")


@pytest.mark.slow
@pytest.mark.parametrize("dataset", ["vggsound", "kinetics", "ave"])
def test_a_dataset_as_shipped_goes_through_ingest_split_encode_and_an_experiment(
        dataset, synth, tmp_path, tiny_ast):
    make = {"vggsound": vggsound_tree, "kinetics": kinetics_tree, "ave": ave_tree}[dataset]
    tree = make(synth, tmp_path / "data")
    lab = tmp_path / "lab"
    lab.mkdir()
    ingested = ok(run_cli("ingest", "../data", "--workers", "1", "--no-progress", cwd=lab))
    assert f"videos looked for under {tree.root}" in ingested.stdout
    assert f"{tree.missing} rows had no video file there" in ingested.stdout
    assert f"{tree.bad_lines[0]}:" in ingested.stdout
    split = ["--mit"] if dataset == "kinetics" else ["--from-source", "--val-fraction", "0.25"]
    ok(run_cli("split", *split, "--seed", "1", cwd=lab))

    def cli(*args: str):
        return run_cli("--catalog", "lab/catalog.db", "--store", "lab/store", *args,
                       cwd=tmp_path, timeout=600)

    db = lab / "catalog.db"
    clips = sql(db, "SELECT clip_key, split, start_s, end_s, status, error FROM clips")
    good = clips[clips["status"] == "ok"]
    failed = clips[clips["status"] == "failed"]["error"].tolist()
    assert sum(bool(re.match(r"\S+ line \d+: missing: ", e)) for e in failed) == tree.missing
    if tree.past_end:  # a window past its file's end fails that clip, naming its line
        assert any(e.startswith(f"{tree.past_end}: window_past_end") for e in failed)
    assert set(good["clip_key"]) == set(tree.origin) and good["split"].notna().all()
    assert set(good["split"]) == {"train", "val", "test"}
    encoded = ok(cli("encode", "--encoder", f"audio=ast:{tiny_ast}", "--no-progress"))
    assert f"{len(good)} clips encoded, 0 failed" in encoded.stdout
    _windows_encoded_as_ingested(db, lab / "store", tree)

    ok(cli("tag", "--import", str(tags_file(tree, tmp_path / "tags.json")), "--source", "ref"))
    ok(cli("dictionary", "build"))
    ok(cli("filter", "--dictionary", "minilm", "--tags", "ref", "--min-iou", "0"))
    done = ok(cli("experiment", "svdmap", "--tags", "ref", "--dictionary", "minilm",
                  "--min-iou", "0", "--seeds", "1", "--epochs", "2", "--generator-epochs", "1",
                  "--cross-fit", "0", "--variants", "generated", "--runs", "lab/runs",
                  "--group-by", LOUDNESS))
    assert "by group (--group-by)" in done.stdout
    groups = pd.read_csv(next(tmp_path.glob("lab/runs/*/per_group.csv")))
    assert set(groups["group"]) == {"louder half", "quieter half"}
    assert groups["p_adjusted"].notna().all() == groups["p_vs_vision"].notna().all()
    assert set(groups["variant"]) == {"vision only", "+ real audio", "+ generated audio"}


def _windows_encoded_as_ingested(db: Path, store_root: Path, tree) -> None:
    """A windowed clip's audio, decoded again by ``encode``, is its window's: the ingest
    features of the clip (decoded from the window) and of the whole file differ, and
    ``encode``'s pass over the same window gives what an independent decode of it
    does (through the same encoder)."""
    windows = sql(db, "SELECT clip_key, source_uri, start_s, end_s FROM clips "
                      "WHERE start_s IS NOT NULL AND status = 'ok'")
    if windows.empty:
        return  # VGGSound: every clip is a whole file
    from vida import open_catalog
    from vida.encoders import get_encoder
    from vida.store import FeatureStore

    catalog = open_catalog(db)
    try:
        store = FeatureStore(catalog, store_root)
        name = "audio/ast-fbank"
        row = windows.iloc[0]
        stored = store.read(name, [row["clip_key"]])[0]
        media = Path(tree.root / row["source_uri"])
        clip = decode_on_grid(Path(with_window(str(media), row["start_s"], row["end_s"])),
                              18, 6.0, 128)
        whole = decode_clip(media, 18, 6.0, 128)
        encoder = get_encoder("ast-fbank", n_frames=18)
        np.testing.assert_allclose(encoder.encode(clip.audio[None])[0], stored, atol=1e-4)
        if row["start_s"] > 0:
            assert not np.allclose(encoder.encode(whole.audio[None])[0], stored, atol=1e-3)
    finally:
        catalog.dispose()


# -- AVMIT's ratings ------------------------------------------------------------------

@pytest.mark.slow
def test_avmit_ratings_join_mit_clips_and_answer_when_generated_audio_helps(
        synth, tmp_path):
    mit = mit_tree(synth, tmp_path / "MiT", val_per_class=2)
    truth = avmit_files(mit, tmp_path / "AVMIT")
    lab = tmp_path / "lab"
    lab.mkdir()
    for name in ("trainingSet.csv", "validationSet.csv"):
        ok(run_cli("ingest", f"../MiT/{name}", "--workers", "1", "--no-progress", cwd=lab))

    def cli(*args: str):
        return run_cli("--catalog", "lab/catalog.db", "--store", "lab/store", *args,
                       cwd=tmp_path, timeout=600)

    imported = ok(cli("ratings", "import", "AVMIT/video_ratings.csv", "AVMIT/test_set.csv"))
    assert "2 matched none" in imported.stdout and "gone+class/yt_gone_1.mp4" in imported.stdout
    db = lab / "catalog.db"
    rated = sql(db, "SELECT * FROM clip_ratings").set_index("clip_key")
    assert rated["audible"].to_dict() == truth["audible"]
    key, label = truth["relabelled"]
    assert rated.loc[key, "rated_class"] == label != rated.loc[key, "source_class"]
    assert (rated["n_score1"] + rated["n_score2"] + rated["n_score3"] == 3).all()
    ok(cli("split", "--avmit", "--val-fraction", "0.25", "--seed", "1"))
    tests = sql(db, "SELECT clip_key FROM clips WHERE split = 'test'")
    assert set(tests["clip_key"]) == truth["test"]

    synth_tags = json.loads((synth / "ast_tags.json").read_text())
    (tmp_path / "tags.json").write_text(json.dumps(synth_tags))
    ok(cli("tag", "--import", "tags.json", "--source", "ref"))
    ok(cli("dictionary", "build"))
    ok(cli("filter", "--dictionary", "minilm", "--tags", "ref", "--min-iou", "0"))
    audible = ("SELECT clip_key, CASE WHEN audible THEN 'audible' ELSE 'not audible' END "
               "AS heard FROM clip_ratings WHERE source = 'avmit'")
    ok(cli("experiment", "svdmap", "--tags", "ref", "--dictionary", "minilm", "--min-iou", "0",
           "--seeds", "2", "--epochs", "2", "--generator-epochs", "1", "--cross-fit", "0",
           "--variants", "generated", "--runs", "lab/runs"))
    run_id = sql(db, "SELECT run_id FROM runs WHERE kind = 'experiment'")["run_id"][0]
    page = tmp_path / "report.html"
    ok(cli("report", run_id, "--group-by", audible, "-o", str(page)))
    html = page.read_text()
    assert "By group (--group-by)" in html and "not audible" in html
    metrics = sql(db, f"SELECT name, value FROM run_metrics WHERE run_id = '{run_id}' "
                      "AND name LIKE 'group=%'")
    names = set(metrics["name"])
    assert "group=audible/vision only/top1" in names
    assert "group=not audible/+ real audio/p_adjusted" in names
    expected = _group_top1(db, run_id, truth["audible"])
    for (group, variant), top1 in expected.items():
        assert metrics.set_index("name")["value"][f"group={group}/{variant}/top1"] == \
            pytest.approx(top1)
    bad = cli("report", run_id, "--group-by", "DELETE FROM clips")
    assert bad.returncode != 0 and len(bad.stderr.strip().splitlines()) == 1


def _group_top1(db: Path, run_id: str, audible: dict[str, bool]) -> dict:
    """Top-1 per (group, variant), counted from the predictions by hand."""
    rows = sql(db, "SELECT p.clip_key, p.pred_class = p.true_class AS ok, r.params "
                   f"FROM predictions p JOIN runs r ON r.run_id = p.run_id "
                   f"WHERE r.experiment_id = '{run_id}' AND p.split = 'test'")
    rows["key"] = [json.loads(p).get("plan_key", "") for p in rows["params"]]
    rows = rows[rows["key"].str.fullmatch(r"s\d+/classifier/(vision only|\+ real audio)")]
    rows["variant"] = rows["key"].str.split("/").str[-1]
    rows["group"] = ["audible" if audible[k] else "not audible" for k in rows["clip_key"]]
    return rows.groupby(["group", "variant"])["ok"].mean().to_dict()
