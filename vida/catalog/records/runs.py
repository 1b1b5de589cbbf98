"""Recording runs (after MLflow's tracking store): a row per run, metrics per epoch."""

from __future__ import annotations

import os
import socket
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from vida.catalog.database import Catalog
from vida.catalog.records import json_column
from vida.catalog.records.clip_queries import ClipQuery
from vida.catalog.schema import Run, RunMetric, utcnow
from vida.processes import process_alive


@lru_cache(maxsize=1)
def code_version() -> str:
    """Package version plus the git commit when running from a checkout."""
    import vida

    version = vida.__version__
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,
            cwd=Path(vida.__file__).parent,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"{version}+{commit}" if commit else version


def new_run_id(kind: str) -> str:
    return f"{kind}-{utcnow():%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"


def start_run(catalog: Catalog, *, kind: str, params: dict[str, Any], arch: str | None = None,
              query: str | ClipQuery | None = None, feature_sets: list[str] | None = None,
              seed: int | None = None, experiment_id: str | None = None,
              run_id: str | None = None, sweep: bool = True) -> str:
    """A new run, ``running`` in this process; ``sweep``: first mark the runs whose
    process is gone abandoned (a driver opening many child runs did it once)."""
    run_id = run_id or new_run_id(kind)
    if sweep:
        mark_abandoned(catalog)
    with catalog.transaction() as session:
        session.add(Run(run_id=run_id, kind=kind, arch=arch, params=params,
                        query=None if query is None else str(query),
                        feature_sets=feature_sets or [], seed=seed, status="running",
                        code_version=code_version(), experiment_id=experiment_id,
                        host=socket.gethostname(), pid=os.getpid(), heartbeat_at=utcnow()))
    return run_id


def reopen_run(catalog: Catalog, run_id: str) -> None:
    """A run that did not finish (its process killed, or failed) taken up again by
    this process: running, here, now."""
    with catalog.transaction() as session:
        run = session.get(Run, run_id)
        run.status, run.error, run.finished_at = "running", None, None
        run.host, run.pid, run.heartbeat_at = socket.gethostname(), os.getpid(), utcnow()


# A run's process writes its heartbeat whenever it logs (at most every few seconds
# while training, at every commit while mapping).  A run not seen for this long, on
# a host where its pid cannot be checked, is taken for abandoned.
STALE_AFTER = timedelta(hours=2)


def gone_runs(catalog: Catalog) -> list[tuple[str, str, int | None, datetime]]:
    """Runs still marked running whose process is gone (same host: the pid is not
    alive; another host: not seen for ``STALE_AFTER``): (run id, host, pid, last
    seen).  Only reads."""
    here, now = socket.gethostname(), utcnow()
    with catalog.reading() as session:
        running = session.execute(select(Run.run_id, Run.host, Run.pid, Run.heartbeat_at,
                                         Run.started_at).where(Run.status == "running")).all()
    gone = []
    for run_id, host, pid, seen, started in running:
        seen = seen or started
        if host is None:  # made before runs recorded their process: cannot tell
            continue
        if (host == here and pid is not None and not process_alive(pid)) or (
                host != here and seen is not None and now - seen > STALE_AFTER):
            gone.append((run_id, host, pid, seen))
    return gone


def mark_abandoned(catalog: Catalog) -> list[str]:
    """The runs whose process is gone (``gone_runs``) become ``abandoned``, with when
    they were last seen; returns their ids.  Done where runs are opened."""
    gone = gone_runs(catalog)
    if gone:
        with catalog.transaction() as session:
            for run_id, host, pid, seen in gone:
                run = session.get(Run, run_id)
                run.status = "abandoned"
                run.error = (f"abandoned: process {pid} on {host} is gone; last seen "
                             f"{seen:%Y-%m-%d %H:%M:%S} UTC")
    return [g[0] for g in gone]


def unfinished_runs(catalog: Catalog) -> pd.DataFrame:
    """Runs running or abandoned, oldest first; a running one whose process is gone
    is shown abandoned (without writing: ``status`` only reads)."""
    gone = {g[0] for g in gone_runs(catalog)}
    with catalog.reading() as session:
        rows = session.execute(
            select(Run.run_id, Run.kind, Run.status, Run.host, Run.pid,
                   Run.heartbeat_at.label("last_seen"))
            .where(Run.status.in_(("running", "abandoned"))).order_by(Run.started_at)).all()
    frame = pd.DataFrame(rows, columns=["run_id", "kind", "status", "host", "pid",
                                        "last_seen"])
    frame.loc[frame["run_id"].isin(gone), "status"] = "abandoned"
    return frame


_ROWS_PER_INSERT = 500  # bound parameters per statement stay within any driver's limit


def log_metrics(catalog: Catalog, run_id: str, metrics: dict[str, float], *,
                split: str = "all", epoch: int | None = None) -> None:
    log_metric_rows(catalog, [(run_id, epoch, split, metrics)])


def replace_metrics(catalog: Catalog, run_id: str, prefix: str, metrics: dict[str, float],
                    *, split: str = "test") -> None:
    """Replace run ``run_id``'s final metrics named ``<prefix>...`` by ``metrics``, in one
    transaction (a table recomputed on a finished run: a report's ``--group-by``)."""
    with catalog.transaction() as session:
        session.execute(delete(RunMetric).where(
            RunMetric.run_id == run_id, RunMetric.epoch.is_(None),
            RunMetric.name.startswith(prefix, autoescape=True)))
        add_metric_rows(session, [(run_id, None, split, metrics)])


