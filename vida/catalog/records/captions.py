"""CAFMap's tables: ``representative_frames``, ``captions`` and ``condition_labels``."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import text

from vida.catalog.database import Catalog
from vida.catalog.schema import Caption, ConditionLabel, RepresentativeFrame
from vida.catalog.writes import replace_group, upsert

Captions = dict[str, list[tuple[int, str]]]  # clip_key -> [(frame_index, caption)]


def replace_representative_frames(catalog: Catalog, rows: list[dict]) -> int:
    """Replace the representative frames of every clip that ``rows`` mentions, in one
    transaction (a clip's old frames never mix with its new ones)."""
    keys = sorted({r["clip_key"] for r in rows})
    with catalog.transaction() as session:
        for start in range(0, len(keys), 1000):
            session.query(RepresentativeFrame).filter(
                RepresentativeFrame.clip_key.in_(keys[start:start + 1000])).delete()
        upsert(session, RepresentativeFrame, rows, key=("clip_key", "frame_index"))
    return len(keys)


def representative_frames_with_sources(catalog: Catalog) -> pd.DataFrame:
    """clip_key, frame_index, source_uri of every representative frame, in clip order."""
    return catalog.read(text(
        "SELECT r.clip_key, r.frame_index, c.source_uri FROM representative_frames r "
        "JOIN clips c ON c.clip_key = r.clip_key ORDER BY r.clip_key, r.frame_index"))


def clips_with_frames(catalog: Catalog, rule: str) -> set[str]:
    """The clips whose representative frames were chosen by ``rule``."""
    return set(catalog.read(text("SELECT DISTINCT clip_key FROM representative_frames "
                           "WHERE rule = :r"), {"r": rule})["clip_key"])


def captioned_frames(catalog: Catalog, captioner: str) -> set[tuple[str, int]]:
    """(clip_key, frame_index) of every frame ``captioner`` has captioned."""
    frame = catalog.read(text("SELECT clip_key, frame_index FROM captions WHERE captioner = :c"),
                         {"c": captioner})
    return set(zip(frame["clip_key"], frame["frame_index"].astype(int), strict=True))


def store_captions(catalog: Catalog, captioner: str, captions: Captions) -> int:
    """Upsert ``captioner``'s captions; returns the number of caption rows."""
    rows = [{"clip_key": key, "captioner": captioner, "frame_index": frame, "caption": caption}
            for key, items in captions.items() for frame, caption in items]
    with catalog.transaction() as session:
        upsert(session, Caption, rows, key=("clip_key", "captioner", "frame_index"))
    return len(rows)


def representative_captions(catalog: Catalog, captioner: str | None) -> pd.DataFrame:
    """clip_key, frame_index, caption of each captioned representative frame (one caption
    per frame: the first captioner's when ``captioner`` is None)."""
    where = "" if captioner is None else "AND c.captioner = :cap"
    rows = catalog.read(text(
        "SELECT r.clip_key, r.frame_index, c.caption FROM representative_frames r "
        "JOIN captions c ON c.clip_key = r.clip_key AND c.frame_index = r.frame_index "
        f"{where} ORDER BY r.clip_key, r.frame_index"),
        {"cap": captioner} if captioner else None)
    return rows.drop_duplicates(["clip_key", "frame_index"])


def store_condition_labels(catalog: Catalog, condition_set: str, rows: list[dict]) -> int:
    """Replace the labels chosen for ``condition_set`` by ``rows``."""
    return replace_group(catalog, ConditionLabel, "condition_set", condition_set, rows,
                         key=("condition_set", "clip_key", "frame_index", "rank"))
