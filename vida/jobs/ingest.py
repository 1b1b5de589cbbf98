"""``vida-batch ingest``: media -> per-clip RGB, flow and audio features -> store + catalog.

Per clip, one decode pass gives T frames on the F fps grid and the matching audio
window; optical flow is computed between consecutive frames; the registered
encoders turn frames, flows and waveform into ``[T, D]`` features.  The clip's
catalog row is committed **in the same transaction** as its features.

A bad file never stops the batch: its row gets ``status='failed'`` and the reason;
a file that kills its worker process is found (its chunk is redone clip by clip)
and recorded as ``worker_crashed``.

plan    discover the media, skip clips already ingested with the same content;
map     :class:`IngestChunk` on a worker (a local process, or a Dask worker on
        another machine that sees the store): decode, flow, encode a chunk of clips,
        write and seal one shard per feature set, hand back what it sealed;
commit  the driver commits each sealed chunk (shards, features and clip rows) in one
        transaction, so a run killed at any moment and run again ends with every
        clip exactly once; ``fsck --repair`` removes sealed shards never committed;
record  an ``ingest`` run with the counts by status.

Chunks in flight are bounded, so memory does not grow with the number of clips.
"""

from __future__ import annotations

import sys
import time
import traceback
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from vida.catalog.database import Catalog, CatalogLocked
from vida.catalog.schema import Clip, utcnow
from vida.catalog.writes import upsert
from vida.encoders import get_encoder
from vida.jobs.executor import (
    Pool,
    WorkerLost,
    map_as_completed,
    one_blas_thread,
    open_pool,
    parse_executor,
)
from vida.jobs.runs import failure_recorded, finish_run, heartbeat, start_run
from vida.media.decode import MediaError, decode_audio, decode_clip, fit_audio
from vida.media.flow import METHODS, flow_sequence
from vida.media.frames import read_frames
from vida.media.loudness import dbfs
from vida.media.sources import ClipSource, discover
from vida.store.errors import disk_full, is_disk_full
from vida.store.locks import job_lock
from vida.store.shards import SealedBundle, SetLayout, ShardBundle, commit_sealed
from vida.store.store import FeatureStore

CLIP_KEY = ("clip_key",)


@dataclass(frozen=True)
class IngestOptions:
    n_frames: int = 18
    fps: float = 6.0
    frame_size: int = 128
    flow_method: str = "farneback"
    silence_dbfs: float = -50.0
    strict: bool = False
    retry_failed: bool = False
    rgb_encoder: str = "hog-color"
    flow_encoder: str = "flow-hist"
    audio_encoder: str = "ast-fbank"
    rows_per_shard: int = 128
    name_suffix: str = ""
    # where transformer encoders run, in each worker (decode and encode share a process)
    device: str = "cpu"
    dtype: str = "float32"
    batch_size: int = 32

    def __post_init__(self) -> None:
        if self.flow_method not in METHODS:
            raise ValueError(f"--flow must be one of {', '.join(METHODS)}")
        if self.n_frames < 2 or self.fps <= 0 or self.frame_size < 16:
            raise ValueError("need --frames >= 2, --fps > 0 and --frame-size >= 16")

    @property
    def feature_sets(self) -> dict[str, str]:
        """modality -> feature set name: ``<modality>/<encoder name>[-suffix]``; a
        transformers encoder's name says which model made the set."""
        return _set_names(self.rgb_encoder, self.flow_encoder, self.audio_encoder,
                          self.n_frames, self.name_suffix)

    def build_encoder(self, modality: str) -> Any:
        spec = {"rgb": self.rgb_encoder, "flow": self.flow_encoder,
                "audio": self.audio_encoder}[modality]
        return get_encoder(spec, n_frames=self.n_frames, device=self.device, dtype=self.dtype,
                           batch_size=self.batch_size)

    def grid_params(self) -> dict[str, Any]:
        return {"n_frames": self.n_frames, "fps": self.fps, "frame_size": self.frame_size}


@dataclass
class ClipOutcome:
    clip_key: str
    status: str  # ok / flagged / failed / skipped
    reason: str | None = None
    row: dict[str, Any] | None = None
    arrays: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class IngestSummary:
    total: int = 0
    by_status: Counter = field(default_factory=Counter)
    by_reason: Counter = field(default_factory=Counter)
    run_id: str | None = None

    def add(self, status: str, reason: str | None) -> None:
        self.by_status[status] += 1
        if reason and status in ("failed", "flagged"):
            self.by_reason[f"{status}: {reason}"] += 1

    def lines(self) -> list[str]:
        counts = ", ".join(f"{self.by_status.get(s, 0)} {s}"
                           for s in ("ok", "flagged", "failed", "skipped"))
        out = [f"{self.total} clips: {counts}"]
        out += [f"  {n:>6}  {reason}" for reason, n in self.by_reason.most_common()]
        return out


