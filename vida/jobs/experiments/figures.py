"""An experiment's figures: top-1 per variant, accuracy against labelled clips per
class and against the shares of train and test audio missing, the share of real audio's gain
recovered, and the gain class by class, each with its 95 % interval."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vida.jobs.core.plots import color, figure, save_png
from vida.jobs.experiments.per_class import REAL
from vida.jobs.experiments.variants import reads_generated_audio


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


def plot_gains(table: pd.DataFrame, path: Path, title: str) -> None:
    """Per class: real audio's gain over vision only (x) against each generated
    variant's (y), with 95 % CI bars, each point named by its class."""
    real = table[table["variant"] == REAL].set_index("class_name")
    fig, ax = figure(6, 5)
    generated = [v for v in dict.fromkeys(table["variant"]) if reads_generated_audio(v)]
    for i, variant in enumerate(generated):
        rows = table[table["variant"] == variant].set_index("class_name").loc[real.index]
        ax.errorbar(real["delta_vs_vision"], rows["delta_vs_vision"],
                    xerr=[real["delta_vs_vision"] - real["delta_ci_low"],
                          real["delta_ci_high"] - real["delta_vs_vision"]],
                    yerr=[rows["delta_vs_vision"] - rows["delta_ci_low"],
                          rows["delta_ci_high"] - rows["delta_vs_vision"]],
                    fmt="o", capsize=2, alpha=0.8, color=color(i), label=variant)
        if i == 0:
            for cls, x, y in zip(real.index, real["delta_vs_vision"], rows["delta_vs_vision"],
                                 strict=True):
                ax.annotate(cls, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    lims = [min(ax.get_xlim()[0], ax.get_ylim()[0]), max(ax.get_xlim()[1], ax.get_ylim()[1])]
    ax.plot(lims, lims, color="grey", lw=0.8, ls="--")  # generated recovers all of it
    ax.axhline(0, color="black", lw=0.6)
    ax.axvline(0, color="black", lw=0.6)
    ax.set_xlabel("real audio's gain over vision only (top-1)")
    ax.set_ylabel("generated audio's gain over vision only (top-1)")
    ax.legend(fontsize=7)
    ax.set_title(title, fontsize=9)
    save_png(fig, path)


def plot_label_efficiency(table: pd.DataFrame, path: Path, title: str) -> None:
    """Top-1 (with 95 % CI bands) against labelled clips per class, one line per variant."""
    order = list(dict.fromkeys(table["labels_per_class"]))
    positions = dict(zip(order, range(len(order)), strict=True))
    _top1_bands(table.assign(x=table["labels_per_class"].map(positions)), path, title,
                "labelled train clips per class",
                lambda ax: ax.set_xticks(range(len(order)), order))


def plot_missing_grid(table: pd.DataFrame, path: Path, title: str) -> None:
    """Top-1 (with 95 % CI bands) against the share of test clips whose audio is
    missing, one line per variant, one panel per share of train clips whose audio is
    missing; vision only, which reads no audio, is flat."""
    from matplotlib.figure import Figure

    rates = sorted(table["train_missing"].unique())
    fig = Figure(figsize=(5.5 * len(rates), 4))
    axes = fig.subplots(1, len(rates), squeeze=False, sharey=True)[0]
    for ax, rate in zip(axes, rates, strict=True):
        panel = table[table["train_missing"] == rate]
        _bands_on(ax, panel.assign(x=panel["test_missing"]))
        ax.set_xlabel("share of test clips whose audio is missing")
        ax.set_title(f"{rate:g} of train clips' audio missing", fontsize=9)
    axes[0].set_ylabel("test top-1 (95 % CI band)")
    axes[-1].legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    save_png(fig, path)


def plot_missing_heatmap(table: pd.DataFrame, path: Path, title: str, variant: str
                         ) -> bool:
    """``variant``'s top-1 minus the best stand-in's in each cell of the grid (rates at
    training down, at test across), with its 95 % CI; False when it has no cell."""
    if "delta_vs_best" not in table:  # no stand-in ran: nothing to set it against
        return False
    rows = table[(table["variant"] == variant) & table["delta_vs_best"].notna()]
    if rows.empty:
        return False
    train = sorted(rows["train_missing"].unique())
    test = sorted(rows["test_missing"].unique())
    grid = np.full((len(train), len(test)), np.nan)
    fig, ax = figure(1.6 * len(test) + 2.5, 1.0 * len(train) + 2)
    limit = max(float(rows["delta_vs_best"].abs().max()), 1e-3)
    for row in rows.itertuples():
        i, j = train.index(row.train_missing), test.index(row.test_missing)
        grid[i, j] = row.delta_vs_best
        ax.text(j, i, f"{row.delta_vs_best:+.3f}\n[{row.best_ci_low:+.3f}, "
                      f"{row.best_ci_high:+.3f}]", ha="center", va="center", fontsize=7)
    image = ax.imshow(grid, cmap="RdBu", vmin=-limit, vmax=limit, aspect="auto")
    fig.colorbar(image, ax=ax, label="top-1 minus the best stand-in's")
    ax.set_xticks(range(len(test)), [f"{r:g}" for r in test])
    ax.set_yticks(range(len(train)), [f"{r:g}" for r in train])
    ax.set_xlabel("share of test clips whose audio is missing")
    ax.set_ylabel("share of train clips'")
    ax.set_title(title, fontsize=9)
    save_png(fig, path)
    return True


def _top1_bands(table: pd.DataFrame, path: Path, title: str, xlabel: str,
                ticks: Callable[[Any], object] | None = None) -> None:
    """Top-1 with its 95 % CI band against column ``x``, one line per variant."""
    fig, ax = figure(6, 4)
    _bands_on(ax, table)
    if ticks is not None:
        ticks(ax)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("test top-1 (95 % CI band)")
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=9)
    save_png(fig, path)


