"""Audio-visual datasets as they ship: their annotation files read as published, their
videos found wherever they were downloaded to.

* ``vggsound``  ``vggsound.csv``, no header, ``youtube_id,start_seconds,label,split``
  (labels with commas are quoted); files ``<youtube_id>_<start:06d>.mp4``, already
  the 10 s clip;
* ``kinetics``  ``train.csv``, ``validate.csv`` / ``val.csv``, ``test.csv`` with the
  header ``label,youtube_id,time_start,time_end,split[,is_cc]``; files
  ``<youtube_id>_<start:06d>_<end:06d>.mp4`` (cut: the whole file is the clip), or the
  full ``<youtube_id>.mp4``, whose window ``[time_start, time_end)`` is the clip;
* ``ave``       ``Annotations.txt`` (and ``trainSet.txt``, ``valSet.txt``,
  ``testSet.txt``, which give the splits), rows
  ``Category&VideoID&Quality&StartTime&EndTime`` with or without that header; files
  ``<VideoID>.mp4``; the clip is the event's window ``[StartTime, EndTime)``.

Columns are read by the header's names where the format has one.  A row that cannot
be a clip is refused with its file, line and reason; a row whose video is not on disk
becomes a clip whose ingest fails as ``missing`` (these sets lose videos to YouTube
deletions: counted, never fatal).  Videos are looked for anywhere under the media
root (the annotations' folder, or ``--media-root``), by file name.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path

from vida.errors import UsageError
from vida.media.manifest import ManifestError, csv_records
from vida.media.sources import ClipSource

DATASET_LAYOUTS = ("vggsound", "kinetics", "ave")
VIDEO_SUFFIXES = {".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".flv"}
KINETICS_COLUMNS = ("label", "youtube_id", "time_start", "time_end", "split")
KINETICS_FILES = ("train.csv", "validate.csv", "val.csv", "test.csv")
AVE_SPLIT_FILES = {"trainSet.txt": "train", "valSet.txt": "val", "testSet.txt": "test"}
_SPLITS = {"train": "train", "training": "train", "val": "val", "validate": "val",
           "validation": "val", "test": "test", "testing": "test"}
KINETICS_SOUNDS = "kinetics-sounds"


@dataclass
class Row:
    """One annotation row, read: where it came from, and the clip it names."""

    origin: str  # "<file> line <n>"
    label: str
    video: str  # the file stem to look for
    clip_id: str
    split: str | None
    start: float | None = None
    end: float | None = None
    cut_name: str | None = None  # a file already cut to the window (Kinetics)


@dataclass
class Listing:
    """What a dataset's annotations list, once read and matched to files on disk."""

    annotations: list[Path]
    media_root: Path
    clips: list[ClipSource] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    missing: int = 0  # rows whose video is not under the media root
    videos_found: int = 0  # video files under the media root
    left_out: int = 0  # rows of classes --classes leaves out
    duplicates: int = 0


# -- finding which dataset a path is ------------------------------------------

def detect_dataset(root: Path) -> str | None:
    """The dataset layout of ``root`` (a folder or an annotation file), or None."""
    if root.is_dir():
        if (root / "Annotations.txt").is_file() or any(
                (root / name).is_file() for name in AVE_SPLIT_FILES):
            return "ave"
        if (root / "vggsound.csv").is_file():
            return "vggsound"
        if any(_kinetics_header(root / name) for name in KINETICS_FILES):
            return "kinetics"
        return None
    return _file_dataset(root)


def _file_dataset(path: Path) -> str | None:
    first = _first_line(path)
    if first is None:
        return None
    if "&" in first and path.suffix.lower() == ".txt":
        return "ave"
    if _kinetics_header(path):
        return "kinetics"
    cells = next(csv.reader([first]), [])
    if path.name.lower().startswith("vggsound") or (
            len(cells) == 4 and cells[1].strip().isdigit()
            and cells[3].strip().lower() in ("train", "test")):
        return "vggsound"
    return None


def _first_line(path: Path) -> str | None:
    try:
        with open(path, encoding="utf-8-sig") as fh:
            return next((line.strip() for line in fh if line.strip()), None)
    except (OSError, UnicodeDecodeError):
        return None


def _kinetics_header(path: Path) -> bool:
    first = _first_line(path) if path.is_file() else None
    names = [c.strip().lower() for c in first.split(",")] if first else []
    return {"youtube_id", "time_start", "time_end"} <= set(names)


# -- reading each format ----------------------------------------------------------

