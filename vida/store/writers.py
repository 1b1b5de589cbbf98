"""The driver's side of writing features: commit sealed shards to the catalog.

:mod:`vida.store.shards` builds and seals shard files without the catalog (workers
do that); this module points the catalog at them, one transaction per bundle
(step 3 of the order of operations described there).  :class:`BundleWriter` and
:class:`FeatureWriter` do both in one process, for jobs that write as they go.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Any

from vida.catalog.database import Catalog
from vida.catalog.records.features import FeatureSetInfo
from vida.catalog.records.shards import commit_shards
from vida.store.shards import Record, SealedBundle, SetLayout, ShardBundle


def commit_sealed(catalog: Catalog, bundle: SealedBundle, wait: float | None = None) -> None:
    """One transaction: a ``shards`` row and its ``features`` rows per sealed shard,
    then the bundle's records (e.g. each clip's row).  Before it, the files are
    orphans that fsck removes; after it, everything is visible at once."""
    if not bundle.shards and not bundle.records:
        return
    commit_shards(catalog, bundle.shards, bundle.records, wait)


class BundleWriter(ShardBundle):
    """Streams rows of several feature sets into sealed shards, one commit for all.

    Each feature set gets its own shard file; when any of them fills up (or the
    pending catalog records do), all are sealed and committed together in **one**
    transaction with the catalog records queued by :meth:`add` (e.g. the ``clips``
    row of each clip).  So a clip's row and its features are committed together or
    not at all: a killed job never leaves a clip whose features are missing.

    Use as a context manager; on normal exit the last shards are sealed and
    committed, on an exception they are discarded (what was committed stays).
    """

    def __init__(
        self,
        catalog: Catalog,
        store_root: Path,
        feature_sets: list[FeatureSetInfo],
        rows_per_shard: int = 256,
    ) -> None:
        super().__init__(store_root, [SetLayout.of(fs) for fs in feature_sets])
        self.catalog = catalog
        self.rows_per_shard = rows_per_shard
        self.committed = 0  # feature rows committed so far
        self.records_committed = 0

    def add(
        self,
        key: str,
        arrays: dict[str, Any],
        extras: dict[str, dict[str, Any]] | None = None,
        records: list[Record] = (),
    ) -> None:
        super().add(key, arrays, extras, records)
        if self.pending >= self.rows_per_shard:
            self.flush()

    def flush(self) -> None:
        """Seal every open shard and commit them with the queued records."""
        bundle = self.seal()
        commit_sealed(self.catalog, bundle)
        self.committed += bundle.n_rows
        self.records_committed += len(bundle.records)

    def close(self) -> None:
        self.flush()

    def __enter__(self) -> BundleWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.flush()
        else:
            self.discard()


class FeatureWriter(BundleWriter):
    """A :class:`BundleWriter` of one feature set: ``add(key, array, **extras)``."""

    def __init__(
        self,
        catalog: Catalog,
        store_root: Path,
        feature_set: FeatureSetInfo,
        rows_per_shard: int = 256,
    ) -> None:
        super().__init__(catalog, store_root, [feature_set], rows_per_shard)
        self.name = feature_set.name

    def add(self, key: str, array: Any, **extras: Any) -> None:  # type: ignore[override]
        super().add(key, {self.name: array}, {self.name: extras} if extras else None)
