"""``vida-batch ingest``: media -> per-clip RGB, flow and audio features -> store + catalog.

Per clip, one decode pass gives T frames on the F fps grid and the matching audio
window; optical flow is computed between consecutive frames; the registered
encoders turn frames, flows and waveform into ``[T, D]`` features.  The clip's
catalog row is committed **in the same transaction** as its features.

A bad file never stops the batch: its row gets ``status='failed'`` and the reason;
a file that kills its worker process is found (its chunk is redone clip by clip)
and recorded as ``worker_crashed``.

plan    discover the media, skip clips already ingested with the same content;
map     :class:`~vida.jobs.data.ingest_map.IngestChunk` on a worker (a local process,
        or a Dask worker on another machine that sees the store): decode, flow,
        encode a chunk of clips, write and seal one shard per feature set, hand
        back what it sealed;
commit  the driver commits each sealed chunk (shards, features and clip rows) in one
        transaction, so a run killed at any moment and run again ends with every
        clip exactly once; ``fsck --repair`` removes sealed shards never committed;
record  an ``ingest`` run with the counts by status.

Chunks in flight are bounded, so memory does not grow with the number of clips.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

from vida.catalog.database import Catalog, CatalogLocked
from vida.catalog.records.clips import known_clips, media_root, record_clips, record_media_root
from vida.catalog.records.runs import heartbeat
from vida.clock import utcnow
from vida.jobs.core.batch_job import recorded
from vida.jobs.core.executor import Pool, WorkerLost, map_as_completed, open_pool, parse_executor
from vida.jobs.data.ingest_map import (
    ChunkDone,
    IngestChunk,
    IngestOptions,
    prepare_worker,
)
from vida.keys import stored_uri
from vida.media.sources import ClipSource, Sources
from vida.store.errors import disk_full, is_disk_full
from vida.store.locks import job_lock
from vida.store.shards import SetLayout
from vida.store.store import FeatureSetInfo, FeatureStore
from vida.store.writers import commit_sealed


@dataclass
class IngestSummary:
    total: int = 0
    by_status: Counter = field(default_factory=Counter)
    by_reason: Counter = field(default_factory=Counter)
    run_id: str | None = None
    refused: list[str] = field(default_factory=list)  # manifest rows that are no clip
    duplicates: int = 0  # manifest rows naming a file another row named
    listing: Any = None  # a dataset's annotations: where its media was looked for, ...

    def add(self, status: str, reason: str | None) -> None:
        self.by_status[status] += 1
        if reason and status in ("failed", "flagged"):
            self.by_reason[f"{status}: {reason}"] += 1

    @property
    def all_failed(self) -> bool:
        """Nothing ingested or already there, though there was something to ingest."""
        done = sum(self.by_status[s] for s in ("ok", "flagged", "skipped"))
        return done == 0 and (self.total > 0 or bool(self.refused))

    def commonest_failure(self) -> str:
        if self.by_reason:
            return self.by_reason.most_common(1)[0][0]
        return self.refused[0] if self.refused else "nothing to ingest"


def register_feature_sets(store: FeatureStore, options: IngestOptions,
                          run_id: str) -> list[FeatureSetInfo]:
    """Register (or check) the three sets ingest fills; their infos, in rgb, flow,
    audio order."""
    infos = []
    for modality in ("rgb", "flow", "audio"):
        encoder = options.build_encoder(modality)
        params = {**encoder.params, **options.grid_params()}
        if modality == "flow":
            params["flow_method"] = options.flow_method
        if modality == "audio":
            params.pop("frame_size")
        infos.append(store.register(options.feature_sets[modality], modality=modality,
                                    encoder=encoder.name, shape=encoder.shape, params=params,
                                    dtype=options.store_dtype, produced_by_run=run_id))
    return infos


def _record_crash(catalog: Catalog, source: ClipSource, error: str) -> None:
    row = {"clip_key": source.clip_key, "class_name": source.class_name,
           "clip_id": source.clip_id, "source_uri": source.uri or source.path,
           "start_s": source.start_s, "end_s": source.end_s, "status": "failed",
           "ingested_at": utcnow(), "error": f"worker_crashed: {error} while decoding this "
           "file (rerun with --retry-failed once it is fixed)"}
    record_clips(catalog, [row])


def chunk_size(total: int, slots: int, rows_per_shard: int) -> int:
    """Clips per task: a shard's worth at scale; for small jobs one task per slot (two
    per worker), so that every worker gets more than one (load balance, a moving
    progress bar) and the driver, which commits every chunk, commits no more often
    than that (the ingest rows of ``bin/bench`` measure it)."""
    return max(1, min(rows_per_shard, -(-total // max(1, slots))))


def _chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _run(pool: Pool, work: IngestChunk, chunks: Iterable[list[Any]], catalog: Catalog,
         on_done: Any, run_id: str | None = None) -> None:
    """Map chunks over the pool, commit each sealed chunk as it comes back.

    A commit that meets the catalog locked elsewhere (a notebook reading it) does not
    stop the work: the sealed chunk waits in memory (its rows only; the arrays are
    on disk) and the workers go on; what waits is committed as soon as the lock
    frees, and at the end the job waits for it.  Chunks lost with a worker are
    redone one clip at a time, one in flight, so that a clip that kills its worker
    is found and recorded as failed, and the others commit."""
    suspects: list[tuple[ClipSource, Any]] = []
    waiting: list[ChunkDone] = []
    last_beat = [time.monotonic()]

    def commit_waiting(wait: float | None) -> None:
        while waiting:
            try:
                commit_sealed(catalog, waiting[0].bundle, wait=wait)
            except Exception as exc:
                if is_disk_full(exc):
                    raise disk_full(catalog.path or Path(".")) from None
                if not isinstance(exc, CatalogLocked):
                    raise
                if len(waiting) == 1:
                    print("vida: the catalog is in use elsewhere (a notebook?); ingest goes "
                          "on and commits when it frees", file=sys.stderr, flush=True)
                return
            for key, status, reason in waiting.pop(0).outcomes:
                on_done(key, status, reason)
        if run_id and time.monotonic() - last_beat[0] > 30:
            heartbeat(catalog, run_id)
            last_beat[0] = time.monotonic()

    try:
        for chunk, done, error in map_as_completed(pool, work, chunks):
            if error is None:
                waiting.append(done)
                commit_waiting(wait=0.5)
            elif isinstance(error, WorkerLost):
                suspects += chunk
            else:
                raise error
        for chunk, done, error in map_as_completed(pool, work, ([s] for s in suspects),
                                                   in_flight=1):
            if error is None:
                waiting.append(done)
                commit_waiting(wait=0.5)
            elif isinstance(error, WorkerLost):
                _record_crash(catalog, chunk[0][0], str(error))
                on_done(chunk[0][0].clip_key, "failed", "worker_crashed")
            else:
                raise error
    finally:  # what was computed and sealed is committed, even when the job stops
        commit_waiting(wait=float("inf"))


# -- the job ----------------------------------------------------------------

def ingest(
    catalog: Catalog,
    store: FeatureStore,
    root: Path,
    *,
    layout: str | None = None,
    options: IngestOptions | None = None,
    workers: int | None = None,
    executor: str | None = None,
    progress: bool = True,
    classes: str | None = None,
) -> IngestSummary:
    """Ingest every clip under ``root``; returns the counts by status and reason.

    ``executor`` (see :mod:`vida.jobs.core.executor`) says where the clips are decoded and
    encoded: ``local`` with ``workers`` processes (default: every core), or Dask.
    ``classes``: a file of class names (or ``kinetics-sounds``) to keep."""

    with job_lock(store.root, "ingest"):  # a second ingest waits, then skips what is done
        sources = Sources(root, layout, _path_or_none(catalog.media_root_override), classes)
        return _ingest(catalog, store, sources, options or IngestOptions(), workers,
                       executor, progress)


def _path_or_none(path: str | None) -> Path | None:
    return Path(path) if path else None


def _ingest(catalog: Catalog, store: FeatureStore, sources: Sources,
            options: IngestOptions, workers: int | None, executor: str | None,
            progress: bool) -> IngestSummary:
    """``sources`` was read (a manifest refused, if no path in it exists) before
    anything is recorded."""
    from tqdm import tqdm

    pool_spec = parse_executor(executor, workers)
    record_media_root(catalog, catalog.media_root_override or str(sources.media_root))
    root_dir = media_root(catalog)
    params = {"root": str(sources.root), "layout": sources.layout, "workers": pool_spec.workers,
              "executor": pool_spec.describe(), **asdict(options)}
    with recorded(catalog, "ingest", params) as run, \
            open_pool(pool_spec, prepare=partial(prepare_worker, options)) as pool:
        run_id = run.run_id
        summary = IngestSummary(run_id=run_id, refused=sources.refused,
                                duplicates=sources.duplicates, listing=sources.listing)
        # the workers start and load their encoders while this process plans
        summary.total = sum(1 for _ in sources)  # a cheap first walk, for the ETA
        infos = register_feature_sets(store, options, run_id)
        known = known_clips(catalog, [info.name for info in infos])
        bar = tqdm(total=summary.total, unit="clip", desc="ingest", disable=not progress,
                   smoothing=0.1)

        def on_done(key: str, status: str, reason: str | None) -> None:
            summary.add(status, reason)
            bar.update(1)
            bar.set_postfix({s: summary.by_status[s] for s in ("ok", "flagged", "failed")})

        tasks = ((replace(s, uri=stored_uri(s.path, root_dir)), known.get(s.clip_key))
                 for s in sources)
        layouts = tuple(SetLayout.of(info) for info in infos)
        work = IngestChunk(options, str(store.root), layouts)
        try:
            size = chunk_size(summary.total, pool.slots, options.rows_per_shard)
            _run(pool, work, _chunks(tasks, size), catalog, on_done, run_id)
        finally:
            bar.close()
        run.metrics = {f"clips_{s}": float(n) for s, n in summary.by_status.items()}
    return summary
