"""CAFMap's batch jobs: representative frames, captions, conditions.

Frames are decoded again from each clip's source on the grid of the ingested RGB
feature set (same T, F and size), so these jobs see the frames the features came
from.  How a caption becomes a condition is :mod:`vida.semantics.conditions`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from vida.catalog.database import Catalog
from vida.catalog.records.captions import (
    captioned_frames,
    clips_with_frames,
    replace_representative_frames,
    representative_captions,
    representative_frames_with_sources,
    store_captions,
    store_condition_labels,
)
from vida.catalog.records.clip_queries import USABLE_CLIPS, clips_of
from vida.catalog.records.clips import resolve_sources
from vida.errors import UsageError
from vida.jobs.core.batch_job import Tally, commit_as_you_go, import_as_run, map_items, recorded
from vida.media.grid import FrameGrid, decode_on_grid
from vida.semantics.captions import load_captioner, read_caption_files
from vida.semantics.conditions import clip_condition
from vida.semantics.representative import RULE, motion_magnitudes, representative_frames
from vida.semantics.text import embed
from vida.store.locks import job_lock
from vida.store.store import FeatureStore

CLIPS = USABLE_CLIPS
CLIP_COLUMNS = ("clip_key", "source_uri")


def clip_frames(source_uri: str, n_frames: int, fps: float, size: int) -> np.ndarray:
    """A clip's frames on the T x F grid at size S, decoded again from its source."""
    return decode_on_grid(Path(source_uri), n_frames, fps, size).frames


def _grid_of(store: FeatureStore, rgb: str) -> FrameGrid:
    return FrameGrid.of(store.info(rgb).params)


def _frames_on(grid: FrameGrid, source_uri: str) -> np.ndarray:
    return clip_frames(source_uri, grid.n_frames, grid.fps, grid.frame_size)


@dataclass(frozen=True)
class RepresentativeFramesOf:
    """The map of ``frames``: a clip row -> its representative-frame rows, or why its
    media could not be read (the clip is then left without frames)."""

    grid: FrameGrid
    ratio: float

    def __call__(self, item: tuple[str, str]) -> list[dict] | str:
        clip_key, source_uri = item
        try:
            mags = motion_magnitudes(_frames_on(self.grid, source_uri))
        except Exception as exc:  # a clip whose media went away: leave it without frames
            return unreadable(exc)
        return [{"clip_key": clip_key, "frame_index": i,
                 "motion": float(mags[i - 1]) if i > 0 else 0.0,
                 "rule": f"{RULE}:{self.ratio:g}"}
                for i in representative_frames(mags, self.ratio)]


def find_representative_frames(catalog: Catalog, store: FeatureStore, *, ratio: float = 1.2,
                               rgb: str = "rgb/hog-color", query: str | None = None,
                               progress: bool = True, redo: bool = False) -> Tally:
    """Representative frames of every usable clip that has none by this rule yet (all
    of them with ``redo``); returns the clips given some by this run, and the failed.
    Committed as they come: a killed run's rerun does only the rest."""
    grid = _grid_of(store, rgb)
    rule = f"{RULE}:{ratio:g}"
    params = {"ratio": ratio, "rgb": rgb, "rule": RULE}
    with job_lock(store.root, f"frames-{rule}"):
        clips = clips_of(catalog, query, default=USABLE_CLIPS, needs=CLIP_COLUMNS)  # plan
        done = set() if redo else clips_with_frames(catalog, rule)
        items = [(k, s) for k, s in clips[["clip_key", "source_uri"]]
                 .itertuples(index=False, name=None) if k not in done]
        with recorded(catalog, "frames", {**params, "redo": redo}, query=query,
                      feature_sets=[rgb]) as run:
            results = map_items(RepresentativeFramesOf(grid, ratio), items, desc="frames",
                                progress=progress, processes=True)
            tally = Tally()

            def commit(batch: list[list[dict] | str]) -> None:
                tally.failures.update(rows for rows in batch if isinstance(rows, str))
                replace_representative_frames(catalog, [r for rows in batch
                                                        if not isinstance(rows, str)
                                                        for r in rows])

            tally.done = commit_as_you_go(results, commit) - tally.failed
            run.metrics.update(clips=tally.done, clips_failed=tally.failed,
                               clips_skipped=len(clips) - len(items))
    return tally


def unreadable(exc: Exception) -> str:
    """A one-line reason a clip's media could not be read."""
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


@dataclass(frozen=True)
class CaptionBatch:
    """The map of ``caption``: up to ``batch`` frames [(clip_key, frame, source)] ->
    [(clip_key, frame, caption)].  BLIP is loaded once per process."""

    model: str
    grid: FrameGrid

    def __call__(self, item: list[tuple[str, int, str]]) -> list[tuple[str, int, str, bool]]:
        """(clip_key, frame, caption, True), or (clip_key, frame, why not, False) for a
        frame whose clip's media could not be read."""
        images, readable, failed = [], [], []
        for key, index, source in item:
            try:
                images.append(self._frames(source)[index])
                readable.append((key, index))
            except Exception as exc:
                failed.append((key, index, unreadable(exc), False))
        texts = load_captioner(self.model).caption(images) if images else []
        return [(key, index, text, True)
                for (key, index), text in zip(readable, texts, strict=True)] + failed

    def _frames(self, source_uri: str) -> np.ndarray:
        return _cached_frames(self.grid, source_uri)


