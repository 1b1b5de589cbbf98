"""``vida-batch encode``: new feature sets for clips already in the catalog.

plan    the ``--query``'s clips (default: every usable clip), in clip_key order, less
        those that already have every requested set (a rerun resumes) and those
        that failed before (unless ``--retry-failed``);
map     :class:`DecodeForEncode` in worker processes: each clip's source decoded
        again on the grid of an existing set (``--grid-from``), flow recomputed the
        same way, audio cut to the same window;
encode  in this process, in batches across clips, by models loaded once (on the
        GPU when there is one, fed by the decoding workers);
commit  sealed shards per set; failures per clip and set in ``feature_failures``
        (the clip itself stays ``ok``: its other features are fine);
record  an ``encode`` run with clips/s.

``--project D`` then fits a PCA on the **train** clips of each new audio set and
writes the projected set beside it; the fitted projection is a file in the store
that the projected set names (with its hash) and that every later encode of that
set applies (``ast:MODEL?projection=FILE``).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vida.catalog.database import Catalog
from vida.catalog.records.clip_queries import USABLE_CLIPS, clips_of
from vida.catalog.records.clips import clip_keys_in_split
from vida.catalog.records.features import (
    clear_failures,
    failed_keys,
    record_failures,
    sibling_set_params,
)
from vida.encoders import Encoder, get_encoder
from vida.encoders.audio import Projection
from vida.errors import UsageError
from vida.jobs.core.batch_job import recorded
from vida.jobs.core.executor import map_ordered, open_pool, parse_executor, remote_spec
from vida.media.decode import AUDIO_RATE, MediaError, fit_audio, study_audio_path
from vida.media.flow import flow_sequence
from vida.media.grid import FrameGrid, decode_on_grid
from vida.store.locks import job_lock
from vida.store.store import FeatureStore

Item = tuple[str, str, str, str]  # clip_key, source_uri, class_name, clip_id
ITEM_COLUMNS = ("clip_key", "source_uri", "class_name", "clip_id")


@dataclass(frozen=True)
class DecodeForEncode:
    """The map of ``encode``: a clip row -> (clip_key, inputs by modality, error)."""

    n_frames: int
    fps: float
    size: int
    flow_method: str
    modalities: tuple[str, ...]

    def __call__(self, item: Item) -> tuple[str, dict[str, np.ndarray] | None, str | None]:
        key, source_uri, class_name, clip_id = item
        try:
            path = Path(source_uri)
            seconds = self.n_frames / self.fps
            audio_path = study_audio_path(source_uri, class_name, clip_id) if path.is_dir() \
                else None  # the study's frame folders have their audio beside them
            clip = decode_on_grid(path, self.n_frames, self.fps, self.size, audio_path)
            frames, audio = clip.frames, clip.audio
            out: dict[str, np.ndarray] = {}
            if "rgb" in self.modalities:
                out["rgb"] = frames
            if "flow" in self.modalities:
                out["flow"] = flow_sequence(frames, self.flow_method)
            if "audio" in self.modalities:
                if audio is None:
                    return key, None, "no_audio: the clip has no audio track"
                out["audio"] = fit_audio(audio, int(round(seconds * AUDIO_RATE)))
            return key, out, None
        except MediaError as exc:
            return key, None, str(exc)
        except Exception as exc:  # never let one clip stop the batch
            return key, None, f"unexpected {type(exc).__name__}: {exc}"


@dataclass
class EncodeSummary:
    run_id: str
    sets: dict[str, str]  # modality -> feature set
    encoded: dict[str, int] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)
    skipped: int = 0
    seconds: float = 0.0
    projected: list[str] = field(default_factory=list)
    reasons: Counter = field(default_factory=Counter)  # failures by their message

    def commonest_failure(self) -> str:
        return self.reasons.most_common(1)[0][0] if self.reasons else "none"


def default_workers(device: str) -> int:
    """Decoding processes for ``encode``: on a GPU, every core decodes while the GPU
    encodes; on the CPU the model already uses every core, so decoding runs in this
    process between batches: decode workers would compete with the model for the
    cores (``bin/bench_encoders.py`` measures both)."""
    import os

    from vida.encoders.runtime import resolve_device

    return 1 if resolve_device(device) == "cpu" else max(1, os.cpu_count() or 1)


def _decoded(items: list[Item], work: DecodeForEncode, workers: int
             ) -> Iterator[tuple[str, dict[str, np.ndarray] | None, str | None]]:
    """Decoded clips in plan order: on the Dask cluster if one was chosen, else in
    ``workers`` local processes (1: here); a bounded number in flight."""
    spec = remote_spec() or parse_executor("local", workers)
    with open_pool(spec) as pool:
        yield from map_ordered(pool, work, items)


class _Batcher:
    """Decoded clips gathered until a batch is full, then encoded and written."""

    def __init__(self, encoders: dict[str, Encoder], writers: dict[str, Any],
                 clips_per_batch: int, failures: dict[tuple[str, str], str],
                 names: dict[str, str], todo: dict[str, set[str]]) -> None:
        self.encoders, self.writers, self.size = encoders, writers, clips_per_batch
        self.failures, self.names, self.todo = failures, names, todo
        self.buffer: list[tuple[str, dict[str, np.ndarray]]] = []
        self.encoded: dict[str, list[str]] = {m: [] for m in encoders}

    def add(self, key: str, inputs: dict[str, np.ndarray]) -> None:
        self.buffer.append((key, inputs))
        if len(self.buffer) >= self.size:
            self.flush()

    def flush(self) -> None:
        for modality, encoder in self.encoders.items():
            batch = [(k, x[modality]) for k, x in self.buffer if k in self.todo[modality]]
            if batch:
                self._encode(modality, encoder, batch)
        self.buffer.clear()

    def _encode(self, modality: str, encoder: Encoder, batch: list) -> None:
        try:
            out = encoder.encode(np.stack([x for _, x in batch]))
            done = list(zip([k for k, _ in batch], out, strict=True))
        except ValueError:
            raise  # a configuration error (device, model) is the job's, not a clip's
        except Exception:
            if len(batch) == 1:  # this clip's input breaks the encoder
                key = batch[0][0]
                self.failures[(self.names[modality], key)] = "encoder_failed"
                return
            for one in batch:  # find the clip that breaks the batch
                self._encode(modality, encoder, [one])
            return
        for key, value in done:
            self.writers[modality].add(key, value)
            self.encoded[modality].append(key)


def encode_clips(catalog: Catalog, store: FeatureStore, *, encoders: dict[str, str],
                 query: str | None = None, grid_from: str = "rgb/hog-color",
                 flow_method: str | None = None, device: str = "auto", dtype: str = "float32",
                 batch_size: int = 32, workers: int = 1, project: int | None = None,
                 retry_failed: bool = False, rows_per_shard: int = 128,
                 store_dtype: str = "float32", progress: bool = True) -> EncodeSummary:
    """Encode the query's clips with ``encoders`` ({modality: spec}) into new sets.
    One encode per store at a time: a second waits, then plans what is left."""
    with job_lock(store.root, "encode"):
        return _encode_clips(catalog, store, encoders=encoders, query=query,
                             grid_from=grid_from, flow_method=flow_method, device=device,
                             dtype=dtype, batch_size=batch_size, workers=workers,
                             project=project, retry_failed=retry_failed,
                             rows_per_shard=rows_per_shard, store_dtype=store_dtype,
                             progress=progress)


def _built_encoders(encoders: dict[str, str], options: dict[str, Any]) -> dict[str, Any]:
    """Each modality's encoder, refused in one line if it encodes another modality."""
    if not encoders:
        raise UsageError("name at least one encoder, e.g. --encoder rgb=hf-image:DIR")
    built = {m: get_encoder(spec, **options) for m, spec in encoders.items()}
    for modality, encoder in built.items():
        if encoder.modality != modality:
            raise UsageError(f"encoder {encoders[modality]!r} takes {encoder.modality}, "
                             f"not {modality}")
    return built


