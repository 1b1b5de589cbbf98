"""An experiment's results written down: its CSVs and plots in the runs folder, and its
metrics in the catalog, under the experiment's run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from vida.catalog.database import Catalog
from vida.catalog.records.runs import log_metrics
from vida.jobs.experiments.figures import (
    plot_gains,
    plot_label_efficiency,
    plot_missing_grid,
    plot_missing_heatmap,
    plot_recovery,
    plot_results,
)
from vida.jobs.experiments.per_class import per_class_metrics
from vida.jobs.experiments.plan import missing_table
from vida.jobs.experiments.statistics import METRICS, adjust_as_one_family
from vida.jobs.experiments.variants import GENERATED_AT_TEST as GENERATED_FILL
from vida.jobs.training.common import runs_root


@dataclass
class ExperimentResult:
    experiment_id: str
    table: pd.DataFrame  # variant, n_test, <metric>_mean, <metric>_std
    plot: Path
    csv: Path
    study_table: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)
    label_table: pd.DataFrame | None = None  # accuracy vs labelled clips per class
    label_plot: Path | None = None
    comparisons: int = 0  # with vision only, adjusted as one family
    per_class: pd.DataFrame | None = None  # the main table, class by class
    correlations: dict[str, Any] = field(default_factory=dict)  # across classes
    quality: pd.DataFrame | None = None  # how close each generator's audio is to real
    missing: pd.DataFrame | None = None  # the missing-rate grid (train x test rates)


def record_results(catalog: Catalog, experiment_id: str, table: pd.DataFrame,
            runs: str | None, title: str, study: pd.DataFrame | None = None,
            labels: pd.DataFrame | None = None,
            per_class: tuple[pd.DataFrame, dict[str, Any]] | None = None,
            missing: pd.DataFrame | None = None, notes: list[str] | None = None
            ) -> ExperimentResult:
    """Tables, CSVs and plots of the finished plan, and the experiment's metrics (its
    run is finished by :func:`run_experiment_plan`, with the results CSV)."""
    folder = runs_root(runs) / experiment_id
    folder.mkdir(parents=True, exist_ok=True)
    adjusted, comparisons = adjust_as_one_family({"main": table, "study": study,
                                                  "labels": labels, "missing": missing})
    table, study, labels = adjusted["main"], adjusted["study"], adjusted["labels"]
    missing = adjusted["missing"]
    csv = folder / "results.csv"
    table.to_csv(csv, index=False)
    plot = folder / "results.png"
    plot_results(table, plot, title)
    if study is not None:
        study.to_csv(folder / "study_class_level.csv", index=False)
        plot_results(study, folder / "study_class_level.png", title + " - study class-level")
    label_plot = None
    frames = [(table, ""), (study, "study/")]
    if labels is not None:
        labels.to_csv(folder / "label_efficiency.csv", index=False)
        label_plot = folder / "label_efficiency.png"
        plot_label_efficiency(labels, label_plot, title + " - label efficiency")
        plot_recovery(labels, folder / "recovery.png", title + " - real audio's gain recovered")
        frames += [(group, f"labels={n}/") for n, group in labels.groupby("labels_per_class",
                                                                            sort=False)]
    for frame, prefix in frames:
        if frame is not None:
            log_metrics(catalog, experiment_id, _table_metrics(frame, prefix), split="test")
    if missing is not None:
        _record_missing_grid(catalog, experiment_id, missing, folder, title)
    by_class, found = per_class if per_class is not None else (None, {})
    if by_class is not None:
        by_class.to_csv(folder / "per_class.csv", index=False)
        plot_gains(by_class, folder / "per_class.png", title + " - per class")
        log_metrics(catalog, experiment_id, per_class_metrics(by_class, found), split="test")
    return ExperimentResult(experiment_id, table, plot, csv, study, label_table=labels,
                            label_plot=label_plot, comparisons=comparisons,
                            per_class=by_class, correlations=found, missing=missing,
                            notes=list(notes or []))


def _record_missing_grid(catalog: Catalog, experiment_id: str, grid: pd.DataFrame,
                         folder: Path, title: str) -> None:
    """The missing-rate grid's CSV, its panels and heatmap, and its metrics, cell by
    cell (``<cell>/<variant>/...``, the cell named as the plan's table)."""
    grid.to_csv(folder / "missing_grid.csv", index=False)
    plot_missing_grid(grid, folder / "missing_grid.png", title + " - audio missing")
    plot_missing_heatmap(grid, folder / "missing_heatmap.png",
                         title + f" - {GENERATED_FILL.label} minus the best stand-in",
                         GENERATED_FILL.label)
    for (train, test), cell in grid.groupby(["train_missing", "test_missing"], sort=False):
        prefix = f"{missing_table(test, train)}/"
        log_metrics(catalog, experiment_id, {
            **_table_metrics(cell, prefix),
            **{f"{prefix}{v}/{flag}": float(value) for flag in ("main_run", "is_best_stand_in")
               for v, value in zip(cell["variant"], cell[flag], strict=True)}},
            split="test")


def _table_metrics(frame: pd.DataFrame, prefix: str) -> dict[str, float]:
    extra = [c for c in ("top1_ci_low", "top1_ci_high", "delta_vs_vision", "delta_ci_low",
                         "delta_ci_high", "p_vs_vision", "p_adjusted", "recovery",
                         "recovery_ci_low", "recovery_ci_high", "delta_vs_control",
                         "control_ci_low", "control_ci_high", "p_vs_control",
                         "p_control_adjusted", "delta_vs_best", "best_ci_low",
                         "best_ci_high", "p_vs_best", "p_best_adjusted", "robustness")
             if c in frame]
    values: dict[str, float] = {}
    for row in frame.to_dict("records"):
        values.update({f"{prefix}{row['variant']}/{m}_{s}": row[f"{m}_{s}"]
                       for m in METRICS for s in ("mean", "std")})
        values.update({f"{prefix}{row['variant']}/{c}": row[c] for c in extra
                       if pd.notna(row[c])})
    return values
