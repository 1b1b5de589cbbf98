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
from pathlib import Path

import numpy as np
import pandas as pd

from vida.catalog.database import Catalog
from vida.catalog.records.clip_queries import ClipQuery, clips_of
from vida.errors import UsageError
from vida.jobs.core.plots import color, figure, save_png

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
            raise UsageError(f"--labels-per-class {text!r}: give counts like 2,5,10,all")
    return out


def labelled_query(catalog: Catalog, base: ClipQuery, n: int | str, seed: int) -> ClipQuery:
    """``base`` with its train clips cut to ``n`` per class (seeded); val/test unchanged."""
    if n == ALL:
        return base
    clips = clips_of(catalog, base)
    train = clips[clips["split"] == "train"]
    rng = np.random.default_rng(1000 + seed)
    chosen = []
    for _, group in train.groupby("class_name", sort=True):
        keys = group["clip_key"].tolist()
        chosen += [keys[i] for i in sorted(rng.permutation(len(keys))[:int(n)])]
    return base.narrowed(train_keys=tuple(chosen))


def equal_step_epochs(epochs: int, batch_size: int, n_all: int, n_labelled: int) -> int:
    """Epochs that give ``n_labelled`` train clips the optimisation steps that
    ``epochs`` give ``n_all`` (batches of ``batch_size``; the last batch may be short)."""
    steps = epochs * math.ceil(n_all / batch_size)
    return max(epochs, math.ceil(steps / math.ceil(max(n_labelled, 1) / batch_size)))


def plot_label_efficiency(table: pd.DataFrame, path: Path, title: str) -> None:
    """Top-1 (with 95 % CI bands) against labelled clips per class, one line per variant."""
    order = list(dict.fromkeys(table["labels_per_class"]))
    x = np.arange(len(order))
    fig, ax = figure(6, 4)
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
    save_png(fig, path)


def plot_recovery(table: pd.DataFrame, path: Path, title: str) -> bool:
    """The share of real audio's gain recovered (95 % CI bars) per generated variant and
    label count; an undefined share (real audio gains nothing significant) is marked,
    never drawn as a number.  False when no variant has a share to draw."""
    rows = table[table["recovery"].notna() | table["recovery_note"].notna()] \
        if {"recovery", "recovery_note"} <= set(table) else table.iloc[:0]
    if rows.empty:
        return False
    order = list(dict.fromkeys(rows["labels_per_class"]))
    variants = list(dict.fromkeys(rows["variant"]))
    width = 0.8 / len(variants)
    fig, ax = figure(6, 4)
    for i, variant in enumerate(variants):
        group = rows[rows["variant"] == variant].set_index("labels_per_class")
        for j, n in enumerate(order):
            x = j + (i - (len(variants) - 1) / 2) * width
            if n not in group.index or pd.isna(group.loc[n, "recovery"]):
                ax.text(x, 0.02, "undefined", rotation=90, ha="center", fontsize=7)
                continue
            row = group.loc[n]
            ax.bar(x, row["recovery"], width, color=color(i),
                   label=variant,
                   yerr=[[row["recovery"] - row["recovery_ci_low"]],
                         [row["recovery_ci_high"] - row["recovery"]]], capsize=3)
    ax.axhline(0, color="black", lw=0.8)
    ax.axhline(1, color="grey", lw=0.8, ls="--")
    ax.set_xticks(range(len(order)), order)
    ax.set_xlabel("labelled train clips per class")
    ax.set_ylabel("share of real audio's gain recovered")
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))
    if unique:
        ax.legend(unique.values(), unique.keys(), fontsize=8)
    ax.set_title(title, fontsize=9)
    save_png(fig, path)
    return True
