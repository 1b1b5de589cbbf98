"""``clip_ratings``: how people rated clips (AVMIT's raters), beside the clips."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import select

from vida.catalog.database import Catalog
from vida.catalog.schema import Clip, ClipRating
from vida.catalog.writes import upsert


def catalog_clip_keys(catalog: Catalog) -> set[str]:
    """Every clip key of the catalog (the rows a ratings file may match)."""
    return set(catalog.read(select(Clip.clip_key))["clip_key"])


def store_ratings(catalog: Catalog, rows: list[dict]) -> int:
    """Upsert rating rows by (clip_key, source); a column a row does not give keeps
    its value (the test set's file does not undo the ratings file's counts)."""
    with catalog.transaction() as session:
        return upsert(session, ClipRating, rows, key=("clip_key", "source"))


def rated_test_set(catalog: Catalog, source: str) -> set[str]:
    """The clips ``source``'s test set holds."""
    frame = catalog.read(select(ClipRating.clip_key).where(
        ClipRating.source == source, ClipRating.test_set.is_(True)))
    return set(frame["clip_key"])


def ratings_of(catalog: Catalog, source: str) -> pd.DataFrame:
    return catalog.read(select(*ClipRating.__table__.columns).where(ClipRating.source == source)
                        .order_by(ClipRating.clip_key))
