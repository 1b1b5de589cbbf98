"""An experiment's tables from its trainings' outcomes: per variant, mean and std over
seeds, the 95 % interval of top-1 over test clips and seeds, the paired difference
from vision only and from a control on the same clips, the share of real audio's
gain recovered, and every comparison adjusted as one family.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from vida.jobs.experiments.driver import Trained
from vida.jobs.experiments.label_efficiency import ALL
from vida.jobs.experiments.per_class import BASELINE, REAL, correlations, per_class_table
from vida.jobs.experiments.plan import Plan, missing_rates, missing_table
from vida.jobs.experiments.variants import CONTROLS as VARIANT_CONTROLS
from vida.jobs.experiments.variants import STAND_INS, labelled, learns_from_training_audio
from vida.stats import (
    accuracy_interval,
    adjusted_p_values,
    paired_difference,
    recovered_share,
)

METRICS = ("top1", "top5", "macro_f1")


UNDEFINED = "undefined: real audio gains nothing significant"


def summarise(results: dict[str, list[dict]],
              correct: dict[str, list[np.ndarray]] | None = None) -> pd.DataFrame:
    """Per variant: mean and std over seeds of each metric; with per-clip correctness,
    the 95 % bootstrap interval of top-1 (over test clips and seeds) and the paired
    bootstrap difference from vision only on the same clips and seeds."""
    rows = []
    baseline = np.stack(correct[BASELINE]) if correct and BASELINE in correct else None
    for variant, runs in results.items():
        row = {"variant": variant, "seeds": len(runs), "n_test": int(runs[0]["n_test"])}
        for m in METRICS:
            values = np.array([r[m] for r in runs])
            row[f"{m}_mean"] = float(values.mean())
            row[f"{m}_std"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        if correct and variant in correct:
            matrix = np.stack(correct[variant])
            ci = accuracy_interval(matrix)
            row.update(top1_ci_low=ci.low, top1_ci_high=ci.high)
            if baseline is not None and variant != BASELINE:
                paired = paired_difference(matrix, baseline)
                row.update(delta_vs_vision=paired.difference.mean,
                           delta_ci_low=paired.difference.low,
                           delta_ci_high=paired.difference.high, p_vs_vision=paired.p_value)
            if baseline is not None and REAL in correct and learns_from_training_audio(variant):
                row.update(_recovery(matrix, baseline, np.stack(correct[REAL])))
            control = CONTROLS.get(variant)
            if control in correct:
                paired = paired_difference(matrix, np.stack(correct[control]))
                row.update(delta_vs_control=paired.difference.mean,
                           control_ci_low=paired.difference.low,
                           control_ci_high=paired.difference.high, p_vs_control=paired.p_value)
        rows.append(row)
    return pd.DataFrame(rows)


# a variant -> its control, compared on the same clips and seeds: generated audio alone
# is a smaller input than the frames, so it is also set against frames as small
CONTROLS = {v.label: control.label for v, control in VARIANT_CONTROLS.items()}


def _recovery(matrix: np.ndarray, baseline: np.ndarray, real: np.ndarray) -> dict[str, float]:
    """The share of real audio's gain recovered; NaN (reported as undefined) where real
    audio's own gain is not significant."""
    share = recovered_share(matrix, baseline, real)
    if share is None:
        return {"recovery": float("nan"), "recovery_ci_low": float("nan"),
                "recovery_ci_high": float("nan"), "recovery_note": UNDEFINED}
    return {"recovery": share.mean, "recovery_ci_low": share.low,
            "recovery_ci_high": share.high}


def adjust_as_one_family(tables: dict[str, pd.DataFrame | None]
                         ) -> tuple[dict[str, pd.DataFrame | None], int]:
    """Every comparison that the experiment prints (``tables``: its main table, the
    study's, the label counts', the missing-rate grid; with vision only, with a
    control, with the best stand-in), adjusted together (Benjamini-Hochberg) as
    ``p_adjusted`` (and :data:`ADJUSTED`).  A label count's "all" row of a main-table
    variant is that variant's own runs, and counts once.  Returns the tables and the
    family's size."""
    p_of: dict[str, float] = {}
    for name, frame in tables.items():
        for column in FAMILY_COLUMNS:
            for row in frame.to_dict("records") if frame is not None else []:
                p = row.get(column)
                if p is not None and pd.notna(p):
                    p_of.setdefault(_comparison(name, row, column), float(p))
    adjusted = dict(zip(p_of, adjusted_p_values(list(p_of.values())), strict=True))
    out = {}
    for name, frame in tables.items():
        if frame is not None:
            rows = frame.to_dict("records")
            for column in FAMILY_COLUMNS:
                if column in frame or column == "p_vs_vision":
                    frame = frame.assign(**{ADJUSTED[column]: [
                        adjusted.get(_comparison(name, row, column), np.nan) for row in rows]})
        out[name] = frame
    return out, len(p_of)


# the p-value columns adjusted together, and the column each one's adjusted p goes to
FAMILY_COLUMNS = ("p_vs_vision", "p_vs_control", "p_vs_best")
ADJUSTED = {"p_vs_vision": "p_adjusted", "p_vs_control": "p_control_adjusted",
            "p_vs_best": "p_best_adjusted"}


