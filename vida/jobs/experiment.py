"""Experiments: the comparison tables of the method, done right.

Every variant of one experiment is trained on the same training clips (unless the
variant is *about* selecting training clips), selected on the same val clips, and
evaluated on the **same test clips**, over several seeds; mean and std are stored
under one experiment id (a ``runs`` row of kind ``experiment``; its training runs
carry the id in ``experiment_id``), printed, and plotted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vida.catalog.database import Catalog
from vida.catalog.records.clip_queries import ClipQuery, clips_of
from vida.catalog.records.dictionaries import load_dictionary
from vida.catalog.records.filters import store_decisions
from vida.catalog.records.runs import (
    log_metrics,
    mark_abandoned,
    new_run_id,
    reopen_run,
    run_row,
    runs_with_params,
    start_run,
)
from vida.catalog.records.tags import load_tags
from vida.errors import UsageError
from vida.jobs.batch_job import run_lifecycle
from vida.jobs.classifier import ClassifierSpec
from vida.jobs.executor import current_executor, parse_executor
from vida.jobs.experiment_driver import PlanRunner, Trained
from vida.jobs.experiment_plan import (
    PCA_CONTROL,
    Plan,
    Step,
    classifier_step,
    distillation_step,
    generated,
    generator_steps,
    label_efficiency_steps,
    missing_audio_steps,
)
from vida.jobs.generator import GeneratorSpec
from vida.jobs.label_efficiency import (
    ALL,
    parse_labels,
    plot_label_efficiency,
    plot_recovery,
)
from vida.jobs.per_class import (
    BASELINE,
    REAL,
    correlations,
    learns_from_training_audio,
    per_class_metrics,
    per_class_table,
    plot_gains,
)
from vida.jobs.plots import color, figure, save_png
from vida.jobs.training import runs_root, training_device
from vida.keys import SPLIT_CLIPS
from vida.semantics.iou_filter import FilterResult, clip_ious, decide
from vida.stats import (
    accuracy_interval,
    adjusted_p_values,
    paired_difference,
    recovered_share,
)
from vida.store.store import FeatureStore

METRICS = ("top1", "top5", "macro_f1")


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


def with_features(query: str, sets: list[str]) -> ClipQuery:
    """Restrict a clip query to clips that have every feature set (same clips for all)."""
    return ClipQuery(query, feature_sets=tuple(sets))


UNDEFINED = "undefined: real audio gains nothing significant"


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


def experiment_spec(arguments: dict[str, Any]) -> dict[str, Any]:
    """An experiment's own arguments (what ``experiment rerun`` calls it with again)."""
    return {k: v for k, v in arguments.items()
            if k not in ("catalog", "store", "log", "runs", "options")}


def rerun_experiment(catalog: Catalog, store: FeatureStore, run_id: str, *,
                     runs: str | None = None, log: Callable[[str], None] = print
                     ) -> ExperimentResult:
    """Run experiment ``run_id`` again with the spec it recorded."""
    record = run_row(catalog, run_id)
    if record is None or record.kind != "experiment":
        raise UsageError(f"{run_id}: no experiment run of that id (list them with `vida-batch "
                         "sql \"SELECT run_id, arch FROM runs WHERE kind = 'experiment'\"`)")
    spec = record.params.get("spec")
    if spec is None:
        raise UsageError(f"{run_id} was recorded before experiments stored their spec; run "
                         "it again with its options")
    run = {"svdmap": svdmap_experiment, "cafmap": cafmap_experiment}[record.arch]
    return run(catalog, store, **spec, runs=runs, log=log)


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
CONTROLS = {"generated audio only": PCA_CONTROL}


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
    """Every comparison with vision only that the experiment prints (``tables``: its
    main table, the study's, the label counts'), adjusted together (Benjamini-Hochberg)
    as ``p_adjusted``.  A label count's "all" row of a main-table variant is that
    variant's own runs, and counts once.  Returns the tables and the family's size."""
    keys = {name: [_comparison(name, row) for row in frame.to_dict("records")]
            for name, frame in tables.items() if frame is not None}
    p_of: dict[str, float] = {}
    for name, frame_keys in keys.items():
        frame = tables[name]
        for column, suffix in (("p_vs_vision", ""), ("p_vs_control", " vs control")):
            for key, p in zip(frame_keys, frame.get(column, [None] * len(frame)), strict=True):
                if p is not None and pd.notna(p):
                    p_of.setdefault(key + suffix, float(p))
    adjusted = dict(zip(p_of, adjusted_p_values(list(p_of.values())), strict=True))
    out = {}
    for name, frame in tables.items():
        if frame is not None:
            frame = frame.assign(p_adjusted=[adjusted.get(k, np.nan) for k in keys[name]])
            if "p_vs_control" in frame:
                frame["p_control_adjusted"] = [adjusted.get(k + " vs control", np.nan)
                                               for k in keys[name]]
        out[name] = frame
    return out, len(p_of)


