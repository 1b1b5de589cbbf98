"""Checking the catalog against the store, and removing what a crash left behind.

Problems found:

* ``missing_shard``   a shard row whose file is gone (data lost: rerun its job);
* ``checksum``        a shard file whose SHA-256 differs from the catalog's;
* ``row_count``       a shard file with another number of rows than cataloged;
* ``row_out_of_range`` a feature row pointing past the end of its shard;
* ``dangling_feature`` a feature row pointing at a shard id that does not exist;
* ``orphan_file``     a sealed shard file the catalog does not know;
* ``partial_file``    an unsealed ``.partial`` file (a writer died mid-shard).

``repair`` removes orphan and partial files only (they hold no committed data);
everything else needs the job that produced the data to run again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import h5py
from sqlalchemy import select

from vida.catalog.schema import Feature, Shard
from vida.store.shards import PARTIAL_SUFFIX, SHARD_SUFFIX, sha256_of
from vida.store.store import FeatureStore

REPAIRABLE = ("orphan_file", "partial_file")


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

    @property
    def clean(self) -> bool:
        return not self.problems


def fsck(store: FeatureStore, *, repair: bool = False, verify_checksums: bool = True) -> FsckReport:
    report = FsckReport()
    with store.catalog.reading() as session:
        shards = {s.id: (s.path, s.n_rows, s.sha256) for s in session.scalars(select(Shard))}
        features = session.execute(
            select(Feature.feature_set, Feature.clip_key, Feature.shard_id, Feature.row)
        ).all()

    known_paths = set()
    for _sid, (rel, n_rows, digest) in shards.items():
        report.shards_checked += 1
        known_paths.add(rel)
        path = store.root / rel
        if not path.exists():
            report.problems.append(Problem("missing_shard", rel, "file is gone; rerun its job"))
            continue
        try:
            with h5py.File(path, "r") as h5:
                actual = h5["data"].shape[0]
        except OSError as exc:
            report.problems.append(Problem("checksum", rel, f"unreadable HDF5: {exc}"))
            continue
        if actual != n_rows:
            report.problems.append(
                Problem("row_count", rel, f"file has {actual} rows, catalog says {n_rows}")
            )
        if verify_checksums and sha256_of(path) != digest:
            report.problems.append(Problem("checksum", rel, "SHA-256 differs from the catalog"))

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
        if path.name.endswith(SHARD_SUFFIX + PARTIAL_SUFFIX):
            report.problems.append(Problem("partial_file", rel, "unsealed shard of a dead writer"))
        elif path.suffix == SHARD_SUFFIX and rel not in known_paths:
            report.problems.append(Problem("orphan_file", rel, "sealed but never committed"))

    if repair:
        kept = []
        for problem in report.problems:
            if problem.kind in REPAIRABLE:
                (store.root / problem.where).unlink(missing_ok=True)
                report.repaired.append(problem.where)
            else:
                kept.append(problem)
        report.problems = kept
        _remove_empty_dirs(store.root)
    return report


def _remove_empty_dirs(root: Path) -> None:
    for folder in sorted((p for p in root.rglob("*") if p.is_dir()), reverse=True):
        if not any(folder.iterdir()):
            folder.rmdir()
