"""AVMIT's rating files for a MiT-shaped tree, written as published (columns by name,
``video_location`` training/validation): every clip rated by 3 raters, one clip
relabelled (AVMIT's label differs from MiT's), two rows of clips the tree lacks, and a
test set of the validation clips."""

from __future__ import annotations

import csv
from pathlib import Path

RATINGS_HEADER = ["filename", "r1", "r2", "r3", "AVMIT_label", "MIT_label", "video_location",
                  "tfrecord_filename"]
TEST_HEADER = ["filename", "AVMIT_label", "MIT_label", "video_location", "new_filename"]


def counts_for(i: int) -> tuple[int, int, int]:
    """A clip's (r1, r2, r3): every third clip is not audible (two raters said 1)."""
    return (2, 1, 0) if i % 3 == 0 else (0, 1, 2) if i % 3 == 1 else (1, 0, 2)


def avmit_files(mit: Path, out: Path) -> dict[str, object]:
    """``video_ratings.csv`` and ``test_set.csv`` under ``out``; returns what they say:
    ``audible`` (clip key -> bool at a threshold of 2), ``relabelled`` (key, class),
    ``unmatched`` (filenames with no clip), ``test`` (keys)."""
    out.mkdir(parents=True, exist_ok=True)
    rows, tests, audible = [], [], {}
    relabelled = None
    for location in ("training", "validation"):
        for i, clip in enumerate(sorted((mit / location).glob("*/*.mp4"))):
            cls, name = clip.parent.name, f"{clip.parent.name}/{clip.name}"
            r = counts_for(i)
            label = cls
            if relabelled is None and location == "training":
                label, relabelled = "relabelled+action", (f"{cls}/{clip.stem}",
                                                          "relabelled+action")
            rows.append([name, *r, label, cls, location, f"{location}/{cls}.tfrecord"])
            audible[f"{cls}/{clip.stem}"] = r[1] + r[2] >= 2
            if location == "validation":
                tests.append([name, label, cls, location, f"test/{clip.name}"])
    unmatched = ["gone+class/yt_gone_1.mp4", "gone+class/yt_gone_2.mp4"]
    rows += [[u, 0, 0, 3, "gone+class", "gone+class", "training", "x"] for u in unmatched]
    with open(out / "video_ratings.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([RATINGS_HEADER, *rows])
    with open(out / "test_set.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([TEST_HEADER, *tests])
    test = {f"{Path(r[0]).parent.name}/{Path(r[0]).stem}" for r in tests}
    return {"audible": audible, "relabelled": relabelled, "unmatched": unmatched,
            "test": test}