class ClipProcessor:
    """Turns one :class:`ClipSource` into a catalog row and its feature arrays."""

    def __init__(self, options: IngestOptions) -> None:
        self.o = options
        self.encoders = {m: options.build_encoder(m) for m in ("rgb", "flow", "audio")}
        for modality, encoder in self.encoders.items():
            if encoder.modality != modality:
                raise ValueError(f"encoder {encoder.name!r} takes {encoder.modality}, "
                                 f"not {modality}")

    def __call__(self, source: ClipSource, known: tuple[str, str] | None) -> ClipOutcome:
        o = self.o
        sha = source.content_sha256()
        if known and known[0] == sha and not (known[1] == "failed" and o.retry_failed):
            return ClipOutcome(source.clip_key, "skipped")
        row: dict[str, Any] = {
            "clip_key": source.clip_key, "class_name": source.class_name,
            "clip_id": source.clip_id, "source_uri": source.path,
            "source_split": source.source_split, "content_sha256": sha,
            "ingested_at": utcnow(), "error": None,
        }
        try:
            return self._decode_and_encode(source, row)
        except MediaError as exc:
            reason, message = exc.reason, str(exc)
        except Exception as exc:  # never let one clip stop the batch...
            if is_disk_full(exc):  # ...unless it is the job's fault, not the clip's
                raise
            reason = f"unexpected {type(exc).__name__}"
            message = f"{reason}: {exc} ({traceback.extract_tb(exc.__traceback__)[-1].name})"
        row.update(status="failed", error=message)
        return ClipOutcome(source.clip_key, "failed", reason, row)

    def _decode_and_encode(self, source: ClipSource, row: dict[str, Any]) -> ClipOutcome:
        o = self.o
        window = o.n_frames / o.fps
        if source.kind == "video":
            clip = decode_clip(Path(source.path), o.n_frames, o.fps, o.frame_size)
            frames, audio, padded = clip.frames, clip.audio, clip.padded
            row.update(fps=clip.fps, width=clip.width, height=clip.height,
                       duration_s=clip.duration_s, n_frames=clip.n_frames)
        else:
            frames, found, width, height = read_frames(Path(source.path), o.n_frames,
                                                       o.frame_size)
            audio = None
            if source.audio_path:
                raw = decode_audio(Path(source.audio_path), seconds=window)
                audio = None if raw is None or raw.size == 0 else fit_audio(
                    raw, int(round(window * 16000)))
            padded = found < o.n_frames
            row.update(fps=o.fps, width=width, height=height, duration_s=found / o.fps,
                       n_frames=found)

        flags = []
        if padded:
            if o.strict:
                row.update(status="failed", error="too_short: shorter than "
                           f"{window:g} s and --strict is on")
                return ClipOutcome(source.clip_key, "failed", "too_short", row)
            flags.append(f"too_short: shorter than {window:g} s, last frame repeated")

        arrays = {
            "rgb": self.encoders["rgb"].encode(frames[None])[0],
            "flow": self.encoders["flow"].encode(flow_sequence(frames, o.flow_method)[None])[0],
        }
        row["has_audio"] = audio is not None
        if audio is not None:
            level = dbfs(audio)
            row.update(audio_dbfs=level, silent=level < o.silence_dbfs)
            arrays["audio"] = self.encoders["audio"].encode(audio[None])[0]
        else:
            row.update(audio_dbfs=None, silent=None)
        status = "flagged" if flags else "ok"
        row.update(status=status, error="; ".join(flags) or None)
        named = {o.feature_sets[m]: a for m, a in arrays.items()}
        return ClipOutcome(source.clip_key, status, flags[0].split(":")[0] if flags else None,
                           row, named)


def register_feature_sets(store: FeatureStore, options: IngestOptions, run_id: str) -> None:
    processor_shapes = {
        m: options.build_encoder(m) for m in ("rgb", "flow", "audio")
    }
    for modality, encoder in processor_shapes.items():
        params = {**encoder.params, **options.grid_params()}
        if modality == "flow":
            params["flow_method"] = options.flow_method
        if modality == "audio":
            params.pop("frame_size")
        store.register(options.feature_sets[modality], modality=modality, encoder=encoder.name,
                       shape=encoder.shape, params=params, produced_by_run=run_id)


def _known_clips(catalog: Catalog) -> dict[str, tuple[str, str]]:
    frame = catalog.sql("SELECT clip_key, content_sha256, status FROM clips")
    return {k: (h, s) for k, h, s in frame.itertuples(index=False)}


@lru_cache(maxsize=8)
def _set_names(rgb: str, flow: str, audio: str, n_frames: int, suffix: str) -> dict[str, str]:
    tail = f"-{suffix}" if suffix else ""
    return {m: f"{m}/{get_encoder(spec, n_frames=n_frames, device='cpu').name}{tail}"
            for m, spec in (("rgb", rgb), ("flow", flow), ("audio", audio))}