def _comparison(table: str, row: dict) -> str:
    n = row.get("labels_per_class")
    if table == "labels" and n != ALL:
        return f"labels={n}/{row['variant']}"
    return row["variant"] if table != "study" else f"study/{row['variant']}"


def plot_results(table: pd.DataFrame, path: Path, title: str) -> None:
    fig, ax = figure(1.6 * len(table) + 2, 4)
    x = np.arange(len(table))
    has_ci = "top1_ci_low" in table
    if has_ci:  # 95 % bootstrap intervals over test clips and seeds
        err = np.vstack([table["top1_mean"] - table["top1_ci_low"],
                         table["top1_ci_high"] - table["top1_mean"]])
        top = table["top1_ci_high"]
    else:
        err, top = table["top1_std"], table["top1_mean"] + table["top1_std"]
    ax.bar(x, table["top1_mean"], yerr=err, capsize=4,
           color=[color(i) for i in range(len(table))])
    for i, (m, t) in enumerate(zip(table["top1_mean"], top, strict=True)):
        ax.text(i, t + 0.01, f"{m:.3f}", ha="center", fontsize=8)
    ax.set_xticks(x, table["variant"], rotation=15, ha="right", fontsize=8)
    ax.set_ylabel("test top-1 (mean; bars: 95 % CI)" if has_ci
                  else "test top-1 accuracy (mean ± std over seeds)")
    ax.set_ylim(0, 1.05)
    ax.set_title(title, fontsize=9)
    save_png(fig, path)


def _record(catalog: Catalog, experiment_id: str, table: pd.DataFrame,
            runs: str | None, title: str, study: pd.DataFrame | None = None,
            labels: pd.DataFrame | None = None,
            per_class: tuple[pd.DataFrame, dict[str, Any]] | None = None) -> ExperimentResult:
    """Tables, CSVs and plots of the finished plan, and the experiment's metrics (its
    run is finished by :func:`run_experiment_plan`, with the results CSV)."""
    folder = runs_root(runs) / experiment_id
    folder.mkdir(parents=True, exist_ok=True)
    adjusted, comparisons = adjust_as_one_family({"main": table, "study": study,
                                                  "labels": labels})
    table, study, labels = adjusted["main"], adjusted["study"], adjusted["labels"]
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
    by_class, found = per_class if per_class is not None else (None, {})
    if by_class is not None:
        by_class.to_csv(folder / "per_class.csv", index=False)
        plot_gains(by_class, folder / "per_class.png", title + " - per class")
        log_metrics(catalog, experiment_id, per_class_metrics(by_class, found), split="test")
    return ExperimentResult(experiment_id, table, plot, csv, study, label_table=labels,
                            label_plot=label_plot, comparisons=comparisons,
                            per_class=by_class, correlations=found)


def _table_metrics(frame: pd.DataFrame, prefix: str) -> dict[str, float]:
    extra = [c for c in ("top1_ci_low", "top1_ci_high", "delta_vs_vision", "delta_ci_low",
                         "delta_ci_high", "p_vs_vision", "p_adjusted", "recovery",
                         "recovery_ci_low", "recovery_ci_high", "delta_vs_control",
                         "control_ci_low", "control_ci_high", "p_vs_control",
                         "p_control_adjusted") if c in frame]
    values: dict[str, float] = {}
    for row in frame.to_dict("records"):
        values.update({f"{prefix}{row['variant']}/{m}_{s}": row[f"{m}_{s}"]
                       for m in METRICS for s in ("mean", "std")})
        values.update({f"{prefix}{row['variant']}/{c}": row[c] for c in extra
                       if pd.notna(row[c])})
    return values


