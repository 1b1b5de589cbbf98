"""The HDF5 feature store: sealed shards of ``[n, T, D]`` arrays, indexed by the catalog.

The names below are imported on first use (PEP 562): a worker that only writes and
seals shards (:mod:`vida.store.shards`) does not import the catalog side.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_HOMES = {
    "FeatureSetInfo": "vida.store.store",
    "FeatureStore": "vida.store.store",
    "resolve_store_root": "vida.store.store",
    "FeatureWriter": "vida.store.writers",
    "FsckReport": "vida.store.integrity",
    "fsck": "vida.store.integrity",  # the checker lives in ``integrity``, not in a
                                     # submodule named ``fsck`` that would shadow it
}
__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'vida.store' has no attribute {name!r}")
