"""Audio-visual datasets laid out as they ship, made of synthetic clips (``vida-batch
synth``), with their annotation files written as published:

* VGGSound: ``vggsound.csv`` with no header, labels with commas quoted, videos
  ``video/<youtube_id>_<start:06d>.mp4``;
* Kinetics: ``train.csv`` / ``validate.csv`` with the header
  ``label,youtube_id,time_start,time_end,split[,is_cc]``, cut videos under
  ``<split>/<label>/<id>_<start:06d>_<end:06d>.mp4``, and one full video ``<id>.mp4``
  of which two windows are two clips;
* AVE: ``Annotations.txt`` (with its header) and ``trainSet.txt``, ``valSet.txt``,
  ``testSet.txt`` (without), ``&``-separated; 10 s videos ``AVE/<VideoID>.mp4`` whose
  event window holds the synthetic clip.

Each also has rows the reader must refuse or count: a deleted video, an end before
its start, an unknown split.  ``origin`` maps each clip key to the synthetic clip its
content came from (and the window it sits in).
"""

from __future__ import annotations

import csv
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np

from vida.media.decode import AUDIO_RATE, decode_audio
from vida.media.write import write_video

FPS = 10


@dataclass
class Tree:
    root: Path
    origin: dict[str, tuple[Path, float]] = field(default_factory=dict)  # key -> (clip, at)
    bad_lines: list[str] = field(default_factory=list)  # "<file> line <n>" refused
    missing: int = 0  # rows whose video was "deleted"
    past_end: str | None = None  # "<file> line <n>" of a window past its video's end


def synthetic_clips(synth: Path) -> list[tuple[str, Path]]:
    """(class, video) of every clip of a ``vida-batch synth`` folder, in order."""
    return [(d.name, p) for d in sorted((synth / "training").iterdir())
            for p in sorted(d.glob("*.mp4"))]


def _media(path: Path) -> tuple[list[np.ndarray], np.ndarray]:
    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    return frames, decode_audio(path)


def embedded(clip: Path, out: Path, before: float, total: float) -> Path:
    """A ``total`` s video at ``FPS`` whose span ``[before, before + 3)`` is ``clip``
    (resampled to ``FPS``); grey and quiet noise elsewhere."""
    frames, audio = _media(clip)
    seconds = len(audio) / AUDIO_RATE
    take = [frames[min(len(frames) - 1, int(i / FPS * len(frames) / seconds))]
            for i in range(int(round(seconds * FPS)))]
    grey = np.full_like(frames[0], 60)
    head, tail = int(round(before * FPS)), int(round((total - before - seconds) * FPS))
    noise = np.random.default_rng(0).normal(0, 0.01, int(total * AUDIO_RATE)).astype(np.float32)
    at = int(round(before * AUDIO_RATE))
    noise[at:at + len(audio)] = audio[: len(noise) - at]
    write_video(out, [grey] * head + take + [grey] * tail, fps=FPS, audio=noise[None])
    return out


