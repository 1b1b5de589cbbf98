"""Where a job's *map* step runs: this process, a local process pool, or a Dask cluster.

One seam for every job that maps work over clips.  ``--executor`` says where:

``local`` (default)
    a pool of processes on this machine (``concurrent.futures``), forked from a
    server process that imported the job's modules once (see
    :func:`start_workers_early`); one worker means in this process, with nothing
    pickled;
``dask://HOST:PORT``
    the workers of a running ``dask scheduler`` (``dask.distributed``), e.g. on a
    Slurm allocation through dask-jobqueue;
``dask-local:N``
    a throw-away ``LocalCluster`` of N single-threaded worker processes.

Both pools are driven through the same ``concurrent.futures`` interface (Dask's
``Client.get_executor()`` returns a ``concurrent.futures.Executor``), so a job has
one code path.  The work function is picklable and caches its models per process
(``functools.lru_cache`` on the model spec), so a worker pays its start-up once,
however many items it gets.  Workers never write the catalog; results come back to
the driver, which commits them.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import select
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

from vida.errors import UsageError, VidaError
from vida.processes import process_alive

Item = TypeVar("Item")
Result = TypeVar("Result")

LOCAL = "local"
MAX_RESTARTS = 20  # a local pool is replaced at most this often per job
_DASK = "dask://"
_DASK_LOCAL = "dask-local:"


_CURRENT: ContextVar[str | None] = ContextVar("vida_executor", default=None)


def set_executor(text: str | None) -> None:
    """Where this process's jobs map their work (``vida-batch --executor``)."""
    parse_executor(text)  # refuse a bad name now, not in the middle of a job
    _CURRENT.set(text)


def current_executor() -> str | None:
    return _CURRENT.get() or os.environ.get("VIDA_EXECUTOR")


def remote_spec() -> ExecutorSpec | None:
    """The Dask executor jobs should use for their map, if one was chosen.  With
    ``local``, jobs whose map runs a model keep it in this process, where the model
    already uses every core (worker processes would compete with it for them);
    ``ingest`` and ``encode``'s decoding use local processes."""
    spec = parse_executor(current_executor())
    return spec if spec.kind == "dask" else None


class WorkerLost(VidaError, RuntimeError):
    """The process that ran an item died (a decoder crash, an OOM kill, a lost node)."""


@dataclass(frozen=True)
class ExecutorSpec:
    """Parsed ``--executor``: ``kind`` is serial, local or dask."""

    kind: str
    workers: int
    address: str | None = None

    @property
    def remote(self) -> bool:
        return self.kind == "dask"

    def describe(self) -> str:
        if self.kind == "dask":
            return f"dask {self.address or f'LocalCluster({self.workers})'}"
        return "this process" if self.kind == "serial" else f"{self.workers} local processes"


def parse_executor(text: str | None, workers: int | None = None) -> ExecutorSpec:
    """``local`` / ``dask://HOST:PORT`` / ``dask-local:N`` -> :class:`ExecutorSpec`;
    ``workers`` sizes the local pool (default: every core)."""
    text = (text or os.environ.get("VIDA_EXECUTOR") or LOCAL).strip()
    n = max(1, workers if workers is not None else (os.cpu_count() or 1))
    if text == LOCAL:
        return ExecutorSpec("serial" if n == 1 else "local", n)
    if text.startswith(_DASK):
        address = text[len(_DASK):]
        if ":" not in address:
            raise UsageError(f"--executor {text}: give the scheduler as dask://HOST:PORT")
        return ExecutorSpec("dask", n, f"tcp://{address}")
    if text.startswith(_DASK_LOCAL) and text[len(_DASK_LOCAL):].isdigit():
        return ExecutorSpec("dask", max(1, int(text[len(_DASK_LOCAL):])))
    raise UsageError(f"--executor {text!r}: use local, dask://HOST:PORT or dask-local:N")


def _context() -> mp.context.BaseContext:
    """How local workers start: forked from a server process (``forkserver``) where
    the platform has one, else spawned.

    A spawned worker is a fresh interpreter that imports the job's modules again; a
    forkserver imports them once, and a worker is a fork of it (``bin/bench``'s
    "ingest of 0 clips" rows measure the start-up).  Never a fork of the driver
    itself, which holds threads (BLAS, DuckDB) and open connections."""
    return mp.get_context("forkserver" if _has_forkserver() else "spawn")


def _has_forkserver() -> bool:
    return "forkserver" in mp.get_all_start_methods()


