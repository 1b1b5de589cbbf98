"""Checking the catalog against the store, and removing what a crash left behind.

Problems found:

* ``missing_shard``   a shard row whose file is gone (data lost: rerun its job);
* ``checksum``        a shard file whose SHA-256 differs from the catalog's, or whose
                      chunk index (its user block) disagrees with HDF5's;
* ``row_count``       a shard file with another number of rows than cataloged;
* ``row_out_of_range`` a feature row pointing past the end of its shard;
* ``dangling_feature`` a feature row pointing at a shard id that does not exist;
* ``unreadable``      a shard file this user may not read (never repaired);
* ``orphan_file``     a sealed shard file the catalog does not know;
* ``quarantined_file`` a quarantined shard's file back in place (``restore`` it);
* ``partial_file``    an unsealed ``.partial`` file (a writer died mid-shard).

``repair`` removes orphan and partial files (they hold no committed data), and
*quarantines* damaged or missing shards: the file moves to ``quarantine/`` under
the store, its catalog rows go (kept in ``quarantined_shards``), and the clips whose
ingest features were in it are marked for re-ingest (their content hash is cleared),
so that the next ``ingest`` (or ``encode``, ``generate``) recomputes exactly those
clips.  It never touches a file it may not read, and past a threshold it asks for
``--force``: many shards gone at once is a store not mounted more often than damage.

``restore`` puts back each quarantined shard whose file is still there and intact,
with its rows (a clip recomputed since keeps its new row).

Dead rows are rows of a shard that no feature points at any more (a clip ingested
again, two jobs that raced): not a problem, but space; ``compact_shards`` rewrites the
shards that hold them with their live rows only.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import h5py

from vida.catalog.records.quarantine import quarantine_shard, quarantined, restore_shard
from vida.catalog.records.shards import forget_shard, shard_index
from vida.store.chunk_index import user_block_disagreement
from vida.store.errors import StoreError
from vida.store.identity import MARKER
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
         force: bool = False, compact: bool = False) -> FsckReport:
    """Check the catalog against the store; with ``repair``, remove what holds no
    committed data and quarantine what is damaged or gone (see the module's doc);
    with ``compact``, then rewrite the shards that hold dead rows."""
    report = FsckReport()
    index, features = shard_index(store.catalog)
    shards = {sid: (rel, n_rows, digest) for sid, (rel, _, n_rows, digest) in index.items()}
    damaged = _check_shards(store, shards, verify_checksums, report)
    _count_dead_rows(store, shards, features, damaged, report)
    _check_features(shards, features, report)
    _check_files(store, {rel for rel, _, _ in shards.values()}, report)
    if repair:
        _repair(store, report, damaged, shards, force)
    if compact:
        report.compacted = compact_shards(store)
    return report


def _check_shards(store: FeatureStore, shards: dict, verify_checksums: bool,
                  report: FsckReport) -> dict[str, int]:
    """Each indexed shard's file against its row; returns the damaged or missing
    ones (path -> id), the ones repair may quarantine."""
    damaged: dict[str, int] = {}
    for sid, (rel, n_rows, digest) in shards.items():
        report.shards_checked += 1
        problem = _shard_problem(store.root / rel, rel, n_rows, digest, verify_checksums)
        if problem is not None:
            report.problems.append(problem)
            if problem.kind in QUARANTINABLE:
                damaged[rel] = sid
    return damaged


def _shard_problem(path: Path, rel: str, n_rows: int, digest: str,
                   verify_checksums: bool) -> Problem | None:
    if not path.exists():
        return Problem("missing_shard", rel, "file is gone from the mounted store: if it "
                       "was moved, put it back; fsck --repair drops its rows so that its job "
                       "recomputes them (fsck --restore undoes that while the file exists)")
    if not os.access(path, os.R_OK):  # the file is there: not fsck's to remove
        return Problem("unreadable", rel, "permission denied; fix the file's permissions "
                       "(fsck --repair leaves it)")
    try:
        with h5py.File(path, "r") as h5:
            actual = h5["data"].shape[0]
        disagreement = user_block_disagreement(str(path))
    except OSError as exc:
        return Problem("checksum", rel, f"damaged: not readable as HDF5 ({exc})")
    if disagreement is not None:
        return Problem("checksum", rel, f"damaged: {disagreement}; fsck --repair "
                       "quarantines it")
    if actual != n_rows:
        return Problem("row_count", rel, f"damaged: file has {actual} rows, catalog says "
                       f"{n_rows}")
    if verify_checksums and sha256_of(path) != digest:
        return Problem("checksum", rel, "damaged: SHA-256 differs from the catalog's; fsck "
                       "--repair quarantines it")
    return None


def _count_dead_rows(store: FeatureStore, shards: dict, features: list, damaged: dict,
                     report: FsckReport) -> None:
    live = Counter(shard_id for _, _, shard_id, _ in features)
    for sid, (rel, n_rows, _) in shards.items():
        dead = n_rows - live.get(sid, 0)
        path = store.root / rel
        if dead > 0 and rel not in damaged and path.exists():
            report.dead_rows += dead
            report.dead_bytes += path.stat().st_size * dead // max(n_rows, 1)


def _check_features(shards: dict, features: list, report: FsckReport) -> None:
    for feature_set, key, shard_id, row in features:
        if shard_id not in shards:
            report.problems.append(Problem("dangling_feature", f"{feature_set}:{key}",
                                           f"shard id {shard_id} unknown"))
        elif not 0 <= row < shards[shard_id][1]:
            rel, n_rows = shards[shard_id][0], shards[shard_id][1]
            report.problems.append(Problem("row_out_of_range", f"{feature_set}:{key}",
                                           f"row {row} outside {rel} ({n_rows} rows)"))


def _check_files(store: FeatureStore, known_paths: set[str], report: FsckReport) -> None:
    """Files no shard row names: a dead writer's partial file, a shard sealed and never
    committed, or a quarantined shard's file that is back (never removed)."""
    held = {q.path for q in quarantined(store.catalog)}
    for path in sorted(store.root.rglob("*")):
        rel = path.relative_to(store.root).as_posix()
        if not path.is_file() or rel.startswith(QUARANTINE + "/"):
            continue
        if path.name.endswith(SHARD_SUFFIX + PARTIAL_SUFFIX):
            report.problems.append(Problem("partial_file", rel, "unsealed shard of a dead writer"))
        elif path.suffix == SHARD_SUFFIX and rel in held:
            report.problems.append(Problem("quarantined_file", rel, "a quarantined shard's "
                                           "file is back: `fsck --restore` puts its rows back"))
        elif path.suffix == SHARD_SUFFIX and rel not in known_paths:
            report.problems.append(Problem("orphan_file", rel, "sealed but never committed"))


def _repair(store: FeatureStore, report: FsckReport, damaged: dict[str, int], shards: dict,
            force: bool) -> None:
    _check_repair_size(damaged, shards, force)
    if damaged and not (store.root / MARKER).is_file():
        raise StoreError(f"store {store.root} went away during fsck (its {MARKER} is gone): "
                         "remount it and rerun; nothing was repaired")
    kept = []
    for problem in report.problems:
        if problem.kind in REPAIRABLE:
            (store.root / problem.where).unlink(missing_ok=True)
            report.repaired.append(problem.where)
        elif problem.kind in QUARANTINABLE and problem.where in damaged:
            if problem.where not in report.repaired:
                _quarantine(store, problem.where, damaged[problem.where], problem.kind)
                report.repaired.append(problem.where)
        else:
            kept.append(problem)
    report.problems = kept
    _remove_empty_dirs(store.root)


def _quarantine(store: FeatureStore, rel: str, shard_id: int, problem: str) -> None:
    """Move a damaged shard aside, then forget its rows (kept in
    ``quarantined_shards`` for :func:`restore`); the file goes back if that fails."""
    path, target = store.root / rel, store.root / QUARANTINE / rel
    moved = path.exists()
    if moved:
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, target)
    try:
        quarantine_shard(store.catalog, shard_id, problem)
    except BaseException:
        if moved:
            os.replace(target, path)
        raise


