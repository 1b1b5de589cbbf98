"""Feature rows: where each clip's row of a set is, and ``feature_failures`` (clips
whose features of a set could not be made, and why)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sqlalchemy import delete, text

from vida.catalog.database import Catalog
from vida.catalog.schema import FeatureFailure, utcnow
from vida.catalog.writes import upsert


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
    frame = catalog.sql("SELECT clip_key FROM feature_failures WHERE feature_set = :s",
                        {"s": feature_set})
    return set(frame["clip_key"])


def clear_failures(catalog: Catalog, feature_set: str, keys: list[str]) -> None:
    """Forget old failures of clips that have now been encoded."""
    with catalog.transaction() as session:
        for start in range(0, len(keys), 1000):
            session.execute(delete(FeatureFailure).where(
                FeatureFailure.feature_set == feature_set,
                FeatureFailure.clip_key.in_(keys[start:start + 1000])))


def locate_rows(catalog: Catalog, feature_set: str, keys: list[str]
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where the rows of ``keys`` are: (position in ``keys``, shard path, row)."""
    return locate_many(catalog, [feature_set], keys)[feature_set]


def locate_many(catalog: Catalog, feature_sets: list[str], keys: list[str]
                ) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per feature set, where the rows of ``keys`` are: (position in ``keys``, shard
    path, row).  One SQL join over one connection for any number of keys and sets
    (DuckDB joins a registered frame, PostgreSQL an unnested array), instead of a
    Python object, or a connection, per key."""
    wanted = pd.DataFrame({"clip_key": keys, "pos": np.arange(len(keys), dtype=np.int64)})
    with catalog.connect(read_only=True) as conn:
        if catalog.is_duckdb:
            duck = conn.connection.driver_connection
            duck.register("vida_wanted_keys", wanted)
            try:
                found = duck.execute(
                    "SELECT f.feature_set, w.pos, s.path, f.row FROM vida_wanted_keys w "
                    "JOIN features f ON f.clip_key = w.clip_key JOIN shards s "
                    "ON s.id = f.shard_id WHERE list_contains(?, f.feature_set)",
                    [list(feature_sets)]).df()
            finally:
                duck.unregister("vida_wanted_keys")
        else:
            result = conn.execute(text(
                "SELECT f.feature_set, w.pos - 1 AS pos, s.path, f.row "
                "FROM unnest(CAST(:keys AS text[])) WITH ORDINALITY AS w(clip_key, pos) "
                "JOIN features f ON f.clip_key = w.clip_key JOIN shards s ON s.id = f.shard_id "
                "WHERE f.feature_set = ANY(CAST(:sets AS text[]))"),
                {"keys": list(keys), "sets": list(feature_sets)})
            found = pd.DataFrame(result.fetchall(), columns=["feature_set", "pos", "path", "row"])
    out = {}
    for name in feature_sets:
        part = found[found["feature_set"] == name]
        out[name] = (part["pos"].to_numpy(np.int64), part["path"].to_numpy(object),
                     part["row"].to_numpy(np.int64))
    return out
