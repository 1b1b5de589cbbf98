"""What the catalog commands ask of the catalog, as single calls the CLI prints."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from vida.catalog.database import Catalog
from vida.catalog.records.clip_queries import USABLE_CLIPS, clips_of
from vida.catalog.records.clips import relocate_media, status_tables
from vida.catalog.records.runs import unfinished_runs
from vida.keys import split_window


@dataclass(frozen=True)
class CatalogStatus:
    clips: pd.DataFrame  # clips per class, split and status
    sets: pd.DataFrame  # feature sets with their rows and shards
    unfinished: pd.DataFrame  # runs not finished


def catalog_status(catalog: Catalog) -> CatalogStatus:
    """The catalog's clips, feature sets and unfinished runs."""
    clips, sets = status_tables(catalog)
    return CatalogStatus(clips, sets, unfinished_runs(catalog))


@dataclass(frozen=True)
class Relocated:
    moved: int  # clips whose recorded source changed
    checked: int  # clips whose media was looked for
    absent: list[str]  # of those, the ones not there


def relocate(catalog: Catalog, old: str, new: str, check: int = 50) -> Relocated:
    """Record that the media moved from ``old`` to ``new``, and look for the first
    ``check`` clips' media where the catalog now says it is."""
    moved = relocate_media(catalog, old, new)
    clips = clips_of(catalog, default=USABLE_CLIPS, needs=("source_uri",)).head(check)
    absent = [u for u in clips["source_uri"] if u and not Path(split_window(u)[0]).exists()]
    return Relocated(moved, len(clips), absent)
