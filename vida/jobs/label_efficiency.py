"""Label efficiency: accuracy against the number of labelled clips per class.

Generated audio can only add what the classifier could not learn from its own
labelled clips, so the place to look for its worth is where labels are few and the
generator learned from a larger pool of clips with audio but no labels.  For each
``n`` in ``--labels-per-class`` the classifiers train on ``n`` train clips per
class (drawn per seed), select on the same val clips and are tested on the same
test clips as every other variant; the generators are the experiment's own.

Every label count gets the same number of optimisation steps as the full training
set (fewer clips, proportionally more epochs; the best epoch still chosen on val).
With a fixed epoch count, 2 clips per class would mean one Adam step per epoch, and
the curve would measure how little the classifier was trained, not how little it
was told.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from vida.catalog.database import Catalog
from vida.jobs.classifier import ClassifierSpec, train_classifier
from vida.jobs.training import load_clips

ALL = "all"


def parse_labels(text: str | None) -> list[int | str]:
    """``"2,5,10,all"`` -> [2, 5, 10, "all"]."""
    if not text:
        return []
    out: list[int | str] = []
    for part in text.split(","):
        part = part.strip().lower()
        if part == ALL:
            out.append(ALL)
        elif part.isdigit() and int(part) > 0:
            out.append(int(part))
        else:
            raise ValueError(f"--labels-per-class {text!r}: give counts like 2,5,10,all")
    return out


def labelled_query(catalog: Catalog, base: str, n: int | str, seed: int) -> str:
    """``base`` with its train clips cut to ``n`` per class (seeded); val/test unchanged."""
    if n == ALL:
        return base
    clips = load_clips(catalog, base)
    train = clips[clips["split"] == "train"]
    rng = np.random.default_rng(1000 + seed)
    chosen = []
    for _, group in train.groupby("class_name", sort=True):
        keys = group["clip_key"].tolist()
        chosen += [keys[i] for i in sorted(rng.permutation(len(keys))[:int(n)])]
    listed = ", ".join("'" + k.replace("'", "''") + "'" for k in chosen)
    return f"{base} AND (split <> 'train' OR clip_key IN ({listed}))"


def equal_step_epochs(epochs: int, batch_size: int, n_all: int, n_labelled: int) -> int:
    """Epochs that give ``n_labelled`` train clips the optimisation steps that
    ``epochs`` give ``n_all`` (batches of ``batch_size``; the last batch may be short)."""
    steps = epochs * math.ceil(n_all / batch_size)
    return max(epochs, math.ceil(steps / math.ceil(max(n_labelled, 1) / batch_size)))


def run_label_efficiency(
    catalog: Catalog, store, *, base: str, classes: list[str], labels: list[int | str],
    seeds: int, variants: dict[str, Callable[[int], dict]], spec: dict,
    experiment_id: str, runs: str | None, summarise: Callable, correctness: Callable,
    log: Callable[[str], None], known: tuple[dict, dict] | None = None,
) -> pd.DataFrame:
    """Train every variant ({name: seed -> ClassifierSpec fields, e.g. the audio set})
    at every label count; returns the summary table with a ``labels_per_class``
    column.  ``known`` (results, correctness) of the experiment's own runs stand for
    ``all`` labels where they have the variant: the same classifiers on the same
    clips, so they are not trained twice."""
    tables = []
    for n in labels:
        results: dict[str, list[dict]] = {}
        correct: dict[str, list[np.ndarray]] = {}
        reused = set(variants) & set(known[0]) if n == ALL and known is not None else set()
        for v in variants:
            if v in reused:
                results[v], correct[v] = known[0][v], known[1][v]
        todo = [v for v in variants if v not in reused]
        for seed in range(seeds if todo else 0):
            query = labelled_query(catalog, base, n, seed)
            epochs = _epochs_for(catalog, base, query, ClassifierSpec(**spec))
            for variant in todo:
                cspec = ClassifierSpec(**{**spec, "epochs": epochs, **variants[variant](seed)},
                                       seed=seed, variant=f"{variant} @ {n} labels/class")
                run_id, metrics = train_classifier(catalog, store, query, cspec, classes=classes,
                                                   experiment_id=experiment_id, runs=runs,
                                                   progress=False)
                results.setdefault(variant, []).append(metrics)
                correct.setdefault(variant, []).append(correctness(catalog, run_id))
        results = {v: results[v] for v in variants}  # the variants' order, reused or not
        correct = {v: correct[v] for v in variants}
        log(f"  {n} labels/class: " + ", ".join(
            f"{v} {np.mean([r['top1'] for r in rs]):.3f}" for v, rs in results.items()))
        table = summarise(results, correct)
        table.insert(0, "labels_per_class", str(n))
        tables.append(table)
    return pd.concat(tables, ignore_index=True)


def _epochs_for(catalog: Catalog, base: str, query: str, spec: ClassifierSpec) -> int:
    def n_train(q: str) -> int:
        return int((load_clips(catalog, q)["split"] == "train").sum())

    assert spec.batch_size is not None  # set by ClassifierSpec.__post_init__
    return equal_step_epochs(spec.epochs, spec.batch_size, n_train(base), n_train(query))


def plot_label_efficiency(table: pd.DataFrame, path: Path, title: str) -> None:
    """Top-1 (with 95 % CI bands) against labelled clips per class, one line per variant."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    order = list(dict.fromkeys(table["labels_per_class"]))
    x = np.arange(len(order))
    fig, ax = plt.subplots(figsize=(6, 4))
    for variant, group in table.groupby("variant", sort=False):
        group = group.set_index("labels_per_class").loc[order]
        ax.plot(x, group["top1_mean"], marker="o", label=variant)
        ax.fill_between(x, group["top1_ci_low"], group["top1_ci_high"], alpha=0.15)
    ax.set_xticks(x, order)
    ax.set_xlabel("labelled train clips per class")
    ax.set_ylabel("test top-1 (95 % CI band)")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