def _comparison(table: str, row: dict, column: str) -> str:
    """A comparison's name in the family: one the main table makes too (a label
    count's "all" rows, the missing grid's main-table runs) counts once; a comparison
    with the best stand-in is its grid cell's own."""
    suffix = {"p_vs_vision": "", "p_vs_control": " vs control",
              "p_vs_best": " vs best stand-in"}[column]
    n = row.get("labels_per_class")
    if table == "labels" and n != ALL:
        return f"labels={n}/{row['variant']}{suffix}"
    if table == "missing" and (column == "p_vs_best" or not row.get("main_run", False)):
        cell = missing_table(row["test_missing"], row["train_missing"])
        return f"{cell}/{row['variant']}{suffix}"
    if table == "missing" and row["train_missing"] == row["test_missing"] == 0:
        return REAL + suffix  # with no audio missing, a stand-in's row is + real audio's runs
    name = row["variant"] if table != "study" else f"study/{row['variant']}"
    return name + suffix


def per_class_of(plan: Plan, outcomes: dict[str, Trained], class_iou: pd.Series | None = None
                 ) -> tuple[pd.DataFrame, dict[str, Any]] | None:
    """The main table class by class, and the rank correlations across classes."""
    rows = plan.tables.get("main", {})
    if BASELINE not in rows or REAL not in rows:
        return None
    correct = {v: np.stack([outcomes[k].correct for k in keys]) for v, keys in rows.items()}
    table = per_class_table(correct, outcomes[rows[BASELINE][0]].truth)
    return table, correlations(table, class_iou)


def tables_of(plan: Plan, outcomes: dict[str, Trained], table: str) -> pd.DataFrame | None:
    """The summary of one table of the plan (its variants in plan order)."""
    rows = plan.tables.get(table)
    if not rows:
        return None
    results = {v: [outcomes[k].metrics for k in keys] for v, keys in rows.items()}
    correct = {v: [outcomes[k].correct for k in keys] for v, keys in rows.items()}
    return summarise(results, correct)


def missing_grid_table(plan: Plan, outcomes: dict[str, Trained]) -> pd.DataFrame | None:
    """Per cell of the missing-rate grid (rates at training and at test) and variant,
    the summary on the same test clips, its paired difference from the best stand-in
    of the cell (:func:`vs_best_stand_in`) and its robustness (:func:`with_robustness`);
    ``main_run``: the row is the main table's runs."""
    main = {key for keys in plan.tables.get("main", {}).values() for key in keys}
    tables = []
    for name in plan.tables:
        rates = missing_rates(name)
        if rates is None:
            continue
        table = tables_of(plan, outcomes, name)
        table.insert(0, "train_missing", rates[0])
        table.insert(1, "test_missing", rates[1])
        table.insert(3, "id", [_id(v) for v in table["variant"]])
        table["main_run"] = [set(plan.tables[name][v]) <= main for v in table["variant"]]
        correct = {v: np.stack([outcomes[k].correct for k in keys])
                   for v, keys in plan.tables[name].items()
                   if rates != (0.0, 0.0)}  # no audio missing: no stand-in at work
        tables.append(pd.concat([table, vs_best_stand_in(table["variant"], correct)], axis=1))
    if not tables:
        return None
    grid = pd.concat(tables, ignore_index=True)
    return with_robustness(grid.sort_values(["train_missing", "test_missing"], kind="stable",
                                            ignore_index=True))


def _id(label: str) -> str:
    found = labelled(label)
    return found.id if found is not None else label


STAND_IN_LABELS = tuple(v.label for v in STAND_INS)


def vs_best_stand_in(variants: pd.Series, correct: dict[str, np.ndarray]) -> pd.DataFrame:
    """Per row: the cell's best stand-in (of :data:`~vida.jobs.experiments.variants.
    STAND_INS`, by mean top-1 over seeds and clips) and the row's paired difference
    from it on the same clips and seeds (none for that stand-in itself)."""
    ran = [v for v in STAND_IN_LABELS if v in correct]  # none: no comparison
    rows: list[dict[str, Any]] = []
    best = max(ran, key=lambda v: correct[v].mean()) if ran else None
    for variant in variants:
        row: dict[str, Any] = {"best_stand_in": best, "is_best_stand_in": variant == best}
        if best is not None and variant != best:
            paired = paired_difference(correct[variant], correct[best])
            row.update(delta_vs_best=paired.difference.mean,
                       best_ci_low=paired.difference.low, best_ci_high=paired.difference.high,
                       p_vs_best=paired.p_value)
        rows.append(row)
    return pd.DataFrame(rows, index=variants.index)


def with_robustness(grid: pd.DataFrame) -> pd.DataFrame:
    """``robustness``: a row's top-1 over the same variant's at no test audio missing,
    at the same missing rate at training (MultiBench's relative robustness: the share
    of its accuracy a model keeps as test audio goes missing)."""
    clean = grid[grid["test_missing"] == 0].set_index(["train_missing", "variant"])["top1_mean"]
    keys = pd.MultiIndex.from_frame(grid[["train_missing", "variant"]])
    reference = clean.reindex(keys).to_numpy(dtype=float)
    return grid.assign(robustness=grid["top1_mean"].to_numpy(dtype=float) / reference)


def label_table(plan: Plan, outcomes: dict[str, Trained], log: Callable[[str], None]
                ) -> pd.DataFrame | None:
    tables = []
    for name in [t for t in plan.tables if t.startswith("labels=")]:
        table = tables_of(plan, outcomes, name)
        n = name.split("=", 1)[1]
        log(f"  {n} labels/class: " + ", ".join(
            f"{row.variant} {row.top1_mean:.3f}" for row in table.itertuples()))
        table.insert(0, "labels_per_class", n)
        tables.append(table)
    return pd.concat(tables, ignore_index=True) if tables else None
