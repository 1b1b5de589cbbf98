"""``vida-batch tag``: AudioSet tags for clips, from real audio, a feature set, or a file."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from vida.catalog.database import Catalog
from vida.catalog.records.clip_queries import USABLE_CLIPS, clips_of
from vida.catalog.records.runs import earlier_params
from vida.catalog.records.tags import add_tags, store_tags, tagged_clips_in_catalog, tagged_keys
from vida.errors import UsageError
from vida.jobs.core.batch_job import commit_as_you_go, import_as_run, map_items, recorded
from vida.media.decode import AUDIO_RATE, clip_waveform
from vida.media.grid import FrameGrid
from vida.semantics.tagger import head_tags, load_tagger
from vida.semantics.tags import read_tag_json
from vida.store.locks import job_lock
from vida.store.store import FeatureStore

REAL_COLUMNS = ("clip_key", "source_uri", "class_name", "clip_id")
TagList = list[tuple[str, float]]


@dataclass(frozen=True)
class TagBatch:
    """The map of ``tag``: one batch of clips -> [(clip_key, top-k tags)].

    An item is either real-audio clip rows ``[(clip_key, source_uri, class, clip_id)]``
    (their audio is decoded again) or ``(keys, features)`` of a generated set.
    """

    model: str
    top_k: int
    seconds: float

    def __call__(self, item: list[tuple[str, str, str, str]] | tuple[list[str], np.ndarray]
                 ) -> list[tuple[str, TagList]]:
        tagger = load_tagger(self.model)  # once per process (cached)
        if isinstance(item, tuple):
            keys, features = item
            n_samples = int(round(self.seconds * AUDIO_RATE))
            return list(zip(keys, tagger.tag_features(features, n_samples, self.top_k),
                            strict=True))
        waves, keys, missing = [], [], []
        for key, source_uri, class_name, clip_id in item:
            wave = clip_waveform(source_uri, class_name, clip_id, self.seconds)
            if wave is not None:
                waves.append(wave)
                keys.append(key)
            else:  # no media there (moved, unmounted) or no sound: counted, not tagged
                missing.append((key, None))
        results = tagger.tag_waveforms(waves, self.top_k) if waves else []
        return list(zip(keys, results, strict=True)) + missing


@dataclass(frozen=True)
class HeadTagBatch:
    """The map of ``tag`` on AST-embedding features: AST's own head reads them."""

    model: str
    top_k: int
    projection: str | None

    def __call__(self, item: tuple[list[str], np.ndarray]) -> list[tuple[str, TagList]]:
        keys, features = item
        return list(zip(keys, head_tags(self.model, features, self.top_k, self.projection),
                        strict=True))


def head_of(store: FeatureStore, name: str) -> dict | None:
    """{model, projection} when ``name`` (or the target it was generated for) holds AST's
    pooled embeddings, which AST's head can tag; else None."""
    info = store.info(name)
    if info.modality == "generated" and "target" in info.params:
        info = store.info(info.params["target"])
    if not info.params.get("head_taggable"):
        return None
    projection = info.params.get("projection") or {}
    return {"model": info.params["model"], "projection": projection.get("file")}


def top_labels(store: FeatureStore, like: str, model: str, features: np.ndarray, k: int = 5,
               batch: int = 8) -> list[set[str]]:
    """The top ``k`` AudioSet labels AST gives each row of ``features``, read as rows of
    set ``like`` are (AST's own head for its pooled embeddings, else AST on the
    rendered input), ``batch`` rows at a time."""
    info = store.info(like)
    head = _taggable_head(store, like)
    if head is not None:
        work = HeadTagBatch(head["model"], k, head.get("projection"))
    else:
        seconds = FrameGrid.of(info.params, steps=info.shape[0]).seconds
        work = TagBatch(model, k, seconds)
    keys = [str(i) for i in range(len(features))]
    found: list[set[str]] = []
    for start in range(0, len(features), batch):
        tagged = work((keys[start:start + batch], features[start:start + batch]))
        found += [{label for label, _ in tags} for _, tags in tagged]
    return found


def _plan_real(clips: pd.DataFrame, batch: int) -> list[list[tuple[str, str, str, str]]]:
    rows = list(clips[list(REAL_COLUMNS)]
                .itertuples(index=False, name=None))
    return [rows[i:i + batch] for i in range(0, len(rows), batch)]


def _plan_features(store: FeatureStore, on: str, keys: list[str], batch: int
                   ) -> Iterator[tuple[list[str], np.ndarray]]:
    for start in range(0, len(keys), batch):
        chunk = keys[start:start + batch]
        yield chunk, store.read(on, chunk)


