"""``audio_tags``: per clip, the ranked AudioSet labels a tagger gave it, by source."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import text

from vida.catalog.database import Catalog
from vida.catalog.records import sets_by_key
from vida.catalog.schema import AudioTag
from vida.catalog.writes import replace_group, upsert
from vida.errors import UsageError

Tags = dict[str, list[tuple[str, float | None]]]  # clip_key -> [(label, score)] best first


def store_tags(catalog: Catalog, source: str, tags: Tags) -> int:
    """Replace every tag of ``source`` by ``tags``; returns the number of clips."""
    rows = [{"clip_key": key, "source": source, "rank": rank, "label": label,
             "score": None if score is None else float(score)}
            for key, items in tags.items() for rank, (label, score) in enumerate(items, 1)]
    replace_group(catalog, AudioTag, "source", source, rows, key=("clip_key", "source", "rank"))
    return len(tags)


def add_tags(catalog: Catalog, source: str, tags: Tags) -> int:
    """Replace the tags of ``source`` on the clips of ``tags`` (only those), in one
    transaction; returns the number of clips."""
    keys = sorted(tags)
    rows = [{"clip_key": key, "source": source, "rank": rank, "label": label,
             "score": None if score is None else float(score)}
            for key, items in tags.items() for rank, (label, score) in enumerate(items, 1)]
    with catalog.transaction() as session:
        for start in range(0, len(keys), 1000):
            session.query(AudioTag).filter(AudioTag.source == source, AudioTag.clip_key.in_(
                keys[start:start + 1000])).delete()
        upsert(session, AudioTag, rows, key=("clip_key", "source", "rank"))
    return len(keys)


def tagged_keys(catalog: Catalog, source: str) -> set[str]:
    """The clips that have tags of ``source``."""
    return set(catalog.read(text("SELECT DISTINCT clip_key FROM audio_tags WHERE source = :s"),
                            {"s": source})["clip_key"])


def load_tags(catalog: Catalog, source: str) -> dict[str, set[str]]:
    """clip_key -> the set of labels of ``source``."""
    frame = catalog.read(text("SELECT clip_key, label FROM audio_tags WHERE source = :s"),
                         {"s": source})
    if frame.empty:
        raise UsageError(f"no tags from source {source!r}: run `vida-batch tag` first")
    return sets_by_key(frame)


def tagged_clips_in_catalog(catalog: Catalog, source: str) -> int:
    """How many clips of ``source``'s tags are clips of this catalog."""
    return int(catalog.read(text(
        "SELECT count(DISTINCT t.clip_key) AS n FROM audio_tags t JOIN clips c "
        "ON c.clip_key = t.clip_key WHERE t.source = :s"), {"s": source})["n"][0])


def tag_pairs_of_split(catalog: Catalog, source: str, split: str) -> pd.DataFrame:
    """One row (clip_key, label) per tag of ``source`` on the clips of one split."""
    return catalog.read(text(
        "SELECT t.clip_key, t.label FROM audio_tags t JOIN clips c ON c.clip_key = t.clip_key "
        "WHERE t.source = :s AND c.split = :split"), {"s": source, "split": split})
