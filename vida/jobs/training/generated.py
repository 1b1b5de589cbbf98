"""Writing what generators generate, in the job shape: *plan* (the driver: which
clips each generator writes, where their inputs are, the set registered) -> *map*
(:func:`generate_rows`: any process, sealed shards back, no catalog) -> *commit* (the
driver: the shards in one transaction) -> *record* (a ``generate`` run).

``generated/<run>`` holds one generator's output; ``generated/<run>-xf<k>`` a
cross-fitted set, each train clip's row from the fold generator that never saw it.
A rerun writes only the clips the set lacks: what is there was made by the same
generators.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import torch

from vida.catalog.database import Catalog
from vida.catalog.records.clip_queries import ALL_CLIPS, ClipQuery, clips_of
from vida.catalog.records.runs import finish_run, run_row, runs_with_params, start_run
from vida.errors import UsageError
from vida.jobs.core.batch_job import run_lifecycle
from vida.jobs.training.common import torch_threads
from vida.jobs.training.generator import (
    GeneratorSpec,
    cross_fit_folds,
    finished_generator,
    load_generator,
    train_generator,
    with_noise,
)
from vida.jobs.training.plan_reads import PlanReads
from vida.store.located import Located, read_concatenated, read_rows
from vida.store.locks import job_lock
from vida.store.shards import SealedBundle, SetLayout, ShardBundle
from vida.store.store import FeatureStore
from vida.store.writers import commit_sealed


@dataclass(frozen=True)
class GeneratePart:
    """The clips one generator writes (``inputs[0].keys``) and where their inputs are."""

    checkpoint: str
    inputs: tuple[Located, ...]
    mask: Located | None = None  # CAFMap: the condition's mask rows


@dataclass(frozen=True)
class GenerateTask:
    """A generated set's missing rows, ready to compute anywhere that mounts the store."""

    layout: SetLayout
    store_root: str
    parts: tuple[GeneratePart, ...]
    batch: int = 256
    rows_per_shard: int = 256
    threads: int = 1  # fixed in an experiment (see torch_threads); 0: torch's own


@dataclass
class PlannedGenerate:
    name: str
    task: GenerateTask | None  # None: the set has every clip already
    params: dict[str, Any]
    metrics: dict[str, float]
    input_sets: list[str] = field(default_factory=list)
    arch: str | None = None  # the generator's


def _chunks(where: Located, size: int) -> list[Located]:
    return [replace(where, keys=where.keys[i:i + size], paths=where.paths[i:i + size],
                    rows=where.rows[i:i + size]) for i in range(0, len(where.keys), size)]


def generate_rows(task: GenerateTask) -> SealedBundle:
    """The map of a generate item: each part's generator run over its clips, in
    batches, into sealed shards that the driver commits."""
    writer = ShardBundle(Path(task.store_root), [task.layout])
    sealed = SealedBundle()
    try:
        with torch_threads(task.threads), torch.no_grad():
            for part in task.parts:
                model, spec, norm = load_generator(part.checkpoint)
                batches = zip(*(_chunks(w, task.batch) for w in part.inputs), strict=True)
                masks = _chunks(part.mask, task.batch) if part.mask else None
                for i, inputs in enumerate(batches):
                    mask = masks[i] if masks else None
                    x = with_noise(spec, read_concatenated(inputs),
                                   lambda m=mask: read_rows(m), noise_seed=spec.seed + 7)
                    out = model(torch.from_numpy(norm(x))).numpy()
                    for key, value in zip(inputs[0].keys, out, strict=True):
                        writer.add(key, {task.layout.name: value})
                    if writer.pending >= task.rows_per_shard:
                        sealed.shards += writer.seal().shards
        sealed.shards += writer.seal().shards
    except BaseException:
        writer.discard()
        for path in sealed.paths(Path(task.store_root)):  # never to be committed
            path.unlink(missing_ok=True)
        raise
    return sealed


def default_query(spec: GeneratorSpec) -> ClipQuery:
    """Every clip that has the generator's inputs."""
    return ClipQuery(ALL_CLIPS, feature_sets=tuple(spec.input_sets))


def _register(store: FeatureStore, reads: PlanReads, name: str, spec: GeneratorSpec,
              run_id: str, **extra: object) -> SetLayout:
    target = reads.info(spec.audio)
    grid = {k: target.params[k] for k in ("n_frames", "fps") if k in target.params}
    info = store.register(name, modality="generated", encoder=f"{spec.arch}-generator",
                          shape=target.shape, dtype=target.dtype,  # stored as its target
                          params={"run": run_id, "target": spec.audio, **grid, **extra},
                          produced_by_run=run_id)
    return SetLayout(info.name, tuple(info.shape), info.dtype)


