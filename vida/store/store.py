"""The feature store: feature sets registered in the catalog, arrays in HDF5 shards.

Reads are batched per shard: any list of keys is looked up in the catalog, grouped
by shard, and each shard is read once in increasing row order (what HDF5 serves
fastest), then the rows are put back in the order asked for.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd
from sqlalchemy import select

from vida.catalog.database import Catalog, CatalogError
from vida.catalog.schema import MODALITIES, Feature, FeatureSet, Shard
from vida.store.shards import BundleWriter, FeatureWriter

DEFAULT_STORE = "store"
_IN_CHUNK = 1000


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

    def __init__(self, catalog: Catalog, root: str | os.PathLike[str] | None = None) -> None:
        self.catalog = catalog
        self.root = resolve_store_root(root)
        self.root.mkdir(parents=True, exist_ok=True)

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
    def locate(self, name: str, keys: Sequence[str]) -> pd.DataFrame:
        """Columns key, path (absolute), row, in the order of ``keys``."""
        found: dict[str, tuple[str, int]] = {}
        with self.catalog.reading() as session:
            for start in range(0, len(keys), _IN_CHUNK):
                chunk = list(keys[start : start + _IN_CHUNK])
                rows = session.execute(
                    select(Feature.clip_key, Shard.path, Feature.row)
                    .join(Shard, Shard.id == Feature.shard_id)
                    .where(Feature.feature_set == name, Feature.clip_key.in_(chunk))
                )
                for key, path, row in rows:
                    found[key] = (path, row)
        missing = [k for k in keys if k not in found]
        if missing:
            more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
            raise KeyError(
                f"feature set {name!r} has no rows for {', '.join(missing[:3])}{more}; "
                "ingest or generate them first"
            )
        return pd.DataFrame(
            {
                "key": list(keys),
                "path": [str(self.root / found[k][0]) for k in keys],
                "row": [found[k][1] for k in keys],
            }
        )

    def read(self, name: str, keys: Sequence[str], extra: str | None = None) -> np.ndarray:
        """Arrays for ``keys`` stacked as ``[len(keys), *shape]`` (or an extras array)."""
        where = self.locate(name, keys)
        dataset = "data" if extra is None else f"extras/{extra}"
        out: np.ndarray | None = None
        for path, group in where.groupby("path", sort=False):
            order = group.sort_values("row")
            rows = order["row"].to_numpy()
            unique_rows, inverse = np.unique(rows, return_inverse=True)
            with h5py.File(path, "r") as h5:
                values = h5[dataset][unique_rows][inverse]
            if out is None:
                out = np.empty((len(keys), *values.shape[1:]), dtype=values.dtype)
            out[order.index.to_numpy()] = values
        if out is None:
            info = self.info(name)
            return np.empty((0, *info.shape), dtype=info.dtype)
        return out