def _plan_encode(catalog: Catalog, store: FeatureStore, query: str | None,
                 names: dict[str, str], retry_failed: bool
                 ) -> tuple[int, dict[str, set[str]], list[Item]]:
    """The clips to decode (each missing from some set and not failed there before,
    unless ``retry_failed``): how many the query chose, each set's keys to do, and
    the items."""
    clips = clips_of(catalog, query, default=USABLE_CLIPS, needs=ITEM_COLUMNS)
    keys = clips["clip_key"].tolist()
    todo: dict[str, set[str]] = {}
    for modality, name in names.items():
        have = set(store.keys(name)) if store.exists(name) else set()
        skip = set() if retry_failed else failed_keys(catalog, name)
        todo[modality] = {k for k in keys if k not in have and k not in skip}
    wanted = set().union(*todo.values())
    items = [tuple(r) for r in clips[list(ITEM_COLUMNS)]
             .itertuples(index=False, name=None) if r[0] in wanted]
    return len(keys), todo, items


def _encode_clips(catalog: Catalog, store: FeatureStore, *, encoders: dict[str, str],
                  query: str | None, grid_from: str, flow_method: str | None, device: str,
                  dtype: str, batch_size: int, workers: int, project: int | None,
                  retry_failed: bool, rows_per_shard: int, store_dtype: str,
                  progress: bool) -> EncodeSummary:
    frame_grid = FrameGrid.of(store.info(grid_from).params)
    n, fps, size = frame_grid.n_frames, frame_grid.fps, frame_grid.frame_size
    flow_method = flow_method or flow_method_of(catalog, grid_from)
    grid = {"n_frames": n, "fps": fps, "frame_size": size}
    options = {"n_frames": n, "device": device, "dtype": dtype, "batch_size": batch_size}
    built = _built_encoders(encoders, options)
    names = {m: f"{m}/{e.name}" for m, e in built.items()}
    n_chosen, todo, items = _plan_encode(catalog, store, query, names, retry_failed)  # plan
    params = {"encoders": encoders, "grid_from": grid_from, "device": device, "dtype": dtype,
              "store_dtype": store_dtype,
              "batch_size": batch_size, "workers": workers, "project": project}
    with recorded(catalog, "encode", params, query=query, feature_sets=list(names.values())
                  ) as run:
        summary = EncodeSummary(run.run_id, names, skipped=n_chosen - len(items))
        for modality, name in names.items():
            store.register(name, modality=modality, encoder=built[modality].name,
                           shape=built[modality].shape, dtype=store_dtype,
                           produced_by_run=run.run_id,
                           params={**built[modality].params, **grid,
                                   **({"flow_method": flow_method} if modality == "flow"
                                      else {})})
        work = DecodeForEncode(n, fps, size, flow_method, tuple(built))
        failures, encoded = _encode_items(store, built, names, todo, items, work, workers,
                                          batch_size // n, rows_per_shard, progress, summary)
        _summarise_encode(catalog, run.run_id, summary, names, failures, encoded)
        if project:
            for modality, encoder in built.items():
                if modality == "audio" and "projection" not in encoder.params:
                    summary.projected.append(project_set(
                        catalog, store, names[modality], encoders[modality], project, options,
                        grid, run.run_id))
        run.metrics.update({"clips_per_s": max(summary.encoded.values(), default=0)
                            / max(summary.seconds, 1e-9),
                            **{f"encoded:{k}": v for k, v in summary.encoded.items()},
                            **{f"failed:{k}": v for k, v in summary.failed.items()}})
    return summary


def _encode_items(store: FeatureStore, built: dict[str, Any], names: dict[str, str],
                  todo: dict[str, set[str]], items: list[Item], work: DecodeForEncode,
                  workers: int, clips_per_batch: int, rows_per_shard: int, progress: bool,
                  summary: EncodeSummary
                  ) -> tuple[dict[tuple[str, str], str], dict[str, list[str]]]:
    """The map and the encoding, in batches across clips; shards sealed on success,
    discarded on error.  Returns the failures and the keys encoded per modality."""
    from tqdm import tqdm

    failures: dict[tuple[str, str], str] = {}
    start = time.monotonic()
    with ExitStack() as stack:
        writers = {m: stack.enter_context(store.writer(name, rows_per_shard))
                   for m, name in names.items()}
        batcher = _Batcher(built, writers, max(1, clips_per_batch), failures, names, todo)
        bar = stack.enter_context(tqdm(total=len(items), unit="clip", desc="encode",
                                       disable=not progress))
        for key, inputs, error in _decoded(items, work, workers):
            if inputs is None:
                failures.update({(names[m], key): error for m in built if key in todo[m]})
            else:
                batcher.add(key, inputs)
            bar.update(1)
        batcher.flush()
    summary.seconds = time.monotonic() - start
    return failures, batcher.encoded


def _summarise_encode(catalog: Catalog, run_id: str, summary: EncodeSummary,
                      names: dict[str, str], failures: dict[tuple[str, str], str],
                      encoded: dict[str, Any]) -> None:
    """Record the failures, clear the ones now encoded, and count both per set."""
    record_failures(catalog, run_id, failures)
    summary.reasons.update(failures.values())
    for modality, done in encoded.items():
        clear_failures(catalog, names[modality], done)
        summary.encoded[names[modality]] = len(done)
        summary.failed[names[modality]] = sum(1 for s, _ in failures if s == names[modality])


def flow_method_of(catalog: Catalog, grid_from: str) -> str:
    """The flow method of the flow set made by the same run as ``grid_from`` (ingest
    records it there), so re-decoded clips get their flow computed the same way."""
    for params in sibling_set_params(catalog, grid_from, "flow"):
        method = params.get("flow_method")
        if method:
            return str(method)
    return "farneback"


def fit_projection(store: FeatureStore, source: str, train_keys: list[str], dim: int,
                   path: Path) -> Path:
    """A PCA of ``source``'s rows on the train clips only, saved to ``path``."""
    from sklearn.decomposition import PCA

    rows = store.read(source, train_keys).reshape(-1, store.info(source).shape[-1])
    if dim > min(rows.shape):
        raise UsageError(f"--project {dim}: the train split gives {rows.shape[0]} rows of "
                         f"{rows.shape[1]} dims; choose D <= {min(rows.shape)}")
    pca = PCA(n_components=dim, svd_solver="full").fit(rows)
    return Projection.save(path, pca.mean_, pca.components_,
                           explained_variance_ratio=pca.explained_variance_ratio_,
                           train_clips=len(train_keys))


def project_set(catalog: Catalog, store: FeatureStore, source: str, spec: str, dim: int,
                options: dict[str, Any], grid: dict[str, Any], run_id: str) -> str:
    """Fit (once) the train-only PCA of ``source`` and write the projected set."""
    path = store.root / "projections" / f"{source.replace('/', '__')}-pca{dim}.npz"
    if not path.exists():  # an existing projection is the set's definition: never refit
        train = clip_keys_in_split(catalog, "train")
        train_keys = sorted(set(train) & set(store.keys(source)))
        if len(train_keys) < 2:
            raise UsageError(f"--project needs train clips with {source}: run "
                             "`vida-batch split` first (the projection is fitted on train only)")
        fit_projection(store, source, train_keys, dim, path)
    encoder = get_encoder(spec, **options, projection=str(path))
    name = f"audio/{encoder.name}"
    store.register(name, modality="audio", encoder=encoder.name, shape=encoder.shape,
                   params={**encoder.params, **grid}, produced_by_run=run_id)
    done = set(store.keys(name))
    todo = [k for k in sorted(store.keys(source)) if k not in done]
    projection = Projection(path)
    with store.writer(name) as writer:
        for start in range(0, len(todo), 256):
            chunk = todo[start:start + 256]
            for key, value in zip(chunk, projection(store.read(source, chunk)), strict=True):
                writer.add(key, value)
    return name
