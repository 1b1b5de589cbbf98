"""An experiment opened: the clips and sets it checks before any training, its run
opened (or resumed), and the missing-audio masks it tests with recorded, all before
any training.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from vida.catalog.database import Catalog
from vida.catalog.records.clip_queries import ClipQuery, clips_of
from vida.catalog.records.missing import record_missing
from vida.catalog.records.runs import (
    mark_abandoned,
    new_run_id,
    reopen_run,
    run_row,
    runs_with_params,
    start_run,
)
from vida.errors import UsageError
from vida.models.missing import missing_clips
from vida.store.store import FeatureStore


def with_features(query: str, sets: list[str]) -> ClipQuery:
    """Restrict a clip query to clips that have every feature set (same clips for all)."""
    return ClipQuery(query, feature_sets=tuple(sets))


def check_feature_sets(store: FeatureStore, sets: dict[str, str]) -> None:
    """Every set named exists and all share one T: one line, before any training."""
    steps = {}
    for option, name in sets.items():
        if not store.exists(name):
            raise UsageError(f"--{option} {name}: no such feature set (list them with "
                             "`vida-batch status`; `vida-batch encode` adds sets)")
        steps[option] = store.info(name).shape[0]
    if len(set(steps.values())) > 1:
        found = ", ".join(f"--{o} {sets[o]} has T={t}" for o, t in steps.items())
        raise UsageError(f"the feature sets are on different time grids ({found}); encode "
                         "them on one grid (`vida-batch encode --grid-from`)")


def open_experiment(catalog: Catalog, kind: str, spec: dict, log: Callable[[str], None]
                    ) -> str:
    """The experiment's run, opened before any training: an unfinished one with the
    same spec (killed, failed) is resumed under its id; otherwise a new one."""
    mark_abandoned(catalog)
    for run_id, params in runs_with_params(catalog, kind="experiment", arch=kind,
                                           statuses=("abandoned", "failed"),
                                           newest_first=True):
        if params.get("spec") == spec:
            reopen_run(catalog, run_id)
            log(f"experiment {run_id}: resumed (same spec, did not finish)")
            return run_id
    return new_run_id(kind)


def start_experiment(catalog: Catalog, experiment_id: str, kind: str, params: dict,
                      query: ClipQuery) -> str:
    if run_row(catalog, experiment_id) is not None:
        return experiment_id  # resumed: reopened by open_experiment
    return start_run(catalog, kind="experiment", arch=kind, params=params, query=query,
                     experiment_id=experiment_id, run_id=experiment_id)


def record_masks(catalog: Catalog, experiment_id: str, query: ClipQuery, seeds: int,
                 test_rates: tuple[float, ...], train_rates: tuple[float, ...] = ()) -> None:
    """Which test clips' and train clips' audio each seed treats as missing at each
    rate, recorded in ``missing_audio`` before any training (the classifiers and the
    generators draw the same clips: :func:`vida.models.missing.missing_clips` from the
    seed)."""
    if not (test_rates or train_rates):
        return
    clips = clips_of(catalog, query)[["clip_key", "class_name", "split"]]
    for seed in range(seeds):
        drawn = [missing_clips(clips[clips["split"] == split], rates, seed)
                 for split, rates in (("test", test_rates), ("train", train_rates)) if rates]
        record_missing(catalog, experiment_id, seed, pd.concat(drawn, ignore_index=True))
