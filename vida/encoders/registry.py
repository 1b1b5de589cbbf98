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
   ``shape``, ``params`` and ``encode``, and optionally ``warm()``, which loads what
   the first ``encode`` would (a worker calls it as it starts, while the driver
   still plans), and ``preload``, the modules a worker may import before it is
   started (:func:`preload_modules`; only what is safe to import before a fork:
   no threads, no devices).  Worker processes find it the same way,
   because the lookup reads the installed packages' metadata, not this process's
   state.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Protocol

import numpy as np

from vida.errors import UsageError

ENTRY_POINT_GROUP = "vida.encoders"

BUILTIN: dict[str, str] = {
    "hog-color": "vida.encoders.builtin:HogColorEncoder",
    "flow-hist": "vida.encoders.builtin:FlowHistEncoder",
    "ast-fbank": "vida.encoders.builtin:AstFbankEncoder",
    # transformers models, from a hub name or a local directory (vida.encoders.vision/audio)
    "hf-image": "vida.encoders.vision:ImageBackboneEncoder",
    "hf-flow": "vida.encoders.vision:FlowBackboneEncoder",
    "videomae": "vida.encoders.vision:VideoMAEEncoder",
    "ast": "vida.encoders.audio:AstEmbeddingEncoder",
    # the study's own encoders, for exact reproduction
    "study-vit": "vida.encoders.vision:StudyViTEncoder",
    "study-vit-flow": "vida.encoders.vision:StudyViTFlowEncoder",
    "study-ast": "vida.encoders.audio:StudyAstEncoder",
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
        raise UsageError(f"unknown encoder {name!r}; known: {', '.join(available())} "
                         f"(packages add encoders through the {ENTRY_POINT_GROUP!r} "
                         "entry-point group)")
    try:
        return plugin.load()
    except Exception as exc:  # a broken plugin names itself, not a traceback
        raise UsageError(f"encoder {name!r} from entry point {plugin.value!r} cannot be "
                         f"loaded: {type(exc).__name__}: {exc}") from None


def parse_spec(spec: str) -> tuple[str, dict[str, str]]:
    """``NAME[:MODEL][?key=value&...]`` -> (NAME, {"model": MODEL, key: value}).

    ``hf-image:facebook/dinov2-small?pooling=mean`` names the encoder, the model (a
    hub name or a local directory) and its options in one string, so that one
    ``--rgb-encoder`` option chooses everything about a modality.
    """
    from urllib.parse import parse_qsl

    head, _, query = spec.partition("?")
    name, _, model = head.partition(":")
    options = dict(parse_qsl(query, keep_blank_values=True, strict_parsing=False))
    if model:
        options["model"] = model
    return name, options


def get_encoder(spec: str, **options: Any) -> Encoder:
    """An encoder by spec (``hog-color``, ``hf-image:DIR?pooling=mean``), built with
    ``options`` (``n_frames=18``, ``device="cpu"`` ...); the spec's own options win."""
    name, own = parse_spec(spec)
    return _factory(name)(**{**options, **own})


def preload_modules(spec: str) -> tuple[str, ...]:
    """Modules a worker process may import before its first item for encoder
    ``spec``: the one defining it and those it names in ``preload`` (an optional
    class attribute; ast-fbank names transformers' audio code).  Builds nothing."""
    factory = _factory(parse_spec(spec)[0])
    return (factory.__module__, *getattr(factory, "preload", ()))


def available() -> list[str]:
    """Every encoder name this process can build: registered, built in, or a plugin."""
    return sorted(set(_REGISTRY) | set(BUILTIN) | set(_plugins()))
