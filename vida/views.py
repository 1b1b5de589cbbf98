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
    """An experiment's results as 'mean ± std' columns."""
    shown = pd.DataFrame({
        "variant": table["variant"],
        "n_test": table["n_test"],
        **{name: [f"{m:.3f} ± {s:.3f}" for m, s in
                  zip(table[f"{key}_mean"], table[f"{key}_std"], strict=True)]
           for name, key in (("top-1", "top1"), ("top-5", "top5"), ("macro-F1", "macro_f1"))},
    })
    return format_frame(shown, "table")