def _bands_on(ax: Any, table: pd.DataFrame) -> None:
    for variant, group in table.groupby("variant", sort=False):
        group = group.sort_values("x")
        ax.plot(group["x"], group["top1_mean"], marker="o", label=variant)
        ax.fill_between(group["x"], group["top1_ci_low"], group["top1_ci_high"], alpha=0.15)
    ax.set_ylim(0, 1.05)


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


def plot_groups(table: pd.DataFrame, path: Path, title: str) -> None:
    """Per group of test clips (``--group-by``): each variant's gain over vision only,
    with its 95 % CI, side by side."""
    rows = table[table["delta_vs_vision"].notna()]
    groups = list(dict.fromkeys(rows["group"]))
    variants = list(dict.fromkeys(rows["variant"]))
    fig, ax = figure(1.2 * len(groups) * max(1, len(variants)) / 2 + 3, 4)
    width = 0.8 / max(1, len(variants))
    for i, variant in enumerate(variants):
        part = rows[rows["variant"] == variant].set_index("group").reindex(groups)
        x = np.arange(len(groups)) + (i - (len(variants) - 1) / 2) * width
        ax.errorbar(x, part["delta_vs_vision"],
                    yerr=[part["delta_vs_vision"] - part["delta_ci_low"],
                          part["delta_ci_high"] - part["delta_vs_vision"]],
                    fmt="o", capsize=3, color=color(i), label=variant)
    n = rows.drop_duplicates("group").set_index("group")["n_test"].reindex(groups)
    ax.set_xticks(np.arange(len(groups)), [f"{g}\n(n={int(k)})" for g, k in n.items()],
                  fontsize=8)
    ax.axhline(0, color="black", lw=0.6)
    ax.set_ylabel("gain over vision only, top-1 (95 % CI)")
    ax.legend(fontsize=7)
    ax.set_title(title, fontsize=9)
    save_png(fig, path)
