"""The feature store: feature sets registered in the catalog, arrays in HDF5 shards.

Reads are batched per shard: any list of keys is located by one catalog join,
grouped by shard, and each shard is read once in increasing row order (see
:mod:`vida.store.reader`), then the rows are put back in the order asked for.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vida.catalog.database import Catalog
from vida.catalog.records.features import (
    FeatureSetInfo,
    feature_keys,
    feature_set_exists,
    feature_set_info,
    feature_set_to_write,
    locate_many,
    register_feature_set,
)
from vida.errors import NotFound
from vida.store.identity import bind_store, shard_read_failure
from vida.store.reader import DamagedRead, ShardHandles, read_located
from vida.store.writers import BundleWriter, FeatureWriter

DEFAULT_STORE = "store"
_LOCATED_MEMO = 8  # answers of located_sets kept per store


def resolve_store_root(root: str | os.PathLike[str] | None = None) -> Path:
    """The store folder from an option, ``$VIDA_STORE``, or ``./store``."""
    return Path(root or os.environ.get("VIDA_STORE") or DEFAULT_STORE).expanduser().resolve()


class FeatureStore:
    """Feature sets of one catalog, stored under one root folder."""

    def __init__(self, catalog: Catalog, root: str | os.PathLike[str] | None = None, *,
                 create: bool = True) -> None:
        self.catalog = catalog
        self.root = resolve_store_root(root)
        # refuses another catalog's store, or a missing one where features are indexed
        self.store_id = bind_store(catalog, self.root, create)
        self._handles = ShardHandles()
        # (sets, keys) -> (catalog change stamp, locations): reading the same clips
        # again (every epoch) skips the catalog while nothing was committed since
        self._located: OrderedDict[tuple, tuple[tuple, dict]] = OrderedDict()

    # -- feature sets ----------------------------------------------------
    def register(
        self,
        name: str,
        *,
        modality: str,
        encoder: str,
        shape: Sequence[int],
        dtype: str = "float32",
        params: dict[str, Any] | None = None,
        produced_by_run: str | None = None,
    ) -> FeatureSetInfo:
        """Create the feature set, or check that an existing one has the same layout."""
        info = FeatureSetInfo(name, modality, encoder, params or {},
                              tuple(int(s) for s in shape), np.dtype(dtype).name)
        return register_feature_set(self.catalog, info, produced_by_run,
                                    check_params=params is not None)

    def exists(self, name: str) -> bool:
        """Is ``name`` a registered feature set?"""
        return feature_set_exists(self.catalog, name)

    def info(self, name: str) -> FeatureSetInfo:
        return feature_set_info(self.catalog, name)

    def writer(self, name: str, rows_per_shard: int = 256) -> FeatureWriter:
        """A writer of one feature set."""
        return FeatureWriter(self.catalog, self.root, feature_set_to_write(self.catalog, name),
                             rows_per_shard)

    def bundle_writer(self, names: Sequence[str], rows_per_shard: int = 256) -> BundleWriter:
        """A writer of several feature sets plus catalog records, committed together."""
        return BundleWriter(
            self.catalog, self.root, [feature_set_to_write(self.catalog, n) for n in names],
            rows_per_shard
        )

    def keys(self, name: str) -> list[str]:
        return feature_keys(self.catalog, name)

    # -- reading ---------------------------------------------------------
    def located_sets(self, names: Sequence[str], keys: Sequence[str]
                     ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per set, (absolute shard path, row) per key, in the order of ``keys``.

        The answer for the same sets and keys is kept (a few, per store) with the
        catalog's :meth:`~vida.catalog.database.Catalog.change_stamp` taken before
        the query, and served again while the stamp is unchanged: any commit in
        between (a rewrite, a repair, a compaction) makes the next call ask again."""
        memo = (tuple(names), tuple(keys))
        stamp = self.catalog.change_stamp()
        if stamp is not None and (hit := self._located.get(memo)) and hit[0] == stamp:
            self._located.move_to_end(memo)
            return hit[1]
        out = self._locate_sets(names, keys)
        if stamp is not None:
            self._located[memo] = (stamp, out)
            if len(self._located) > _LOCATED_MEMO:
                self._located.popitem(last=False)
        return out

    def _locate_sets(self, names: Sequence[str], keys: Sequence[str]
                     ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        keys = list(keys)
        prefix = str(self.root) + os.sep
        out = {}
        for name, found in locate_many(self.catalog, list(names), keys).items():
            if len(found.pos) < len(keys):
                seen = np.zeros(len(keys), bool)
                seen[found.pos] = True
                missing = [keys[i] for i in np.flatnonzero(~seen)]
                more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
                raise NotFound(
                    f"feature set {name!r} has no rows for {', '.join(missing[:3])}{more}; "
                    "ingest or generate them first"
                )
            order = np.argsort(found.pos, kind="stable")
            absolute = np.array([prefix + p for p in found.shard_paths], dtype=object)
            out[name] = (absolute[found.shard[order]], found.row[order])
        return out

    def located(self, name: str, keys: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(absolute shard path, row) per key, in the order of ``keys``."""
        return self.located_sets([name], keys)[name]

    def locate(self, name: str, keys: Sequence[str]) -> pd.DataFrame:
        """Columns key, path (absolute), row, in the order of ``keys``."""
        paths, rows = self.located(name, keys)
        return pd.DataFrame({"key": list(keys), "path": paths, "row": rows})

    def read(self, name: str, keys: Sequence[str], extra: str | None = None) -> np.ndarray:
        """Arrays for ``keys`` stacked as ``[len(keys), *shape]`` (or an extras array)."""
        return self.read_sets([name], keys, extra)[name]

    def read_sets(self, names: Sequence[str], keys: Sequence[str], extra: str | None = None,
                  into: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
        """:meth:`read` of several sets, located together (one catalog round trip).
        ``into`` (set -> an array of the result's shape, any float dtype) is filled in
        place instead of new arrays: a loader that reads again into the same memory
        pays no page faults, and nothing is kept in the chunk cache."""
        out = {}
        for name, (paths, rows) in self.located_sets(names, keys).items():
            try:
                values = read_located(self._handles, paths, rows,
                                      "data" if extra is None else f"extras/{extra}",
                                      (into or {}).get(name))
            except DamagedRead as exc:
                clip = list(keys)[int(exc.positions[0])]
                raise shard_read_failure(self.root, Path(exc.path), name, clip,
                                         exc.detail) from None
            if values is None:
                info = self.info(name)
                values = np.empty((0, *info.shape), dtype=info.dtype)
            out[name] = values
        return out

    def close(self) -> None:
        """Close the shard files kept open for reading."""
        self._handles.close()
