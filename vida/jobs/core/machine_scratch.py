"""The scratch folder of an experiment's shared training sets, on every machine that
runs its trainings (:mod:`vida.store.shared`): made when the trainings start,
removed when they end, and what a killed driver left removed by the next one."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from vida.jobs.core.executor import Pool
from vida.store.shared import (
    HOST,
    owned_folders,
    owners_alive,
    remove_stale,
    scratch_folder,
    scratch_root,
)


@contextmanager
def machine_scratch(pool: Pool) -> Iterator[str]:
    """This driver's scratch folder (the same path on every Dask worker's machine)."""
    root = scratch_root()
    if pool.spec.remote:
        _remove_stale_on_workers(pool, str(root))
    with scratch_folder(root) as folder:
        try:
            yield str(folder)
        finally:
            if pool.spec.remote:
                pool.run_everywhere(shutil.rmtree, str(folder), True)


def _remove_stale_on_workers(pool: Pool, root: str) -> None:
    """Folders of this host's dead drivers, on the workers' machines: the workers list
    them, this host says whose driver is gone, the workers remove those."""
    found = sorted({name for names in pool.run_everywhere(owned_folders, root, HOST)
                    for name in names})
    if found:
        pool.run_everywhere(_remove_on_worker, root, owners_alive(found))


def _remove_on_worker(root: str, owners: dict[str, bool]) -> list[str]:
    return remove_stale(Path(root), owners) if Path(root).is_dir() else []