# -- the map: a chunk of clips -> sealed shards + clip rows, in a worker -------

@lru_cache(maxsize=2)
def _processor(options: IngestOptions) -> ClipProcessor:
    """Encoders load once per worker process, however many chunks it is given."""
    return ClipProcessor(options)


@dataclass
class ChunkDone:
    """What a worker hands back: its sealed shards with the clip rows, and each
    clip's (key, status, reason) for the summary."""

    bundle: SealedBundle
    outcomes: list[tuple[str, str, str | None]]


@dataclass(frozen=True)
class IngestChunk:
    """The map of ``ingest``: decode and encode a chunk of clips, write and seal one
    shard per feature set.  Never touches the catalog."""

    options: IngestOptions
    store_root: str
    layouts: tuple[SetLayout, ...]

    def __call__(self, chunk: list[tuple[ClipSource, tuple[str, str] | None]]) -> ChunkDone:
        process = _processor(self.options)
        bundle = ShardBundle(Path(self.store_root), list(self.layouts))
        outcomes = []
        try:
            with one_blas_thread():
                for source, known in chunk:
                    outcome = process(source, known)
                    if outcome.row is not None:
                        bundle.add(outcome.clip_key, outcome.arrays,
                                   records=[(Clip, outcome.row, CLIP_KEY)])
                    outcomes.append((outcome.clip_key, outcome.status, outcome.reason))
            return ChunkDone(bundle.seal(), outcomes)
        except BaseException as exc:
            bundle.discard()
            if is_disk_full(exc):  # a plain message crosses processes (and machines)
                raise disk_full(Path(self.store_root)) from None
            raise


def _record_crash(catalog: Catalog, source: ClipSource, error: str) -> None:
    row = {"clip_key": source.clip_key, "class_name": source.class_name,
           "clip_id": source.clip_id, "source_uri": source.path, "status": "failed",
           "ingested_at": utcnow(), "error": f"worker_crashed: {error} while decoding this "
           "file (rerun with --retry-failed once it is fixed)"}
    with catalog.transaction() as session:
        upsert(session, Clip, [row], key=CLIP_KEY)


def chunk_size(total: int, slots: int, rows_per_shard: int) -> int:
    """Clips per task: a shard's worth at scale, smaller for small jobs so that every
    worker gets several tasks (load balance, a moving progress bar)."""
    return max(1, min(rows_per_shard, -(-total // max(1, 2 * slots))))


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
    options: IngestOptions = IngestOptions(),
    workers: int | None = None,
    executor: str | None = None,
    progress: bool = True,
) -> IngestSummary:
    """Ingest every clip under ``root``; returns the counts by status and reason.

    ``executor`` (see :mod:`vida.jobs.executor`) says where the clips are decoded and
    encoded: ``local`` with ``workers`` processes (default: every core), or Dask."""

    with job_lock(store.root, "ingest"):  # a second ingest waits, then skips what is done
        return _ingest(catalog, store, root, layout, options, workers, executor, progress)


def _ingest(catalog: Catalog, store: FeatureStore, root: Path, layout: str | None,
            options: IngestOptions, workers: int | None, executor: str | None,
            progress: bool) -> IngestSummary:
    from tqdm import tqdm

    pool_spec = parse_executor(executor, workers)
    total = sum(1 for _ in discover(root, layout))  # a cheap first walk, for the ETA
    run_id = start_run(catalog, kind="ingest", params={
        "root": str(root), "layout": layout, "workers": pool_spec.workers,
        "executor": pool_spec.describe(), **asdict(options)})
    register_feature_sets(store, options, run_id)
    known = _known_clips(catalog)
    summary = IngestSummary(total=total, run_id=run_id)
    bar = tqdm(total=total, unit="clip", desc="ingest", disable=not progress, smoothing=0.1)

    def on_done(key: str, status: str, reason: str | None) -> None:
        summary.add(status, reason)
        bar.update(1)
        bar.set_postfix({s: summary.by_status[s] for s in ("ok", "flagged", "failed")})

    tasks = ((s, known.get(s.clip_key)) for s in discover(root, layout))
    layouts = tuple(SetLayout.of(store.info(n)) for n in options.feature_sets.values())
    work = IngestChunk(options, str(store.root), layouts)
    with failure_recorded(catalog, run_id):
        try:
            with open_pool(pool_spec) as pool:
                size = chunk_size(total, pool.slots, options.rows_per_shard)
                _run(pool, work, _chunks(tasks, size), catalog, on_done, run_id)
        finally:
            bar.close()
    finish_run(catalog, run_id, status="finished",
               metrics={f"clips_{s}": float(n) for s, n in summary.by_status.items()})
    return summary
