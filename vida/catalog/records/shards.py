"""``shards`` and ``features``: which HDF5 file holds which set's rows, and each
clip's row in it.  The store writes the files; these are its catalog half."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from sqlalchemy import delete, func, insert, select

from vida.catalog.database import Catalog
from vida.catalog.schema import Feature, Shard, model_of, shard_id_seq, utcnow
from vida.catalog.writes import upsert


class SealedShardRow(Protocol):
    feature_set: str
    path: str
    keys: Sequence[str]
    sha256: str


def commit_shards(catalog: Catalog, shards: Sequence[SealedShardRow],
                  records: Sequence[tuple[Any, dict[str, Any], tuple[str, ...]]],
                  wait: float | None = None) -> None:
    """One transaction: a ``shards`` row and its ``features`` rows per sealed shard,
    then ``records`` ((table, row, key columns): each clip's row, say).  Four
    statements whatever it holds (ids, shards, features, each table's records): the
    driver commits for every worker, and on DuckDB each statement is a round trip."""
    with catalog.transaction(wait) as session:
        if shards:
            ids = session.execute(select(shard_id_seq.next_value())
                                  .select_from(func.generate_series(1, len(shards)))
                                  ).scalars().all()
            sealed_at = utcnow()
            session.execute(insert(Shard).values([
                {"id": i, "feature_set": s.feature_set, "path": s.path, "n_rows": len(s.keys),
                 "sha256": s.sha256, "sealed_at": sealed_at}
                for i, s in zip(ids, shards, strict=True)]))
            upsert(session, Feature,
                   ({"feature_set": s.feature_set, "clip_key": k, "shard_id": i, "row": r}
                    for i, s in zip(ids, shards, strict=True) for r, k in enumerate(s.keys)),
                   key=("feature_set", "clip_key"))
        by_model: dict[tuple[type, tuple[str, ...]], list[dict[str, Any]]] = {}
        for table, record, key_cols in records:
            by_model.setdefault((model_of(table), key_cols), []).append(record)
        for (model, key_cols), rows in by_model.items():
            upsert(session, model, rows, key=key_cols)


def shard_index(catalog: Catalog) -> tuple[dict[int, tuple[str, str, int, str]], list[tuple]]:
    """Every shard (id -> path, feature set, rows, sha256) and every feature row
    (feature set, clip key, shard id, row)."""
    with catalog.reading() as session:
        shards = {s.id: (s.path, s.feature_set, s.n_rows, s.sha256)
                  for s in session.scalars(select(Shard))}
        features = session.execute(select(Feature.feature_set, Feature.clip_key,
                                          Feature.shard_id, Feature.row)).all()
    return shards, [tuple(f) for f in features]


def indexed_shard_paths(catalog: Catalog, limit: int) -> list[str]:
    with catalog.reading() as session:
        return list(session.scalars(select(Shard.path).limit(limit)))


def forget_shard(catalog: Catalog, shard_id: int) -> None:
    """Drop a shard's row (its features rows point elsewhere, or nowhere, by now)."""
    with catalog.transaction() as session:
        session.execute(delete(Shard).where(Shard.id == shard_id))
