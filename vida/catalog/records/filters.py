"""``filter_decisions``: per named filter, each clip's IoU and keep/drop."""

from __future__ import annotations

import pandas as pd

from vida.catalog.database import Catalog
from vida.catalog.schema import FilterDecision
from vida.catalog.writes import replace_group


def store_decisions(catalog: Catalog, name: str, decisions: pd.DataFrame) -> int:
    """Replace filter ``name``'s rows by ``decisions`` (columns clip_key, iou, keep)."""
    rows = [{"filter_name": name, "clip_key": k, "iou": float(i), "keep": bool(keep)}
            for k, i, keep in decisions[["clip_key", "iou", "keep"]].itertuples(index=False)]
    return replace_group(catalog, FilterDecision, "filter_name", name, rows,
                         key=("filter_name", "clip_key"))
