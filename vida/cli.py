"""``vida-batch``: the command-line face of VIDA.  Thin: parsing and printing only."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

import click

from vida.catalog import CatalogError, ReadOnlyViolation, open_catalog
from vida.catalog.database import Catalog
from vida.store import FeatureStore, fsck
from vida.views import format_frame, status_tables


class Context:
    """Lazily opened catalog and store for one invocation."""

    def __init__(self, catalog_url: str | None, store_root: str | None) -> None:
        self.catalog_url = catalog_url
        self.store_root = store_root
        self._catalog: Catalog | None = None

    def catalog(self, *, check: bool = True) -> Catalog:
        if self._catalog is None:
            self._catalog = open_catalog(self.catalog_url, check=check)
        return self._catalog

    def store(self) -> FeatureStore:
        return FeatureStore(self.catalog(), self.store_root)


def friendly_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn expected failures into one-line messages (exit 1), not tracebacks."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (CatalogError, ReadOnlyViolation, KeyError, ValueError, FileNotFoundError) as exc:
            message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
            raise click.ClickException(str(message)) from None

    return wrapper


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
@click.version_option(package_name="vida")
@click.pass_context
def main(ctx: click.Context, catalog: str | None, store: str | None) -> None:
    """VIDA: generate audio features from video for action recognition.

    Media goes in with `ingest`; features live in the HDF5 store, indexed by the SQL
    catalog; jobs pick their clips with read-only SQL (`--query`); every run and
    result lands in the catalog, queryable with `sql`.
    """
    ctx.obj = Context(catalog, store)


@main.command()
@click.pass_obj
@friendly_errors
def init(obj: Context) -> None:
    """Create the catalog (schema at the latest revision) and the store folder."""
    catalog = obj.catalog()
    store = obj.store()
    click.echo(f"catalog {catalog.url} at revision {catalog.revision()}")
    click.echo(f"store   {store.root}")


@main.command()
@click.pass_obj
@friendly_errors
def upgrade(obj: Context) -> None:
    """Apply pending catalog migrations (run it when a catalog says it is behind)."""
    catalog = obj.catalog(check=False)
    applied = catalog.upgrade()
    if applied:
        click.echo(f"applied {', '.join(applied)}; catalog at {catalog.revision()}")
    else:
        click.echo(f"catalog already at {catalog.revision()}")


@main.command()
@click.argument("query")
@click.option(
    "--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table",
    show_default=True,
)
@click.pass_obj
@friendly_errors
def sql(obj: Context, query: str, fmt: str) -> None:
    """Run one read-only SELECT over the catalog and print the rows."""
    click.echo(format_frame(obj.catalog().sql(query), fmt), nl=fmt != "csv")


@main.command()
@click.pass_obj
@friendly_errors
def status(obj: Context) -> None:
    """Clips per class, split and status; feature sets with their row counts."""
    clips, sets = status_tables(obj.catalog())
    click.echo("clips")
    click.echo(format_frame(clips, "table") if len(clips) else "  (none yet: run ingest)")
    click.echo("\nfeature sets")
    click.echo(format_frame(sets, "table") if len(sets) else "  (none yet)")


@main.command(name="fsck")
@click.option("--repair", is_flag=True, help="Remove orphan and partial shard files.")
@click.option("--no-checksums", is_flag=True, help="Skip SHA-256 verification (faster).")
@click.pass_obj
@friendly_errors
def fsck_command(obj: Context, repair: bool, no_checksums: bool) -> None:
    """Check the catalog against the store: missing, orphan, corrupt shards."""
    report = fsck(obj.store(), repair=repair, verify_checksums=not no_checksums)
    for path in report.repaired:
        click.echo(f"removed {path}")
    for problem in report.problems:
        click.echo(str(problem))
    click.echo(
        f"{report.shards_checked} shards checked, {len(report.problems)} problem(s)"
        + (f", {len(report.repaired)} file(s) removed" if report.repaired else "")
    )
    if not report.clean:
        sys.exit(1)


if __name__ == "__main__":
    main(prog_name="vida-batch")