def plan_generate(catalog: Catalog, store: FeatureStore, run_id: str, query: str | ClipQuery | None,
                  folds: list[list[str]] = (), fold_runs: list[str] = (), *,
                  reads: PlanReads | None = None, batch: int = 256, threads: int = 1
                  ) -> PlannedGenerate:
    """The set of generator ``run_id`` (cross-fitted with ``folds``/``fold_runs``) for
    the query's clips: registered, and the task for the clips it lacks."""
    reads = reads or PlanReads(catalog, store)
    checkpoint = finished_generator(catalog, run_id)
    spec = load_generator(checkpoint)[1]
    query = query or default_query(spec)
    keys = clips_of(catalog, query)["clip_key"].tolist()
    k = len(folds)
    name = f"generated/{run_id}-xf{k}" if k else f"generated/{run_id}"
    if store.exists(name):  # resuming: what is there was made by these same generators
        have = set(store.keys(name))
        keys = [key for key in keys if key not in have]
    params: dict[str, Any] = {"generator_run": run_id, "set": name}
    extra = {"cross_fit": k, "fold_runs": list(fold_runs)} if k else {}
    layout = _register(store, reads, name, spec, run_id, **extra)
    in_fold = {key: i for i, fold in enumerate(folds) for key in fold}
    owners = [*(finished_generator(catalog, r) for r in fold_runs), checkpoint]
    parts = []
    for i, owner in enumerate(owners):
        mine = [key for key in keys if in_fold.get(key, len(folds)) == i]
        if mine:
            mask = (reads.locate(spec.condition, mine, extra="mask")
                    if spec.arch == "cafmap" else None)
            parts.append(GeneratePart(owner, tuple(reads.locate(n, mine)
                                                   for n in spec.input_sets), mask))
    metrics = {"clips": len(keys)}
    if k:
        metrics["cross_fitted"] = sum(key in in_fold for key in keys)
    task = GenerateTask(layout, str(store.root), tuple(parts), batch, threads=threads)
    return PlannedGenerate(name, task if parts else None, {**params, **extra}, metrics,
                           spec.input_sets, spec.arch)


def start_generate_run(catalog: Catalog, planned: PlannedGenerate, query: str | ClipQuery | None, *,
                       experiment_id: str | None = None, sweep: bool = True) -> str:
    return start_run(catalog, kind="generate", params=planned.params, arch=planned.arch,
                     query=query, feature_sets=planned.input_sets, experiment_id=experiment_id,
                     sweep=sweep)


def record_generate(catalog: Catalog, planned: PlannedGenerate, bundle: SealedBundle | None,
                    run_id: str) -> None:
    """Commit the sealed shards, then the run finished with its counts."""
    if bundle is not None:
        commit_sealed(catalog, bundle)
    finish_run(catalog, run_id, metrics=planned.metrics)


def _write(catalog: Catalog, store: FeatureStore, planned: PlannedGenerate,
           query: str | ClipQuery | None) -> str:
    """Plan done: map here (or on the Dask cluster chosen), commit, record."""
    from vida.jobs.core.executor import open_pool, remote_spec

    with run_lifecycle(catalog, partial(start_generate_run, catalog, planned, query)) as run:
        bundle = None
        if planned.task is not None:
            remote = remote_spec()
            if remote is None:
                bundle = generate_rows(planned.task)
            else:
                with open_pool(remote) as pool:
                    bundle = pool.submit(generate_rows, planned.task).result()
        record_generate(catalog, planned, bundle, run.run_id)
        run.closed = True
    return planned.name


def generate(catalog: Catalog, store: FeatureStore, run_id: str,
             query: str | ClipQuery | None = None,
             batch: int = 256) -> str:
    """Write the run's generated audio for the query's clips as ``generated/<run_id>``."""
    with job_lock(store.root, f"generate-{run_id}"):  # a second waits, then finds it done
        return _write(catalog, store, plan_generate(catalog, store, run_id, query,
                                                    batch=batch, threads=0), query)


def write_cross_fitted(catalog: Catalog, store: FeatureStore, run_id: str,
                       folds: list[list[str]], fold_runs: list[str], query: str | ClipQuery | None,
                       batch: int = 256) -> str:
    """``generated/<run>-xf<k>`` from the run's generator and its trained folds."""
    with job_lock(store.root, f"generate-{run_id}-xf{len(folds)}-write"):
        planned = plan_generate(catalog, store, run_id, query, folds, fold_runs, batch=batch,
                                threads=0)
        return _write(catalog, store, planned, query)


def cross_fit_generate(catalog: Catalog, store: FeatureStore, run_id: str, k: int,
                       query: str | ClipQuery | None = None, *, runs: str | None = None,
                       experiment_id: str | None = None, batch: int = 256) -> str:
    """``generated/<run>-xf<k>``: every *train* clip's features come from a generator
    trained on the other k-1 folds of the run's train clips (same spec, same val
    clips for early stopping); every other clip's from the run's own generator.

    Without this, a classifier learns from in-sample generations (close to the real
    audio the generator memorised) and is tested on out-of-sample ones: it learns to
    trust a signal that is worse at test time.
    """
    if k < 2:
        raise UsageError(f"--cross-fit {k}: give 2 or more folds")
    with job_lock(store.root, f"generate-{run_id}-xf{k}"):  # a second waits, then resumes
        spec = load_generator(finished_generator(catalog, run_id))[1]
        trained_on = run_row(catalog, run_id).query
        folds = cross_fit_folds(catalog, trained_on, spec.seed, k)
        # a rerun (after a kill) reuses the folds already trained, so the set it
        # resumes keeps the generators it was registered with
        done = _finished_folds(catalog, run_id, k)
        fold_runs = [done.get(f"{i + 1}/{k} of {run_id}") or train_generator(
            catalog, store, trained_on, spec, experiment_id=experiment_id, runs=runs,
            progress=False, exclude=fold, fold=f"{i + 1}/{k} of {run_id}")
            for i, fold in enumerate(folds)]
        return write_cross_fitted(catalog, store, run_id, folds, fold_runs, query, batch)


def _finished_folds(catalog: Catalog, run_id: str, k: int) -> dict[str, str]:
    """Finished cross-fitting generators of ``run_id`` with ``k`` folds, by fold label
    (the latest of each)."""
    out = {}
    for fold_run, params in runs_with_params(catalog, kind="train-generator"):
        fold = params.get("fold")
        if fold and fold.endswith(f"/{k} of {run_id}"):
            out[fold] = fold_run
    return out
