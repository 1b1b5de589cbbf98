"""Finding clips: a video tree, a manifest CSV, or the study's frame folders.

Layouts (``detect_layout`` picks one, ``--layout`` names it):

* ``videos``   ``<root>/<split>/<class>/<clip>.<ext>`` or ``<root>/<class>/<clip>.<ext>``;
  a first level named training/validation/train/val/test/testing is the split;
* ``manifest`` a CSV of ``path,class[,split]`` (header optional, like MiT's
  ``trainingSet.csv``); relative paths are relative to the CSV's folder;
* ``frames``   ``RGB/<class>/<clip>/frame_*.jpg`` with ``Audio/<class>/<clip>.wav``
  (the study's pre-extracted layout; its ``OpticalFlow/`` PNGs are not used: they
  are normalised per image, so flow is recomputed from the frames, the same way as
  for videos);
* ``legacy``   the study's pickled feature dicts (see :mod:`vida.media.legacy`).
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from vida.keys import clip_key

SPLIT_FOLDERS = {"training", "validation", "train", "val", "test", "testing"}
LAYOUTS = ("videos", "manifest", "frames", "legacy")
_IGNORED_SUFFIXES = {".txt", ".csv", ".json", ".md", ".npy", ".db"}


@dataclass(frozen=True)
class ClipSource:
    """One clip to ingest: where its media is and what the catalog will call it."""

    class_name: str
    clip_id: str
    kind: str  # "video" or "frames"
    path: str  # the video file, or the clip's RGB frame folder
    audio_path: str | None = None  # frames layout: the clip's WAV
    source_split: str | None = None

    @property
    def clip_key(self) -> str:
        return clip_key(self.class_name, self.clip_id)

    def content_sha256(self) -> str:
        """Hash of the media bytes (all frames and the WAV for a frame folder)."""
        digest = hashlib.sha256()
        files = [Path(self.path)] if self.kind == "video" else sorted(Path(self.path).iterdir())
        if self.audio_path:
            files.append(Path(self.audio_path))
        for file in files:
            digest.update(file.name.encode())
            try:
                with open(file, "rb") as fh:
                    while chunk := fh.read(1 << 20):
                        digest.update(chunk)
            except OSError:
                digest.update(b"<unreadable>")
        return digest.hexdigest()


def detect_layout(root: Path) -> str:
    if root.is_file():
        return "legacy" if root.suffix == ".npy" else "manifest"
    if (root / "RGB").is_dir():
        return "frames"
    if any(root.glob("*.npy")):
        return "legacy"
    return "videos"


def _visible(path: Path) -> bool:
    return not path.name.startswith(".")


def video_tree(root: Path) -> Iterator[ClipSource]:
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder of <class>/<clip> videos")
    for top in sorted(p for p in root.iterdir() if p.is_dir() and _visible(p)):
        split = top.name if top.name.lower() in SPLIT_FOLDERS else None
        class_dirs = sorted(p for p in top.iterdir() if p.is_dir()) if split else [top]
        for class_dir in class_dirs:
            for file in sorted(class_dir.iterdir()):
                media = file.suffix.lower() not in _IGNORED_SUFFIXES
                if file.is_file() and _visible(file) and media:
                    yield ClipSource(class_dir.name, file.stem, "video", str(file),
                                     source_split=split)


def manifest(path: Path) -> Iterator[ClipSource]:
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    if rows and [c.strip().lower() for c in rows[0][:2]] == ["path", "class"]:
        rows = rows[1:]
    for n, row in enumerate(rows, start=1):
        if not row or not row[0].strip():
            continue
        if len(row) < 2:
            raise ValueError(f"{path} row {n}: expected path,class[,split], got {row!r}")
        file = Path(row[0].strip())
        file = file if file.is_absolute() else path.parent / file
        split = row[2].strip() if len(row) > 2 and row[2].strip() else None
        yield ClipSource(row[1].strip(), file.stem, "video", str(file), source_split=split)


def frame_folders(root: Path) -> Iterator[ClipSource]:
    rgb = root / "RGB"
    for class_dir in sorted(p for p in rgb.iterdir() if p.is_dir()):
        for clip_dir in sorted(p for p in class_dir.iterdir() if p.is_dir()):
            wav = root / "Audio" / class_dir.name / f"{clip_dir.name}.wav"
            yield ClipSource(class_dir.name, clip_dir.name, "frames", str(clip_dir),
                             audio_path=str(wav) if wav.exists() else None)


def discover(root: Path, layout: str | None = None) -> Iterator[ClipSource]:
    """The clips under ``root`` in a stable order."""
    layout = layout or detect_layout(root)
    if layout == "videos":
        return video_tree(root)
    if layout == "manifest":
        return manifest(root)
    if layout == "frames":
        return frame_folders(root)
    raise ValueError(
        f"layout {layout!r} has no clips to decode (use one of videos, manifest, frames)"
    )
