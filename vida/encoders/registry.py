"""One registry of feature encoders (after video_features' single list of extractors).

An encoder turns a batch of per-clip inputs into ``[B, T, D]`` features.  It has a
name, a modality (what input it takes: ``rgb`` frames ``[B, T, S, S, 3]``, ``flow``
fields ``[B, T, S, S, 2]`` or ``audio`` waveforms ``[B, n]`` at 16 kHz), an output
shape, and the parameters that define it, recorded with every feature set it
fills.  Transformer encoders register here the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np


class Encoder(Protocol):
    name: str
    modality: str
    shape: tuple[int, int]
    params: dict[str, Any]

    def encode(self, batch: np.ndarray) -> np.ndarray:
        """``[B, ...]`` inputs -> ``[B, T, D]`` float32 features."""
        ...


_REGISTRY: dict[str, Callable[..., Encoder]] = {}


def register(name: str) -> Callable[[Callable[..., Encoder]], Callable[..., Encoder]]:
    def decorate(factory: Callable[..., Encoder]) -> Callable[..., Encoder]:
        _REGISTRY[name] = factory
        return factory

    return decorate


def get_encoder(name: str, **options: Any) -> Encoder:
    """An encoder by registry name, built with ``options`` (e.g. ``n_frames=18``)."""
    from vida.encoders import builtin  # noqa: F401  (registers the defaults)

    if name not in _REGISTRY:
        raise ValueError(f"unknown encoder {name!r}; known: {', '.join(available())}")
    return _REGISTRY[name](**options)


def available() -> list[str]:
    from vida.encoders import builtin  # noqa: F401

    return sorted(_REGISTRY)
