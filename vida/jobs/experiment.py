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
from typing import Any

import numpy as np
import pandas as pd

from vida.catalog.database import Catalog
from vida.catalog.records import json_column
from vida.catalog.records.dictionaries import load_dictionary
from vida.catalog.records.filters import store_decisions
from vida.catalog.records.tags import load_tags
from vida.jobs.classifier import ClassifierSpec, train_classifier
from vida.jobs.generator import GeneratorSpec, cross_fit_generate, generate, train_generator
from vida.jobs.label_efficiency import parse_labels, plot_label_efficiency, run_label_efficiency
from vida.jobs.runs import finish_run, log_metrics, new_run_id, start_run
from vida.jobs.training import runs_root
from vida.semantics.iou_filter import clip_ious, decide
from vida.stats import accuracy_interval, paired_difference
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
    label_table: pd.DataFrame | None = None  # accuracy vs labelled clips per class
    label_plot: Path | None = None


def with_features(query: str, sets: list[str]) -> str:
    """Restrict a clip query to clips that have every feature set (same clips for all)."""
    have = " AND ".join(
        f"clip_key IN (SELECT clip_key FROM features WHERE feature_set = '{s}')" for s in sets)
    inner = query.strip().rstrip(";")
    return f"SELECT clip_key, class_name, split FROM ({inner}) AS q WHERE {have}"


BASELINE = "vision only"


def check_feature_sets(store: FeatureStore, sets: dict[str, str]) -> None:
    """Every set named exists and all share one T: one line, before any training."""
    steps = {}
    for option, name in sets.items():
        if not store.exists(name):
            raise ValueError(f"--{option} {name}: no such feature set (list them with "
                             "`vida-batch status`; `vida-batch encode` adds sets)")
        steps[option] = store.info(name).shape[0]
    if len(set(steps.values())) > 1:
        found = ", ".join(f"--{o} {sets[o]} has T={t}" for o, t in steps.items())
        raise ValueError(f"the feature sets are on different time grids ({found}); encode "
                         "them on one grid (`vida-batch encode --grid-from`)")


def experiment_spec(arguments: dict[str, Any]) -> dict[str, Any]:
    """An experiment's own arguments (what ``experiment rerun`` calls it with again)."""
    return {k: v for k, v in arguments.items() if k not in ("catalog", "store", "log", "runs")}


def rerun_experiment(catalog: Catalog, store: FeatureStore, run_id: str, *,
                     runs: str | None = None, log: Callable[[str], None] = print
                     ) -> ExperimentResult:
    """Run experiment ``run_id`` again with the spec it recorded."""
    frame = catalog.sql("SELECT kind, arch, params FROM runs WHERE run_id = :r", {"r": run_id})
    if frame.empty or frame["kind"][0] != "experiment":
        raise ValueError(f"{run_id}: no experiment run of that id (list them with `vida-batch "
                         "sql \"SELECT run_id, arch FROM runs WHERE kind = 'experiment'\"`)")
    spec = json_column(frame["params"][0]).get("spec")
    if spec is None:
        raise ValueError(f"{run_id} was recorded before experiments stored their spec; run "
                         "it again with its options")
    run = {"svdmap": svdmap_experiment, "cafmap": cafmap_experiment}[frame["arch"][0]]
    return run(catalog, store, **spec, runs=runs, log=log)


def test_correctness(catalog: Catalog, run_id: str) -> np.ndarray:
    """A classifier run's test clips, in clip_key order: 1 where it was right."""
    frame = catalog.sql("SELECT clip_key, pred_class = true_class AS ok FROM predictions "
                        "WHERE run_id = :r AND split = 'test' ORDER BY clip_key", {"r": run_id})
    return frame["ok"].to_numpy(dtype=float)


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
        rows.append(row)
    return pd.DataFrame(rows)


