"""One registry of feature encoders (after video_features' single list of extractors).

An encoder turns a batch of per-clip inputs into ``[B, T, D]`` features.  It has a
name, a modality (what input it takes: ``rgb`` frames ``[B, T, S, S, 3]``, ``flow``
fields ``[B, T, S, S, 2]`` or ``audio`` waveforms ``[B, n]`` at 16 kHz), an output
shape, and the parameters that define it, recorded with every feature set it
fills.

Where encoders come from, first match wins:

1. :func:`register` at run time (a notebook, a test);
2. VIDA's built-ins, named here as ``module:attribute`` and imported only when
   asked for, so this module imports no encoder and no encoder imports it;
3. other installed packages, through the ``vida.encoders`` entry-point group::

       [project.entry-points."vida.encoders"]
       my-encoder = "my_package.encoders:MyEncoder"

   The entry point names a factory (usually the class) called with the job's
   options (``n_frames=18, fps=6.0, ...``); its result has ``name``, ``modality``,
   ``shape``, ``params`` and ``encode``.  Worker processes find it the same way,
   because the lookup reads the installed packages' metadata, not this process's
   state.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Protocol

import numpy as np

ENTRY_POINT_GROUP = "vida.encoders"

BUILTIN: dict[str, str] = {
    "hog-color": "vida.encoders.builtin:HogColorEncoder",
    "flow-hist": "vida.encoders.builtin:FlowHistEncoder",
    "ast-fbank": "vida.encoders.builtin:AstFbankEncoder",
}


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
    """Decorator: make ``factory`` the encoder ``name`` in this process."""

    def decorate(factory: Callable[..., Encoder]) -> Callable[..., Encoder]:
        _REGISTRY[name] = factory
        return factory

    return decorate


def _plugins() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def _factory(name: str) -> Callable[..., Encoder]:
    if name in _REGISTRY:
        return _REGISTRY[name]
    if name in BUILTIN:
        module, attribute = BUILTIN[name].split(":")
        return getattr(import_module(module), attribute)
    plugin = _plugins().get(name)
    if plugin is None:
        raise ValueError(f"unknown encoder {name!r}; known: {', '.join(available())} "
                         f"(packages add encoders through the {ENTRY_POINT_GROUP!r} "
                         "entry-point group)")
    try:
        return plugin.load()
    except Exception as exc:  # a broken plugin names itself, not a traceback
        raise ValueError(f"encoder {name!r} from entry point {plugin.value!r} cannot be "
                         f"loaded: {type(exc).__name__}: {exc}") from None


def get_encoder(name: str, **options: Any) -> Encoder:
    """An encoder by registry name, built with ``options`` (e.g. ``n_frames=18``)."""
    return _factory(name)(**options)


def available() -> list[str]:
    """Every encoder name this process can build: registered, built in, or a plugin."""
    return sorted(set(_REGISTRY) | set(BUILTIN) | set(_plugins()))
