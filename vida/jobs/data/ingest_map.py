"""The map of ``ingest``, as a worker runs it: a chunk of clips -> sealed shards + rows.

Apart from :mod:`vida.jobs.data.ingest` (the driver: plan, commit, record) so that a
worker process imports only media, encoders and the shard writer: unpickling
:class:`IngestChunk` imports this module, and this module imports nothing of the
catalog (SQLAlchemy, DuckDB, Alembic, pandas).
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from vida.clock import utcnow
from vida.encoders import get_encoder, preload_modules
from vida.errors import UsageError
from vida.jobs.core.executor import one_blas_thread
from vida.media.decode import MediaError
from vida.media.flow import METHODS, flow_sequence
from vida.media.grid import FrameGrid, decode_on_grid
from vida.media.loudness import dbfs
from vida.media.sources import ClipSource
from vida.store.errors import disk_full, is_disk_full
from vida.store.shards import SealedBundle, SetLayout, ShardBundle

CLIP_KEY = ("clip_key",)


STORE_DTYPES = ("float32", "float16")


def check_store_dtype(dtype: str) -> None:
    if dtype not in STORE_DTYPES:
        raise UsageError(f"--store-dtype {dtype}: use float32 or float16")


@dataclass(frozen=True)
class IngestOptions:
    n_frames: int = FrameGrid.n_frames
    fps: float = FrameGrid.fps
    frame_size: int = FrameGrid.frame_size
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
    store_dtype: str = "float32"  # how the sets are stored (float16: half the bytes)

    def __post_init__(self) -> None:
        check_store_dtype(self.store_dtype)
        if self.flow_method not in METHODS:
            raise UsageError(f"--flow must be one of {', '.join(METHODS)}")
        if self.n_frames < 2 or self.fps <= 0 or self.frame_size < 16:
            raise UsageError("need --frames >= 2, --fps > 0 and --frame-size >= 16")

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


class ClipProcessor:
    """Turns one :class:`ClipSource` into a catalog row and its feature arrays."""

    def __init__(self, options: IngestOptions) -> None:
        self.o = options
        self.encoders = {m: options.build_encoder(m) for m in ("rgb", "flow", "audio")}
        for modality, encoder in self.encoders.items():
            if encoder.modality != modality:
                raise UsageError(f"encoder {encoder.name!r} takes {encoder.modality}, "
                                 f"not {modality}")

    def warm(self) -> None:
        """Load now what the encoders would load on their first clip (optional
        ``warm()`` of an encoder)."""
        for encoder in self.encoders.values():
            warm = getattr(encoder, "warm", None)
            if warm is not None:
                warm()

    def __call__(self, source: ClipSource, known: tuple[str, str] | None) -> ClipOutcome:
        o = self.o
        sha = source.content_sha256()
        if known and known[0] == sha and not (known[1] == "failed" and o.retry_failed):
            return ClipOutcome(source.clip_key, "skipped")
        row: dict[str, Any] = {
            "clip_key": source.clip_key, "class_name": source.class_name,
            "clip_id": source.clip_id, "source_uri": source.uri or source.path,
            "start_s": source.start_s, "end_s": source.end_s,
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
        if source.origin:
            message = f"{source.origin}: {message}"
        row.update(status="failed", error=message)
        return ClipOutcome(source.clip_key, "failed", reason, row)

    def _decode_and_encode(self, source: ClipSource, row: dict[str, Any]) -> ClipOutcome:
        o = self.o
        window = o.n_frames / o.fps
        audio_path = Path(source.audio_path) if source.audio_path else None
        clip = decode_on_grid(Path(source.media), o.n_frames, o.fps, o.frame_size, audio_path)
        frames, audio, padded = clip.frames, clip.audio, clip.padded
        row.update(fps=clip.fps, width=clip.width, height=clip.height,
                   duration_s=clip.duration_s, n_frames=clip.n_frames)

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


@lru_cache(maxsize=8)
def _set_names(rgb: str, flow: str, audio: str, n_frames: int, suffix: str) -> dict[str, str]:
    tail = f"-{suffix}" if suffix else ""
    return {m: f"{m}/{get_encoder(spec, n_frames=n_frames, device='cpu').name}{tail}"
            for m, spec in (("rgb", rgb), ("flow", flow), ("audio", audio))}


@lru_cache(maxsize=2)
def _processor(options: IngestOptions) -> ClipProcessor:
    """Encoders load once per worker process, however many chunks it is given."""
    return ClipProcessor(options)


def worker_modules(options: IngestOptions) -> tuple[str, ...]:
    """What an ingest worker imports before its first chunk (``start_workers_early``):
    this module (decoders, flow, shard writer) and each encoder's modules."""
    named = (m for spec in (options.rgb_encoder, options.flow_encoder, options.audio_encoder)
             for m in preload_modules(spec))
    return tuple(dict.fromkeys((__name__, *named)))


def prepare_worker(options: IngestOptions) -> None:
    """A worker's warm-up (``open_pool(prepare=...)``): build the encoders and load
    what their first clip would (ast-fbank imports transformers' audio code)."""
    _processor(options).warm()


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
                                   records=[("clips", outcome.row, CLIP_KEY)])
                    outcomes.append((outcome.clip_key, outcome.status, outcome.reason))
            return ChunkDone(bundle.seal(), outcomes)
        except BaseException as exc:
            bundle.discard()
            if is_disk_full(exc):  # a plain message crosses processes (and machines)
                raise disk_full(Path(self.store_root)) from None
            raise
