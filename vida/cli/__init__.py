"""``vida-batch``: the command-line face of VIDA.

Thin by design: each command parses its options, calls one library function
(almost always a job in :mod:`vida.jobs`) and prints what :mod:`vida.views` makes of
the result.  One module per command group; what they share (context, one-line
errors) is in :mod:`vida.cli.common`.

Commands load lazily (click's documented ``LazyGroup`` pattern): a command imports
only what it uses, and so does every worker process a local pool starts, since a
worker runs the ``vida-batch`` script's imports again as it starts (``multiprocessing``
prepares its ``__main__``, and importing every command module would load pandas,
SQLAlchemy, DuckDB and Alembic into each worker).
"""

from __future__ import annotations

import atexit
import gc
import importlib

import click

# command name -> module:attribute; tests/test_cli.py checks it against the modules'
# COMMANDS lists, so that a new command cannot be left out
LAZY_COMMANDS = {
    "init": "vida.cli.catalog:init",
    "upgrade": "vida.cli.catalog:upgrade",
    "sql": "vida.cli.catalog:sql",
    "status": "vida.cli.catalog:status",
    "fsck": "vida.cli.catalog:fsck_command",
    "split": "vida.cli.catalog:split",
    "catalog": "vida.cli.catalog:catalog_group",
    "ingest": "vida.cli.media:ingest",
    "ratings": "vida.cli.ratings:ratings_group",
    "encode": "vida.cli.media:encode",
    "tag": "vida.cli.semantics:tag",
    "dictionary": "vida.cli.semantics:dictionary",
    "filter": "vida.cli.semantics:filter_command",
    "frames": "vida.cli.cafmap:frames",
    "caption": "vida.cli.cafmap:caption",
    "prototypes": "vida.cli.cafmap:prototypes",
    "condition": "vida.cli.cafmap:condition",
    "train": "vida.cli.learning:train",
    "generate": "vida.cli.learning:generate",
    "experiment": "vida.cli.experiments:experiment",
    "report": "vida.cli.experiments:report",
    "synth": "vida.cli.data:synth",
    "demo": "vida.cli.data:demo",
}


class LazyGroup(click.Group):
    """A group whose commands are imported when they are run (or listed by --help)."""

    def __init__(self, *args: object, lazy: dict[str, str], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.lazy:
            module, attribute = self.lazy[name].split(":")
            return getattr(importlib.import_module(module), attribute)
        return super().get_command(ctx, name)


def skip_final_collection() -> None:
    """Freeze the heap as the command exits, so the interpreter's last garbage
    collections do not walk the 1,000-odd modules a job imports (pandas, SQLAlchemy,
    DuckDB, PyAV).  Nothing is skipped that a command
    needs: each job closes its catalog and shards itself, atexit handlers still
    run, and objects still die by reference counting."""
    atexit.unregister(gc.freeze)  # once, however often ``main`` runs in a process
    atexit.register(gc.freeze)


@click.group(cls=LazyGroup, lazy=LAZY_COMMANDS,
             context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--catalog",
    envvar="VIDA_CATALOG",
    default=None,
    metavar="PATH_OR_URL",
    help="Catalog: a DuckDB file or any SQLAlchemy URL [env VIDA_CATALOG; default ./catalog.db].",
)
@click.option(
    "--store",
    envvar="VIDA_STORE",
    default=None,
    metavar="DIR",
    help="Feature store root folder [env VIDA_STORE; default ./store].",
)
@click.option(
    "--media-root",
    envvar="VIDA_MEDIA_ROOT",
    default=None,
    metavar="DIR",
    help="Where the catalog's media is on this machine, if not where ingest recorded it "
         "(the same data mounted elsewhere) [env VIDA_MEDIA_ROOT].",
)
@click.option(
    "--executor",
    envvar="VIDA_EXECUTOR",
    default="local",
    show_default=True,
    metavar="WHERE",
    help="Where jobs map work over clips: local (processes on this machine), "
         "dask://HOST:PORT (a running Dask scheduler) or dask-local:N [env VIDA_EXECUTOR].",
)
@click.version_option(package_name="vida")
@click.pass_context
def main(ctx: click.Context, catalog: str | None, store: str | None, media_root: str | None,
         executor: str) -> None:
    """VIDA: generate audio features from video for action recognition.

    Media goes in with `ingest`; features live in the HDF5 store, indexed by the SQL
    catalog; jobs pick their clips with read-only SQL (`--query`); every run and
    result lands in the catalog, queryable with `sql`.
    """
    from vida.cli.common import Context
    from vida.jobs.core.executor import set_executor

    skip_final_collection()
    try:
        set_executor(executor)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--executor") from None
    ctx.obj = Context(catalog, store, executor, media_root)


__all__ = ["main"]