@dataclass
class RestoreReport:
    restored: list[tuple[str, int]] = field(default_factory=list)  # (shard, feature rows)
    left: list[tuple[str, str]] = field(default_factory=list)  # (shard, why)


def restore(store: FeatureStore) -> RestoreReport:
    """Put back every quarantined shard whose file is still there and intact (in
    ``quarantine/``, or back in place, e.g. a folder mounted again), with its rows."""
    report = RestoreReport()
    for entry in quarantined(store.catalog):
        original, held = store.root / entry.path, store.root / QUARANTINE / entry.path
        source = held if held.exists() else original if original.exists() else None
        if source is None:
            report.left.append((entry.path, "its file is gone: the job that made "
                                f"{entry.feature_set} recomputes its clips"))
        elif sha256_of(source) != entry.sha256:
            report.left.append((entry.path, f"still damaged ({entry.problem}): its bytes "
                                "differ from what was written"))
        else:
            report.restored.append((entry.path, _put_back(store, entry.shard_id, source,
                                                          original)))
    _remove_empty_dirs(store.root)
    return report


def _put_back(store: FeatureStore, shard_id: int, source: Path, original: Path) -> int:
    if source != original:
        original.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, original)
    try:
        return restore_shard(store.catalog, shard_id)
    except BaseException:
        if source != original:
            os.replace(original, source)
        raise


def compact_shards(store: FeatureStore) -> list[str]:
    """Rewrite every shard holding dead rows with its live rows only (new shard,
    features re-pointed in one transaction, old file removed); returns the old paths."""
    index, features = shard_index(store.catalog)
    shards = {sid: (rel, name, n_rows) for sid, (rel, name, n_rows, _) in index.items()}
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
        forget_shard(store.catalog, sid)
        store.close()
        (store.root / rel).unlink(missing_ok=True)
        done.append(rel)
    return done


def _remove_empty_dirs(root: Path) -> None:
    for folder in sorted((p for p in root.rglob("*") if p.is_dir()), reverse=True):
        if not any(folder.iterdir()):
            folder.rmdir()
