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

from vida.catalog.database import Catalog
from vida.catalog.schema import FilterDecision
from vida.catalog.writes import replace_group


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 0.0


def clip_ious(tags: dict[str, set[str]], dictionary: dict[str, set[str]]) -> pd.DataFrame:
    """Columns clip_key, class_name, iou for every tagged clip whose class is in the
    dictionary (the class is the part of the key before the last '/')."""
    rows = []
    for key, labels in tags.items():
        cls = key.rsplit("/", 1)[0]
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
        raise ValueError(f"--mode must be clip or class, got {mode!r}")
    return FilterResult(out, means)


def store_decisions(catalog: Catalog, name: str, decisions: pd.DataFrame) -> int:
    rows = [{"filter_name": name, "clip_key": k, "iou": float(i), "keep": bool(keep)}
            for k, i, keep in decisions[["clip_key", "iou", "keep"]].itertuples(index=False)]
    return replace_group(catalog, FilterDecision, "filter_name", name, rows,
                         key=("filter_name", "clip_key"))
