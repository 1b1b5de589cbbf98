"""The IoU keep/drop filter: does what the clip sounds like match what its class should?

Per clip, IoU is the Jaccard index between the tagger's top-k labels and the
dictionary's labels for the clip's class.  ``mode="clip"`` keeps clips with
IoU >= ``min_iou``.  ``mode="class"`` reproduces the study: mean IoU per class, keep
every clip of the ``top_classes`` best classes.

The filter needs the clip's *class*, which is unknown for a test clip, so it can
only select training data (which clips a generator learns from), never test clips.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from vida.errors import UsageError
from vida.keys import class_of


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 0.0


def clip_ious(tags: dict[str, set[str]], dictionary: dict[str, set[str]]) -> pd.DataFrame:
    """Columns clip_key, class_name, iou for every tagged clip whose class is in the
    dictionary (the class is the part of the key before the last '/')."""
    rows = []
    for key, labels in tags.items():
        cls = class_of(key)
        if cls in dictionary:
            rows.append((key, cls, jaccard(labels, dictionary[cls])))
    return pd.DataFrame(rows, columns=["clip_key", "class_name", "iou"])


@dataclass
class FilterResult:
    decisions: pd.DataFrame  # clip_key, class_name, iou, keep
    class_means: pd.Series  # class -> mean IoU


def decide(ious: pd.DataFrame, *, mode: str = "clip", min_iou: float = 0.2,
           top_classes: int = 5) -> FilterResult:
    means = ious.groupby("class_name")["iou"].mean().sort_values(ascending=False, kind="stable")
    out = ious.copy()
    if mode == "clip":
        out["keep"] = out["iou"] >= min_iou
    elif mode == "class":
        out["keep"] = out["class_name"].isin(set(means.index[:top_classes]))
    else:
        raise UsageError(f"--mode must be clip or class, got {mode!r}")
    return FilterResult(out, means)


def class_summary(result: FilterResult) -> pd.DataFrame:
    """Per class, best mean IoU first: mean_iou, clips, kept."""
    summary = result.decisions.groupby("class_name").agg(
        mean_iou=("iou", "mean"), clips=("keep", "size"), kept=("keep", "sum"))
    return summary.loc[result.class_means.index].reset_index()


def filter_name(dictionary: str, tags: str, *, mode: str, min_iou: float,
                top_classes: int) -> str:
    """The default name of a filter: what it was made from and how."""
    if mode == "clip":
        return f"{dictionary}:{tags}:iou>={min_iou:g}"
    return f"{dictionary}:{tags}:top{top_classes}-classes"
