"""The one shape of every batch job: *plan* -> *map* -> *commit* -> *record*.

plan
    A catalog query decides the work: the user's ``--query`` (read-only SQL) or the
    job's default.  The plan is a list of small picklable items (a clip row, a batch
    of frames).
map
    A picklable callable applied to each item.  It may run in another process (or,
    through an executor, on another machine), so it gets everything it needs in
    the item or in its own fields (model names, grid sizes), loads models lazily
    once per process, reads media and returns plain values.  It never writes the
    catalog.
commit
    The driver (the process that planned) writes the results: rows through
    :mod:`vida.catalog.records`, features through the store's sealed shards, each
    in a transaction, so a killed job leaves either all of a commit or none of it.
record
    The run row (kind, params, query, feature sets) is opened before the work and
    closed with its metrics after the commit; if anything raises, the run is
    marked failed with the error, then the error propagates.

In code::

    check inputs, load what fails fast (a model that cannot load must fail before
    a run is recorded)
    items = plan(catalog, query)                                    # plan
    with recorded(catalog, "tag", params, query=query) as run:      # record
        results = map_items(TagBatch(model, top_k), items, desc="tag")   # map
        store_tags(catalog, source, merge(results))                 # commit
        run.metrics["clips_tagged"] = n

Jobs whose results are catalog rows commit them as they come
(:func:`commit_as_you_go`) and plan only what is not done yet, so that a killed
run's rerun resumes; the store's ``job_lock`` keeps two of them from doing the
same clips at once.

Jobs whose whole work is one computation (a dictionary, a filter, a split) have
one item, computed in the driver: the same four steps, without the loop.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

from vida.catalog.database import Catalog
from vida.catalog.records.runs import failed_on_error, finish_run, start_run

Item = TypeVar("Item")
Result = TypeVar("Result")


@dataclass
class RunRecord:
    """What a job fills in while it runs; written when its run's block ends."""

    run_id: str
    metrics: dict[str, float] = field(default_factory=dict)
    checkpoint: str | None = None
    # the job's commit closed the run in its own transaction (a training: its
    # results and its end are in the catalog together, or neither is)
    closed: bool = False


@contextmanager
def run_lifecycle(catalog: Catalog, start: Callable[[], str]) -> Iterator[RunRecord]:
    """The one lifecycle of every run: ``start()`` opens it (or reopens it, for a
    resumed experiment) and returns its id; the block's end finishes it with the
    block's metrics, unless the block's commit closed it; an exception fails it with
    the error, then propagates.  "abandoned" is left for a process that is gone."""
    record = RunRecord(start())
    with failed_on_error(catalog, record.run_id):
        yield record
        if not record.closed:
            finish_run(catalog, record.run_id, metrics=record.metrics or None,
                       checkpoint=record.checkpoint)


def recorded(catalog: Catalog, kind: str, params: dict[str, Any], *,
             query: str | None = None, feature_sets: list[str] | None = None,
             seed: int | None = None, arch: str | None = None
             ) -> AbstractContextManager[RunRecord]:
    """A new run of ``kind`` through :func:`run_lifecycle`."""
    return run_lifecycle(catalog, partial(start_run, catalog, kind=kind, params=params,
                                          query=query, feature_sets=feature_sets, seed=seed,
                                          arch=arch))


def import_as_run(catalog: Catalog, kind: str, params: dict[str, Any],
                   write: Callable[[], int], metric: str) -> int:
    """A job whose whole work is one write (an import): the write, recorded as a run
    with its count as ``metric``."""
    with recorded(catalog, kind, params) as run:
        n = write()
        run.metrics[metric] = n
    return n


def map_items(work: Callable[[Item], Result], items: Iterable[Item], *, desc: str,
              total: int | None = None, unit: str = "clip", progress: bool = True,
              size: Callable[[Item], int] = lambda item: 1,
              processes: bool = False) -> Iterator[Result]:
    """Apply ``work`` to each item in order, with a progress bar (units/s and ETA).

    Where ``--executor`` names a Dask cluster, the items run there; otherwise in this
    process, or with ``processes`` (work that loads no model: decoding, flow) in local
    worker processes on every core.

    ``items`` may be produced lazily (a plan that reads each batch's inputs as it
    goes); ``total`` is then the number of units, for the ETA.  ``size`` says how
    many units an item holds (a batch of 8 frames is 8 frames).  Results come back
    in the order of ``items``.
    """
    from tqdm import tqdm

    from vida.jobs.core.executor import LOCAL, map_ordered, open_pool, parse_executor, remote_spec

    if total is None and isinstance(items, Sequence):
        total = sum(size(item) for item in items)
    bar = tqdm(total=total, unit=unit, desc=desc, disable=not progress)
    spec = remote_spec() or (parse_executor(LOCAL) if processes else None)
    try:
        if spec is None:
            for item in items:
                result = work(item)
                bar.update(size(item))
                yield result
        else:  # on worker processes or a Dask cluster; results still in plan order
            sized: list[int] = []

            def noted(source: Iterable[Item]) -> Iterator[Item]:
                for item in source:
                    sized.append(size(item))
                    yield item

            with open_pool(spec) as pool:
                for i, result in enumerate(map_ordered(pool, work, noted(items))):
                    bar.update(sized[i])
                    yield result
    finally:
        bar.close()


def commit_as_you_go(results: Iterable[Result], commit: Callable[[list[Result]], Any], *,
                     every_n: int = 256, every_s: float = 30.0) -> int:
    """Commit ``results`` in batches as they come (every ``every_n`` results or
    ``every_s`` seconds, and at the end); returns how many were committed.

    For the jobs whose results are catalog rows (tag, frames, caption): a killed or
    failed run keeps what it committed, and its rerun, which plans only the clips
    not done yet, finishes the rest instead of starting over."""
    batch: list[Result] = []
    done, last = 0, time.monotonic()
    for result in results:
        batch.append(result)
        if len(batch) >= every_n or time.monotonic() - last >= every_s:
            commit(batch)
            done, batch, last = done + len(batch), [], time.monotonic()
    if batch:
        commit(batch)
        done += len(batch)
    return done


@dataclass
class Tally:
    """What a row job did: items done, and items failed by reason (the clip's media
    gone, say), so that the command can say the commonest and exit non-zero when
    every item failed."""

    done: int = 0
    failures: Counter = field(default_factory=Counter)

    @property
    def failed(self) -> int:
        return sum(self.failures.values())

    def commonest(self) -> str:
        return self.failures.most_common(1)[0][0] if self.failures else "none"
