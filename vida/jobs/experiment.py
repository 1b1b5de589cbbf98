"""Experiments: the comparison tables of the method, done right.

Every variant of one experiment is trained on the same training clips (unless the
variant is *about* selecting training clips), selected on the same val clips, and
evaluated on the **same test clips**, over several seeds; mean and std are stored
under one experiment id (a ``runs`` row of kind ``experiment``; its training runs
carry the id in ``experiment_id``), printed, and plotted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from vida.catalog.database import Catalog
from vida.catalog.records.dictionaries import load_dictionary
from vida.catalog.records.filters import store_decisions
from vida.catalog.records.tags import load_tags
from vida.jobs.classifier import ClassifierSpec, train_classifier
from vida.jobs.generator import GeneratorSpec, generate, train_generator
from vida.jobs.runs import finish_run, log_metrics, new_run_id, start_run
from vida.jobs.training import runs_root
from vida.semantics.iou_filter import clip_ious, decide
from vida.store.store import FeatureStore

DEFAULT_QUERY = ("SELECT clip_key, class_name, split FROM clips "
                 "WHERE split IS NOT NULL AND status <> 'failed'")
METRICS = ("top1", "top5", "macro_f1")


@dataclass
class ExperimentResult:
    experiment_id: str
    table: pd.DataFrame  # variant, n_test, <metric>_mean, <metric>_std
    plot: Path
    csv: Path
    study_table: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)


def with_features(query: str, sets: list[str]) -> str:
    """Restrict a clip query to clips that have every feature set (same clips for all)."""
    have = " AND ".join(
        f"clip_key IN (SELECT clip_key FROM features WHERE feature_set = '{s}')" for s in sets)
    inner = query.strip().rstrip(";")
    return f"SELECT clip_key, class_name, split FROM ({inner}) AS q WHERE {have}"


def summarise(results: dict[str, list[dict]]) -> pd.DataFrame:
    rows = []
    for variant, runs in results.items():
        row = {"variant": variant, "seeds": len(runs), "n_test": int(runs[0]["n_test"])}
        for m in METRICS:
            values = np.array([r[m] for r in runs])
            row[f"{m}_mean"] = float(values.mean())
            row[f"{m}_std"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        rows.append(row)
    return pd.DataFrame(rows)


def plot_results(table: pd.DataFrame, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1.6 * len(table) + 2, 4))
    x = np.arange(len(table))
    ax.bar(x, table["top1_mean"], yerr=table["top1_std"], capsize=4,
           color=plt.cm.tab10(np.arange(len(table))))
    for i, (m, s) in enumerate(zip(table["top1_mean"], table["top1_std"], strict=True)):
        ax.text(i, m + s + 0.01, f"{m:.3f}", ha="center", fontsize=8)
    ax.set_xticks(x, table["variant"], rotation=15, ha="right", fontsize=8)
    ax.set_ylabel("test top-1 accuracy (mean ± std over seeds)")
    ax.set_ylim(0, 1.05)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _record(catalog: Catalog, experiment_id: str, kind: str, params: dict, query: str,
            table: pd.DataFrame, runs: str | None, title: str,
            study: pd.DataFrame | None = None) -> ExperimentResult:
    folder = runs_root(runs) / experiment_id
    folder.mkdir(parents=True, exist_ok=True)
    csv = folder / "results.csv"
    table.to_csv(csv, index=False)
    plot = folder / "results.png"
    plot_results(table, plot, title)
    if study is not None:
        study.to_csv(folder / "study_class_level.csv", index=False)
        plot_results(study, folder / "study_class_level.png", title + " - study class-level")
    start_run(catalog, kind="experiment", arch=kind, params=params, query=query,
              experiment_id=experiment_id, run_id=experiment_id)
    for frame, prefix in ((table, ""), (study, "study/")):
        if frame is None:
            continue
        for row in frame.itertuples(index=False):
            log_metrics(catalog, experiment_id, {
                f"{prefix}{row.variant}/{m}_{s}": getattr(row, f"{m}_{s}")
                for m in METRICS for s in ("mean", "std")}, split="test")
    finish_run(catalog, experiment_id, checkpoint=str(csv))
    return ExperimentResult(experiment_id, table, plot, csv, study)


def svdmap_experiment(
    catalog: Catalog, store: FeatureStore, *, query: str = DEFAULT_QUERY, seeds: int = 3,
    tags: str, dictionary: str, min_iou: float = 0.2, arch: str = "lstm", epochs: int = 10,
    generator_epochs: int = 10, rgb: str = "rgb/hog-color", flow: str = "flow/flow-hist",
    audio: str = "audio/ast-fbank", study_variant: bool = False, top_classes: int = 5,
    runs: str | None = None, log: Callable[[str], None] = print,
) -> ExperimentResult:
    """Vision only / + real audio / + generated / + filtered generated, same test clips.

    "Filtered generated": the generator learns only from IoU-kept *train* clips; the
    classifier still trains on all train clips (with that generator's audio) and is
    tested on all test clips.  The filter needs each clip's class, so it can only
    select training data.
    """
    experiment_id = new_run_id("svdmap")
    base = with_features(query, [rgb, flow, audio])
    decisions = decide(clip_ious(load_tags(catalog, tags), load_dictionary(catalog, dictionary)),
                       mode="clip", min_iou=min_iou)
    filter_name = f"{experiment_id}/iou>={min_iou:g}"
    store_decisions(catalog, filter_name, decisions.decisions)
    kept_query = (f"{base} AND (split <> 'train' OR clip_key IN (SELECT clip_key FROM "
                  f"filter_decisions WHERE filter_name = '{filter_name}' AND keep))")
    n_kept = len(catalog.sql(f"SELECT * FROM ({kept_query}) k WHERE split = 'train'"))
    if n_kept == 0:
        raise ValueError(f"the IoU filter (>= {min_iou}) keeps no train clip; lower --min-iou")
    log(f"experiment {experiment_id}: filter keeps {n_kept} train clips")
    classes = sorted(catalog.sql(base)["class_name"].unique())
    results: dict[str, list[dict]] = {}

    def classify(variant: str, seed: int, audio_set: str | None, q: str = base,
                 cls: list[str] = classes) -> None:
        spec = ClassifierSpec(arch=arch, rgb=rgb, flow=flow, audio=audio_set, epochs=epochs,
                              seed=seed, variant=variant)
        _, metrics = train_classifier(catalog, store, q, spec, classes=cls,
                                      experiment_id=experiment_id, runs=runs, progress=False)
        results.setdefault(variant, []).append(metrics)
        log(f"  seed {seed} {variant:<28} test top-1 {metrics['top1']:.3f}")

    for seed in range(seeds):
        gspec = GeneratorSpec(arch="svdmap", rgb=rgb, flow=flow, audio=audio,
                              epochs=generator_epochs, seed=seed)
        g_all = train_generator(catalog, store, base, gspec, experiment_id=experiment_id,
                                runs=runs, progress=False)
        g_kept = train_generator(catalog, store, kept_query, gspec, experiment_id=experiment_id,
                                 runs=runs, progress=False)
        gen_all = generate(catalog, store, g_all, base)
        gen_kept = generate(catalog, store, g_kept, base)
        classify("vision only", seed, None)
        classify("+ real audio", seed, audio)
        classify("+ generated audio", seed, gen_all)
        classify("+ filtered generated audio", seed, gen_kept)

    study = None
    if study_variant:
        class_level = decide(decisions.decisions[["clip_key", "class_name", "iou"]],
                             mode="class", top_classes=top_classes)
        kept_classes = sorted(class_level.class_means.index[:top_classes])
        in_classes = ", ".join(f"'{c}'" for c in kept_classes)
        study_query = f"{base} AND class_name IN ({in_classes})"
        study_results, results_main = {}, results
        results = study_results
        for seed in range(seeds):
            gspec = GeneratorSpec(arch="svdmap", rgb=rgb, flow=flow, audio=audio,
                                  epochs=generator_epochs, seed=seed)
            g = train_generator(catalog, store, study_query, gspec, experiment_id=experiment_id,
                                runs=runs, progress=False)
            gen = generate(catalog, store, g, study_query)
            classify(f"study {top_classes} classes: vision", seed, None, study_query,
                     kept_classes)
            classify(f"study {top_classes} classes: filtered gen.", seed, gen, study_query,
                     kept_classes)
        study = summarise(study_results)
        results = results_main
    table = summarise(results)
    params = {"seeds": seeds, "tags": tags, "dictionary": dictionary, "min_iou": min_iou,
              "arch": arch, "epochs": epochs, "generator_epochs": generator_epochs,
              "filter": filter_name, "feature_sets": [rgb, flow, audio]}
    return _record(catalog, experiment_id, "svdmap", params, base, table, runs,
                   f"SVDMap {experiment_id} ({seeds} seeds, same test clips)", study)


def cafmap_experiment(
    catalog: Catalog, store: FeatureStore, *, condition: str, query: str = DEFAULT_QUERY,
    seeds: int = 3, arch: str = "mlp", epochs: int = 10, generator_epochs: int = 10,
    rgb: str = "rgb/hog-color", flow: str = "flow/flow-hist", audio: str = "audio/ast-fbank",
    classifier_lr: float | None = None, generator_lr: float | None = None,
    runs: str | None = None, log: Callable[[str], None] = print,
) -> ExperimentResult:
    """Vision only / + real audio / + audio generated from caption conditions."""
    experiment_id = new_run_id("cafmap")
    base = with_features(query, [rgb, flow, audio, condition])
    classes = sorted(catalog.sql(base)["class_name"].unique())
    results: dict[str, list[dict]] = {}
    log(f"experiment {experiment_id}: {len(catalog.sql(base))} clips")

    def classify(variant: str, seed: int, audio_set: str | None) -> None:
        spec = ClassifierSpec(arch=arch, rgb=rgb, flow=flow, audio=audio_set, epochs=epochs,
                              seed=seed, variant=variant, lr=classifier_lr)
        _, metrics = train_classifier(catalog, store, base, spec, classes=classes,
                                      experiment_id=experiment_id, runs=runs, progress=False)
        results.setdefault(variant, []).append(metrics)
        log(f"  seed {seed} {variant:<22} test top-1 {metrics['top1']:.3f}")

    for seed in range(seeds):
        gspec = GeneratorSpec(arch="cafmap", condition=condition, audio=audio,
                              epochs=generator_epochs, seed=seed, lr=generator_lr)
        generator = train_generator(catalog, store, base, gspec, experiment_id=experiment_id,
                                    runs=runs, progress=False)
        generated = generate(catalog, store, generator, base)
        classify("vision only", seed, None)
        classify("+ real audio", seed, audio)
        classify("+ generated audio", seed, generated)
    table = summarise(results)
    params = {"seeds": seeds, "condition": condition, "arch": arch, "epochs": epochs,
              "generator_epochs": generator_epochs, "feature_sets": [rgb, flow, audio]}
    return _record(catalog, experiment_id, "cafmap", params, base, table, runs,
                   f"CAFMap {experiment_id} ({seeds} seeds, same test clips)")
