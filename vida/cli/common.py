"""What every ``vida-batch`` command shares: the lazily opened catalog and store, the
one-line error for expected failures, and the printers for tables and experiments."""

from __future__ import annotations

import functools
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from vida.errors import BUG_LINE, VidaError
from vida.store.errors import disk_full, is_disk_full

if TYPE_CHECKING:  # imported where used: a command that starts workers first (ingest)
    # starts them before the catalog's imports
    import pandas as pd

    from vida.catalog.database import Catalog
    from vida.store import FeatureStore

QUERY_HELP = "Read-only SELECT returning clip_key, class_name, split [default: all split clips]."


class Context:
    """Lazily opened catalog and store for one invocation."""

    def __init__(self, catalog_url: str | None, store_root: str | None,
                 executor: str = "local", media_root: str | None = None) -> None:
        self.catalog_url = catalog_url
        self.media_root = media_root
        self.store_root = store_root
        self.executor = executor  # where jobs map work (see vida.jobs.core.executor)
        self._catalog: Catalog | None = None

    def catalog(self, *, check: bool = True, create: bool = True) -> Catalog:
        """The catalog; ``create=False`` for commands that only read (a missing one is
        a one-line error, never created)."""
        if self._catalog is None:
            from vida.catalog import open_catalog

            self._catalog = open_catalog(self.catalog_url, check=check,
                                         media_root=self.media_root, create=create)
        return self._catalog

    def store(self, *, create: bool = True) -> FeatureStore:
        from vida.store import FeatureStore

        return FeatureStore(self.catalog(create=create), self.store_root, create=create)


def _close_progress_bars() -> None:
    """End the line of a bar a failing job left open, so that its one-line error
    starts a line of its own."""
    if "tqdm" in sys.modules:
        for bar in list(getattr(sys.modules["tqdm"].tqdm, "_instances", ())):
            bar.close()


def friendly_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """VIDA's own errors (:class:`~vida.errors.VidaError`: the user's to act on) and a
    full disk as one-line messages (exit 1); anything else is a bug in VIDA: its
    traceback, then a line that says so and how to report it (exit 1)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:
            _close_progress_bars()
            if isinstance(exc, VidaError):
                raise click.ClickException(str(exc)) from None
            if is_disk_full(exc):  # a full disk under any job: one line, no traceback
                raise click.ClickException(_full_disk_line(exc)) from None
            traceback.print_exc()
            click.echo(BUG_LINE, err=True)
            raise SystemExit(1) from None

    return wrapper


def _full_disk_line(exc: BaseException) -> str:
    """The one line for a full disk: the path and the space left there, if known."""
    where = getattr(exc, "filename", None)
    if where:
        return str(disk_full(Path(where)))
    return (f"no space left on a disk VIDA writes to ({exc}); free some space, then run "
            "the same command again")


def echo_table(frame: pd.DataFrame, fmt: str = "table") -> None:
    """Print a DataFrame as an aligned table, CSV or JSON."""
    from vida.views import format_frame  # pandas: only for commands that print tables

    click.echo(format_frame(frame, fmt), nl=fmt != "csv")


def echo_lines(lines: list[str], err: bool = False) -> None:
    """Print a view's lines (:mod:`vida.views`)."""
    for line in lines:
        click.echo(line, err=err)


def print_experiment(result: Any, catalog: Any = None, group_by: str | None = None) -> None:
    """An experiment's tables, in the layout the report shows too; with ``group_by``,
    its main table by those groups (computed from the catalog and recorded)."""
    from vida import views

    echo_lines(views.experiment_lines(result))
    if result is not None and group_by is not None:
        from vida.jobs.experiments.groups import record_groups

        groups = record_groups(catalog, result.experiment_id, group_by, result.csv.parent)
        echo_lines(views.group_lines(groups))


def experiment_running(obj: Context, options: dict[str, Any], spec_type: type
                       ) -> tuple[Any, Any]:
    """The experiment's spec (of ``spec_type``, checked before anything starts) and how
    it runs (``ExperimentOptions``), both from the command's ``options``; then starts
    the workers' server (call it before importing the experiment)."""
    from vida.jobs.core import preload
    from vida.jobs.core.executor import start_workers_early
    from vida.jobs.experiments.spec import ExperimentOptions

    running = {k: options.pop(k) for k in ("workers", "dry_run", "no_progress", "device",
                                           "memory_budget", "group_by")}
    spec = spec_type(**options)
    if running["group_by"] is not None:  # a bad query is refused before any training
        from vida.jobs.experiments.groups import clip_groups

        clip_groups(obj.catalog(), running["group_by"])
    if not running["dry_run"]:
        start_workers_early(obj.executor, running["workers"], preload.TRAINING)
    return spec, ExperimentOptions(workers=running["workers"], dry_run=running["dry_run"],
                                   progress=not running["no_progress"],
                                   device=running["device"],
                                   memory_budget=running["memory_budget"],
                                   group_by=running["group_by"])


def exit_for_failures(done: int, failed: int, commonest: str, what: str = "clips",
                      strict: bool = False) -> None:
    """Exit non-zero when every item failed (or, with ``--strict``, any did), with one
    line naming the commonest cause; a partial failure is counted in the summary."""
    if failed and (done == 0 or strict):
        share = "every one" if done == 0 else f"{failed} (--strict)"
        hint = ("; if the media moved, run `vida-batch catalog relocate OLD NEW` or pass "
                "--media-root" if commonest.startswith("missing") else "")
        raise click.ClickException(f"{share} of {done + failed} {what} failed; commonest "
                                   f"cause: {commonest}{hint}")


def strict_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--strict", is_flag=True,
                        help="Exit non-zero if any clip fails (default: only if all do).")(fn)


def runs_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--runs``: where checkpoints go (shared by training and experiments)."""
    return click.option("--runs", default=None, envvar="VIDA_RUNS",
                        help="Checkpoint root [./runs].")(fn)
