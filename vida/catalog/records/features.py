"""Feature rows: where each clip's row of a set is, and ``feature_failures`` (clips
whose features of a set could not be made, and why)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import delete, select, text
from sqlalchemy.orm import aliased

from vida.catalog.database import Catalog, CatalogError
from vida.catalog.records import json_column
from vida.catalog.schema import MODALITIES, Feature, FeatureFailure, FeatureSet, utcnow
from vida.catalog.writes import upsert
from vida.errors import UsageError


def record_failures(catalog: Catalog, run_id: str, failures: dict[tuple[str, str], str]
                    ) -> int:
    """``{(feature_set, clip_key): error}`` -> rows (replacing older ones)."""
    rows = [{"feature_set": s, "clip_key": k, "run_id": run_id, "error": e,
             "failed_at": utcnow()} for (s, k), e in failures.items()]
    with catalog.transaction() as session:
        upsert(session, FeatureFailure, rows, key=("feature_set", "clip_key"))
    return len(rows)


def failed_keys(catalog: Catalog, feature_set: str) -> set[str]:
    """Clips whose features of ``feature_set`` failed before."""
    with catalog.reading() as session:
        return set(session.execute(select(FeatureFailure.clip_key)
                                   .where(FeatureFailure.feature_set == feature_set)).scalars())


def clear_failures(catalog: Catalog, feature_set: str, keys: list[str]) -> None:
    """Forget old failures of clips that have now been encoded."""
    with catalog.transaction() as session:
        for start in range(0, len(keys), 1000):
            session.execute(delete(FeatureFailure).where(
                FeatureFailure.feature_set == feature_set,
                FeatureFailure.clip_key.in_(keys[start:start + 1000])))


@dataclass(frozen=True)
class LocatedRows:
    """Where the rows of some keys of one feature set are: for each found key, its
    position in the keys asked for, its shard (an index into ``shard_paths``, the
    paths relative to the store root) and its row there."""

    pos: np.ndarray
    shard: np.ndarray
    row: np.ndarray
    shard_paths: np.ndarray


_LOCATE_DUCKDB = (
    "SELECT list_position(?, f.feature_set) - 1 AS set_index, w.pos, f.shard_id, f.row "
    "FROM vida_wanted_keys w JOIN features f ON f.clip_key = w.clip_key "
    "WHERE list_contains(?, f.feature_set)")
_LOCATE_SERVER = (
    "SELECT array_position(CAST(:sets AS text[]), f.feature_set) - 1 AS set_index, "
    "w.pos - 1 AS pos, f.shard_id, f.row "
    "FROM unnest(CAST(:keys AS text[])) WITH ORDINALITY AS w(clip_key, pos) "
    "JOIN features f ON f.clip_key = w.clip_key "
    "WHERE f.feature_set = ANY(CAST(:sets AS text[]))")
_SHARDS_SERVER = "SELECT id, path FROM shards WHERE feature_set = ANY(CAST(:sets AS text[]))"


def locate_many(catalog: Catalog, feature_sets: list[str], keys: list[str]
                ) -> dict[str, LocatedRows]:
    """Per feature set, where the rows of ``keys`` are.  One SQL join over one
    connection for any number of keys and sets (DuckDB joins a registered frame,
    PostgreSQL an unnested array), instead of a Python object, or a connection, per
    key; it returns numbers only, and the few shards' paths come from a second
    query, because a string per row costs more to fetch than the join."""
    for _ in range(3):  # a shard committed or removed between the two queries: again
        found, shards = _locate_query(catalog, feature_sets, keys)
        order = pd.Index(shards["id"].to_numpy(np.int64))
        codes = order.get_indexer(found["shard_id"].to_numpy(np.int64))
        if (codes >= 0).all():
            break
    else:
        raise CatalogError("the catalog's shards changed during each of 3 reads of "
                           "where rows are; retry when the writer is done")
    paths = shards["path"].to_numpy(object)
    set_index = found["set_index"].to_numpy(np.int64)
    pos, row = found["pos"].to_numpy(np.int64), found["row"].to_numpy(np.int64)
    out = {}
    for i, name in enumerate(feature_sets):
        mine = set_index == i
        out[name] = LocatedRows(pos[mine], codes[mine], row[mine], paths)
    return out


def _locate_query(catalog: Catalog, feature_sets: list[str], keys: list[str]
                  ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(set_index, pos, shard_id, row) of each found key; (id, path) of the sets' shards."""
    with catalog.connect(read_only=True) as conn:
        if not catalog.is_duckdb:
            found = conn.execute(text(_LOCATE_SERVER), {"keys": list(keys),
                                                        "sets": list(feature_sets)})
            found = pd.DataFrame(found.fetchall(), columns=["set_index", "pos", "shard_id",
                                                            "row"])
            shards = conn.execute(text(_SHARDS_SERVER), {"sets": list(feature_sets)})
            return found, pd.DataFrame(shards.fetchall(), columns=["id", "path"])
        duck = conn.connection.driver_connection
        wanted = pd.DataFrame({"clip_key": keys, "pos": np.arange(len(keys), dtype=np.int64)})
        duck.register("vida_wanted_keys", wanted)
        try:
            found = duck.execute(_LOCATE_DUCKDB, [list(feature_sets)] * 2).df()
        finally:
            duck.unregister("vida_wanted_keys")
        shards = duck.execute("SELECT id, path FROM shards WHERE list_contains(?, "
                              "feature_set)", [list(feature_sets)]).df()
        return found, shards