def _seconds(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if value >= 0 else None


def _stamp(value: float) -> str:
    """How the datasets write a time in a file name: whole seconds, six digits."""
    return f"{int(value):06d}" if float(value).is_integer() else f"{value:010.3f}"


def _split(text: str, origin: str) -> str:
    split = _SPLITS.get(text.strip().lower())
    if split is None:
        raise ValueError(f"{origin}: split {text!r} is none of train, val, validate, test")
    return split


def _label(text: str, origin: str) -> str:
    if not text:
        raise ValueError(f"{origin}: no label")
    if "/" in text or "\\" in text:
        raise ValueError(f"{origin}: label {text!r} contains a slash (the clip key is "
                         "<class>/<clip>)")
    return text


def _window(start: str, end: str, origin: str) -> tuple[float, float]:
    begin, finish = _seconds(start), _seconds(end)
    if begin is None or finish is None:
        raise ValueError(f"{origin}: times {start!r}, {end!r} are not seconds")
    if finish <= begin:
        raise ValueError(f"{origin}: the window ends ({finish:g} s) before it starts "
                         f"({begin:g} s)")
    return begin, finish


def vggsound_rows(path: Path) -> Iterator[Row | str]:
    for line, cells in csv_records(path):
        origin = f"{path.name} line {line}"
        try:
            if len(cells) < 4:
                raise ValueError(f"{origin}: {len(cells)} fields, not youtube_id,"
                                 "start_seconds,label,split")
            video_id, start, label, split = cells[:4]
            seconds = _seconds(start)
            if not video_id or seconds is None:
                raise ValueError(f"{origin}: no youtube id, or start {start!r} is not seconds")
            clip_id = f"{video_id}_{_stamp(seconds)}"
            yield Row(origin, _label(label, origin), clip_id, clip_id, _split(split, origin))
        except ValueError as exc:
            yield str(exc)


def kinetics_rows(path: Path) -> Iterator[Row | str]:
    records = csv_records(path)
    if not records:
        return
    names = [c.lower() for c in records[0][1]]
    lacking = [c for c in KINETICS_COLUMNS[1:4] if c not in names]
    if lacking:
        raise ManifestError(f"{path}: its header ({', '.join(records[0][1])}) has no "
                            f"{', '.join(lacking)} column; is it a Kinetics CSV?")
    column = {name: names.index(name) for name in KINETICS_COLUMNS if name in names}
    for line, cells in records[1:]:
        origin = f"{path.name} line {line}"
        cell = {k: cells[i] if i < len(cells) else "" for k, i in column.items()}
        try:
            yield _kinetics_row(origin, cell, path)
        except ValueError as exc:
            yield str(exc)


def _kinetics_row(origin: str, cell: dict[str, str], path: Path) -> Row:
    if not cell.get("label"):
        raise ValueError(f"{origin}: no label (Kinetics' test set ships without them)")
    label = _label(cell["label"], origin)
    start, end = _window(cell["time_start"], cell["time_end"], origin)
    split_text = cell.get("split") or (path.stem.split("_")[0])
    video_id = cell["youtube_id"]
    if not video_id:
        raise ValueError(f"{origin}: no youtube_id")
    clip_id = f"{video_id}_{_stamp(start)}_{_stamp(end)}"
    return Row(origin, label, video_id, clip_id, _split(split_text, origin), start, end,
               cut_name=clip_id)


def ave_rows(path: Path, split: str | None) -> Iterator[Row | str]:
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as exc:
        raise ManifestError(f"{path}: not UTF-8 text ({exc.reason})") from None
    for number, text in enumerate(lines, start=1):
        cells = [c.strip() for c in text.split("&")]
        if not text.strip() or (number == 1 and cells[0].lower() == "category"):
            continue
        origin = f"{path.name} line {number}"
        try:
            if len(cells) != 5:
                raise ValueError(f"{origin}: {len(cells)} fields, not "
                                 "Category&VideoID&Quality&StartTime&EndTime")
            category, video_id, _quality, start, end = cells
            begin, finish = _window(start, end, origin)
            if not video_id:
                raise ValueError(f"{origin}: no VideoID")
            yield Row(origin, _label(category, origin), video_id, video_id, split,
                      begin, finish)
        except ValueError as exc:
            yield str(exc)


# -- the annotation files of a root --------------------------------------------------

def annotation_rows(root: Path, layout: str) -> tuple[list[Path], list[Row | str]]:
    """The annotation files ``root`` stands for, and their rows in order."""
    folder = root if root.is_dir() else root.parent
    if layout == "vggsound":
        files = [root / "vggsound.csv" if root.is_dir() else root]
        return files, [r for f in files for r in vggsound_rows(f)]
    if layout == "kinetics":
        files = ([folder / n for n in KINETICS_FILES if _kinetics_header(folder / n)]
                 if root.is_dir() else [root])
        return files, [r for f in files for r in kinetics_rows(f)]
    return _ave_files(root, folder)


def _ave_files(root: Path, folder: Path) -> tuple[list[Path], list[Row | str]]:
    """AVE: the clips of ``Annotations.txt`` (or of the one set file given), each in
    the split of the set file that lists it."""
    set_files = {folder / n: s for n, s in AVE_SPLIT_FILES.items() if (folder / n).is_file()}
    if root.is_file() and root.name in AVE_SPLIT_FILES:
        return [root], list(ave_rows(root, AVE_SPLIT_FILES[root.name]))
    listed = root if root.is_file() else folder / "Annotations.txt"
    if not listed.is_file():  # only the set files
        return list(set_files), [r for f, s in set_files.items() for r in ave_rows(f, s)]
    splits = {(r.video, r.start, r.end): s for f, s in set_files.items()
              for r in ave_rows(f, s) if isinstance(r, Row)}
    rows = [r if isinstance(r, str) else replace(r, split=splits.get((r.video, r.start, r.end)))
            for r in ave_rows(listed, None)]
    return [listed, *set_files], rows


# -- matching rows to files ------------------------------------------------------

def video_index(root: Path) -> dict[str, Path]:
    """Every video file under ``root`` by its name without suffix (the first, in
    sorted order, where a name repeats)."""
    found: dict[str, Path] = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            stem, suffix = os.path.splitext(name)
            if suffix.lower() in VIDEO_SUFFIXES and not name.startswith("."):
                found.setdefault(stem, Path(folder) / name)
    return found


def read_dataset(root: Path, layout: str, media_root: Path | None = None,
                 classes: str | None = None) -> Listing:
    """Every clip ``root``'s annotations list, matched to the videos under the media
    root, narrowed to ``classes`` (a file of class names, or ``kinetics-sounds``)."""
    files, rows = annotation_rows(root, layout)
    if not files:
        raise ManifestError(f"{root}: no {layout} annotation file found")
    where = (media_root or (root if root.is_dir() else root.parent)).resolve()
    index = video_index(where)
    listing = Listing(files, where, videos_found=len(index))
    listing.refused = [r for r in rows if isinstance(r, str)]
    kept = [r for r in rows if isinstance(r, Row)]
    if classes is not None:
        wanted, unknown = subset(classes, {r.label for r in kept})
        listing.refused += unknown
        listing.left_out = sum(r.label not in wanted for r in kept)
        kept = [r for r in kept if r.label in wanted]
    for row in _unique(kept, listing):
        listing.clips.append(_clip(row, index, where, listing))
    return listing


def _unique(rows: Iterable[Row], listing: Listing) -> Iterator[Row]:
    """Each clip once: a row repeating an earlier one's clip is a duplicate; one that
    gives an earlier clip id another window is told apart by its window."""
    seen: dict[tuple[str, str], Row] = {}
    for row in rows:
        key = (row.label, row.clip_id)
        earlier = seen.get(key)
        if earlier is not None and (earlier.start, earlier.end) == (row.start, row.end):
            listing.duplicates += 1
            continue
        if earlier is not None:
            row.clip_id = f"{row.clip_id}_{_stamp(row.start or 0)}_{_stamp(row.end or 0)}"
            if (row.label, row.clip_id) in seen:
                listing.duplicates += 1
                continue
        seen[(row.label, row.clip_id)] = row
        yield row


def _clip(row: Row, index: dict[str, Path], where: Path, listing: Listing) -> ClipSource:
    """The row's clip: a file cut to its window is the whole clip; a longer file gives
    its window; no file gives a clip whose ingest fails as missing."""
    cut = index.get(row.cut_name) if row.cut_name else None
    file = cut or index.get(row.video)
    window = (None, None) if cut is not None else (row.start, row.end)
    if file is None:
        listing.missing += 1
        file = where / f"{row.cut_name or row.video}.mp4"
    return ClipSource(row.label, row.clip_id, "video", str(file), source_split=row.split,
                      start_s=window[0], end_s=window[1], origin=row.origin)


# -- class subsets ---------------------------------------------------------------

def subset(classes: str, labels: set[str] | None = None) -> tuple[set[str], list[str]]:
    """The classes of ``classes`` (a file, one name a line, ``#`` comments, or
    ``kinetics-sounds``), and a line for each that names no label of ``labels`` (when
    the labels are known before the walk)."""
    if classes == KINETICS_SOUNDS:
        text = (resources.files("vida.media") / "data" / "kinetics_sounds.txt").read_text()
        name = "kinetics-sounds"
    else:
        path = Path(classes)
        if not path.is_file():
            raise UsageError(f"--classes {classes}: no such file (give a file with one class "
                             f"a line, or {KINETICS_SOUNDS})")
        text, name = path.read_text(encoding="utf-8-sig"), path.name
    wanted: set[str] = set()
    unknown = []
    for number, line in enumerate(text.splitlines(), start=1):
        label = line.split("#", 1)[0].strip()
        if not label:
            continue
        wanted.add(label)
        if labels is not None and label not in labels:
            unknown.append(f"{name} line {number}: class {label!r} is no label of the "
                           "annotations (check its spelling)")
    return wanted, unknown
