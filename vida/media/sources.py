"""Finding clips: a video tree, a manifest CSV, or the study's frame folders.

Layouts (``detect_layout`` picks one, ``--layout`` names it):

* ``videos``   ``<root>/<split>/<class>/<clip>.<ext>`` or ``<root>/<class>/<clip>.<ext>``;
  a first level named training/validation/train/val/test/testing is the split;
* ``manifest`` a CSV (see :func:`manifest`): MiT's own ``trainingSet.csv`` /
  ``validationSet.csv`` (``path,class,agreement,disagreement``, no header, paths
  relative to the ``training/`` or ``validation/`` folder beside the CSV), or
  ``path,class[,split]`` with an optional header;
* ``frames``   ``RGB/<class>/<clip>/frame_*.jpg`` with ``Audio/<class>/<clip>.wav``
  (the study's pre-extracted layout; its ``OpticalFlow/`` PNGs are not used: they
  are normalised per image, so flow is recomputed from the frames, the same way as
  for videos);
* ``legacy``   the study's pickled feature dicts (see :mod:`vida.media.legacy`).

Where a clip's media is, is kept apart from the catalog's rows: a catalog records a
*media root* and each clip's path relative to it (:func:`stored_uri`,
:func:`resolve_uri`), so it works from any folder and moves with its data.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from vida.errors import MissingInput, UsageError
from vida.keys import clip_key, with_window

SPLIT_FOLDERS = {"training", "validation", "train", "val", "test", "testing"}
LAYOUTS = ("videos", "manifest", "frames", "legacy", "vggsound", "kinetics", "ave")
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
    uri: str | None = None  # how the catalog records ``path`` (under its media root)
    start_s: float | None = None  # a window [start_s, end_s) of the file (None: all of it)
    end_s: float | None = None
    origin: str | None = None  # the annotation line it came from, for its failure message

    @property
    def media(self) -> str:
        """``path``, with the clip's window where it is one (what the decoders open)."""
        return with_window(self.path, self.start_s, self.end_s)

    @property
    def clip_key(self) -> str:
        return clip_key(self.class_name, self.clip_id)

    def content_sha256(self) -> str:
        """Hash of the media bytes (all frames and the WAV for a frame folder)."""
        digest = hashlib.sha256()
        if self.start_s is not None or self.end_s is not None:  # another window: another clip
            digest.update(f"window {self.start_s},{self.end_s}".encode())
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
    from vida.media.datasets import detect_dataset

    dataset = detect_dataset(root)
    if dataset is not None:
        return dataset
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
        raise MissingInput(f"{root} is not a folder of <class>/<clip> videos")
    for top in sorted(p for p in root.iterdir() if p.is_dir() and _visible(p)):
        split = top.name if top.name.lower() in SPLIT_FOLDERS else None
        class_dirs = sorted(p for p in top.iterdir() if p.is_dir()) if split else [top]
        for class_dir in class_dirs:
            for file in sorted(class_dir.iterdir()):
                media = file.suffix.lower() not in _IGNORED_SUFFIXES
                if file.is_file() and _visible(file) and media:
                    yield ClipSource(class_dir.name, file.stem, "video", str(file),
                                     source_split=split)


def manifest(path: Path, media_root: Path | None = None) -> Iterator[ClipSource]:
    """The clips of a manifest CSV (:mod:`vida.media.manifest` says how it is read)."""
    return iter(Sources(path, "manifest", media_root))


class Sources:
    """The clips under a root, walked again at each iteration (a tree of 800,000 clips
    is not held); a manifest or a dataset's annotations are read once, with the rows
    refused and the duplicates kept for the summary.  ``classes`` (a file of class
    names, or ``kinetics-sounds``) keeps a subset."""

    def __init__(self, root: Path, layout: str | None = None,
                 media_root: Path | None = None, classes: str | None = None) -> None:
        from vida.media.datasets import DATASET_LAYOUTS, read_dataset, subset

        self.root = root
        self.layout = layout or detect_layout(root)
        self.refused: list[str] = []
        self.duplicates = 0
        self.listing = None  # a dataset's annotations, matched to files
        self._manifest = None
        self._wanted = None if classes is None else subset(classes)[0]
        if self.layout in DATASET_LAYOUTS:
            self.listing = read_dataset(root, self.layout, media_root, classes)
            self.refused, self.duplicates = self.listing.refused, self.listing.duplicates
            self._wanted = None
        elif self.layout == "manifest":
            from vida.media.manifest import read_manifest

            self._manifest = read_manifest(root, media_root)
            self.refused, self.duplicates = self._manifest.refused, self._manifest.duplicates
        elif self.layout not in ("videos", "frames"):
            raise UsageError(f"layout {self.layout!r} has no clips to decode (use one of "
                             f"{', '.join(n for n in LAYOUTS if n != 'legacy')})")

    @property
    def media_root(self) -> Path:
        """The folder this root's clips live under, recorded as a new catalog's root."""
        if self.listing is not None:
            return self.listing.media_root
        if self._manifest is not None:
            return self._manifest.csv.parent.resolve()
        return self.root.resolve()

    def __iter__(self) -> Iterator[ClipSource]:
        if self.listing is not None:
            return iter(self.listing.clips)
        if self._manifest is not None:
            found: Iterator[ClipSource] = (
                ClipSource(row.class_name, file.stem, "video", str(file), source_split=split)
                for row, file, split in self._manifest.rows)
        else:
            walk = video_tree if self.layout == "videos" else frame_folders
            found = walk(self.root.resolve())
        wanted = self._wanted
        return found if wanted is None else (s for s in found if s.class_name in wanted)


def frame_folders(root: Path) -> Iterator[ClipSource]:
    rgb = root / "RGB"
    for class_dir in sorted(p for p in rgb.iterdir() if p.is_dir()):
        for clip_dir in sorted(p for p in class_dir.iterdir() if p.is_dir()):
            wav = root / "Audio" / class_dir.name / f"{clip_dir.name}.wav"
            yield ClipSource(class_dir.name, clip_dir.name, "frames", str(clip_dir),
                             audio_path=str(wav) if wav.exists() else None)


def discover(root: Path, layout: str | None = None) -> Iterator[ClipSource]:
    """The clips under ``root`` in a stable order, with absolute paths."""
    return iter(Sources(root, layout))
