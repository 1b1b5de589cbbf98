"""Recording runs (after MLflow's tracking store): a row per run, metrics per epoch."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from vida.catalog.database import Catalog
from vida.catalog.schema import Run, RunMetric, utcnow


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
              query: str | None = None, feature_sets: list[str] | None = None,
              seed: int | None = None, experiment_id: str | None = None,
              run_id: str | None = None) -> str:
    run_id = run_id or new_run_id(kind)
    with catalog.transaction() as session:
        session.add(Run(run_id=run_id, kind=kind, arch=arch, params=params, query=query,
                        feature_sets=feature_sets or [], seed=seed, status="running",
                        code_version=code_version(), experiment_id=experiment_id))
    return run_id


def log_metrics(catalog: Catalog, run_id: str, metrics: dict[str, float], *,
                split: str = "all", epoch: int | None = None) -> None:
    log_metric_rows(catalog, [(run_id, epoch, split, metrics)])


def log_metric_rows(catalog: Catalog,
                    rows: list[tuple[str, int | None, str, dict[str, float]]]) -> None:
    """Several (run_id, epoch, split, metrics) in one transaction: a commit costs tens
    of milliseconds, a training loop logs every epoch."""
    if not rows:
        return
    with catalog.transaction() as session:
        session.add_all(
            RunMetric(run_id=run_id, epoch=epoch, split=split, name=name, value=float(value))
            for run_id, epoch, split, metrics in rows for name, value in metrics.items()
        )


@contextmanager
def failure_recorded(catalog: Catalog, run_id: str) -> Iterator[None]:
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
        run = session.get(Run, run_id)
        run.status = status
        run.finished_at = utcnow()
        run.error = error
        if checkpoint is not None:
            run.checkpoint = checkpoint
