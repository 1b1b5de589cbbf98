"""CAFMap's batch jobs: representative frames, captions, conditions.

Frames are decoded again from each clip's source on the grid of the ingested RGB
feature set (same T, F and size), so these jobs see the frames the features came
from.  Conditions: each representative frame's caption is matched to the labels
that have a prototype (all-MiniLM-L6-v2 cosine similarity); of the top-k labels
those at or above the mean of the top-k similarities are kept; the frame's
condition vector is the mean of their prototypes.  The condition set holds
``[T, D]`` (zeros off the representative frames) and a ``[T]`` mask; the
generator puts seeded N(0, 1) noise where the mask is off.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vida.catalog.database import Catalog
from vida.catalog.schema import ConditionLabel, RepresentativeFrame
from vida.catalog.writes import replace_group, upsert
from vida.jobs.runs import finish_run, start_run
from vida.media.decode import decode_clip
from vida.media.frames import read_frames
from vida.semantics.captions import load_captioner, store_captions
from vida.semantics.representative import RULE, motion_magnitudes, representative_frames
from vida.semantics.text import embed
from vida.store.store import FeatureStore

CLIPS = ("SELECT clip_key, class_name, clip_id, source_uri FROM clips "
         "WHERE status <> 'failed'")


def clip_frames(source_uri: str, n_frames: int, fps: float, size: int) -> np.ndarray:
    path = Path(source_uri)
    if path.is_dir():
        return read_frames(path, n_frames, size)[0]
    return decode_clip(path, n_frames, fps, size).frames


def _grid(store: FeatureStore, rgb: str) -> tuple[int, float, int]:
    params = store.info(rgb).params
    return int(params.get("n_frames", 18)), float(params.get("fps", 6.0)), int(
        params.get("frame_size", 128))


def find_representative_frames(catalog: Catalog, store: FeatureStore, *, ratio: float = 1.2,
                               rgb: str = "rgb/hog-color", query: str | None = None,
                               progress: bool = True) -> int:
    from tqdm import tqdm

    n, fps, size = _grid(store, rgb)
    clips = catalog.sql(query or CLIPS)
    rows, failed = [], 0
    for row in tqdm(list(clips.itertuples(index=False)), unit="clip", desc="frames",
                    disable=not progress):
        try:
            mags = motion_magnitudes(clip_frames(row.source_uri, n, fps, size))
        except Exception:  # a clip whose media went away: leave it without frames
            failed += 1
            continue
        for i in representative_frames(mags, ratio):
            rows.append({"clip_key": row.clip_key, "frame_index": i,
                         "motion": float(mags[i - 1]) if i > 0 else 0.0,
                         "rule": f"{RULE}:{ratio:g}"})
    keys = sorted({r["clip_key"] for r in rows})
    with catalog.transaction() as session:
        for start in range(0, len(keys), 1000):
            session.query(RepresentativeFrame).filter(
                RepresentativeFrame.clip_key.in_(keys[start:start + 1000])).delete()
        upsert(session, RepresentativeFrame, rows, key=("clip_key", "frame_index"))
    return len(keys)


def caption_clips(catalog: Catalog, store: FeatureStore, *, model: str,
                  rgb: str = "rgb/hog-color", batch: int = 8, progress: bool = True,
                  captioner_name: str | None = None) -> int:
    """BLIP captions of every representative frame (run representative frames first)."""
    from tqdm import tqdm

    n, fps, size = _grid(store, rgb)
    frames = catalog.sql(
        "SELECT r.clip_key, r.frame_index, c.source_uri FROM representative_frames r "
        "JOIN clips c ON c.clip_key = r.clip_key ORDER BY r.clip_key, r.frame_index")
    if frames.empty:
        raise ValueError("no representative frames: run `vida-batch frames` first")
    captioner = load_captioner(model)
    name = captioner_name or f"blip:{Path(model).name}"
    run_id = start_run(catalog, kind="caption", params={"model": model, "captioner": name})
    images, where, captions = [], [], {}

    def flush() -> None:
        for (key, index), text in zip(where, captioner.caption(images), strict=True):
            captions.setdefault(key, []).append((index, text))
        images.clear()
        where.clear()

    bar = tqdm(total=len(frames), unit="frame", desc="caption", disable=not progress)
    for key, group in frames.groupby("clip_key", sort=False):
        grid = clip_frames(group["source_uri"].iloc[0], n, fps, size)
        for index in group["frame_index"]:
            images.append(grid[int(index)])
            where.append((key, int(index)))
            if len(images) >= batch:
                flush()
        bar.update(len(group))
    if images:
        flush()
    bar.close()
    store_captions(catalog, name, captions)
    finish_run(catalog, run_id, metrics={"frames_captioned": float(len(frames))})
    return sum(len(v) for v in captions.values())


def build_conditions(catalog: Catalog, store: FeatureStore, *, prototypes: str,
                     captioner: str | None = None, text_encoder: str | None = None,
                     top_k: int = 5, name: str | None = None, rgb: str = "rgb/hog-color"
                     ) -> str:
    labels = store.keys(prototypes)
    if not labels:
        raise ValueError(f"prototype set {prototypes!r} is empty")
    protos = store.read(prototypes, labels)
    n_frames = _grid(store, rgb)[0]
    where = "" if captioner is None else "AND c.captioner = :cap"
    rows = catalog.sql(
        "SELECT r.clip_key, r.frame_index, c.caption FROM representative_frames r "
        "JOIN captions c ON c.clip_key = r.clip_key AND c.frame_index = r.frame_index "
        f"{where} ORDER BY r.clip_key, r.frame_index",
        {"cap": captioner} if captioner else None)
    if rows.empty:
        raise ValueError("no captions of representative frames: run `vida-batch frames` and "
                         "`vida-batch caption` (or caption --import) first")
    rows = rows.drop_duplicates(["clip_key", "frame_index"])
    sims = embed(rows["caption"].tolist(), text_encoder) @ embed(labels, text_encoder).T
    set_name = f"condition/{name or Path(prototypes).name}"
    store.register(set_name, modality="condition", encoder="caption-prototypes",
                   shape=(n_frames, protos.shape[1]),
                   params={"prototypes": prototypes, "top_k": top_k, "captioner": captioner,
                           "text_encoder": text_encoder or "bundled-minilm"})
    chosen_rows = []
    with store.writer(set_name) as writer:
        for key, group in rows.groupby("clip_key", sort=True):
            sequence = np.zeros((n_frames, protos.shape[1]), np.float32)
            mask = np.zeros(n_frames, bool)
            for pos, index in zip(group.index, group["frame_index"], strict=True):
                row = sims[rows.index.get_loc(pos)]
                top = np.argsort(-row, kind="stable")[:top_k]
                keep = [i for i in top if row[i] >= row[top].mean()]
                sequence[int(index)] = protos[keep].mean(axis=0)
                mask[int(index)] = True
                chosen_rows += [{"condition_set": set_name, "clip_key": key,
                                 "frame_index": int(index), "rank": r, "label": labels[i],
                                 "similarity": float(row[i])} for r, i in enumerate(keep, 1)]
            writer.add(key, sequence, mask=mask)
    replace_group(catalog, ConditionLabel, "condition_set", set_name, chosen_rows,
                  key=("condition_set", "clip_key", "frame_index", "rank"))
    return set_name