def plot_results(table: pd.DataFrame, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1.6 * len(table) + 2, 4))
    x = np.arange(len(table))
    has_ci = "top1_ci_low" in table
    if has_ci:  # 95 % bootstrap intervals over test clips and seeds
        err = np.vstack([table["top1_mean"] - table["top1_ci_low"],
                         table["top1_ci_high"] - table["top1_mean"]])
        top = table["top1_ci_high"]
    else:
        err, top = table["top1_std"], table["top1_mean"] + table["top1_std"]
    ax.bar(x, table["top1_mean"], yerr=err, capsize=4,
           color=plt.cm.tab10(np.arange(len(table)) % 10))
    for i, (m, t) in enumerate(zip(table["top1_mean"], top, strict=True)):
        ax.text(i, t + 0.01, f"{m:.3f}", ha="center", fontsize=8)
    ax.set_xticks(x, table["variant"], rotation=15, ha="right", fontsize=8)
    ax.set_ylabel("test top-1 (mean; bars: 95 % CI)" if has_ci
                  else "test top-1 accuracy (mean ± std over seeds)")
    ax.set_ylim(0, 1.05)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def missing_audio(classify: Callable[..., None], seed: int, audio: str, generated: str) -> None:
    """The deployment case: trained with real audio, tested without it.  Generated audio
    in its place (after plain or modality-dropout training), beside the stand-ins peers
    use: zeros, and the train clips' mean audio."""
    classify("real-trained, generated at test", seed, audio, test_audio=generated)
    classify("dropout-trained, generated at test", seed, audio, test_audio=generated,
             audio_dropout=generated)
    classify("real-trained, zeros at test", seed, audio, test_audio="zeros")
    classify("real-trained, mean at test", seed, audio, test_audio="train-mean")


def _record(catalog: Catalog, experiment_id: str, kind: str, params: dict, query: str,
            table: pd.DataFrame, runs: str | None, title: str,
            study: pd.DataFrame | None = None, labels: pd.DataFrame | None = None
            ) -> ExperimentResult:
    folder = runs_root(runs) / experiment_id
    folder.mkdir(parents=True, exist_ok=True)
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
        frames += [(group, f"labels={n}/") for n, group in labels.groupby("labels_per_class",
                                                                            sort=False)]
    start_run(catalog, kind="experiment", arch=kind, params=params, query=query,
              experiment_id=experiment_id, run_id=experiment_id)
    for frame, prefix in frames:
        if frame is None:
            continue
        extra = [c for c in ("top1_ci_low", "top1_ci_high", "delta_vs_vision", "delta_ci_low",
                             "delta_ci_high", "p_vs_vision") if c in frame]
        for row in frame.to_dict("records"):
            values = {f"{prefix}{row['variant']}/{m}_{s}": row[f"{m}_{s}"]
                      for m in METRICS for s in ("mean", "std")}
            values.update({f"{prefix}{row['variant']}/{c}": row[c] for c in extra
                           if pd.notna(row[c])})
            log_metrics(catalog, experiment_id, values, split="test")
    finish_run(catalog, experiment_id, checkpoint=str(csv))
    return ExperimentResult(experiment_id, table, plot, csv, study, label_table=labels,
                            label_plot=label_plot)


def _label_efficiency(catalog: Catalog, store: FeatureStore, labels: str | None, *, base: str,
                      classes: list[str], seeds: int, generated: dict[int, str], audio: str,
                      spec: dict, experiment_id: str, runs: str | None,
                      log: Callable[[str], None], known: tuple[dict, dict]
                      ) -> pd.DataFrame | None:
    counts = parse_labels(labels)
    if not counts:
        return None
    log("label efficiency: vision only / + generated / + real audio / generated audio only")
    return run_label_efficiency(
        catalog, store, base=base, classes=classes, labels=counts, seeds=seeds,
        # "generated audio only": the generator as a learned representation of the
        # frames (it predicts the sound, which it learned from every clip with audio),
        # to see whether that representation needs fewer labels than the frames do
        variants={"vision only": lambda seed: {"audio": None},
                  "+ generated audio": lambda seed: {"audio": generated[seed]},
                  "+ real audio": lambda seed: {"audio": audio},
                  "generated audio only": lambda seed: {"audio": generated[seed],
                                                        "vision": False}},
        spec=spec, experiment_id=experiment_id, runs=runs, summarise=summarise,
        correctness=test_correctness, log=log, known=known)