def start_workers_early(executor: str | None, workers: int | None,
                        modules: Sequence[str]) -> None:
    """Start the server local workers fork from, importing ``modules`` there now.

    A command calls this first, before it imports and opens the catalog: the server
    imports the job's modules (ingest: decoders, encoders, transformers' audio code)
    on another core while the driver starts, and the pool's workers, forked later,
    begin warm.  Best effort and a no-op for one worker, Dask, or platforms without
    ``forkserver``; a module that fails to import is imported again by the workers
    that need it.  The server lives until this process exits and serves every local
    pool of it; only the first call chooses what it imports."""
    spec = parse_executor(executor, workers)
    if spec.kind != "local" or not _has_forkserver():
        return
    from multiprocessing import forkserver

    context = mp.get_context("forkserver")
    context.set_forkserver_preload(list(modules))
    forkserver.ensure_running()


def _start_worker(prepare: Callable[[], None] | None, environ: dict[str, str],
                  driver: int) -> None:
    """Local pool initialiser: the driver's environment, an end with the driver, one
    thread, then the job's warm-up (models, imports).

    The environment is the driver's as the pool opens (as a spawned worker would
    see it), not the server's as it started.  The warm-up is best effort: if it
    fails, the first item builds the same thing and fails with its own message, as
    a job error rather than a lost worker (an initialiser that raises breaks the
    whole pool)."""
    os.environ.clear()
    os.environ.update(environ)
    _exit_with_driver(driver)
    _one_thread_per_process()
    if prepare is not None:
        try:
            prepare()
        except Exception:  # noqa: BLE001 - said again, properly, by the first item
            pass


def _exit_with_driver(driver: int) -> None:
    """End this worker when the driver process ends, however it ends.

    A SIGKILLed driver cannot shut its pool down: an idle worker would wait for work
    forever and keep the caller's pipes open.  (A forkserver worker holds the
    server's liveness pipe itself, so the server does not end either.)  A daemon
    thread waits on the driver (a pidfd where Linux has one, else a poll)."""
    def wait_then_exit() -> None:
        try:
            handle = os.pidfd_open(driver)
        except (AttributeError, OSError):  # no pidfd here, or the driver is gone
            while process_alive(driver):
                time.sleep(1.0)
        else:
            select.select([handle], [], [])
        os._exit(1)

    threading.Thread(target=wait_then_exit, name="vida-driver-watch", daemon=True).start()


def _started() -> int:
    return os.getpid()