def log_metric_rows(catalog: Catalog,
                    rows: list[tuple[str, int | None, str, dict[str, float]]]) -> None:
    """Several (run_id, epoch, split, metrics) in one transaction: a commit costs tens
    of milliseconds, a training loop logs every epoch."""
    if not rows:
        return
    with catalog.transaction() as session:
        add_metric_rows(session, rows)


def add_metric_rows(session: Session,
                    rows: list[tuple[str, int | None, str, dict[str, float]]]) -> None:
    """:func:`log_metric_rows` inside a transaction the caller holds: multi-row
    INSERTs (an executemany runs row by row on DuckDB), ids from the sequence."""
    values = [{"run_id": run_id, "epoch": epoch, "split": split, "name": name,
               "value": float(value)}
              for run_id, epoch, split, metrics in rows for name, value in metrics.items()]
    for start in range(0, len(values), _ROWS_PER_INSERT):
        session.execute(insert(RunMetric).values(values[start:start + _ROWS_PER_INSERT]))
    _beat(session, {r[0] for r in rows})


def epoch_rows(run_id: str, epochs: list[tuple[int, dict[str, float], dict[str, float]]]
               ) -> list[tuple[str, int | None, str, dict[str, float]]]:
    """A training's (epoch, train metrics, val metrics) as metric rows."""
    return [row for epoch, train, val in epochs
            for row in ((run_id, epoch, "train", train), (run_id, epoch, "val", val))]


def log_epochs(catalog: Catalog, run_id: str,
               epochs: list[tuple[int, dict[str, float], dict[str, float]]]) -> None:
    """A training's epochs, in one transaction."""
    log_metric_rows(catalog, epoch_rows(run_id, epochs))


def heartbeat(catalog: Catalog, run_id: str) -> None:
    """The run's process is alive (for jobs that commit without logging metrics)."""
    with catalog.transaction() as session:
        _beat(session, {run_id})


def _beat(session: Session, run_ids: set[str]) -> None:
    session.execute(update(Run).where(Run.run_id.in_(run_ids), Run.status == "running")
                    .values(heartbeat_at=utcnow()))


@contextmanager
def failed_on_error(catalog: Catalog, run_id: str) -> Iterator[None]:
    """Mark the run failed, with the error, if the block raises (then re-raise)."""
    try:
        yield
    except BaseException as exc:
        finish_run(catalog, run_id, status="failed", error=f"{type(exc).__name__}: {exc}")
        raise


def finish_run(catalog: Catalog, run_id: str, *, status: str = "finished",
               error: str | None = None, checkpoint: str | None = None,
               metrics: dict[str, float] | None = None) -> None:
    if metrics:
        log_metrics(catalog, run_id, metrics)
    with catalog.transaction() as session:
        close_run(session, run_id, status=status, error=error, checkpoint=checkpoint)


def close_run(session: Session, run_id: str, *, status: str = "finished",
              error: str | None = None, checkpoint: str | None = None) -> None:
    """:func:`finish_run` inside a transaction the caller holds (a training's results
    and its end then commit together: a run is finished exactly when they are in)."""
    run = session.get(Run, run_id)
    run.status = status
    run.finished_at = utcnow()
    run.error = error
    if checkpoint is not None:
        run.checkpoint = checkpoint


def earlier_params(catalog: Catalog, kind: str, key: str, value: Any) -> dict[str, Any] | None:
    """The params of the latest run of ``kind`` whose params[``key``] is ``value``
    (any status: a killed run's rows are kept too), or None."""
    for _, params in runs_with_params(catalog, kind=kind, statuses=None, newest_first=True):
        if params.get(key) == value:
            return params
    return None


@dataclass(frozen=True)
class RunRow:
    """What a job reads back of a run: what it was, its params, its query and where
    its checkpoint is."""

    run_id: str
    kind: str
    arch: str | None
    status: str
    params: dict[str, Any]
    query: str | None
    checkpoint: str | None


def run_row(catalog: Catalog, run_id: str) -> RunRow | None:
    """Run ``run_id``, or None when the catalog has no such run."""
    with catalog.reading() as session:
        run = session.get(Run, run_id)
        if run is None:
            return None
        return RunRow(run.run_id, run.kind, run.arch, run.status, json_column(run.params),
                      run.query, run.checkpoint)


def runs_with_params(catalog: Catalog, *, kind: str | None = None,
                     arch: str | None = None,
                     statuses: tuple[str, ...] | None = ("finished",),
                     experiment_id: str | None = None, newest_first: bool = False
                     ) -> list[tuple[str, dict[str, Any]]]:
    """(run id, params) of the runs that match (``statuses`` None: any), by start
    time."""
    stmt = select(Run.run_id, Run.params)
    if statuses is not None:
        stmt = stmt.where(Run.status.in_(statuses))
    if kind is not None:
        stmt = stmt.where(Run.kind == kind)
    if arch is not None:
        stmt = stmt.where(Run.arch == arch)
    if experiment_id is not None:
        stmt = stmt.where(Run.experiment_id == experiment_id)
    order = Run.started_at.desc() if newest_first else Run.started_at
    with catalog.reading() as session:
        rows = session.execute(stmt.order_by(order)).all()
    return [(run_id, json_column(params)) for run_id, params in rows]


def summary_metrics(catalog: Catalog, run_id: str) -> dict[str, float]:
    """A run's test metrics (split ``test``, no epoch) by name."""
    stmt = select(RunMetric.name, RunMetric.value).where(
        RunMetric.run_id == run_id, RunMetric.split == "test", RunMetric.epoch.is_(None))
    with catalog.reading() as session:
        return {name: value for name, value in session.execute(stmt).all()}