def svdmap_experiment(
    catalog: Catalog, store: FeatureStore, *, query: str = DEFAULT_QUERY, seeds: int = 3,
    tags: str, dictionary: str, min_iou: float = 0.2, arch: str = "lstm", epochs: int = 10,
    generator_epochs: int = 10, rgb: str = "rgb/hog-color", flow: str = "flow/flow-hist",
    audio: str = "audio/ast-fbank", study_variant: bool = False, top_classes: int = 5,
    cross_fit: int = 3, in_sample_ablation: bool = False, generator_query: str | None = None,
    labels_per_class: str | None = None, generator_batch_size: int | None = None,
    generator_lr: float | None = None, runs: str | None = None,
    log: Callable[[str], None] = print,
) -> ExperimentResult:
    """Vision only / + real audio / + generated / + filtered generated, same test clips.

    The generators learn from ``generator_query``'s clips (any clips with audio; by
    default the classifier's), the classifiers from ``query``'s.

    "Filtered generated": the generator learns only from IoU-kept *train* clips; the
    classifier still trains on all train clips (with that generator's audio) and is
    tested on all test clips.  The filter needs each clip's class, so it can only
    select training data.
    """
    spec = experiment_spec(locals())
    check_feature_sets(store, {"rgb": rgb, "flow": flow, "audio": audio})
    experiment_id = new_run_id("svdmap")
    base = with_features(query, [rgb, flow, audio])
    gen_base = with_features(generator_query, [rgb, flow, audio]) if generator_query else base
    decisions = decide(clip_ious(load_tags(catalog, tags), load_dictionary(catalog, dictionary)),
                       mode="clip", min_iou=min_iou)
    filter_name = f"{experiment_id}/iou>={min_iou:g}"
    store_decisions(catalog, filter_name, decisions.decisions)
    kept_query = (f"{gen_base} AND (split <> 'train' OR clip_key IN (SELECT clip_key FROM "
                  f"filter_decisions WHERE filter_name = '{filter_name}' AND keep))")
    n_kept = len(catalog.sql(f"SELECT * FROM ({kept_query}) k WHERE split = 'train'"))
    if n_kept == 0:
        raise ValueError(f"the IoU filter (>= {min_iou}) keeps no train clip; lower --min-iou")
    log(f"experiment {experiment_id}: filter keeps {n_kept} train clips")
    classes = sorted(catalog.sql(base)["class_name"].unique())
    results: dict[str, list[dict]] = {}
    correct: dict[str, list[np.ndarray]] = {}

    def classify(variant: str, seed: int, audio_set: str | None, q: str = base,
                 cls: list[str] = classes, **missing: str) -> None:
        spec = ClassifierSpec(arch=arch, rgb=rgb, flow=flow, audio=audio_set, epochs=epochs,
                              seed=seed, variant=variant, **missing)
        run_id, metrics = train_classifier(catalog, store, q, spec, classes=cls,
                                           experiment_id=experiment_id, runs=runs,
                                           progress=False)
        results.setdefault(variant, []).append(metrics)
        correct.setdefault(variant, []).append(test_correctness(catalog, run_id))
        log(f"  seed {seed} {variant:<28} test top-1 {metrics['top1']:.3f}")

    generated_sets: dict[int, str] = {}

    def generated(run_id: str) -> str:
        """Cross-fitted generations for the train clips (the default), or in-sample."""
        if cross_fit:
            return cross_fit_generate(catalog, store, run_id, cross_fit, base, runs=runs,
                                      experiment_id=experiment_id)
        return generate(catalog, store, run_id, base)

    for seed in range(seeds):
        gspec = GeneratorSpec(arch="svdmap", rgb=rgb, flow=flow, audio=audio,
                              epochs=generator_epochs, seed=seed, lr=generator_lr,
                              batch_size=generator_batch_size)
        g_all = train_generator(catalog, store, gen_base, gspec, experiment_id=experiment_id,
                                runs=runs, progress=False)
        g_kept = train_generator(catalog, store, kept_query, gspec, experiment_id=experiment_id,
                                 runs=runs, progress=False)
        gen_all = generated(g_all)
        gen_kept = generated(g_kept)
        generated_sets[seed] = gen_all
        classify("vision only", seed, None)
        classify("+ real audio", seed, audio)
        classify("+ generated audio", seed, gen_all)
        classify("+ filtered generated audio", seed, gen_kept)
        missing_audio(classify, seed, audio, gen_all)
        if in_sample_ablation and cross_fit:
            classify("+ generated audio (in-sample)", seed, generate(catalog, store, g_all, base))

    study = None
    if study_variant:
        class_level = decide(decisions.decisions[["clip_key", "class_name", "iou"]],
                             mode="class", top_classes=top_classes)
        kept_classes = sorted(class_level.class_means.index[:top_classes])
        in_classes = ", ".join(f"'{c}'" for c in kept_classes)
        study_query = f"{base} AND class_name IN ({in_classes})"
        study_results, results_main = {}, results
        study_correct, correct_main = {}, correct
        results, correct = study_results, study_correct
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
        study = summarise(study_results, study_correct)
        results, correct = results_main, correct_main
    table = summarise(results, correct)
    label_table = _label_efficiency(
        catalog, store, labels_per_class, base=base, classes=classes, seeds=seeds,
        generated=generated_sets, audio=audio, experiment_id=experiment_id, runs=runs, log=log,
        spec={"arch": arch, "rgb": rgb, "flow": flow, "epochs": epochs},
        known=(results, correct))
    params = {"seeds": seeds, "tags": tags, "dictionary": dictionary, "min_iou": min_iou,
              "generator_query": generator_query, "labels_per_class": labels_per_class,
              "generator_batch_size": generator_batch_size, "generator_lr": generator_lr,
              "arch": arch, "epochs": epochs, "generator_epochs": generator_epochs,
              "cross_fit": cross_fit, "in_sample_ablation": in_sample_ablation,
              "filter": filter_name, "feature_sets": [rgb, flow, audio], "spec": spec}
    return _record(catalog, experiment_id, "svdmap", params, base, table, runs,
                   f"SVDMap {experiment_id} ({seeds} seeds, same test clips)", study,
                   label_table)


