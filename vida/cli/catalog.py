"""Catalog commands: init, upgrade, sql, status, fsck, split, catalog copy and relocate."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from vida import views
from vida.cli.common import Context, echo_lines, echo_table, friendly_errors


@click.command()
@click.pass_obj
@friendly_errors
def init(obj: Context) -> None:
    """Create the catalog (schema at the latest revision) and the store folder."""
    catalog = obj.catalog()
    echo_lines(views.catalog_lines(catalog.url, catalog.revision(), obj.store().root))


@click.command()
@click.pass_obj
@friendly_errors
def upgrade(obj: Context) -> None:
    """Apply pending catalog migrations (run it when a catalog says it is behind)."""
    catalog = obj.catalog(check=False)
    applied = catalog.upgrade()
    click.echo(views.upgrade_line(applied, catalog.revision()))


@click.command()
@click.argument("query")
@click.option(
    "--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table",
    show_default=True,
)
@click.pass_obj
@friendly_errors
def sql(obj: Context, query: str, fmt: str) -> None:
    """Run one read-only SELECT over the catalog and print the rows."""
    echo_table(obj.catalog(create=False).sql(query), fmt)


@click.command()
@click.pass_obj
@friendly_errors
def status(obj: Context) -> None:
    """Clips per class, split and status; feature sets with their row counts."""
    from vida.jobs.data.catalog_tasks import catalog_status

    echo_lines(views.status_lines(catalog_status(obj.catalog(create=False))))


@click.command(name="fsck")
@click.option("--repair", is_flag=True,
              help="Remove orphan and partial shard files; quarantine damaged or missing "
                   "shards (their clips are recomputed by the next ingest/encode/generate).")
@click.option("--restore", "do_restore", is_flag=True,
              help="Put back every quarantined shard whose file is still there and intact, "
                   "with its catalog rows (undoes --repair, e.g. after a folder is mounted "
                   "again).")
@click.option("--compact", "do_compact", is_flag=True,
              help="Rewrite shards holding dead rows with their live rows (reclaims space).")
@click.option("--no-checksums", is_flag=True, help="Skip SHA-256 verification (faster).")
@click.option("--force", is_flag=True,
              help="Repair even when more than 10 %% of the shards (or 1,000 rows) would be "
                   "quarantined at once.")
@click.pass_obj
@friendly_errors
def fsck_command(obj: Context, repair: bool, do_restore: bool, do_compact: bool,
                 no_checksums: bool, force: bool) -> None:
    """Check the catalog against the store: missing, orphan, damaged shards; dead rows."""
    from vida.store.integrity import fsck, restore

    if do_restore:
        echo_lines(views.restore_lines(restore(obj.store(create=False))))
        return
    report = fsck(obj.store(create=repair or do_compact), repair=repair,
                  verify_checksums=not no_checksums, force=force, compact=do_compact)
    echo_lines(views.fsck_lines(report, compacting=do_compact))
    if not report.clean:
        sys.exit(1)


@click.command()
@click.option("--ratios", default="0.7,0.15,0.15", show_default=True,
              help="train,val,test fractions per class.")
@click.option("--seed", default=42, show_default=True)
@click.option("--from-source", is_flag=True,
              help="Use the split the clips came with (training/validation folders, a "
                   "dataset's split column or files); with --val-fraction, val is that "
                   "share of each class's train clips.")
@click.option("--mit", is_flag=True,
              help="MiT's protocol: its validation set is the test set (its test labels are "
                   "not public), val is --val-fraction of each class's training clips.")
@click.option("--avmit", is_flag=True,
              help="AVMIT's audiovisual test set (vida-batch ratings import test_set.csv) "
                   "is the test set; val is --val-fraction of each class's other clips.")
@click.option("--ratings-source", default="avmit", show_default=True,
              help="With --avmit: the ratings source whose test set to use.")
@click.option("--val-fraction", type=float, default=None,
              help="With --mit or --avmit [0.1], or --from-source.")
@click.pass_obj
@friendly_errors
def split(obj: Context, ratios: str, seed: int, from_source: bool, mit: bool, avmit: bool,
          ratings_source: str, val_fraction: float | None) -> None:
    """Assign train/val/test per class (deterministic for a seed; recorded as a run)."""
    from vida.jobs.data.split import assign_splits

    try:
        values = tuple(float(r) for r in ratios.split(","))
    except ValueError:
        raise click.BadParameter(f"{ratios!r}: give three numbers like 0.7,0.15,0.15") from None
    echo_table(assign_splits(obj.catalog(), ratios=values, seed=seed, from_source=from_source,
                             mit=mit, val_fraction=val_fraction,
                             avmit=ratings_source if avmit else None))


@click.group(name="catalog")
def catalog_group() -> None:
    """Whole-catalog operations."""


@catalog_group.command(name="copy")
@click.argument("source", metavar="SRC")
@click.argument("target", metavar="DST")
@friendly_errors
def copy_command(source: str, target: str) -> None:
    """Copy every row of catalog SRC into the new, empty catalog DST (a DuckDB file
    or a URL such as postgresql+psycopg://user@host/vida), e.g. to move from one
    machine's DuckDB file to a PostgreSQL catalog that a cluster shares."""
    from vida.catalog.copy import copy_catalog
    from vida.catalog.database import open_catalog

    src, dst = open_catalog(source), open_catalog(target, create=True)
    copied = copy_catalog(src, dst, log=click.echo)
    click.echo(views.copied_line(copied, dst.url))


@catalog_group.command(name="relocate")
@click.argument("old", metavar="OLD")
@click.argument("new", metavar="NEW", type=click.Path(exists=True, file_okay=False))
@click.pass_obj
@friendly_errors
def relocate_command(obj: Context, old: str, new: str) -> None:
    """The media moved from folder OLD to NEW: record it, without ingesting again.

    OLD is the catalog's media root (see `vida-batch sql "SELECT * FROM
    catalog_settings"`) or a folder above it; for a catalog made before media roots,
    the folder its ingest ran in."""
    from vida.jobs.data.catalog_tasks import relocate

    done = relocate(obj.catalog(create=False), old, new)
    click.echo(views.relocated_line(done, Path(new).resolve()))
    if (warning := views.relocate_warning(done)) is not None:
        click.echo(warning, err=True)


COMMANDS = [init, upgrade, sql, status, fsck_command, split, catalog_group]