def vggsound_tree(synth: Path, out: Path, test_per_class: int = 2) -> Tree:
    tree = Tree(out)
    rows = []
    clips = synthetic_clips(synth)
    for i, (cls, clip) in enumerate(clips):
        label = f"{cls}, sounding"  # a comma: quoted, as VGGSound's own labels are
        youtube_id, start = f"-v{i:03d}_X-{cls[:2]}", 10 * i
        name = f"{youtube_id}_{start:06d}"
        last = sum(c == cls for c, _ in clips[i:]) <= test_per_class
        rows.append([youtube_id, start, label, "test" if last else "train"])
        (out / "video").mkdir(parents=True, exist_ok=True)
        shutil.copy2(clip, out / "video" / f"{name}.mp4")
        tree.origin[f"{label}/{name}"] = (clip, 0.0)
    rows.append(["deleted_vid", 30, "people marching", "test"])  # gone from YouTube
    tree.missing = 1
    rows.append(["bad_split", 0, f"{clips[0][0]}, sounding", "dev"])
    tree.bad_lines.append(f"vggsound.csv line {len(rows)}")
    with open(out / "vggsound.csv", "w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    return tree


def kinetics_tree(synth: Path, out: Path, is_cc: bool = True, val_per_class: int = 2) -> Tree:
    """Cut clips under ``<split>/<label>/``; the first class's first two clips are
    also laid end to end in one full video, ``full_vid.mp4``, listed as two windows."""
    tree = Tree(out)
    header = ["label", "youtube_id", "time_start", "time_end", "split"] + (["is_cc"] * is_cc)
    rows: dict[str, list[list]] = {"train": [], "validate": []}
    clips = synthetic_clips(synth)
    for i, (cls, clip) in enumerate(clips):
        youtube_id, start = f"k{i:03d}-{cls[:3]}", 5 * i
        split = "validate" if sum(c == cls for c, _ in clips[i:]) <= val_per_class else "train"
        name = f"{youtube_id}_{start:06d}_{start + 3:06d}"
        folder = out / split / cls
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy2(clip, folder / f"{name}.mp4")
        rows[split].append([cls, youtube_id, start, start + 3, split] + ([0] * is_cc))
        tree.origin[f"{cls}/{name}"] = (clip, 0.0)
    _full_video(tree, clips, rows["train"], is_cc)
    rows["train"].append([clips[0][0], "backwards", 9, 4, "train"] + ([0] * is_cc))
    tree.bad_lines.append(f"train.csv line {len(rows['train']) + 1}")
    rows["train"].append([clips[0][0], "deleted_vid", 0, 10, "train"] + ([0] * is_cc))
    tree.missing = 1
    for split, listed in rows.items():
        with open(out / f"{split}.csv", "w", newline="") as fh:
            csv.writer(fh).writerows([header, *listed])
    return tree


def _full_video(tree: Tree, clips: list[tuple[str, Path]], rows: list[list], is_cc: bool
                ) -> None:
    cls, first = clips[0]
    second = clips[1][1]
    frames_a, audio_a = _media(first)
    frames_b, audio_b = _media(second)
    fps = round(len(frames_a) / (len(audio_a) / AUDIO_RATE))
    write_video(tree.root / "full_vid.mp4", frames_a + frames_b, fps=fps,
                audio=np.concatenate([audio_a, audio_b])[None])
    for start, clip in ((0, first), (3, second)):
        rows.append([cls, "full_vid", start, start + 3, "train"] + ([0] * is_cc))
        tree.origin[f"{cls}/full_vid_{start:06d}_{start + 3:06d}"] = (clip, 0.0)


def ave_tree(synth: Path, out: Path) -> Tree:
    """10 s videos; the event window ``[start, start + 3)`` is the synthetic clip."""
    tree = Tree(out)
    (out / "AVE").mkdir(parents=True, exist_ok=True)
    rows, sets = [], {"train": [], "val": [], "test": []}
    clips = synthetic_clips(synth)
    for i, (cls, clip) in enumerate(clips):
        video_id, start = f"AVE{i:04d}x", 1 + i % 5
        embedded(clip, out / "AVE" / f"{video_id}.mp4", before=start, total=10)
        row = f"{cls}&{video_id}&good&{start}&{start + 3}"
        rows.append(row)
        left = sum(c == cls for c, _ in clips[i:])
        sets["test" if left <= 2 else "val" if left <= 3 else "train"].append(row)
        tree.origin[f"{cls}/{video_id}"] = (clip, float(start))
    rows.append(f"{clips[0][0]}&AVEgone&good&0&5")
    tree.missing = 1
    rows.append(f"{clips[0][0]}&AVEbad&good&6&2")
    tree.bad_lines.append(f"Annotations.txt line {len(rows) + 1}")
    rows.append(f"{clips[0][0]}&AVE0000x&good&8&14")  # a second event, past the 10 s
    tree.past_end = f"Annotations.txt line {len(rows) + 1}"
    (out / "Annotations.txt").write_text(
        "\n".join(["Category&VideoID&Quality&StartTime&EndTime", *rows]) + "\n")
    for split, name in (("train", "trainSet"), ("val", "valSet"), ("test", "testSet")):
        (out / f"{name}.txt").write_text("\n".join(sets[split]) + "\n")
    return tree


def tags_file(tree: Tree, out: Path) -> Path:
    """The synthetic reference tags of each clip's source clip, under the dataset's clip
    keys (``tag --import``)."""
    import json

    synth_tags = {}
    for key, (clip, _) in tree.origin.items():
        synth = json.loads((clip.parents[2] / "ast_tags.json").read_text())
        cls, clip_id = key.rsplit("/", 1)
        synth_tags[f"{cls}|{clip_id}"] = synth[f"{clip.parent.name}|{clip.stem}"]
    out.write_text(json.dumps(synth_tags))
    return out