def sibling_set_params(catalog: Catalog, name: str, modality: str) -> list[dict[str, Any]]:
    """The params of the ``modality`` sets made by the run that made set ``name``."""
    made = aliased(FeatureSet)
    stmt = (select(FeatureSet.params)
            .join(made, made.produced_by_run == FeatureSet.produced_by_run)
            .where(made.name == name, FeatureSet.modality == modality))
    with catalog.reading() as session:
        return [json_column(p) for p in session.execute(stmt).scalars()]


@dataclass(frozen=True)
class FeatureSetInfo:
    name: str
    modality: str
    encoder: str
    params: dict[str, Any]
    shape: tuple[int, ...]
    dtype: str


def canonical_params(params: dict[str, Any]) -> dict[str, Any]:
    """Params as the catalog stores them (JSON round trip: tuples become lists)."""
    return json.loads(json.dumps(params, sort_keys=True))


def register_feature_set(catalog: Catalog, info: FeatureSetInfo,
                         produced_by_run: str | None, check_params: bool) -> FeatureSetInfo:
    """Create the feature set, or check that an existing one has the same layout (and,
    with ``check_params``, the same params), in one transaction."""
    if info.modality not in MODALITIES:
        raise UsageError(f"modality {info.modality!r} is not one of {', '.join(MODALITIES)}")
    with catalog.transaction() as session:
        existing = session.get(FeatureSet, info.name)
        if existing is None:
            session.add(FeatureSet(name=info.name, modality=info.modality,
                                   encoder=info.encoder, params=info.params,
                                   shape=list(info.shape), dtype=info.dtype,
                                   produced_by_run=produced_by_run))
            return FeatureSetInfo(info.name, info.modality, info.encoder,
                                  canonical_params(info.params), info.shape, info.dtype)
        _check_same_layout(existing, info, check_params)
    return feature_set_info(catalog, info.name)


def _check_same_layout(existing: FeatureSet, info: FeatureSetInfo, check_params: bool) -> None:
    name, shape, dtype = info.name, info.shape, info.dtype
    if tuple(existing.shape) != shape or existing.dtype != dtype:
        raise CatalogError(f"feature set {name!r} exists with shape {tuple(existing.shape)} "
                           f"{existing.dtype}, not {shape} {dtype}: choose another name")
    wanted = canonical_params(info.params)
    if check_params and canonical_params(existing.params) != wanted:
        changed = sorted(k for k in set(existing.params) | set(wanted)
                         if existing.params.get(k) != wanted.get(k))
        raise CatalogError(
            f"feature set {name!r} exists with other params ({', '.join(changed)}): "
            "features made differently must not share a set; choose another name "
            "(ingest: --name-suffix)")


def _feature_set_row(catalog: Catalog, name: str) -> FeatureSet | None:
    """Set ``name``'s row, detached from its session, or None."""
    with catalog.reading() as session:
        fs = session.get(FeatureSet, name)
        if fs is not None:
            session.expunge(fs)
    return fs


def feature_set_exists(catalog: Catalog, name: str) -> bool:
    return _feature_set_row(catalog, name) is not None


def feature_set_info(catalog: Catalog, name: str) -> FeatureSetInfo:
    """Set ``name``'s description; a one-line error for a name that is no set."""
    fs = _feature_set_row(catalog, name)
    if fs is None:
        raise CatalogError(f"no feature set {name!r}: list them with `vida-batch status`")
    return FeatureSetInfo(fs.name, fs.modality, fs.encoder, fs.params, tuple(fs.shape),
                          fs.dtype)


def feature_set_to_write(catalog: Catalog, name: str) -> FeatureSetInfo:
    """Set ``name``, for a writer of its shards (refused unless it is registered)."""
    fs = _feature_set_row(catalog, name)
    if fs is None:
        raise CatalogError(f"register feature set {name!r} before writing to it")
    return FeatureSetInfo(fs.name, fs.modality, fs.encoder, fs.params, tuple(fs.shape),
                          fs.dtype)


def feature_keys(catalog: Catalog, name: str) -> list[str]:
    """The clips that have a row of set ``name``, in clip_key order."""
    with catalog.reading() as session:
        return list(session.scalars(select(Feature.clip_key).where(Feature.feature_set == name)
                                    .order_by(Feature.clip_key)))