def _one_thread_per_process() -> None:
    """As a local worker starts (``_start_worker``): workers are the parallelism, so
    each uses one core.

    Through the environment for torch and BLAS (read when they are first imported),
    so that a worker whose job never needs torch (ingest with the default encoders)
    does not import it just to set its thread count."""
    from threadpoolctl import threadpool_limits

    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = "1"
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)
    threadpool_limits(1)  # numpy's BLAS, loaded already: see one_blas_thread
    import cv2

    cv2.setNumThreads(1)


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """numpy's BLAS on one thread, for maps that run clip by clip in the driver.

    OpenBLAS threads spin between the small matrix products of per-clip features
    (the fbank's mel filters): CPU spent for no gain in wall time (``bin/bench``'s
    ingest rows run with one thread)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, user_api="blas"):
        yield


class Pool:
    """An open executor: ``submit`` items, ``restart`` after a lost worker."""

    def __init__(self, spec: ExecutorSpec, prepare: Callable[[], None] | None = None,
                 resources: dict[str, float] | None = None) -> None:
        self.spec = spec
        self.prepare = prepare
        self.resources = resources  # Dask: what each item holds on its worker (GPU=1)
        self._client: Any = None
        self._cluster: Any = None
        self.executor: Executor | None = None
        self.restarts = 0
        self._open()

    @property
    def slots(self) -> int:
        """How many items to keep in flight: enough to keep every worker busy."""
        if self._client is not None:
            threads = sum(self._client.nthreads().values()) or self.spec.workers
            return 2 * threads
        return 2 * self.spec.workers

    def _open(self) -> None:
        if self.spec.kind == "local":
            from concurrent.futures import ProcessPoolExecutor

            self.executor = ProcessPoolExecutor(self.spec.workers, mp_context=_context(),
                                                initializer=_start_worker,
                                                initargs=(self.prepare, dict(os.environ),
                                                          os.getpid()))
            # Start every worker now (the pool spawns one per submit while none is
            # idle), so that their start-up and warm-up run while the driver plans.
            for _ in range(self.spec.workers):
                self.executor.submit(_started)
        elif self.spec.kind == "dask":
            try:
                from distributed import Client, LocalCluster
            except ImportError as exc:
                raise UsageError("--executor dask needs dask.distributed: "
                                   "pip install 'vida[cluster]'") from exc
            if self.spec.address:
                self._client = Client(self.spec.address)
            else:
                self._cluster = LocalCluster(n_workers=self.spec.workers, threads_per_worker=1,
                                             processes=True, dashboard_address=None)
                self._client = Client(self._cluster)
            self.executor = self._client.get_executor(pure=False, resources=self.resources)

    def submit(self, work: Callable[[Item], Result], item: Item) -> Future:
        if self.executor is None:  # serial: run now, hand back a finished future
            future: Future = Future()
            try:
                future.set_result(work(item))
            except BaseException as exc:  # noqa: BLE001 - the caller sees it via result()
                future.set_exception(exc)
            return future
        return self.executor.submit(work, item)

    def lost(self, exc: BaseException) -> bool:
        """Did ``exc`` come from a dead worker rather than from the work itself?"""
        if isinstance(exc, BrokenProcessPool | WorkerLost):
            return True
        return type(exc).__name__ in ("KilledWorker", "CommClosedError")

    def run_everywhere(self, fn: Callable[..., Result], *args: object) -> list[Result]:
        """``fn(*args)`` once on each Dask worker (its machine's files), or here for
        local workers, which share this machine."""
        if self._client is None:
            return [fn(*args)]
        return list(self._client.run(fn, *args).values())

    def restart(self) -> None:
        """After a lost worker: a local pool is broken for good and is replaced (a
        bounded number of times: workers that keep dying stop the job); Dask replaces
        its workers itself."""
        if self.spec.kind == "local":
            assert self.executor is not None
            self.restarts += 1
            if self.restarts > MAX_RESTARTS:
                raise WorkerLost(f"worker processes died {self.restarts} times; the job "
                                   "stops (the clips that killed them are recorded as failed)")
            self.executor.shutdown(wait=False, cancel_futures=True)
            self._open()

    def close(self) -> None:
        if self.executor is not None:
            self.executor.shutdown(wait=True)
        if self._client is not None:
            self._client.close()
        if self._cluster is not None:
            self._cluster.close()

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_pool(executor: str | ExecutorSpec | None, workers: int | None = None,
              prepare: Callable[[], None] | None = None,
              resources: dict[str, float] | None = None) -> Pool:
    """Open the executor.  ``prepare`` (picklable, no arguments) warms a local worker
    as it starts -- loads the job's models -- while the driver still plans; Dask
    workers warm on their first item and stay warm across jobs."""
    spec = executor if isinstance(executor, ExecutorSpec) else parse_executor(executor, workers)
    return Pool(spec, prepare, resources)


def map_ordered(pool: Pool, work: Callable[[Item], Result], items: Iterable[Item],
                in_flight: int | None = None) -> Iterator[Result]:
    """``work`` over ``items`` on ``pool``; results in the order of ``items``, at most
    ``in_flight`` submitted ahead (memory stays flat however many items there are)."""
    limit = in_flight or pool.slots
    pending: deque[Future] = deque()
    for item in items:
        pending.append(pool.submit(work, item))
        if len(pending) >= limit:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def map_as_completed(pool: Pool, work: Callable[[Item], Result], items: Iterable[Item],
                     in_flight: int | None = None
                     ) -> Iterator[tuple[Item, Result | None, BaseException | None]]:
    """``work`` over ``items`` on ``pool``, yielding ``(item, result, error)`` as each
    finishes (bounded in flight).  A lost worker shows as a :class:`WorkerLost`
    error for each of its items; the pool is restarted and the rest go on."""
    limit = in_flight or pool.slots
    source = iter(items)
    running: dict[Future, Item] = {}
    exhausted = False
    while True:
        while not exhausted and len(running) < limit:
            try:
                item = next(source)
            except StopIteration:
                exhausted = True
                break
            running[pool.submit(work, item)] = item
        if not running:
            return
        done, _ = wait(list(running), return_when=FIRST_COMPLETED)
        broken = False
        for future in done:
            item = running.pop(future)
            exc = future.exception()
            if exc is not None and pool.lost(exc):
                broken = broken or isinstance(exc, BrokenProcessPool)
                yield item, None, WorkerLost(str(exc) or type(exc).__name__)
            else:
                yield item, (future.result() if exc is None else None), exc
        if broken:
            # every item still running in a broken local pool is lost with it
            for future, item in list(running.items()):
                running.pop(future)
                yield item, None, WorkerLost("the worker pool broke while this ran")
            pool.restart()


@contextmanager
def ordered_mapper(workers: int | None = None) -> Iterator[Callable[..., Iterator]]:
    """``mapper(fn, items)`` over local worker processes (every core by default),
    results in the order of ``items``: for code outside ``jobs`` that takes a map."""
    with open_pool(LOCAL, workers) as pool:
        yield lambda work, items: map_ordered(pool, work, items)
