"""An experiment's main plot: top-1 per variant with its 95 % interval."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from vida.jobs.core.plots import color, figure, save_png


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
