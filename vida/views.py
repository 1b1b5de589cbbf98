"""Tables people read: formatting query results and the catalog summary."""

from __future__ import annotations

import pandas as pd

from vida.catalog.database import Catalog


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


def status_tables(catalog: Catalog) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Clip counts by class x split x status, and feature sets with row counts."""
    clips = catalog.sql(
        "SELECT class_name, coalesce(split, '-') AS split, status, count(*) AS clips "
        "FROM clips GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
    )
    sets = catalog.sql(
        "SELECT fs.name, fs.modality, fs.encoder, fs.shape, count(f.clip_key) AS rows, "
        "count(DISTINCT f.shard_id) AS shards "
        "FROM feature_sets fs LEFT JOIN features f ON f.feature_set = fs.name "
        "GROUP BY 1, 2, 3, 4 ORDER BY 1"
    )
    return clips, sets


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