def _taggable_head(store: FeatureStore, on: str) -> dict | None:
    """AST's head to tag ``on`` with when its features are AST's pooled embeddings
    (else None: AST tags them from its input); one line for a set AST cannot read."""
    info = store.info(on)
    if info.modality not in ("audio", "generated"):
        raise UsageError(f"--on {on}: a {info.modality} feature set has no sound to tag")
    if info.modality == "audio":
        return None
    head = head_of(store, on)
    if head is None and info.encoder != "ast-fbank" and not info.encoder.endswith("-generator"):
        raise UsageError(f"--on {on}: features of encoder {info.encoder!r} cannot be rendered "
                         "as an AST input; tag the real audio instead")
    target = info.params.get("target")
    if head is None and target and store.info(target).encoder != "ast-fbank":
        raise UsageError(f"--on {on}: its target set is neither ast-fbank nor AST's pooled "
                         "embedding, so AST cannot read it; tag the real audio instead")
    return head


def tag_clips(catalog: Catalog, store: FeatureStore, *, model: str, on: str, top_k: int = 5,
              query: str | None = None, source: str | None = None, batch: int = 8,
              progress: bool = True, redo: bool = False) -> tuple[str, int, list[str]]:
    """Tag the clips that have feature set ``on`` and no tags of this source yet (all
    of them with ``redo``); returns (tag source, clips tagged by this run, clips whose
    audio could not be read from their source).

    Tags are committed as they come, so a killed run's rerun tags only the rest; a
    second ``tag`` of the same source waits for the first, then does what it left."""
    info = store.info(on)
    seconds = FrameGrid.of(info.params, steps=info.shape[0]).seconds
    real = info.modality == "audio"
    head = _taggable_head(store, on)
    if head is not None:
        model = head["model"]  # AST's own head, from the model that made the embeddings
    load_tagger(model)  # a model that cannot load fails here, before a run is recorded
    source = source or f"ast:{Path(model).name}:{on}"
    params = {"model": model, "on": on, "top_k": top_k, "source": source}
    work = TagBatch(model, top_k, seconds) if head is None else HeadTagBatch(
        model, top_k, head.get("projection"))
    with job_lock(store.root, f"tag-{source}"):
        before = earlier_params(catalog, "tag", "source", source)
        changed = [k for k in ("model", "on", "top_k")
                   if before is not None and before.get(k) != params[k]]
        if changed and not redo:
            raise UsageError(
                f"tags of source {source!r} were made with other settings "
                f"({', '.join(f'{k}={before[k]}' for k in changed)}): keep them, give this "
                "run another --source, or add --redo to tag every clip again")
        # plan (inside the lock: what a run before this one committed is skipped)
        clips = clips_of(catalog, query, default=USABLE_CLIPS,
                         needs=REAL_COLUMNS if real else ("clip_key",))
        clips = clips[clips["clip_key"].isin(set(store.keys(on)))]
        done = set() if redo else tagged_keys(catalog, source)
        skipped = int(clips["clip_key"].isin(done).sum())
        clips = clips[~clips["clip_key"].isin(done)]
        clips = clips.reset_index(drop=True)
        items = (_plan_real(clips, batch) if real
                 else _plan_features(store, on, clips["clip_key"].tolist(), batch))
        with recorded(catalog, "tag", {**params, "redo": redo}, query=query,
                      feature_sets=[on]) as run:
            results = (pair for pairs in map_items(
                work, items, desc="tag", total=len(clips), progress=progress,
                size=lambda item: len(item[0] if isinstance(item, tuple) else item))
                for pair in pairs)
            unread: list[str] = []

            def commit(batch: list[tuple[str, TagList | None]]) -> None:
                unread.extend(k for k, tags in batch if tags is None)
                add_tags(catalog, source, {k: tags for k, tags in batch if tags is not None})

            n = commit_as_you_go(results, commit) - len(unread)
            run.metrics.update(clips_tagged=n, clips_skipped=skipped, clips_unread=len(unread))
    return source, n, unread


def import_tags(catalog: Catalog, path: Path, source: str | None = None
                ) -> tuple[str, int, int]:
    """Tags in the study's ``ast_pred_test.json`` format -> (source, clips, clips known)."""
    tags = read_tag_json(path)
    source = source or path.stem
    n = import_as_run(catalog, "tag-import", {"file": str(path), "source": source},
                       lambda: store_tags(catalog, source, tags), "clips_tagged")
    return source, n, tagged_clips_in_catalog(catalog, source)
