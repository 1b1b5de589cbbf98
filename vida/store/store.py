"""The feature store: feature sets registered in the catalog, arrays in HDF5 shards.

Reads are batched per shard: any list of keys is located by one catalog join,
grouped by shard, and each shard is read once in increasing row order (see
:mod:`vida.store.reader`), then the rows are put back in the order asked for.
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select

from vida.catalog.database import Catalog, CatalogError
from vida.catalog.records.features import locate_many
from vida.catalog.schema import MODALITIES, Feature, FeatureSet
from vida.store.identity import bind_store, shard_read_failure
from vida.store.reader import DamagedRead, ShardHandles, read_located
from vida.store.writers import BundleWriter, FeatureWriter

DEFAULT_STORE = "store"
_LOCATED_MEMO = 8  # answers of located_sets kept per store


def _canonical(params: dict[str, Any]) -> dict[str, Any]:
    """Params as they come back from the catalog's JSON (tuples become lists...)."""
    return json.loads(json.dumps(params, sort_keys=True))


def resolve_store_root(root: str | os.PathLike[str] | None = None) -> Path:
    """The store folder from an option, ``$VIDA_STORE``, or ``./store``."""
    return Path(root or os.environ.get("VIDA_STORE") or DEFAULT_STORE).expanduser().resolve()


@dataclass(frozen=True)
class FeatureSetInfo:
    name: str
    modality: str
    encoder: str
    params: dict[str, Any]
    shape: tuple[int, ...]
    dtype: str


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
        if modality not in MODALITIES:
            raise ValueError(f"modality {modality!r} is not one of {', '.join(MODALITIES)}")
        shape = tuple(int(s) for s in shape)
        dtype = np.dtype(dtype).name
        with self.catalog.transaction() as session:
            existing = session.get(FeatureSet, name)
            if existing is None:
                session.add(
                    FeatureSet(
                        name=name,
                        modality=modality,
                        encoder=encoder,
                        params=params or {},
                        shape=list(shape),
                        dtype=dtype,
                        produced_by_run=produced_by_run,
                    )
                )
                # what info() would read back, without another connection
                return FeatureSetInfo(name, modality, encoder, _canonical(params or {}), shape,
                                      dtype)
            elif tuple(existing.shape) != shape or existing.dtype != dtype:
                raise CatalogError(
                    f"feature set {name!r} exists with shape {tuple(existing.shape)} "
                    f"{existing.dtype}, not {shape} {dtype}: choose another name"
                )
            elif params is not None and _canonical(existing.params) != _canonical(params):
                changed = sorted(
                    k for k in set(existing.params) | set(params)
                    if existing.params.get(k) != _canonical(params).get(k)
                )
                raise CatalogError(
                    f"feature set {name!r} exists with other params ({', '.join(changed)}): "
                    "features made differently must not share a set; choose another name "
                    "(ingest: --name-suffix)"
                )
        return self.info(name)

    def exists(self, name: str) -> bool:
        """Is ``name`` a registered feature set?"""
        with self.catalog.reading() as session:
            return session.get(FeatureSet, name) is not None

    def info(self, name: str) -> FeatureSetInfo:
        with self.catalog.reading() as session:
            fs = session.get(FeatureSet, name)
            if fs is None:
                raise CatalogError(
                    f"no feature set {name!r}: list them with `vida-batch status`"
                )
            return FeatureSetInfo(
                fs.name, fs.modality, fs.encoder, fs.params, tuple(fs.shape), fs.dtype
            )

    def _feature_set(self, name: str) -> FeatureSet:
        with self.catalog.reading() as session:
            fs = session.get(FeatureSet, name)
            if fs is None:
                raise CatalogError(f"register feature set {name!r} before writing to it")
            session.expunge(fs)
        return fs

    def writer(self, name: str, rows_per_shard: int = 256) -> FeatureWriter:
        """A writer of one feature set."""
        return FeatureWriter(self.catalog, self.root, self._feature_set(name), rows_per_shard)

    def bundle_writer(self, names: Sequence[str], rows_per_shard: int = 256) -> BundleWriter:
        """A writer of several feature sets plus catalog records, committed together."""
        return BundleWriter(
            self.catalog, self.root, [self._feature_set(n) for n in names], rows_per_shard
        )

    def keys(self, name: str) -> list[str]:
        with self.catalog.reading() as session:
            return list(
                session.scalars(
                    select(Feature.clip_key)
                    .where(Feature.feature_set == name)
                    .order_by(Feature.clip_key)
                )
            )

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
        for name, (pos, paths, rows) in locate_many(self.catalog, list(names), keys).items():
            if len(pos) < len(keys):
                seen = np.zeros(len(keys), bool)
                seen[pos] = True
                missing = [keys[i] for i in np.flatnonzero(~seen)]
                more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
                raise KeyError(
                    f"feature set {name!r} has no rows for {', '.join(missing[:3])}{more}; "
                    "ingest or generate them first"
                )
            order = np.argsort(pos, kind="stable")
            out[name] = (np.array([prefix + p for p in paths[order]], dtype=object),
                         rows[order])
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

    def read_sets(self, names: Sequence[str], keys: Sequence[str], extra: str | None = None
                  ) -> dict[str, np.ndarray]:
        """:meth:`read` of several sets, located together (one catalog round trip)."""
        out = {}
        for name, (paths, rows) in self.located_sets(names, keys).items():
            try:
                values = read_located(self._handles, paths, rows,
                                      "data" if extra is None else f"extras/{extra}")
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
