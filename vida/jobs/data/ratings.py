"""``vida-batch ratings import``: per-clip ratings from a dataset's files, beside the
clips (AVMIT's, for Moments in Time).

AVMIT (Joannou, Rotshtein & Noppeney, 2024) had 3 of 11 trained raters judge each of
57,177 MiT clips: whether the labelled action is present as an audiovisual event, and
whether it is the most prominent thing in the clip.  Its files, read by their
header's column names (never by position):

* ``video_ratings.csv``  ``filename, r1, r2, r3, AVMIT_label, MIT_label,
  video_location, tfrecord_filename``: ``filename`` is MiT's ``<class>/<file>.mp4``;
  ``r1``, ``r2``, ``r3`` count how many of the 3 raters gave score 1 (the action is
  not there as an audiovisual event), 2 (there, not the most prominent) and 3 (there
  and the most prominent);
* ``test_set.csv``  ``filename, AVMIT_label, MIT_label, video_location,
  new_filename, ...``: the 960 clips (16 classes) of its audiovisual test set.

``audible`` (the rule): at least ``threshold`` of the raters (2: a majority) gave the
clip score 2 or 3, i.e. said the labelled action is heard and seen in it.  Rows that
match no clip of the catalog are counted and reported; the import still records the
rest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import pandas as pd

from vida.catalog.database import Catalog
from vida.catalog.records.ratings import catalog_clip_keys, store_ratings
from vida.errors import UsageError
from vida.jobs.core.batch_job import recorded
from vida.keys import clip_key

COUNTS = ("r1", "r2", "r3")
AUDIBLE_THRESHOLD = 2


@dataclass
class RatingsImport:
    source: str
    file: Path
    kind: str  # "ratings" (video_ratings.csv) or "test set" (test_set.csv)
    rows: int = 0
    matched: int = 0
    unmatched: list[str] = field(default_factory=list)  # filenames with no clip
    refused: list[str] = field(default_factory=list)
    audible: int = 0
    relabelled: int = 0
    run_id: str | None = None


def _read(path: Path) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot be read as CSV ({exc})") from None
    frame.columns = [c.strip() for c in frame.columns]
    if "filename" not in frame.columns:
        raise UsageError(f"{path}: its header ({', '.join(frame.columns)}) has no filename "
                         "column; is it AVMIT's video_ratings.csv or test_set.csv?")
    return frame


def clip_of(filename: str) -> str | None:
    """The clip key of MiT's ``<class>/<file>.mp4`` (a longer path: its last two parts)."""
    parts = PurePosixPath(filename.replace("\\", "/")).parts
    if len(parts) < 2:
        return None
    return clip_key(parts[-2], PurePosixPath(parts[-1]).stem)


def _counts(record: dict, line: int) -> tuple[int, int, int] | str:
    try:
        counts = tuple(int(float(record[c])) for c in COUNTS)
    except ValueError:
        return f"line {line}: r1, r2, r3 are not counts ({', '.join(record[c] for c in COUNTS)})"
    if min(counts) < 0:
        return f"line {line}: a negative count"
    return counts  # type: ignore[return-value]


def rating_rows(frame: pd.DataFrame, source: str, threshold: int, report: RatingsImport,
                known: set[str]) -> list[dict]:
    rated = all(c in frame.columns for c in COUNTS)
    rows = []
    for line, record in enumerate(frame.to_dict("records"), start=2):
        key = clip_of(record["filename"])
        if key is None:
            report.refused.append(f"line {line}: filename {record['filename']!r} is not "
                                  "<class>/<file>")
            continue
        if key not in known:
            report.unmatched.append(record["filename"])
            continue
        row = {"clip_key": key, "source": source,
               "rated_class": record.get("AVMIT_label") or None,
               "source_class": record.get("MIT_label") or None,
               "location": record.get("video_location") or None}
        if rated:
            counts = _counts(record, line)
            if isinstance(counts, str):
                report.refused.append(counts)
                continue
            row.update(n_score1=counts[0], n_score2=counts[1], n_score3=counts[2],
                       audible=counts[1] + counts[2] >= threshold)
            report.audible += row["audible"]
        else:
            row["test_set"] = True
        report.relabelled += bool(row["rated_class"] and row["source_class"]
                                  and row["rated_class"] != row["source_class"])
        rows.append(row)
    return rows


def import_ratings(catalog: Catalog, path: Path, *, source: str = "avmit",
                   threshold: int = AUDIBLE_THRESHOLD) -> RatingsImport:
    """Fill ``clip_ratings`` from AVMIT's ``video_ratings.csv`` or ``test_set.csv``."""
    if not 1 <= threshold <= 3:
        raise UsageError(f"--audible-threshold {threshold}: give 1, 2 or 3 raters")
    frame = _read(path)
    kind = "ratings" if all(c in frame.columns for c in COUNTS) else "test set"
    report = RatingsImport(source, path, kind, rows=len(frame))
    params = {"file": str(path.resolve()), "source": source, "kind": kind,
              "audible_threshold": threshold}
    with recorded(catalog, "ratings-import", params) as run:
        rows = rating_rows(frame, source, threshold, report, catalog_clip_keys(catalog))
        report.matched = store_ratings(catalog, rows)
        report.run_id = run.run_id
        run.metrics.update(rows=float(report.rows), matched=float(report.matched),
                           unmatched=float(len(report.unmatched)),
                           refused=float(len(report.refused)))
    return report
