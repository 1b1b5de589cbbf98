"""``vida-batch``: the command-line face of VIDA.

Thin by design: each command parses its options, calls one library function
(almost always a job in :mod:`vida.jobs`) and prints.  One module per command
group; what they share (context, one-line errors, printers) is in
:mod:`vida.cli.common`.
"""

from __future__ import annotations

import click

from vida.cli import cafmap, catalog, data, learning, media, semantics
from vida.cli.common import Context


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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
def main(ctx: click.Context, catalog: str | None, store: str | None, executor: str) -> None:
    """VIDA: generate audio features from video for action recognition.

    Media goes in with `ingest`; features live in the HDF5 store, indexed by the SQL
    catalog; jobs pick their clips with read-only SQL (`--query`); every run and
    result lands in the catalog, queryable with `sql`.
    """
    from vida.jobs.executor import set_executor

    try:
        set_executor(executor)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--executor") from None
    ctx.obj = Context(catalog, store, executor)


for _group in (catalog, media, semantics, cafmap, learning, data):
    for _command in _group.COMMANDS:
        main.add_command(_command)

__all__ = ["main"]