@dataclass
class ExperimentOptions:
    """How an experiment runs (not what it computes: the numbers do not depend on it)."""

    workers: int | None = None  # trainings side by side [every core]
    dry_run: bool = False
    progress: bool = True
    device: str = "auto"  # auto: CUDA where it is
    # bytes of features one training may hold in memory; past it, streamed (a batch
    # order of its own: recorded in that training's run) [a share of what is free]
    memory_budget: int | None = None


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


def _start_experiment(catalog: Catalog, experiment_id: str, kind: str, params: dict,
                      query: ClipQuery) -> str:
    if run_row(catalog, experiment_id) is not None:
        return experiment_id  # resumed: reopened by open_experiment
    return start_run(catalog, kind="experiment", arch=kind, params=params, query=query,
                     experiment_id=experiment_id, run_id=experiment_id)


def run_experiment_plan(catalog: Catalog, store: FeatureStore, plan: Plan, *, kind: str,
                        experiment_id: str, params: dict, query: ClipQuery, runs: str | None,
                        options: ExperimentOptions, log: Callable[[str], None],
                        summarise: Callable[[dict[str, Trained]], ExperimentResult]
                        ) -> ExperimentResult | None:
    """Record the plan with the experiment's run, run what is not done yet and
    summarise the outcomes, all in the run's lifecycle; None for a dry run (the plan
    is printed, nothing trained)."""
    device = training_device(options.device)
    counts = plan.counts()
    log(f"experiment {experiment_id}: " + ", ".join(f"{n} {k}" for k, n in counts.items()))
    if options.dry_run:
        return None
    runner = PlanRunner(catalog, store, plan, experiment_id=experiment_id, runs=runs,
                        log=log, progress=options.progress, device=device,
                        memory_budget=options.memory_budget)
    executor = parse_executor(current_executor(), options.workers)
    where = {"executor": executor.describe(), "workers": executor.workers, "device": device}
    with run_lifecycle(catalog, partial(_start_experiment, catalog, experiment_id, kind,
                                        {**params, "plan": counts, "steps": plan.describe(),
                                         **where}, query)) as run:
        reused = runner.resume()
        if reused:
            log(f"  {reused} trainings finished before are reused")
        result = summarise(runner.run(executor))
        run.checkpoint = str(result.csv)
    return result


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


def _svdmap_plan(catalog: Catalog, *, seeds: int, base: ClipQuery, gen_base: ClipQuery,
                 kept_query: ClipQuery, classes: list[str], gspec: GeneratorSpec,
                 cspec: ClassifierSpec, audio: str, cross_fit: int,
                 in_sample_ablation: bool, labels: list[int | str]) -> Plan:
    plan = Plan()
    generated_by_seed = {}
    for seed in range(seeds):
        g = replace(gspec, seed=seed)
        gen_all = generator_steps(plan, catalog, "all", seed, gen_base, g, cross_fit, base)
        gen_kept = generator_steps(plan, catalog, "kept", seed, kept_query, g, cross_fit, base)
        generated_by_seed[seed] = gen_all
        _seed_main_steps(plan, catalog, seed, gen_all, base=base, gen_base=gen_base, gspec=g,
                         cspec=cspec, audio=audio, classes=classes, cross_fit=cross_fit,
                         in_sample_ablation=in_sample_ablation,
                         extra=(("+ filtered generated audio", {"audio": generated(gen_kept)}),))
    label_efficiency_steps(plan, catalog, labels, base=base, seeds=seeds, spec=cspec,
                           audio=audio, generated_by_seed=generated_by_seed, classes=classes,
                           pool=gen_base)
    return plan


def _seed_main_steps(plan: Plan, catalog: Catalog, seed: int, gen: Step, *,
                     base: ClipQuery, gen_base: ClipQuery, gspec: GeneratorSpec,
                     cspec: ClassifierSpec, audio: str, classes: list[str], cross_fit: int,
                     in_sample_ablation: bool,
                     extra: tuple[tuple[str, dict[str, Any]], ...] = ()) -> None:
    """One seed's main table: vision only, + real audio, + generated audio (``gen``'s
    set), the ``extra`` variants, the missing-audio and distillation baselines, and
    the in-sample ablation when asked for."""
    for variant, fields in (("vision only", {"audio": None}),
                            ("+ real audio", {"audio": audio}),
                            ("+ generated audio", {"audio": generated(gen)}), *extra):
        classifier_step(plan, "main", variant, seed, base, replace(cspec, **fields), classes)
    missing_audio_steps(plan, seed, base, cspec, audio, gen, classes)
    distillation_step(plan, seed, base, cspec, classes)
    if in_sample_ablation and cross_fit:
        in_sample = generator_steps(plan, catalog, "all", seed, gen_base, gspec, cross_fit,
                                    base, in_sample=True)
        classifier_step(plan, "main", "+ generated audio (in-sample)", seed, base,
                        replace(cspec, audio=generated(in_sample)), classes)


