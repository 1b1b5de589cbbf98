"""Tables people read: query results and experiment tables, formatted."""

from __future__ import annotations

import pandas as pd


def format_frame(frame: pd.DataFrame, fmt: str = "table") -> str:
    """A DataFrame as an aligned table, CSV with a header row, or JSON records."""
    if fmt == "csv":
        return frame.to_csv(index=False)
    if fmt == "json":
        return frame.to_json(orient="records", date_format="iso")
    if frame.empty:
        return "(no rows)" if len(frame.columns) == 0 else " | ".join(frame.columns) + "\n(no rows)"
    with pd.option_context("display.max_rows", None, "display.max_columns", None,
                           "display.width", 200, "display.max_colwidth", 80):
        return frame.to_string(index=False, na_rep="NULL")


def experiment_table(table: pd.DataFrame) -> str:
    """An experiment's results: 'mean ± std' over seeds, and where per-clip results are
    known, top-1's 95 % CI and the paired difference from vision only with its p-value."""
    shown = pd.DataFrame({
        "variant": table["variant"],
        "n_test": table["n_test"],
        **{name: [f"{m:.3f} ± {s:.3f}" for m, s in
                  zip(table[f"{key}_mean"], table[f"{key}_std"], strict=True)]
           for name, key in (("top-1", "top1"), ("top-5", "top5"), ("macro-F1", "macro_f1"))},
    })
    if "top1_ci_low" in table:
        shown.insert(3, "top-1 95% CI", [f"[{lo:.3f}, {hi:.3f}]" for lo, hi in
                                         zip(table["top1_ci_low"], table["top1_ci_high"],
                                             strict=True)])
    if "delta_vs_vision" in table:
        shown["vs vision only (95% CI), p"] = [
            "" if pd.isna(d) else f"{d:+.3f} [{lo:+.3f}, {hi:+.3f}], p={p:.3g}"
            for d, lo, hi, p in zip(table["delta_vs_vision"], table["delta_ci_low"],
                                    table["delta_ci_high"], table["p_vs_vision"], strict=True)]
    return format_frame(shown, "table")


def verdicts(table: pd.DataFrame) -> list[str]:
    """One line per variant compared with vision only, read off the intervals."""
    lines = []
    for row in table.to_dict("records"):
        if pd.isna(row.get("delta_vs_vision", float("nan"))):
            continue
        if row["delta_ci_low"] > 0:
            verdict = "beats vision only"
        elif row["delta_ci_high"] < 0:
            verdict = "is worse than vision only"
        else:
            verdict = "cannot be told from vision only"
        lines.append(f"{row['variant']} {verdict}: {row['delta_vs_vision']:+.3f} top-1, "
                     f"95% CI [{row['delta_ci_low']:+.3f}, {row['delta_ci_high']:+.3f}], "
                     f"p={row['p_vs_vision']:.3g}")
    return lines


def label_efficiency_table(table: pd.DataFrame) -> str:
    """Top-1 with its 95 % CI per variant (columns) and labels per class (rows)."""
    cells = table.assign(cell=[f"{m:.3f} [{lo:.3f}, {hi:.3f}]" for m, lo, hi in
                               zip(table["top1_mean"], table["top1_ci_low"],
                                   table["top1_ci_high"], strict=True)])
    wide = cells.pivot(index="labels_per_class", columns="variant", values="cell")
    wide = wide.loc[list(dict.fromkeys(table["labels_per_class"])),
                    list(dict.fromkeys(table["variant"]))]
    return format_frame(wide.reset_index(), "table")
