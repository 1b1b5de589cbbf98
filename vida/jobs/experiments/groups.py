"""When generated audio helps, by any grouping of the test clips: ``--group-by "SELECT
clip_key, <group> FROM ..."``, a read-only query like ``--query``.

Every main-table variant was tested on the same clips over the same seeds, so a
group's clips are the same columns of every variant's ``[seeds, clips]`` correctness
matrix, read back from the catalog's predictions.  Per group and variant: top-1 with
its 95 % CI, the paired difference from vision only on the group's clips, and the
share of real audio's gain recovered; the p-values of every group and variant are
adjusted together, as one family.  Per class is one such grouping
(:mod:`vida.jobs.experiments.per_class`); AVMIT's ratings give another:
``SELECT clip_key, CASE WHEN audible THEN 'audible' ELSE 'not audible' END FROM
clip_ratings``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from vida.catalog.database import Catalog
from vida.catalog.readonly import check_read_only
from vida.catalog.records.predictions import test_predictions
from vida.catalog.records.runs import replace_metrics
from vida.errors import UsageError
from vida.jobs.experiments.driver import finished_steps
from vida.jobs.experiments.variants import REAL as REAL_AUDIO
from vida.jobs.experiments.variants import VISION, learns_from_training_audio
from vida.stats import accuracy_interval, adjusted_p_values, paired_difference, recovered_share

BASELINE, REAL = VISION.label, REAL_AUDIO.label
UNDEFINED = "undefined: real audio gains nothing significant here"
PREFIX = "group="
_MAIN_STEP = re.compile(r"s(\d+)/classifier/(.+)")


def compared_variants(variants: list[str]) -> list[str]:
    """Vision only, real audio and every variant that learns from the training audio,
    in table order."""
    return [v for v in variants if v in (BASELINE, REAL) or learns_from_training_audio(v)]


def group_table(correct: dict[str, np.ndarray], groups: np.ndarray, column: str = "group"
                ) -> pd.DataFrame:
    """One row per group and variant: n_test, top-1 with its CI and, but for vision
    only, the paired difference from vision only on the group's clips (and, for the
    variants that are not real audio, the share of real audio's gain recovered)."""
    rows = []
    for group in sorted(set(groups)):
        columns = groups == group
        for variant in compared_variants(list(correct)):
            rows.append({column: group, "variant": variant, "n_test": int(columns.sum()),
                         **_cell(correct, variant, columns)})
    return pd.DataFrame(rows)


def _cell(correct: dict[str, np.ndarray], variant: str, columns: np.ndarray) -> dict:
    matrix, baseline = correct[variant][:, columns], correct[BASELINE][:, columns]
    ci = accuracy_interval(matrix)
    cell = {"top1": ci.mean, "top1_ci_low": ci.low, "top1_ci_high": ci.high}
    if variant == BASELINE:
        return cell
    paired = paired_difference(matrix, baseline)
    cell.update(delta_vs_vision=paired.difference.mean, delta_ci_low=paired.difference.low,
                delta_ci_high=paired.difference.high, p_vs_vision=paired.p_value)
    if variant != REAL and REAL in correct:
        share = recovered_share(matrix, baseline, correct[REAL][:, columns])
        if share is None:
            cell.update(recovery=np.nan, recovery_note=UNDEFINED)
        else:
            cell.update(recovery=share.mean, recovery_ci_low=share.low,
                        recovery_ci_high=share.high)
    return cell


def adjusted(table: pd.DataFrame) -> pd.DataFrame:
    """``p_adjusted``: every group's and variant's comparison with vision only,
    adjusted as one family (Benjamini-Hochberg)."""
    table = table.copy()
    tested = table["p_vs_vision"].notna() if "p_vs_vision" in table else []
    table["p_adjusted"] = np.nan
    if len(tested) and tested.any():
        table.loc[tested, "p_adjusted"] = adjusted_p_values(table.loc[tested, "p_vs_vision"])
    return table


# -- from the catalog ---------------------------------------------------------------

def clip_groups(catalog: Catalog, sql: str) -> pd.Series:
    """clip_key -> group of the user's ``--group-by`` query (its first column besides
    clip_key); refused in one line unless it is one read-only SELECT giving each clip
    once."""
    check_read_only(sql)
    frame = catalog.sql(sql)
    others = [c for c in frame.columns if c != "clip_key"]
    if "clip_key" not in frame.columns or not others:
        raise UsageError(f"--group-by must give clip_key and a group column; it gives "
                         f"{', '.join(frame.columns) or 'no columns'}")
    if frame["clip_key"].duplicated().any():
        twice = frame["clip_key"][frame["clip_key"].duplicated()].iloc[0]
        raise UsageError(f"--group-by gives clip {twice} more than one group; give each "
                         "clip one (add DISTINCT, or pick one row per clip)")
    return frame.set_index("clip_key")[others[0]].astype(str)