def _study_steps(plan: Plan, catalog: Catalog, *, seeds: int, study_query: ClipQuery,
                 kept_classes: list[str], gspec: GeneratorSpec, cspec: ClassifierSpec,
                 top_classes: int) -> None:
    """The study's own protocol: generator and classifiers on its top classes only."""
    for seed in range(seeds):
        g = replace(gspec, seed=seed, lr=None, batch_size=None)
        gen = generator_steps(plan, catalog, "study", seed, study_query, g, 0, study_query)
        for variant, audio in ((f"study {top_classes} classes: vision", None),
                               (f"study {top_classes} classes: filtered gen.", generated(gen))):
            classifier_step(plan, "study", variant, seed, study_query,
                            replace(cspec, audio=audio), kept_classes, prefix="study/")


# the spec's entries an SVDMap experiment's run also records at the top of its params
_SVDMAP_PARAMS = ("seeds", "tags", "dictionary", "min_iou", "generator_query",
                  "labels_per_class", "generator_batch_size", "generator_lr", "arch", "epochs",
                  "generator_epochs", "cross_fit", "in_sample_ablation", "generator_hidden",
                  "classifier_hidden", "distill_temperature")


def _iou_filter(catalog: Catalog, experiment_id: str, gen_base: ClipQuery, tags: str,
                dictionary: str, min_iou: float, log: Callable[[str], None]
                ) -> tuple[FilterResult, str, str]:
    """The clip-level IoU filter of the experiment, stored under its name; returns its
    decisions, its name and the query of the generator clips it keeps."""
    decisions = decide(clip_ious(load_tags(catalog, tags), load_dictionary(catalog, dictionary)),
                       mode="clip", min_iou=min_iou)
    filter_name = f"{experiment_id}/iou>={min_iou:g}"
    store_decisions(catalog, filter_name, decisions.decisions)
    kept_query = gen_base.narrowed(kept_by=filter_name)
    n_kept = int((clips_of(catalog, kept_query)["split"] == "train").sum())
    if n_kept == 0:
        raise UsageError(f"the IoU filter (>= {min_iou}) keeps no train clip; lower --min-iou")
    log(f"experiment {experiment_id}: filter keeps {n_kept} train clips")
    return decisions, filter_name, kept_query


def _study_variant(plan: Plan, catalog: Catalog, decisions: FilterResult, base: ClipQuery, *,
                   seeds: int, top_classes: int, gspec: GeneratorSpec, cspec: ClassifierSpec
                   ) -> None:
    """The study's class-level filter: the top classes by mean IoU, apart."""
    class_level = decide(decisions.decisions[["clip_key", "class_name", "iou"]],
                         mode="class", top_classes=top_classes)
    kept_classes = sorted(class_level.class_means.index[:top_classes])
    _study_steps(plan, catalog, seeds=seeds,
                 study_query=base.narrowed(classes=tuple(kept_classes)),
                 kept_classes=kept_classes, gspec=gspec, cspec=cspec, top_classes=top_classes)


