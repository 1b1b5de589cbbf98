"""Reading a manifest CSV: MiT's own ``trainingSet.csv`` as shipped, or one's own.

Columns, by position when there is no header:

* ``path``  the video, relative to the folder its paths resolve against (below) or
  absolute;
* ``class`` the action label (not empty, no ``/``: the clip key is ``<class>/<clip>``);
* a third column is the split when it is a split name (train, val, test, training,
  validation, testing); a number there (MiT's annotator agreement count, and the
  disagreement count after it) is ignored, as is every later column.

A header row (its first cell ``path``/``file``/``video``, or its second ``class``/
``label``) names the columns instead: ``path``, ``class`` and, optionally, ``split``;
other columns are ignored.

The paths resolve against the first of these folders in which they exist: the
``--media-root`` given, else the CSV's folder, else the split folder MiT puts beside
its CSVs (``training/`` for ``trainingSet.csv``, ``validation/`` for
``validationSet.csv``, then any other split folder there).  A clip's split is the
split column, else the split folder its path resolved in (or the first folder of
the path), else the CSV's name.

Files written by Excel or by script read the same: a UTF-8 byte-order mark, CRLF
line ends, quoted fields and blank lines.  A row that cannot become a clip (no path,
an empty class, a ``/`` in the class, an unknown split, a clip key another row
already gave) is refused with its line number and the reason; a file listed twice
is ingested once.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

from vida.errors import VidaError

SPLIT_NAMES = ("train", "val", "test", "training", "validation", "testing")
_PATH_HEADERS = {"path", "file", "filename", "video", "video_path"}
_CLASS_HEADERS = {"class", "label", "class_name", "category", "action"}
_SPLIT_HEADERS = {"split", "subset"}
_NAMED_SPLIT = re.compile(r"(training|validation|testing|train|val|test)(set)?([_\-. ].*)?")
_SAMPLE = 200  # rows tried against each candidate folder to pick where paths resolve


class ManifestError(VidaError, ValueError):
    """A manifest that cannot be ingested at all (nothing is recorded)."""


@dataclass(frozen=True)
class ManifestRow:
    line: int
    path: str
    class_name: str
    split: str | None


@dataclass
class Manifest:
    """What a manifest lists, once read: rows to ingest, rows refused and why."""

    csv: Path
    base: Path  # the folder its relative paths resolved against
    rows: list[tuple[ManifestRow, Path, str | None]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    duplicates: int = 0


def csv_records(path: Path) -> list[tuple[int, list[str]]]:
    """(line number, stripped cells) of every non-blank record."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            return [(reader.line_num, [c.strip() for c in row]) for row in reader
                    if any(c.strip() for c in row)]
    except UnicodeDecodeError as exc:
        raise ManifestError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); "
                            "save it as CSV UTF-8") from None
    except csv.Error as exc:
        raise ManifestError(f"{path}: not a CSV file ({exc})") from None


def _header_columns(cells: list[str], path: Path) -> dict[str, int] | None:
    names = [c.lower() for c in cells]
    if not ((names and names[0] in _PATH_HEADERS)
            or (len(names) > 1 and names[1] in _CLASS_HEADERS)):
        return None
    columns = {}
    for role, choices in (("path", _PATH_HEADERS), ("class", _CLASS_HEADERS),
                          ("split", _SPLIT_HEADERS)):
        found = [i for i, n in enumerate(names) if n in choices]
        if found:
            columns[role] = found[0]
    if "path" not in columns or "class" not in columns:
        raise ManifestError(f"{path}: its header ({', '.join(cells)}) names no "
                            f"{'path' if 'path' not in columns else 'class'} column; "
                            "name them path and class")
    return columns


def _parse(line: int, cells: list[str], columns: dict[str, int] | None
           ) -> ManifestRow | str:
    """A row, or why it is refused."""
    headerless = columns is None
    columns = columns or {"path": 0, "class": 1, "split": 2}
    cell = {role: cells[i] if i < len(cells) else "" for role, i in columns.items()}
    if not cell["path"]:
        return f"line {line}: no path"
    if not cell["class"]:
        return f"line {line}: {cell['path']} has an empty class"
    if "/" in cell["class"] or "\\" in cell["class"]:
        return (f"line {line}: class {cell['class']!r} contains a slash (the clip key is "
                "<class>/<clip>); rename the class")
    split = cell.get("split") or None
    if split is not None and split.lower() not in SPLIT_NAMES:
        if headerless and _is_number(split):
            split = None  # MiT's agreement count, not a split
        else:
            return (f"line {line}: split {split!r} is none of {', '.join(SPLIT_NAMES)}")
    return ManifestRow(line, cell["path"], cell["class"], split and split.lower())


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def named_split(name: str) -> str | None:
    """The split a file or folder name says (``trainingSet.csv`` -> training)."""
    match = _NAMED_SPLIT.fullmatch(Path(name).stem.lower())
    return match.group(1) if match else None


