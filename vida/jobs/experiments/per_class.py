"""For which classes generated audio helps: an experiment's main table, class by class.

Every main-table variant is tested on the same clips over the same seeds, so a
class's clips are the same columns of every variant's ``[seeds, clips]`` correctness
matrix: per class, each variant's top-1 and its paired difference from vision only
on those clips.  Across classes, the rank correlation between the gain real audio
brings a class and the gain generated audio brings it says whether the generator
helps where audio helps; with tags and a dictionary, also whether it helps where
the sound matches the action (the class's mean IoU).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from vida.jobs.experiments.groups import BASELINE, REAL, group_table
from vida.jobs.experiments.variants import reads_generated_audio
from vida.stats import Interval, rank_correlation

__all__ = ["BASELINE", "REAL", "correlations", "per_class_metrics", "per_class_table"]


def per_class_table(correct: dict[str, np.ndarray], truth: np.ndarray) -> pd.DataFrame:
    """One row per class and variant: n_test, top-1 with its CI and, but for vision
    only, the paired difference from vision only on the class's clips (the grouping
    of :func:`~vida.jobs.experiments.groups.group_table` by class)."""
    table = group_table(correct, truth, column="class_name")
    return table.drop(columns=[c for c in table.columns if c.startswith("recovery")])


def correlations(table: pd.DataFrame, class_iou: pd.Series | None = None
                 ) -> dict[str, Interval | None]:
    """Across classes: for each generated variant, the rank correlation of its gain
    with real audio's gain (``<variant>/with real audio's gain``) and, given each
    class's mean IoU, with that (``<variant>/with mean IoU``; also real audio's)."""
    gains = table.pivot(index="class_name", columns="variant", values="delta_vs_vision")
    generated = [v for v in dict.fromkeys(table["variant"]) if reads_generated_audio(v)]
    out: dict[str, Interval | None] = {}
    for variant in generated:
        out[f"{variant}/with real audio's gain"] = rank_correlation(gains[REAL], gains[variant])
    if class_iou is not None:
        iou = class_iou.reindex(gains.index)
        known = iou.notna()
        for variant in [REAL, *generated]:
            out[f"{variant}/with mean IoU"] = rank_correlation(iou[known],
                                                               gains.loc[known, variant])
    return out


def per_class_metrics(table: pd.DataFrame, found: dict[str, Interval | None]
                      ) -> dict[str, float]:
    """``class=<c>/<variant>/<measure>`` and ``rank_correlation/<what>[_ci_low|_ci_high]``
    names for ``run_metrics``, so that a SELECT finds the classes generated audio helps."""
    values = {}
    measures = ("top1", "top1_ci_low", "top1_ci_high", "delta_vs_vision", "delta_ci_low",
                "delta_ci_high", "p_vs_vision")
    for row in table.to_dict("records"):
        values.update({f"class={row['class_name']}/{row['variant']}/{m}": row[m]
                       for m in measures if m in row and pd.notna(row[m])})
    for name, interval in found.items():
        if interval is not None:
            values.update({f"rank_correlation/{name}": interval.mean,
                           f"rank_correlation/{name}_ci_low": interval.low,
                           f"rank_correlation/{name}_ci_high": interval.high})
    return values
