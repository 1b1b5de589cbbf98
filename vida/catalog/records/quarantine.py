"""Reads and writes of ``quarantined_shards``: what ``fsck --repair`` took out of the
catalog, kept so that ``fsck --restore`` can put it back.

Quarantining a shard removes its ``shards`` row and its ``features`` rows, and clears
the content hash of the clips whose ingest features were in it (so that the next
ingest redoes them); all of it is written here first, in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from vida.catalog.database import Catalog
from vida.catalog.schema import Clip, Feature, FeatureSet, QuarantinedShard, Run, Shard, utcnow


@dataclass(frozen=True)
class Quarantined:
    """One quarantined shard not yet restored."""

    shard_id: int
    feature_set: str
    path: str
    sha256: str
    problem: str


def _ingest_clips_of(shard_id: int):
    """The clips whose features in the shard were made by an ingest run (their content
    hash is what tells ingest that a clip is done)."""
    from_ingest = select(FeatureSet.name).where(FeatureSet.produced_by_run.in_(
        select(Run.run_id).where(Run.kind == "ingest")))
    return select(Feature.clip_key).where(Feature.shard_id == shard_id,
                                          Feature.feature_set.in_(from_ingest))


def quarantine_shard(catalog: Catalog, shard_id: int, problem: str) -> None:
    """Record the shard's rows, then remove them (one transaction)."""
    with catalog.transaction() as session:
        shard = session.get(Shard, shard_id)
        if shard is None:
            return
        rows = session.execute(select(Feature.clip_key, Feature.row)
                               .where(Feature.shard_id == shard_id)).all()
        hashes = dict(session.execute(select(Clip.clip_key, Clip.content_sha256).where(
            Clip.clip_key.in_(_ingest_clips_of(shard_id)))).all())
        session.merge(QuarantinedShard(
            shard_id=shard.id, feature_set=shard.feature_set, path=shard.path,
            n_rows=shard.n_rows, sha256=shard.sha256, sealed_at=shard.sealed_at,
            problem=problem, features=[[k, r] for k, r in rows], cleared_hashes=hashes,
            quarantined_at=utcnow(), restored_at=None))
        session.execute(update(Clip).where(Clip.clip_key.in_(list(hashes)))
                        .values(content_sha256=None))
        session.execute(delete(Feature).where(Feature.shard_id == shard_id))
        session.execute(delete(Shard).where(Shard.id == shard_id))


def quarantined(catalog: Catalog) -> list[Quarantined]:
    """Shards in quarantine that were not restored, oldest first."""
    with catalog.reading() as session:
        return [Quarantined(q.shard_id, q.feature_set, q.path, q.sha256, q.problem)
                for q in session.scalars(select(QuarantinedShard)
                                         .where(QuarantinedShard.restored_at.is_(None))
                                         .order_by(QuarantinedShard.quarantined_at))]


def restore_shard(catalog: Catalog, shard_id: int) -> int:
    """Put a quarantined shard's rows back; returns how many feature rows.  A clip
    recomputed since keeps its new row, and its content hash is left as it is."""
    with catalog.transaction() as session:
        entry = session.get(QuarantinedShard, shard_id)
        session.add(Shard(id=entry.shard_id, feature_set=entry.feature_set, path=entry.path,
                          n_rows=entry.n_rows, sha256=entry.sha256,
                          sealed_at=entry.sealed_at or utcnow()))
        taken = _existing(session, entry.feature_set, [k for k, _ in entry.features])
        back = [(k, r) for k, r in entry.features if k not in taken]
        session.add_all(Feature(feature_set=entry.feature_set, clip_key=k, shard_id=shard_id,
                                row=r) for k, r in back)
        for key, digest in entry.cleared_hashes.items():
            if key not in taken:
                session.execute(update(Clip).where(Clip.clip_key == key,
                                                   Clip.content_sha256.is_(None))
                                .values(content_sha256=digest))
        entry.restored_at = utcnow()
        return len(back)


def _existing(session: Session, feature_set: str, keys: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(keys), 1000):
        found.update(session.scalars(select(Feature.clip_key).where(
            Feature.feature_set == feature_set, Feature.clip_key.in_(keys[start:start + 1000]))))
    return found