def candidate_bases(csv_path: Path, media_root: Path | None) -> list[Path]:
    """Where a manifest's relative paths may resolve, in the order they are tried."""
    if media_root is not None:
        return [media_root]
    folder = csv_path.parent
    preferred = named_split(csv_path.name)
    splits = sorted((d for d in folder.iterdir() if d.is_dir()
                     and d.name.lower() in SPLIT_NAMES),
                    key=lambda d: (d.name.lower() != preferred, d.name))
    return [folder, *splits]


def _resolves(base: Path, rows: list[ManifestRow]) -> int:
    return sum(1 for row in rows if (base / row.path).is_file())


def _nearby_folders(top: Path, limit: int = 500) -> list[Path]:
    """``top`` and the folders up to two levels below it (at most ``limit``), where a
    manifest's paths might be relative to; unreadable folders are passed over."""
    def subfolders(folder: Path) -> list[Path]:
        try:
            return sorted(d for d in folder.iterdir() if d.is_dir())
        except OSError:
            return []

    first = subfolders(top)[:limit]
    second = [d for folder in first for d in subfolders(folder)]
    return [top, *first, *second][:limit]


def _no_path_error(csv_path: Path, bases: list[Path], first: ManifestRow) -> ManifestError:
    looked = " or ".join(str(b) for b in bases)
    message = (f"{csv_path}: none of its paths exist under {looked} "
               f"(line {first.line}: {first.path})")
    found = next((d for d in _nearby_folders(csv_path.parent.parent)
                  if d not in bases and (d / first.path).is_file()), None)
    hint = (f"; they are under {found}: pass --media-root {found}" if found else
            "; give paths relative to the CSV's folder, or pass --media-root DIR, the "
            "folder they are relative to")
    return ManifestError(message + hint)


def read_manifest(csv_path: Path, media_root: Path | None = None) -> Manifest:
    """Every clip a manifest lists, with its resolved file and split."""
    records = csv_records(csv_path)
    columns = _header_columns(records[0][1], csv_path) if records else None
    parsed = [_parse(n, cells, columns) for n, cells in records[1 if columns else 0:]]
    rows = [r for r in parsed if isinstance(r, ManifestRow)]
    if not rows:
        raise ManifestError(f"{csv_path}: no rows to ingest"
                            + (f" ({parsed[0]})" if parsed else ""))
    bases = candidate_bases(csv_path, media_root)
    relative = [r for r in rows if not Path(r.path).is_absolute()][:_SAMPLE]
    hits = [_resolves(b, relative) for b in bases]
    base = bases[hits.index(max(hits))]
    absolute_hits = sum(1 for r in rows[:_SAMPLE] if Path(r.path).is_absolute()
                        and Path(r.path).is_file())
    if max(hits) == 0 and absolute_hits == 0:
        raise _no_path_error(csv_path, bases, relative[0] if relative else rows[0])
    out = Manifest(csv_path, base, refused=[r for r in parsed if isinstance(r, str)])
    base_split = named_split(base.name) if base != csv_path.parent else None
    seen_files: set[Path] = set()
    seen_keys: dict[tuple[str, str], int] = {}
    for row in rows:
        file = Path(row.path) if Path(row.path).is_absolute() else base / row.path
        file = file.resolve()
        if file in seen_files:
            out.duplicates += 1
            continue
        key = (row.class_name, file.stem)
        if key in seen_keys:
            out.refused.append(f"line {row.line}: clip {row.class_name}/{file.stem} is "
                               f"already line {seen_keys[key]} (another file, same name)")
            continue
        seen_files.add(file)
        seen_keys[key] = row.line
        first = Path(row.path).parts[0].lower() if len(Path(row.path).parts) > 1 else ""
        split = (row.split or base_split or (first if first in SPLIT_NAMES else None)
                 or named_split(csv_path.name))
        out.rows.append((row, file, split))
    return out