def svdmap_experiment(
    catalog: Catalog, store: FeatureStore, *, query: str = SPLIT_CLIPS, seeds: int = 3,
    tags: str, dictionary: str, min_iou: float = 0.2, arch: str = "lstm", epochs: int = 10,
    generator_epochs: int = 10, rgb: str = "rgb/hog-color", flow: str = "flow/flow-hist",
    audio: str = "audio/ast-fbank", study_variant: bool = False, top_classes: int = 5,
    cross_fit: int = 3, in_sample_ablation: bool = False, generator_query: str | None = None,
    labels_per_class: str | None = None, generator_batch_size: int | None = None,
    generator_lr: float | None = None, generator_hidden: int = 512,
    classifier_hidden: int | None = None, distill_temperature: float = 2.0,
    runs: str | None = None,
    log: Callable[[str], None] = print, options: ExperimentOptions | None = None,
) -> ExperimentResult | None:
    """Vision only / + real audio / + generated / + filtered generated, same test clips.

    The generators learn from ``generator_query``'s clips (any clips with audio; by
    default the classifier's), the classifiers from ``query``'s.

    "Filtered generated": the generator learns only from IoU-kept *train* clips; the
    classifier still trains on all train clips (with that generator's audio) and is
    tested on all test clips.  The filter needs each clip's class, so it can only
    select training data.

    SVDMap's own parameters: ``tags`` (the AST tags of the real audio, by source
    name), ``dictionary`` (the semantic dictionary), ``min_iou`` (the keep/drop
    threshold), ``study_variant`` with ``top_classes`` (the study's class-level
    filter, as a separate table).

    Parameters shared with :func:`cafmap_experiment`:

    * ``query``: SQL over the catalog giving the classifiers' clips (clip_key,
      class_name, split); ``generator_query``: the generators' clips (default: the
      same).
    * ``seeds``: repetitions; each seed retrains every generator and classifier.
    * ``arch``: the classifier, ``lstm`` or ``mlp``; ``epochs``, ``classifier_hidden``
      (None: the study's width) and, for CAFMap, ``classifier_lr``.
    * ``generator_epochs``, ``generator_batch_size``, ``generator_lr`` (None: the
      study's), ``generator_hidden``: the generator's training.
    * ``rgb``, ``flow``, ``audio``: the feature sets the variants read.
    * ``cross_fit``: folds whose generators give the train clips out-of-sample audio
      (0: one generator, in sample); ``in_sample_ablation`` adds that variant too.
    * ``labels_per_class``: e.g. ``"2,5,all"``, the label-efficiency table (None:
      none).
    * ``distill_temperature``: the temperature of the distilled student.
    * ``runs``: the folder for the tables and plots; ``log``: where progress lines
      go; ``options``: how the plan runs (:class:`ExperimentOptions`: it
      changes no number).
    """
    spec = experiment_spec(locals())
    options = options or ExperimentOptions()
    check_feature_sets(store, {"rgb": rgb, "flow": flow, "audio": audio})
    experiment_id = open_experiment(catalog, "svdmap", spec, log)
    base = with_features(query, [rgb, flow, audio])
    gen_base = with_features(generator_query, [rgb, flow, audio]) if generator_query else base
    decisions, filter_name, kept_query = _iou_filter(catalog, experiment_id, gen_base, tags,
                                                     dictionary, min_iou, log)
    classes = sorted(clips_of(catalog, base)["class_name"].unique())
    gspec = GeneratorSpec(arch="svdmap", rgb=rgb, flow=flow, audio=audio,
                          epochs=generator_epochs, lr=generator_lr,
                          batch_size=generator_batch_size, hidden=generator_hidden)
    cspec = ClassifierSpec(arch=arch, rgb=rgb, flow=flow, epochs=epochs,
                           hidden=classifier_hidden, temperature=distill_temperature)
    plan = _svdmap_plan(catalog, seeds=seeds, base=base, gen_base=gen_base,
                        kept_query=kept_query, classes=classes, gspec=gspec, cspec=cspec,
                        audio=audio, cross_fit=cross_fit,
                        in_sample_ablation=in_sample_ablation,
                        labels=parse_labels(labels_per_class))
    if study_variant:
        _study_variant(plan, catalog, decisions, base, seeds=seeds, top_classes=top_classes,
                       gspec=gspec, cspec=cspec)
    params = {**{name: spec[name] for name in _SVDMAP_PARAMS}, "filter": filter_name,
              "feature_sets": [rgb, flow, audio], "spec": spec}
    return run_experiment_plan(
        catalog, store, plan, kind="svdmap", experiment_id=experiment_id, params=params,
        query=base, runs=runs, options=options, log=log,
        summarise=lambda outcomes: _record(
            catalog, experiment_id, tables_of(plan, outcomes, "main"), runs,
            f"SVDMap {experiment_id} ({seeds} seeds, same test clips)",
            tables_of(plan, outcomes, "study"), label_table(plan, outcomes, log),
            per_class_of(plan, outcomes, decisions.class_means)))


