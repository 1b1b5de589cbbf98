"""An experiment's figures: top-1 per variant, accuracy against labelled clips per
class and against the share of test audio missing, the share of real audio's gain
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


def plot_missing_at_test(table: pd.DataFrame, path: Path, title: str) -> None:
    """Top-1 (with 95 % CI bands) against the share of test clips whose audio is
    missing, one line per variant; vision only, which reads no audio, is flat."""
    _top1_bands(table.assign(x=table["test_missing"]), path, title,
                "share of test clips whose audio is missing")


def _top1_bands(table: pd.DataFrame, path: Path, title: str, xlabel: str,
                ticks: Callable[[Any], object] | None = None) -> None:
    """Top-1 with its 95 % CI band against column ``x``, one line per variant."""
    fig, ax = figure(6, 4)
    for variant, group in table.groupby("variant", sort=False):
        group = group.sort_values("x")
        ax.plot(group["x"], group["top1_mean"], marker="o", label=variant)
        ax.fill_between(group["x"], group["top1_ci_low"], group["top1_ci_high"], alpha=0.15)
    if ticks is not None:
        ticks(ax)
    ax.set_xlabel(xlabel)
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
