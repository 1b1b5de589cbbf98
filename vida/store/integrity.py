"""Checking the catalog against the store, and removing what a crash left behind.

Problems found:

* ``missing_shard``   a shard row whose file is gone (data lost: rerun its job);
* ``checksum``        a shard file whose SHA-256 differs from the catalog's;
* ``row_count``       a shard file with another number of rows than cataloged;
* ``row_out_of_range`` a feature row pointing past the end of its shard;
* ``dangling_feature`` a feature row pointing at a shard id that does not exist;
* ``orphan_file``     a sealed shard file the catalog does not know;
* ``partial_file``    an unsealed ``.partial`` file (a writer died mid-shard).

``repair`` removes orphan and partial files (they hold no committed data), and
*quarantines* damaged or missing shards: the file moves to ``quarantine/`` under
the store, its catalog rows go, and the clips whose ingest features were in it are
marked for re-ingest (their content hash is cleared), so that the next ``ingest``
(or ``encode``, ``generate``) recomputes exactly those clips.

Dead rows are rows of a shard that no feature points at any more (a clip ingested
again, two jobs that raced): not a problem, but space; ``compact`` rewrites the
shards that hold them with their live rows only.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import h5py
from sqlalchemy import delete, select, update

from vida.catalog.schema import Clip, Feature, FeatureSet, Run, Shard
from vida.store.errors import StoreError
from vida.store.shards import PARTIAL_SUFFIX, SHARD_SUFFIX, sha256_of
from vida.store.store import FeatureStore

REPAIRABLE = ("orphan_file", "partial_file")
QUARANTINABLE = ("checksum", "missing_shard", "row_count")
QUARANTINE = "quarantine"


@dataclass
class Problem:
    kind: str
    where: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.where}: {self.detail}"


@dataclass
class FsckReport:
    shards_checked: int = 0
    problems: list[Problem] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    dead_rows: int = 0  # rows no feature points at (see ``compact``)
    dead_bytes: int = 0
    compacted: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.problems


# fsck --repair quarantines at most this share of the shards (and this many rows)
# without --force: more is the mark of a store that is not there, not of damage
REPAIR_SHARE, REPAIR_ROWS = 0.10, 1000


def _check_repair_size(damaged: dict[str, int], shards: dict, force: bool) -> None:
    rows = sum(shards[sid][1] for sid in damaged.values())
    if force or (len(damaged) <= max(1, REPAIR_SHARE * len(shards)) and rows <= REPAIR_ROWS):
        return
    raise StoreError(f"fsck --repair would quarantine {len(damaged)} of {len(shards)} shards "
                     f"({rows} feature rows): that many gone at once is more often a store "
                     "that is not mounted or a wrong --store than damage; check them, and if "
                     "the shards are truly lost, rerun with --force")


def fsck(store: FeatureStore, *, repair: bool = False, verify_checksums: bool = True,
         force: bool = False) -> FsckReport:
    report = FsckReport()
    with store.catalog.reading() as session:
        shards = {s.id: (s.path, s.n_rows, s.sha256) for s in session.scalars(select(Shard))}
        features = session.execute(
            select(Feature.feature_set, Feature.clip_key, Feature.shard_id, Feature.row)
        ).all()

    known_paths = set()
    damaged: dict[str, int] = {}  # shard path -> id, for quarantine
    for sid, (rel, n_rows, digest) in shards.items():
        report.shards_checked += 1
        known_paths.add(rel)
        path = store.root / rel
        if not path.exists():
            report.problems.append(Problem("missing_shard", rel, "file is gone; fsck --repair "
                                           "drops its rows so that its job recomputes them"))
            damaged[rel] = sid
            continue
        if not os.access(path, os.R_OK):  # the file is there: not fsck's to remove
            report.problems.append(Problem("unreadable", rel, "permission denied; fix the "
                                           "file's permissions (fsck --repair leaves it)"))
            continue
        try:
            with h5py.File(path, "r") as h5:
                actual = h5["data"].shape[0]
        except OSError as exc:
            report.problems.append(Problem("checksum", rel, f"unreadable HDF5: {exc}"))
            damaged[rel] = sid
            continue
        if actual != n_rows:
            report.problems.append(
                Problem("row_count", rel, f"file has {actual} rows, catalog says {n_rows}")
            )
            damaged[rel] = sid
        if verify_checksums and sha256_of(path) != digest:
            report.problems.append(Problem("checksum", rel, "SHA-256 differs from the catalog; "
                                           "fsck --repair quarantines it"))
            damaged[rel] = sid

    live = Counter(shard_id for _, _, shard_id, _ in features)
    for sid, (rel, n_rows, _) in shards.items():
        dead = n_rows - live.get(sid, 0)
        path = store.root / rel
        if dead > 0 and rel not in damaged and path.exists():
            report.dead_rows += dead
            report.dead_bytes += path.stat().st_size * dead // max(n_rows, 1)

    for feature_set, key, shard_id, row in features:
        if shard_id not in shards:
            report.problems.append(
                Problem("dangling_feature", f"{feature_set}:{key}", f"shard id {shard_id} unknown")
            )
        elif not 0 <= row < shards[shard_id][1]:
            report.problems.append(
                Problem(
                    "row_out_of_range",
                    f"{feature_set}:{key}",
                    f"row {row} outside {shards[shard_id][0]} ({shards[shard_id][1]} rows)",
                )
            )

    for path in sorted(store.root.rglob("*")):
        if not path.is_file():
            continue
        rel = path.relative_to(store.root).as_posix()
        if rel.startswith(QUARANTINE + "/"):
            continue
        if path.name.endswith(SHARD_SUFFIX + PARTIAL_SUFFIX):
            report.problems.append(Problem("partial_file", rel, "unsealed shard of a dead writer"))
        elif path.suffix == SHARD_SUFFIX and rel not in known_paths:
            report.problems.append(Problem("orphan_file", rel, "sealed but never committed"))

    if repair:
        _check_repair_size(damaged, shards, force)
        kept = []
        for problem in report.problems:
            if problem.kind in REPAIRABLE:
                (store.root / problem.where).unlink(missing_ok=True)
                report.repaired.append(problem.where)
            elif problem.kind in QUARANTINABLE and problem.where in damaged:
                if problem.where not in report.repaired:
                    _quarantine(store, problem.where, damaged[problem.where])
                    report.repaired.append(problem.where)
            else:
                kept.append(problem)
        report.problems = kept
        _remove_empty_dirs(store.root)
    return report


def _quarantine(store: FeatureStore, rel: str, shard_id: int) -> None:
    """Move a damaged shard aside and forget its rows; clips whose ingest features
    were in it get their content hash cleared, so that ingest redoes them."""
    path = store.root / rel
    if path.exists():
        target = store.root / QUARANTINE / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, target)
    with store.catalog.transaction() as session:
        lost = select(Feature.clip_key).where(Feature.shard_id == shard_id)
        from_ingest = select(FeatureSet.name).where(FeatureSet.produced_by_run.in_(
            select(Run.run_id).where(Run.kind == "ingest")))
        session.execute(update(Clip).where(Clip.clip_key.in_(
            lost.where(Feature.feature_set.in_(from_ingest)))).values(content_sha256=None))
        session.execute(delete(Feature).where(Feature.shard_id == shard_id))
        session.execute(delete(Shard).where(Shard.id == shard_id))


def compact(store: FeatureStore) -> list[str]:
    """Rewrite every shard holding dead rows with its live rows only (new shard,
    features re-pointed in one transaction, old file removed); returns the old paths."""
    with store.catalog.reading() as session:
        shards = {s.id: (s.path, s.feature_set, s.n_rows) for s in session.scalars(select(Shard))}
        features = session.execute(select(Feature.feature_set, Feature.clip_key,
                                          Feature.shard_id, Feature.row)).all()
    by_shard: dict[int, list[tuple[str, int]]] = {}
    for _, key, sid, row in features:
        by_shard.setdefault(sid, []).append((key, row))
    done = []
    for sid, (rel, name, n_rows) in shards.items():
        rows = sorted(by_shard.get(sid, []), key=lambda kr: kr[1])
        if len(rows) == n_rows:
            continue
        if rows:
            keys = [k for k, _ in rows]
            values = store.read(name, keys)
            with h5py.File(store.root / rel, "r") as h5:
                extras = {e: h5[f"extras/{e}"][[r for _, r in rows]] for e in h5.get("extras", {})}
            with store.writer(name, rows_per_shard=len(keys) + 1) as writer:
                for i, key in enumerate(keys):
                    writer.add(key, values[i], **{e: v[i] for e, v in extras.items()})
        with store.catalog.transaction() as session:
            session.execute(delete(Shard).where(Shard.id == sid))
        store.close()
        (store.root / rel).unlink(missing_ok=True)
        done.append(rel)
    return done


def _remove_empty_dirs(root: Path) -> None:
    for folder in sorted((p for p in root.rglob("*") if p.is_dir()), reverse=True):
        if not any(folder.iterdir()):
            folder.rmdir()