def cafmap_experiment(
    catalog: Catalog, store: FeatureStore, *, condition: str, query: str = DEFAULT_QUERY,
    seeds: int = 3, arch: str = "mlp", epochs: int = 10, generator_epochs: int = 10,
    rgb: str = "rgb/hog-color", flow: str = "flow/flow-hist", audio: str = "audio/ast-fbank",
    classifier_lr: float | None = None, generator_lr: float | None = None,
    cross_fit: int = 3, in_sample_ablation: bool = False, generator_query: str | None = None,
    labels_per_class: str | None = None, generator_batch_size: int | None = None,
    runs: str | None = None, log: Callable[[str], None] = print,
) -> ExperimentResult:
    """Vision only / + real audio / + audio generated from caption conditions
    (cross-fitted for the train clips unless ``cross_fit`` is 0)."""
    spec = experiment_spec(locals())
    check_feature_sets(store, {"rgb": rgb, "flow": flow, "audio": audio,
                               "condition": condition})
    experiment_id = new_run_id("cafmap")
    base = with_features(query, [rgb, flow, audio, condition])
    gen_base = (with_features(generator_query, [rgb, flow, audio, condition])
                if generator_query else base)
    classes = sorted(catalog.sql(base)["class_name"].unique())
    generated_sets: dict[int, str] = {}
    results: dict[str, list[dict]] = {}
    correct: dict[str, list[np.ndarray]] = {}
    log(f"experiment {experiment_id}: {len(catalog.sql(base))} clips")

    def classify(variant: str, seed: int, audio_set: str | None, **missing: str) -> None:
        spec = ClassifierSpec(arch=arch, rgb=rgb, flow=flow, audio=audio_set, epochs=epochs,
                              seed=seed, variant=variant, lr=classifier_lr, **missing)
        run_id, metrics = train_classifier(catalog, store, base, spec, classes=classes,
                                           experiment_id=experiment_id, runs=runs,
                                           progress=False)
        results.setdefault(variant, []).append(metrics)
        correct.setdefault(variant, []).append(test_correctness(catalog, run_id))
        log(f"  seed {seed} {variant:<22} test top-1 {metrics['top1']:.3f}")

    for seed in range(seeds):
        gspec = GeneratorSpec(arch="cafmap", condition=condition, audio=audio,
                              epochs=generator_epochs, seed=seed, lr=generator_lr,
                              batch_size=generator_batch_size)
        generator = train_generator(catalog, store, gen_base, gspec,
                                    experiment_id=experiment_id, runs=runs, progress=False)
        generated = (cross_fit_generate(catalog, store, generator, cross_fit, base, runs=runs,
                                        experiment_id=experiment_id)
                     if cross_fit else generate(catalog, store, generator, base))
        generated_sets[seed] = generated
        classify("vision only", seed, None)
        classify("+ real audio", seed, audio)
        classify("+ generated audio", seed, generated)
        missing_audio(classify, seed, audio, generated)
        if in_sample_ablation and cross_fit:
            classify("+ generated audio (in-sample)", seed,
                     generate(catalog, store, generator, base))
    table = summarise(results, correct)
    label_table = _label_efficiency(
        catalog, store, labels_per_class, base=base, classes=classes, seeds=seeds,
        generated=generated_sets, audio=audio, experiment_id=experiment_id, runs=runs, log=log,
        spec={"arch": arch, "rgb": rgb, "flow": flow, "epochs": epochs, "lr": classifier_lr},
        known=(results, correct))
    params = {"seeds": seeds, "condition": condition, "generator_query": generator_query,
              "labels_per_class": labels_per_class, "arch": arch, "epochs": epochs,
              "generator_epochs": generator_epochs, "generator_lr": generator_lr,
              "generator_batch_size": generator_batch_size, "cross_fit": cross_fit,
              "in_sample_ablation": in_sample_ablation, "feature_sets": [rgb, flow, audio],
              "classifier_lr": classifier_lr, "spec": spec}
    return _record(catalog, experiment_id, "cafmap", params, base, table, runs,
                   f"CAFMap {experiment_id} ({seeds} seeds, same test clips)",
                   labels=label_table)