def cafmap_experiment(
    catalog: Catalog, store: FeatureStore, *, condition: str, query: str = SPLIT_CLIPS,
    seeds: int = 3, arch: str = "mlp", epochs: int = 10, generator_epochs: int = 10,
    rgb: str = "rgb/hog-color", flow: str = "flow/flow-hist", audio: str = "audio/ast-fbank",
    classifier_lr: float | None = None, generator_lr: float | None = None,
    cross_fit: int = 3, in_sample_ablation: bool = False, generator_query: str | None = None,
    labels_per_class: str | None = None, generator_batch_size: int | None = None,
    generator_hidden: int = 512, classifier_hidden: int | None = None,
    distill_temperature: float = 2.0,
    runs: str | None = None, log: Callable[[str], None] = print,
    options: ExperimentOptions | None = None,
) -> ExperimentResult | None:
    """Vision only / + real audio / + audio generated from caption conditions
    (cross-fitted for the train clips unless ``cross_fit`` is 0).

    ``condition``: the condition set the generator reads; the other parameters are
    :func:`svdmap_experiment`'s."""
    spec = experiment_spec(locals())
    options = options or ExperimentOptions()
    check_feature_sets(store, {"rgb": rgb, "flow": flow, "audio": audio,
                               "condition": condition})
    experiment_id = open_experiment(catalog, "cafmap", spec, log)
    base = with_features(query, [rgb, flow, audio, condition])
    gen_base = (with_features(generator_query, [rgb, flow, audio, condition])
                if generator_query else base)
    clips = clips_of(catalog, base)
    classes = sorted(clips["class_name"].unique())
    log(f"experiment {experiment_id}: {len(clips)} clips")
    gspec = GeneratorSpec(arch="cafmap", condition=condition, audio=audio,
                          epochs=generator_epochs, lr=generator_lr,
                          batch_size=generator_batch_size, hidden=generator_hidden)
    cspec = ClassifierSpec(arch=arch, rgb=rgb, flow=flow, epochs=epochs, lr=classifier_lr,
                           hidden=classifier_hidden, temperature=distill_temperature)
    plan = _cafmap_plan(catalog, seeds=seeds, base=base, gen_base=gen_base, classes=classes,
                        gspec=gspec, cspec=cspec, audio=audio, cross_fit=cross_fit,
                        in_sample_ablation=in_sample_ablation,
                        labels=parse_labels(labels_per_class))
    params = {"seeds": seeds, "condition": condition, "generator_query": generator_query,
              "labels_per_class": labels_per_class, "arch": arch, "epochs": epochs,
              "generator_epochs": generator_epochs, "generator_lr": generator_lr,
              "generator_batch_size": generator_batch_size, "cross_fit": cross_fit,
              "in_sample_ablation": in_sample_ablation, "feature_sets": [rgb, flow, audio],
              "classifier_lr": classifier_lr, "generator_hidden": generator_hidden,
              "classifier_hidden": classifier_hidden,
              "distill_temperature": distill_temperature, "spec": spec}
    return run_experiment_plan(
        catalog, store, plan, kind="cafmap", experiment_id=experiment_id, params=params,
        query=base, runs=runs, options=options, log=log,
        summarise=lambda outcomes: _record(
            catalog, experiment_id, tables_of(plan, outcomes, "main"), runs,
            f"CAFMap {experiment_id} ({seeds} seeds, same test clips)",
            labels=label_table(plan, outcomes, log), per_class=per_class_of(plan, outcomes)))


def _cafmap_plan(catalog: Catalog, *, seeds: int, base: ClipQuery, gen_base: ClipQuery,
                 classes: list[str], gspec: GeneratorSpec, cspec: ClassifierSpec, audio: str,
                 cross_fit: int, in_sample_ablation: bool, labels: list[int | str]) -> Plan:
    plan = Plan()
    generated_by_seed = {}
    for seed in range(seeds):
        g = replace(gspec, seed=seed)
        gen = generator_steps(plan, catalog, "all", seed, gen_base, g, cross_fit, base)
        generated_by_seed[seed] = gen
        _seed_main_steps(plan, catalog, seed, gen, base=base, gen_base=gen_base, gspec=g,
                         cspec=cspec, audio=audio, classes=classes, cross_fit=cross_fit,
                         in_sample_ablation=in_sample_ablation)
    label_efficiency_steps(plan, catalog, labels, base=base, seeds=seeds, spec=cspec,
                           audio=audio, generated_by_seed=generated_by_seed, classes=classes,
                           pool=gen_base)
    return plan