def main_correctness(catalog: Catalog, experiment_id: str
                     ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The test clips (clip_key order) and, per main-table variant, its ``[seeds,
    clips]`` correctness, from the predictions of the experiment's finished runs."""
    by_variant: dict[str, list[tuple[int, str]]] = {}
    for key, run_id in finished_steps(catalog, experiment_id).items():
        match = _MAIN_STEP.fullmatch(key)
        if match:
            by_variant.setdefault(match.group(2), []).append((int(match.group(1)), run_id))
    if BASELINE not in by_variant:
        raise UsageError(f"experiment {experiment_id} has no finished vision-only training "
                         "to compare groups against")
    keys, correct = None, {}
    for variant, runs in by_variant.items():
        frames = [test_predictions(catalog, run_id) for _, run_id in sorted(runs)]
        keys = frames[0]["clip_key"].to_numpy() if keys is None else keys
        correct[variant] = np.stack([f["correct"].to_numpy(float) for f in frames])
    return keys, {v: correct[v] for v in _table_order(by_variant)}


def _table_order(by_variant: dict) -> list[str]:
    rest = sorted(v for v in by_variant if v not in (BASELINE, REAL))
    return [v for v in (BASELINE, REAL) if v in by_variant] + rest


@dataclass
class GroupResult:
    table: pd.DataFrame
    csv: Path
    plot: Path | None
    ungrouped: int  # test clips the query gives no group


def group_results(catalog: Catalog, experiment_id: str, sql: str) -> tuple[pd.DataFrame, int]:
    """The group table of a finished experiment, and how many test clips had no group."""
    keys, correct = main_correctness(catalog, experiment_id)
    groups = clip_groups(catalog, sql).reindex(keys)
    known = groups.notna().to_numpy()
    if not known.any():
        raise UsageError("--group-by gives none of the experiment's test clips a group")
    table = group_table({v: m[:, known] for v, m in correct.items()},
                        groups.to_numpy()[known])
    return adjusted(table), int((~known).sum())


def record_groups(catalog: Catalog, experiment_id: str, sql: str, folder: Path,
                  title: str | None = None) -> GroupResult:
    """The group table: ``per_group.csv`` and its plot in ``folder``, and its rows in
    ``run_metrics`` (``group=<g>/<variant>/<measure>``, those of an earlier
    ``--group-by`` replaced)."""
    from vida.jobs.experiments.figures import plot_groups

    table, ungrouped = group_results(catalog, experiment_id, sql)
    folder.mkdir(parents=True, exist_ok=True)
    csv = folder / "per_group.csv"
    table.to_csv(csv, index=False)
    (folder / "per_group.sql").write_text(sql.strip() + "\n")
    plot = folder / "per_group.png"
    plot_groups(table, plot, f"{title or 'experiment ' + experiment_id} - by group")
    replace_metrics(catalog, experiment_id, PREFIX, group_metrics(table))
    return GroupResult(table, csv, plot, ungrouped)


MEASURES = ("n_test", "top1", "top1_ci_low", "top1_ci_high", "delta_vs_vision", "delta_ci_low",
            "delta_ci_high", "p_vs_vision", "p_adjusted", "recovery", "recovery_ci_low",
            "recovery_ci_high")


def group_metrics(table: pd.DataFrame) -> dict[str, float]:
    """``group=<g>/<variant>/<measure>`` names for ``run_metrics``."""
    return {f"{PREFIX}{row['group']}/{row['variant']}/{m}": float(row[m])
            for row in table.to_dict("records") for m in MEASURES
            if m in row and pd.notna(row[m])}


def table_from_metrics(rows: pd.DataFrame) -> pd.DataFrame | None:
    """The group table back from its ``run_metrics`` rows (group, measure, value with
    group ``group=<g>/<variant>``)."""
    if rows.empty:
        return None
    parts = rows["group"].str[len(PREFIX):].str.rsplit("/", n=1, expand=True)
    frame = rows.assign(group=parts[0], variant=parts[1])
    wide = frame.pivot_table(index=["group", "variant"], columns="measure", values="value",
                             sort=False).reset_index().rename_axis(columns=None)
    return wide
