"""``vida-batch synth``: a deterministic audio-visual action dataset VIDA can make itself.

Writes, under ``OUT``:

* ``training/<class>/<clip>.mp4``: 3 s, 30 fps, 96x96 H.264 with 16 kHz AAC audio
  (the Moments-in-Time layout), and ``manifest.csv`` (``path,class,split``);
* ``ast_tags.json``: per-clip top-5 AudioSet labels with scores, in the format of
  the study's ``ast_pred_test.json`` (``"<class>|<clip_id>"`` keys), standing in
  for a real AST's output;
* ``captions/training_<class>_captions.json``: one caption per frame of the 6 fps
  grid, in the study's caption format, standing in for BLIP's output.

The same seed gives the same bytes.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from vida.errors import UsageError
from vida.media.write import write_video
from vida.synth.classes import (
    COLORS,
    GENERIC_TAGS,
    SOUND_TAGS,
    VISUAL_CAPTIONS,
    SynthClass,
    classes,
)
from vida.synth.render import (
    FPS,
    RATE,
    SECONDS,
    Scene,
    draw_frame,
    event_times,
    make_audio,
    sample_scene,
)

GRID_FPS = 6.0
GRID_FRAMES = 18


@dataclass
class SynthResult:
    root: Path
    n_clips: int
    classes: list[str]
    tags_file: Path
    captions_dir: Path
    manifest: Path


def _clip_rng(seed: int, class_index: int, clip_index: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, class_index, clip_index, stream])


def reference_tags(cls: SynthClass, noise_level: float, rng: np.random.Generator
                   ) -> dict[str, list]:
    """Top-5 labels and scores a real tagger plausibly gives this clip's sound."""
    labels = list(SOUND_TAGS[cls.sound])
    tail = labels[2:]
    rng.shuffle(tail)  # the first two are stable, the rest vary from clip to clip
    labels = labels[:2] + tail
    if rng.random() < 0.25 + 8 * noise_level:  # noisy recordings pull in generic labels
        labels[int(rng.integers(2, 5))] = str(rng.choice(GENERIC_TAGS))
    top = rng.uniform(0.35, 0.9)
    scores = np.sort(top * np.cumprod(np.r_[1.0, rng.uniform(0.3, 0.85, 4)]))[::-1]
    return {"topk_labels": labels, "topk_scores": [round(float(s), 4) for s in scores]}


def grid_captions(cls: SynthClass, color_name: str, scene_events: np.ndarray,
                  rng: np.random.Generator) -> list[dict]:
    """A caption for each frame of the T x F grid (templates depend on the visual only)."""
    templates = VISUAL_CAPTIONS.get(f"{cls.visual}:{cls.cue}", VISUAL_CAPTIONS[cls.visual])
    out = []
    for k in range(GRID_FRAMES):
        t = k / GRID_FPS
        near_event = scene_events.size and np.min(np.abs(scene_events - t)) < 0.08
        choice = 2 if near_event else int(rng.integers(0, 2))
        out.append({"frame": k, "caption": templates[choice].format(color=color_name)})
    return out


class RenderedClip(NamedTuple):
    """One synthetic clip before it is written: its class, id, colour, scene, RGB
    frames and sound."""

    cls: SynthClass
    clip_id: str
    color_name: str
    scene: Scene
    frames: list[np.ndarray]
    audio: np.ndarray


@dataclass(frozen=True)
class SynthClip:
    """The map of ``synthesize``: one clip (its video written, its tags and captions
    returned), from its own seeded streams, so that any process makes the same clip."""

    out: Path
    n_classes: int
    seed: int

    def render(self, where: tuple[int, int]) -> RenderedClip:
        """The clip's scene, frames and sound, before anything is written."""
        ci, i = where
        cls = classes(self.n_classes)[ci]
        rng = _clip_rng(self.seed, ci, i, 0)
        color_names = sorted(COLORS)
        color_name = color_names[int(rng.integers(len(color_names)))]
        scene = sample_scene(cls.visual, COLORS[color_name], rng, cls.cue)
        frames = [draw_frame(scene, f / FPS, rng) for f in range(int(SECONDS * FPS))]
        audio = make_audio(scene, cls.sound, _clip_rng(self.seed, ci, i, 1))
        return RenderedClip(cls, f"{cls.name.replace('+', '_')}_{i:04d}", color_name, scene,
                            frames, audio)

    def __call__(self, where: tuple[int, int]) -> tuple[tuple[str, str, str], str, dict,
                                                        str, list[dict]]:
        ci, i = where
        cls, clip_id, color_name, scene, frames, audio = self.render(where)
        path = self.out / "training" / cls.name / f"{clip_id}.mp4"
        write_video(path, frames, fps=FPS, audio=audio[None], audio_rate=RATE)
        tags = reference_tags(cls, scene.audio_noise, _clip_rng(self.seed, ci, i, 2))
        events = event_times(scene) if cls.visual in ("bounce", "strike", "tap") \
            else np.array([])
        captions = grid_captions(cls, color_name, events, _clip_rng(self.seed, ci, i, 3))
        return ((path.relative_to(self.out).as_posix(), cls.name, "training"),
                f"{cls.name}|{clip_id}", tags, clip_id, captions)


def synthesize(out: Path, n_classes: int = 6, clips_per_class: int = 30, seed: int = 0,
               progress: bool = False, mapper: Callable[..., Iterable] = map) -> SynthResult:
    """The synthetic dataset under ``out``.  ``mapper(fn, items)`` runs :class:`SynthClip`
    over the clips, in order (the jobs pass one over worker processes); the clips are
    the same whatever runs them: each has its own seeded streams."""
    from tqdm import tqdm

    chosen = classes(n_classes)
    if clips_per_class < 1:
        raise UsageError("--clips-per-class must be at least 1")
    out.mkdir(parents=True, exist_ok=True)
    captions_dir = out / "captions"
    captions_dir.mkdir(exist_ok=True)
    for cls in chosen:
        (out / "training" / cls.name).mkdir(parents=True, exist_ok=True)
    tags: dict[str, dict] = {}
    manifest_rows = []
    captions: dict[str, dict[str, list[dict]]] = {cls.name: {} for cls in chosen}
    where = [(ci, i) for ci in range(len(chosen)) for i in range(clips_per_class)]
    with tqdm(total=len(where), unit="clip", desc="synth", disable=not progress) as bar:
        for row, tag_key, tag, clip_id, caption in mapper(SynthClip(out, n_classes, seed),
                                                          where):
            manifest_rows.append(row)
            tags[tag_key] = tag
            captions[row[1]][clip_id] = caption
            bar.update(1)
    for name, by_clip in captions.items():
        (captions_dir / f"training_{name}_captions.json").write_text(
            json.dumps(by_clip, indent=1, sort_keys=True))
    tags_file = out / "ast_tags.json"
    tags_file.write_text(json.dumps(tags, indent=1, sort_keys=True))
    manifest = out / "manifest.csv"
    with open(manifest, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "class", "split"])
        writer.writerows(manifest_rows)
    return SynthResult(out, len(manifest_rows), [c.name for c in chosen], tags_file,
                       captions_dir, manifest)
