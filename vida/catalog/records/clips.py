"""Reads of the ``clips`` table that several jobs share."""

from __future__ import annotations

import pandas as pd

from vida.catalog.database import Catalog

# Every clip a semantic job can work on: the ones whose media decoded.
USABLE_CLIPS = ("SELECT clip_key, class_name, clip_id, source_uri FROM clips "
                "WHERE status <> 'failed'")


def class_names(catalog: Catalog) -> list[str]:
    """Every class that has a clip in the catalog, sorted."""
    return sorted(catalog.sql("SELECT DISTINCT class_name FROM clips")["class_name"])


def select_clips(catalog: Catalog, query: str | None, default: str = USABLE_CLIPS
                 ) -> pd.DataFrame:
    """The rows of a user's read-only ``query``, or of ``default`` when there is none."""
    return catalog.sql(query or default)


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