@lru_cache(maxsize=4)
def _cached_frames(grid: FrameGrid, source_uri: str) -> np.ndarray:
    # a clip whose frames fall into two batches is decoded once, not twice
    return _frames_on(grid, source_uri)


def caption_clips(catalog: Catalog, store: FeatureStore, *, model: str,
                  rgb: str = "rgb/hog-color", batch: int = 8, progress: bool = True,
                  captioner_name: str | None = None, redo: bool = False) -> Tally:
    """BLIP captions of every representative frame this captioner has not captioned
    yet (all of them with ``redo``); returns the frames captioned by this run, and
    the frames whose media could not be read.
    Committed as they come: a killed run's rerun does only the rest."""
    grid = _grid_of(store, rgb)
    frames = resolve_sources(catalog, representative_frames_with_sources(catalog))  # plan
    if frames.empty:
        raise UsageError("no representative frames: run `vida-batch frames` first")
    load_captioner(model)  # a model that cannot load fails here, before a run is recorded
    name = captioner_name or f"blip:{Path(model).name}"
    with job_lock(store.root, f"caption-{name}"):
        done = set() if redo else captioned_frames(catalog, name)
        rows = [(k, int(i), s) for k, i, s in frames[["clip_key", "frame_index", "source_uri"]]
                .itertuples(index=False, name=None) if (k, int(i)) not in done]
        items = [rows[i:i + batch] for i in range(0, len(rows), batch)]
        with recorded(catalog, "caption", {"model": model, "captioner": name,
                                           "redo": redo}) as run:
            results = (row for done_batch in map_items(
                CaptionBatch(model, grid), items, desc="caption", unit="frame",
                progress=progress, size=len) for row in done_batch)

            tally = Tally()

            def commit(batch_rows: list[tuple[str, int, str, bool]]) -> None:
                captions: dict[str, list[tuple[int, str]]] = {}
                for key, index, text, ok in batch_rows:
                    if ok:
                        captions.setdefault(key, []).append((index, text))
                    else:
                        tally.failures[text] += 1
                store_captions(catalog, name, captions)

            tally.done = commit_as_you_go(results, commit) - tally.failed
            run.metrics.update(frames_captioned=float(tally.done),
                               frames_failed=float(tally.failed),
                               frames_skipped=float(len(frames) - len(rows)))
    return tally


def import_captions(catalog: Catalog, path: Path, captioner: str = "imported"
                    ) -> tuple[int, int]:
    """Captions in the study's files -> (caption rows, clips)."""
    captions = read_caption_files(path)
    n = import_as_run(catalog, "caption-import", {"path": str(path), "captioner": captioner},
                       lambda: store_captions(catalog, captioner, captions), "captions")
    return n, len(captions)


def build_conditions(catalog: Catalog, store: FeatureStore, *, prototypes: str,
                     captioner: str | None = None, text_encoder: str | None = None,
                     top_k: int = 5, name: str | None = None, rgb: str = "rgb/hog-color"
                     ) -> str:
    """Condition sequences ``[T, D]`` with a ``[T]`` mask for every captioned clip, as
    ``condition/<name>``; the labels each frame chose go to ``condition_labels``."""
    labels = store.keys(prototypes)
    if not labels:
        raise UsageError(f"prototype set {prototypes!r} is empty")
    n_frames = _grid_of(store, rgb).n_frames
    rows = representative_captions(catalog, captioner)  # plan
    if rows.empty:
        raise UsageError("no captions of representative frames: run `vida-batch frames` and "
                         "`vida-batch caption` (or caption --import) first")
    set_name = f"condition/{name or Path(prototypes).name}"
    params = {"prototypes": prototypes, "top_k": top_k, "captioner": captioner,
              "text_encoder": text_encoder or "bundled-minilm"}
    with job_lock(store.root, f"condition-{set_name}"), recorded(
            catalog, "condition", {"name": set_name, **params}, feature_sets=[prototypes]
    ) as run:
        protos = store.read(prototypes, labels)  # in the run: a damaged read fails it
        # one embedding call for every caption: the text encoder batches them itself
        sims = embed(rows["caption"].tolist(), text_encoder) @ embed(labels, text_encoder).T
        store.register(set_name, modality="condition", encoder="caption-prototypes",
                       shape=(n_frames, protos.shape[1]), params=params)
        chosen_rows = []
        with store.writer(set_name) as writer:
            for key, group in rows.groupby("clip_key", sort=True):
                positions = [rows.index.get_loc(pos) for pos in group.index]
                condition = clip_condition(group["frame_index"].tolist(), sims[positions],
                                           protos, labels, n_frames, top_k)
                chosen_rows += [{"condition_set": set_name, "clip_key": key,
                                 "frame_index": index, "rank": rank, "label": label,
                                 "similarity": similarity}
                                for index, rank, label, similarity in condition.chosen]
                writer.add(key, condition.sequence, mask=condition.mask)
        store_condition_labels(catalog, set_name, chosen_rows)
        run.metrics["clips"] = rows["clip_key"].nunique()
    return set_name
