"""The 527 AudioSet class labels (``class_labels_indices.csv`` ships with VIDA)."""

from __future__ import annotations

import csv
from functools import lru_cache
from importlib import resources
from pathlib import Path

from vida.errors import UsageError


@lru_cache(maxsize=4)
def load_labels(path: str | None = None) -> tuple[str, ...]:
    """Display names in index order, from ``path`` or the bundled copy."""
    source = Path(path) if path else Path(str(resources.files("vida.semantics") / "data"
                                               / "class_labels_indices.csv"))
    with open(source, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows or "display_name" not in rows[0]:
        raise UsageError(f"{source}: expected columns index,mid,display_name")
    return tuple(r["display_name"] for r in sorted(rows, key=lambda r: int(r["index"])))


def label_mids(path: str | None = None) -> dict[str, str]:
    """mid -> display name."""
    source = Path(path) if path else Path(str(resources.files("vida.semantics") / "data"
                                               / "class_labels_indices.csv"))
    with open(source, newline="") as fh:
        return {r["mid"]: r["display_name"] for r in csv.DictReader(fh)}
