"""Reads and writes of the ``clips`` table that several jobs share, and of where the
clips' media is: the catalog's media root and each clip's path under it."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import pandas as pd
from sqlalchemy import func, or_, select, text, update

from vida.catalog.database import Catalog
from vida.catalog.records.settings import get_setting, put_setting
from vida.catalog.schema import Clip, Feature
from vida.catalog.writes import upsert
from vida.errors import MissingInput
from vida.keys import relocated_uri, resolve_uri, stored_uri, with_window

MEDIA_ROOT = "media_root"
_warned: set[str] = set()


def class_names(catalog: Catalog) -> list[str]:
    """Every class that has a clip in the catalog, sorted."""
    return sorted(catalog.read(text("SELECT DISTINCT class_name FROM clips"))["class_name"])


def clip_keys_in_split(catalog: Catalog, split: str) -> list[str]:
    with catalog.reading() as session:
        return list(session.execute(select(Clip.clip_key).where(Clip.split == split)).scalars())


def known_clips(catalog: Catalog, feature_sets: Sequence[str] = ()
                ) -> dict[str, tuple[str, str]]:
    """clip_key -> (content sha256, status) of the clips an ingest writing
    ``feature_sets`` has nothing to add to: each clip that failed, and each that
    decoded and has a row in every one of those sets (a clip ingested before on
    another frame grid has none in this grid's sets, so it is not known here)."""
    held = (select(Feature.clip_key, func.count().label("sets"))
            .where(Feature.feature_set.in_(list(feature_sets)))
            .group_by(Feature.clip_key).subquery())
    stmt = (select(Clip.clip_key, Clip.content_sha256, Clip.status, held.c.sets)
            .outerjoin(held, held.c.clip_key == Clip.clip_key))
    with catalog.reading() as session:
        return {k: (h, s) for k, h, s, n in session.execute(stmt)
                if s == "failed" or (n or 0) == len(set(feature_sets))}


def record_clips(catalog: Catalog, rows: list[dict[str, object]]) -> None:
    """Insert or update clips' rows (the columns a row gives), in one transaction."""
    with catalog.transaction() as session:
        upsert(session, Clip, rows, key=("clip_key",))


def splittable_clips(catalog: Catalog) -> pd.DataFrame:
    """clip_key, class_name, source_split of every clip whose media decoded."""
    stmt = (select(Clip.clip_key, Clip.class_name, Clip.source_split)
            .where(Clip.status != "failed").order_by(Clip.clip_key))
    return catalog.read(stmt)


def write_splits(catalog: Catalog, plan: dict[str, str]) -> None:
    """Each clip of ``plan`` gets its split, failed clips none, in one transaction."""
    with catalog.transaction() as session:
        session.execute(update(Clip).where(Clip.status == "failed").values(split=None))
        for split in ("train", "val", "test"):
            keys = [k for k, s in plan.items() if s == split]
            for start in range(0, len(keys), 1000):
                session.execute(update(Clip).where(
                    Clip.clip_key.in_(keys[start:start + 1000])).values(split=split))


def split_counts(catalog: Catalog) -> pd.DataFrame:
    """Clips per class and split (clips with a split)."""
    stmt = (select(Clip.class_name, Clip.split, func.count().label("clips"))
            .where(Clip.split.is_not(None)).group_by(Clip.class_name, Clip.split)
            .order_by(Clip.class_name, Clip.split))
    return catalog.read(stmt)


def media_root(catalog: Catalog) -> str | None:
    """The folder clips' relative sources are under on this machine: the override
    (``--media-root``, ``VIDA_MEDIA_ROOT``) or the one the catalog recorded."""
    return catalog.media_root_override or get_setting(catalog, MEDIA_ROOT)


def resolve_sources(catalog: Catalog, frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its ``source_uri`` column made into paths that open from here."""
    if "source_uri" not in frame.columns or frame.empty:
        return frame
    root = media_root(catalog)
    if root is None:
        _warn_unrooted(catalog, frame["source_uri"])
    else:
        _check_mounted(catalog, root, frame["source_uri"])
    frame = frame.copy()
    frame["source_uri"] = [None if u is None else resolve_uri(u, root)
                           for u in frame["source_uri"]]
    return _with_windows(catalog, frame)


def _with_windows(catalog: Catalog, frame: pd.DataFrame) -> pd.DataFrame:
    """Sources of clips that are a window of their file carry it (``#t=start,end``),
    so that a job that decodes them again decodes the window, wherever it runs."""
    if "clip_key" not in frame.columns:
        return frame
    windows = catalog.read(select(Clip.clip_key, Clip.start_s, Clip.end_s)
                           .where(or_(Clip.start_s.is_not(None), Clip.end_s.is_not(None))))
    if windows.empty:
        return frame
    spans = {k: (s, e) for k, s, e in windows.itertuples(index=False)}
    frame["source_uri"] = [_windowed(uri, spans.get(key)) for key, uri
                           in zip(frame["clip_key"], frame["source_uri"], strict=True)]
    return frame


def _windowed(uri: str | None, span: tuple[float | None, float | None] | None) -> str | None:
    if uri is None or span is None:
        return uri
    start, end = (None if pd.isna(v) else float(v) for v in span)
    return with_window(uri, start, end)


class MediaNotMounted(MissingInput):
    """The media root is missing or empty while clips' media is recorded under it."""


def _check_mounted(catalog: Catalog, root: str, uris: pd.Series) -> None:
    """Refuse the whole job in one line, before any clip is tried, when the media
    root is a folder that is not there or empty (a file system not mounted)."""
    under = sum(isinstance(u, str) and not os.path.isabs(u) for u in uris)
    if under and not (os.path.isdir(root) and any(os.scandir(root))):
        state = "is empty" if os.path.isdir(root) else "does not exist"
        raise MediaNotMounted(
            f"media root {root} {state} (not mounted?), and {under} clips' media are under "
            "it: mount it, or give where the media is with --media-root / VIDA_MEDIA_ROOT "
            "(`vida-batch catalog relocate` if it moved for good); nothing was changed")


def _warn_unrooted(catalog: Catalog, uris: pd.Series) -> None:
    relative = [u for u in uris if isinstance(u, str) and not os.path.isabs(u)]
    if relative and catalog.url not in _warned:
        _warned.add(catalog.url)
        print(f"vida: this catalog records its media relative to the folder its ingest ran "
              f"in (e.g. {relative[0]}), so it works only from there; run `vida-batch catalog "
              "relocate INGEST_FOLDER WHERE_THE_MEDIA_IS` once to fix it", file=sys.stderr)


def record_media_root(catalog: Catalog, root: str) -> None:
    """Set the catalog's media root to ``root`` if it has none yet -- unless it holds
    sources recorded relative to some earlier working folder (a catalog from before
    media roots), which the root would misplace: new sources are then absolute."""
    if get_setting(catalog, MEDIA_ROOT) is not None:
        return
    with catalog.reading() as session:
        uris = session.execute(select(Clip.source_uri).where(Clip.source_uri.is_not(None))
                               ).scalars()
        if any(not os.path.isabs(u) for u in uris):
            return
    with catalog.transaction() as session:
        put_setting(session, MEDIA_ROOT, os.path.abspath(root))


def relocate_media(catalog: Catalog, old: str, new: str) -> int:
    """Every clip whose media was under ``old`` is now under ``new``; so is the media
    root.  Returns the clips moved.  (For a catalog that recorded no media root, its
    relative sources are taken as relative to ``old``, the folder ingest ran in.)"""
    old, new = os.path.abspath(old), os.path.abspath(new)
    recorded = get_setting(catalog, MEDIA_ROOT)
    root = relocated_uri(recorded or old, None, old, new)
    moved = 0
    with catalog.transaction() as session:
        rows = session.execute(select(Clip.clip_key, Clip.source_uri)).all()
        for key, uri in rows:
            if uri is None:
                continue
            before = os.path.normpath(resolve_uri(uri, recorded or old))
            now = relocated_uri(uri, recorded, old, new)
            moved += now != before
            if stored_uri(now, root) != uri:
                session.execute(update(Clip).where(Clip.clip_key == key)
                                .values(source_uri=stored_uri(now, root)))
        put_setting(session, MEDIA_ROOT, root)
    return moved


def status_tables(catalog: Catalog) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Clip counts by class x split x status, and feature sets with row counts."""
    clips = catalog.read(text(
        "SELECT class_name, coalesce(split, '-') AS split, status, count(*) AS clips "
        "FROM clips GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
    ))
    sets = catalog.read(text(
        "SELECT fs.name, fs.modality, fs.encoder, fs.shape, count(f.clip_key) AS rows, "
        "count(DISTINCT f.shard_id) AS shards "
        "FROM feature_sets fs LEFT JOIN features f ON f.feature_set = fs.name "
        "GROUP BY 1, 2, 3, 4 ORDER BY 1"
    ))
    return clips, sets
