"""Options that several command groups share: how a training holds its features,
where it runs, how new sets are stored."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click


def memory_budget_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--memory-budget GB``: features a training holds in memory; past it, streamed."""
    return click.option(
        "--memory-budget", "memory_budget", type=click.FloatRange(min=0), default=None,
        metavar="GB", callback=lambda ctx, param, v: None if v is None else int(v * 1e9),
        help="Features one training may hold in memory; past it, its batches are read "
             "from the store as it trains [70% of available memory / trainings side by "
             "side].")(fn)


def store_dtype_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--store-dtype``: how the sets a job writes are stored."""
    return click.option(
        "--store-dtype", type=click.Choice(["float32", "float16"]), default="float32",
        show_default=True,
        help="How the new sets are stored: float16 takes half the bytes and half the read "
             "time; trainings compute in float32 either way (what it costs in accuracy: "
             "docs/performance.md).")(fn)


def device_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--device`` of a single training."""
    return click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="cpu",
                        show_default=True,
                        help="Where the training runs (auto: CUDA where it is).")(fn)
