"""The HDF5 feature store: sealed shards of ``[n, T, D]`` arrays, indexed by the catalog."""

from vida.store.fsck import FsckReport, fsck
from vida.store.shards import FeatureWriter
from vida.store.store import FeatureSetInfo, FeatureStore, resolve_store_root

__all__ = [
    "FeatureSetInfo",
    "FeatureStore",
    "FeatureWriter",
    "FsckReport",
    "fsck",
    "resolve_store_root",
]
