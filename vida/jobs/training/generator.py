"""Training an audio-feature generator, and writing what it generates to the store.

``svdmap``: input concat(rgb, flow) ``[T, D_rgb + D_flow]``, target audio ``[T, D_a]``.
``cafmap``: input the condition sequence ``[T, D_a]`` where its mask is on and
seeded N(0, 1) noise elsewhere, target audio.  MSE, Adam, best epoch on val.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from functools import lru_cache, partial
from pathlib import Path

import numpy as np
import torch
from torch import nn

from vida.catalog.database import Catalog, CatalogError
from vida.catalog.records.clip_queries import ClipQuery, clips_of
from vida.catalog.records.runs import (
    add_metric_rows,
    close_run,
    epoch_rows,
    run_row,
    start_run,
)
from vida.errors import UsageError
from vida.jobs.core.batch_job import run_lifecycle
from vida.jobs.training.common import (
    checkpoint_bytes,
    fill_arch_defaults,
    fit,
    load_checkpoint,
    runs_root,
    seed_everything,
    torch_threads,
    training_device,
    write_checkpoint,
)
from vida.jobs.training.inputs import (
    Blocks,
    ChunkOrder,
    Standardizer,
    batches,
    holding_for,
    load_blocks,
)
from vida.jobs.training.plan_reads import PlanReads
from vida.models import LSTMGenerator
from vida.store.located import Located, read_rows
from vida.store.store import FeatureStore

ARCHS = ("svdmap", "cafmap")
DEFAULTS = {"svdmap": {"lr": 1e-3, "batch_size": 4}, "cafmap": {"lr": 1e-4, "batch_size": 32}}


@dataclass
class GeneratorSpec:
    arch: str = "svdmap"
    rgb: str = "rgb/hog-color"
    flow: str = "flow/flow-hist"
    audio: str = "audio/ast-fbank"
    condition: str | None = None
    epochs: int = 10
    lr: float | None = None
    batch_size: int | None = None
    seed: int = 0
    hidden: int = 512

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise UsageError(f"--arch must be one of {', '.join(ARCHS)}")
        if self.arch == "cafmap" and not self.condition:
            raise UsageError("--arch cafmap needs --condition SET (see `vida-batch condition`)")
        fill_arch_defaults(self, DEFAULTS)

    @property
    def input_sets(self) -> list[str]:
        return [self.rgb, self.flow] if self.arch == "svdmap" else [self.condition]


def with_noise(spec: GeneratorSpec, x: np.ndarray, mask: Callable[[], np.ndarray],
                noise_seed: int) -> np.ndarray:
    if spec.arch != "cafmap":
        return x
    on = mask().astype(bool)
    noise = np.random.default_rng(noise_seed).standard_normal(x.shape).astype(np.float32)
    return np.where(on[..., None], x, noise)


@dataclass(frozen=True)
class GeneratorTask:
    """One generator training, ready to run anywhere (see :class:`ClassifierTask`)."""

    spec: GeneratorSpec
    inputs: dict[str, tuple[Located, ...]]  # train/val -> the input sets' rows
    masks: dict[str, Located | None]  # CAFMap: the condition's mask rows
    targets: dict[str, Located]  # train/val -> the audio rows
    threads: int = 1
    device: str = "cpu"
    holding: str = "memory"  # or "stream" (see ClassifierTask)
    scratch: str | None = None
    chunk_order: bool | None = None


@dataclass
class GeneratorResult:
    epochs: list[tuple[int, dict[str, float], dict[str, float]]]
    best_epoch: int
    best_val_loss: float
    checkpoint: bytes
    config: dict


def plan_generator(catalog: Catalog, store: FeatureStore, query: str | ClipQuery,
                   spec: GeneratorSpec,
                   exclude: Sequence[str] = (), threads: int = 1, device: str = "cpu",
                   reads: PlanReads | None = None) -> GeneratorTask:
    """The query's train clips (less ``exclude``: a cross-fitting fold) and val clips,
    located (see :func:`~vida.jobs.training.classifier.plan_classifier` for ``reads``)."""
    reads = reads or PlanReads(catalog, store)
    clips = reads.clips(query)
    if exclude:
        clips = clips[~clips["clip_key"].isin(set(exclude))]
    parts = {s: clips.loc[clips["split"] == s, "clip_key"].tolist() for s in ("train", "val")}
    if not parts["train"] or not parts["val"]:
        raise UsageError("the query has no train or no val clips: run `vida-batch split` and "
                         "select clip_key, class_name, split")
    try:
        inputs = {s: tuple(reads.locate(n, k) for n in spec.input_sets)
                  for s, k in parts.items()}
        targets = {s: reads.locate(spec.audio, k) for s, k in parts.items()}
    except KeyError as exc:
        raise UsageError(f"{exc.args[0].split(';')[0]}; restrict the --query to clips that "
                         "have it") from None
    masks = {s: reads.locate(spec.condition, k, extra="mask") if spec.arch == "cafmap"
             else None for s, k in parts.items()}
    return GeneratorTask(spec, inputs, masks, targets, threads, device)


def _inputs(task: GeneratorTask, split: str, noise_seed: int) -> Blocks:
    """A split's input blocks; CAFMap's condition with seeded noise where its mask is
    off (a private array: the condition is as narrow as the audio)."""
    stream = task.holding == "stream"
    blocks = load_blocks(task.inputs[split], stream=stream, scratch=task.scratch)
    if task.spec.arch != "cafmap":
        return blocks
    return Blocks.of([with_noise(task.spec, blocks.whole(),
                                 lambda: read_rows(task.masks[split]), noise_seed)])


def fit_generator(task: GeneratorTask) -> GeneratorResult:
    """Train, select the best epoch on val: the map of a generator item."""
    spec = task.spec
    stream = task.holding == "stream"
    with torch_threads(task.threads):
        g = seed_everything(spec.seed)
        x = {s: _inputs(task, s, spec.seed + i) for i, s in enumerate(task.inputs)}
        y = {s: load_blocks([t], stream=stream, scratch=task.scratch)
             for s, t in task.targets.items()}
        norm = Standardizer.fit_blocks(x["train"])
        model = LSTMGenerator(x["train"].width, y["train"].width, hidden=spec.hidden)
        model.to(task.device)
        mse = nn.MSELoss()
        val = batches(x["val"], y["val"], 256, False, norm=norm, device=task.device)

        def score(m: nn.Module, data) -> dict[str, float]:
            m.eval()
            with torch.no_grad():
                losses = [float(mse(m(xb), yb)) * len(xb) for xb, yb in data]
            return {"loss": sum(losses) / len(data.dataset)}

        chunked = stream if task.chunk_order is None else task.chunk_order
        order = ChunkOrder(task.targets["train"], spec.seed) if chunked else None
        epochs: list = []
        state, best_epoch = fit(
            model, batches(x["train"], y["train"], spec.batch_size, True, norm=norm,
                           generator=g, device=task.device, sampler=order),
            val, mse, epochs=spec.epochs, lr=spec.lr, score=score,
            better=lambda a, b: a["loss"] < b["loss"],
            on_epoch=lambda e, t, v: epochs.append((e, t, v)))
        model.load_state_dict(state)
        best = score(model, val)["loss"]
    return GeneratorResult(epochs, best_epoch, best,
                           checkpoint_bytes(state, {"input_norm": norm.state()}),
                           {"model": model.config, "arch": spec.arch, "spec": asdict(spec)})


def generator_parts(task: GeneratorTask) -> list[Located]:
    """Every located input and target of the training."""
    return [p for parts in task.inputs.values() for p in parts] + list(task.targets.values())


def start_generator_run(catalog: Catalog, spec: GeneratorSpec, query: str | ClipQuery, *,
                        experiment_id: str | None = None, sweep: bool = True,
                        **params: object) -> str:
    return start_run(catalog, kind="train-generator", arch=spec.arch,
                     params={**asdict(spec), **params}, query=query,
                     feature_sets=[*spec.input_sets, spec.audio], seed=spec.seed,
                     experiment_id=experiment_id, sweep=sweep)


def record_generator(catalog: Catalog, result: GeneratorResult, run_id: str,
                     runs: str | None) -> None:
    """Checkpoint, epochs and best-epoch metrics, and the run finished, in one
    transaction."""
    path = write_checkpoint(runs_root(runs) / run_id, result.checkpoint, result.config)
    best = {"best_epoch": result.best_epoch, "best_val_loss": result.best_val_loss}
    with catalog.transaction() as session:
        add_metric_rows(session, [*epoch_rows(run_id, result.epochs), (run_id, None, "all",
                                                                       best)])
        close_run(session, run_id, checkpoint=str(path))


def train_generator(catalog: Catalog, store: FeatureStore, query: str | ClipQuery,
                    spec: GeneratorSpec,
                    *, experiment_id: str | None = None, runs: str | None = None,
                    progress: bool = True, exclude: Sequence[str] = (),
                    fold: str | None = None, memory_budget: int | None = None,
                    device: str = "cpu") -> str:
    """Train on the query's train clips (less ``exclude``: a cross-fitting fold), select
    the best epoch on its val clips, in this process; returns the run id.  Features
    past ``memory_budget`` bytes (None: the default) are streamed."""
    task = plan_generator(catalog, store, query, spec, exclude, threads=0,
                          device=training_device(device))
    task = replace(task, holding=holding_for(generator_parts(task), memory_budget))
    extra = {"fold": fold, "excluded_clips": len(exclude)} if fold else {}
    if task.holding == "stream":
        extra["holding"] = "stream"
    with run_lifecycle(catalog, partial(start_generator_run, catalog, spec, query,
                                        experiment_id=experiment_id, **extra)) as run:
        result = fit_generator(task)  # a damaged shard fails the run, recorded
        if progress:
            for epoch, train, val in result.epochs:
                print(f"  {run.run_id} epoch {epoch}/{spec.epochs}: train "
                      f"{train['loss']:.4f} val {val['loss']:.4f}", flush=True)
        record_generator(catalog, result, run.run_id, runs)
        run.closed = True
    return run.run_id


@lru_cache(maxsize=2)
def load_generator(checkpoint: str) -> tuple[LSTMGenerator, GeneratorSpec, Standardizer]:
    """A trained generator, its spec and its input normaliser (once per process)."""
    blob, config = load_checkpoint(Path(checkpoint))
    model = LSTMGenerator(**config["model"])
    model.load_state_dict(blob["state_dict"])
    model.eval()
    return model, GeneratorSpec(**config["spec"]), Standardizer.from_state(blob["input_norm"])


def finished_generator(catalog: Catalog, run_id: str) -> str:
    run = run_row(catalog, run_id)
    if run is None or run.kind != "train-generator":
        raise CatalogError(f"no generator run {run_id!r}: list them with "
                           "`vida-batch sql \"SELECT run_id FROM runs WHERE "
                           "kind = 'train-generator'\"`")
    if run.status != "finished" or not run.checkpoint:
        raise CatalogError(f"run {run_id} did not finish ({run.status}); train it again")
    return str(run.checkpoint)


def cross_fit_folds(catalog: Catalog, query: str | ClipQuery, seed: int, k: int) -> list[list[str]]:
    """The query's train clips in ``k`` folds (seeded by the generator's seed)."""
    train = clips_of(catalog, query)
    train_keys = train.loc[train["split"] == "train", "clip_key"].tolist()
    if len(train_keys) < k:
        raise UsageError(f"--cross-fit {k}: the generator's query has {len(train_keys)} train "
                         "clips; use fewer folds")
    order = np.random.default_rng(seed).permutation(len(train_keys))
    return [sorted(train_keys[i] for i in part) for part in np.array_split(order, k)]
