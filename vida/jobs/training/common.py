"""What every training job shares: the clips of a query, input tensors, seeding, the
epoch loop with best-on-val selection, checkpoints under ``runs/<run_id>/``."""

from __future__ import annotations

import io
import json
import os
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from vida.errors import MissingInput, UsageError
from vida.store.atomic import write_whole
from vida.store.errors import disk_full, is_disk_full

DEFAULT_RUNS = "runs"


def runs_root(root: str | os.PathLike[str] | None = None) -> Path:
    """Checkpoint folder from an option, ``$VIDA_RUNS``, or ``./runs``."""
    return Path(root or os.environ.get("VIDA_RUNS") or DEFAULT_RUNS).expanduser().resolve()


def fill_arch_defaults(spec: Any, defaults: dict[str, dict[str, Any]]) -> None:
    """Set each of ``spec``'s fields that is unset (None) to its arch's default: one
    rule for every training spec (``defaults``: arch -> field -> value)."""
    for name, value in defaults[spec.arch].items():
        if getattr(spec, name) is None:
            setattr(spec, name, value)


def seed_everything(seed: int) -> torch.Generator:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def training_device(name: str) -> str:
    """``auto`` -> ``cuda`` where CUDA is, else ``cpu``; ``cuda`` without it is refused
    in one line."""
    available = torch.cuda.is_available()
    if name == "auto":
        return "cuda" if available else "cpu"
    if name == "cuda" and not available:
        built = f"with CUDA {torch.version.cuda}" if torch.version.cuda else "for the CPU only"
        raise UsageError(f"--device cuda: no CUDA device here (torch {torch.__version__}, "
                         f"built {built}); use --device cpu")
    return name


def fit(model: nn.Module, train: DataLoader, val: DataLoader, loss_fn: nn.Module, *,
        epochs: int, lr: float, score: Callable[[nn.Module, DataLoader], dict[str, float]],
        better: Callable[[dict[str, float], dict[str, float]], bool],
        on_epoch: Callable[[int, dict[str, float], dict[str, float]], None]
        ) -> tuple[dict[str, torch.Tensor], int]:
    """Adam over ``epochs``; returns the state of the best epoch on val (1-based)."""
    # the update as a few operations over all parameters at once, not a loop per
    # tensor: bit-identical weights, less per-step overhead for small models
    optimiser = torch.optim.Adam(model.parameters(), lr=lr, foreach=True)
    best_state, best_epoch, best = None, 0, None
    for epoch in range(1, epochs + 1):
        model.train()
        total, count = 0.0, 0
        for xb, yb in train:
            optimiser.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            optimiser.step()
            total += float(loss.detach()) * len(xb)
            count += len(xb)
        train_metrics = {"loss": total / max(count, 1)}
        val_metrics = score(model, val)
        on_epoch(epoch, train_metrics, val_metrics)
        if best is None or better(val_metrics, best):
            best, best_epoch = val_metrics, epoch
            best_state = {k: v.detach().to("cpu", copy=True)
                          for k, v in model.state_dict().items()}
    assert best_state is not None, "epochs must be >= 1"
    return best_state, best_epoch


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Train on ``n`` threads (0: leave torch's own count): a training's float sums
    depend on how they are split over threads, so an experiment fixes the count to
    give the same numbers in one process, in local workers and on Dask."""
    if n <= 0:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def checkpoint_bytes(state: dict[str, torch.Tensor], extra: dict[str, Any]) -> bytes:
    """``model.pt``'s bytes (tensors only: loads with ``weights_only=True``)."""
    buffer = io.BytesIO()
    torch.save({"state_dict": state, **extra}, buffer)
    return buffer.getvalue()


def write_checkpoint(folder: Path, blob: bytes, config: dict[str, Any]) -> Path:
    """``model.pt`` + ``config.json``, each written whole under a temporary name and
    renamed: a full disk is then a clean ``OSError`` (ENOSPC) that the CLI says in
    one line (torch's own writer reports it as "basic_ios::clear: iostream error"),
    and a checkpoint is never left half written."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {folder / "model.pt": blob,
             folder / "config.json": json.dumps(config, indent=1).encode()}
    for target, data in files.items():
        try:
            write_whole(target, data)
        except OSError as exc:
            if is_disk_full(exc):
                raise disk_full(folder) from None
            raise
    return folder / "model.pt"


def save_checkpoint(folder: Path, model: nn.Module, state: dict[str, torch.Tensor],
                    extra: dict[str, Any], meta: dict[str, Any]) -> Path:
    """A model's checkpoint under ``folder`` (see :func:`write_checkpoint`)."""
    return write_checkpoint(folder, checkpoint_bytes(state, extra),
                            {"model": model.config, **meta})


def load_checkpoint(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    if not path.exists():
        raise MissingInput(f"checkpoint {path} is missing (was runs/ moved?)")
    blob = torch.load(path, weights_only=True, map_location="cpu")
    config = json.loads((path.parent / "config.json").read_text())
    return blob, config
