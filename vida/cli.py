"""``vida-batch``: the command-line face of VIDA.  Thin: parsing and printing only."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from vida.catalog import CatalogError, ReadOnlyViolation, open_catalog
from vida.catalog.database import Catalog
from vida.media.sources import LAYOUTS
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


@main.command()
@click.argument("root", type=click.Path(exists=True, path_type=Path))
@click.option("--layout", type=click.Choice(LAYOUTS), default=None,
              help="Source layout (default: detected from ROOT).")
@click.option("--frames", "n_frames", default=18, show_default=True, help="Time steps T.")
@click.option("--fps", default=6.0, show_default=True, help="Sampling rate F of the grid.")
@click.option("--frame-size", default=128, show_default=True,
              help="Frames are resized to SIZE x SIZE before encoding.")
@click.option("--flow", "flow_method", type=click.Choice(["farneback", "dis"]),
              default="farneback", show_default=True)
@click.option("--silence-dbfs", default=-50.0, show_default=True,
              help="Audio below this RMS level is marked silent.")
@click.option("--strict", is_flag=True, help="Fail clips shorter than T/F s instead of padding.")
@click.option("--retry-failed", is_flag=True, help="Try clips that failed before again.")
@click.option("--workers", type=int, default=None, help="Processes [default: number of cores].")
@click.option("--rows-per-shard", default=128, show_default=True)
@click.option("--rgb-encoder", default="hog-color", show_default=True)
@click.option("--flow-encoder", default="flow-hist", show_default=True)
@click.option("--audio-encoder", default="ast-fbank", show_default=True)
@click.option("--name-suffix", default="", metavar="S",
              help="Feature sets become e.g. rgb/hog-color-S (for a second grid or size).")
@click.option("--no-progress", is_flag=True)
@click.pass_obj
@friendly_errors
def ingest(obj: Context, root: Path, layout: str | None, n_frames: int, fps: float,
           frame_size: int, flow_method: str, silence_dbfs: float, strict: bool,
           retry_failed: bool, workers: int | None, rows_per_shard: int, rgb_encoder: str,
           flow_encoder: str, audio_encoder: str, name_suffix: str, no_progress: bool) -> None:
    """Decode clips under ROOT into RGB, flow and audio features in the store.

    ROOT is a video tree (<split>/<class>/<clip>.mp4 or <class>/<clip>.mp4), a
    manifest CSV (path,class[,split]), the study's frame folders (RGB/, Audio/), or
    a folder of the study's .npy feature dicts. Rerunning skips clips already
    ingested with the same content; failures are recorded, never fatal.
    """
    from vida.jobs.ingest import IngestOptions
    from vida.jobs.ingest import ingest as run_ingest
    from vida.media.sources import detect_layout

    if (layout or detect_layout(root)) == "legacy":
        from vida.jobs.legacy_import import import_legacy

        report = import_legacy(obj.catalog(), obj.store(), root)
        for name, rows in report.imported.items():
            click.echo(f"imported {name}: {rows} clips")
        for reason in report.refused.values():
            click.echo(f"refused: {reason}", err=True)
        if report.refused:
            sys.exit(1)
        return
    options = IngestOptions(
        n_frames=n_frames, fps=fps, frame_size=frame_size, flow_method=flow_method,
        silence_dbfs=silence_dbfs, strict=strict, retry_failed=retry_failed,
        rgb_encoder=rgb_encoder, flow_encoder=flow_encoder, audio_encoder=audio_encoder,
        rows_per_shard=rows_per_shard, name_suffix=name_suffix,
    )
    summary = run_ingest(obj.catalog(), obj.store(), root, layout=layout, options=options,
                         workers=workers, progress=not no_progress)
    for line in summary.lines():
        click.echo(line)
    click.echo(f"run {summary.run_id}; see `vida-batch status`")


@main.command()
@click.option("--ratios", default="0.7,0.15,0.15", show_default=True,
              help="train,val,test fractions per class.")
@click.option("--seed", default=42, show_default=True)
@click.option("--from-source", is_flag=True,
              help="Use the training/validation folders the clips came from instead.")
@click.pass_obj
@friendly_errors
def split(obj: Context, ratios: str, seed: int, from_source: bool) -> None:
    """Assign train/val/test per class (deterministic for a seed; recorded as a run)."""
    from vida.jobs.split import assign_splits

    try:
        values = tuple(float(r) for r in ratios.split(","))
    except ValueError:
        raise click.BadParameter(f"{ratios!r}: give three numbers like 0.7,0.15,0.15") from None
    table = assign_splits(obj.catalog(), ratios=values, seed=seed, from_source=from_source)
    click.echo(format_frame(table, "table"))


@main.command()
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option("--classes", "n_classes", default=6, show_default=True,
              help="Number of action classes (2-8).")
@click.option("--clips-per-class", default=30, show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.pass_obj
@friendly_errors
def synth(obj: Context, out: Path, n_classes: int, clips_per_class: int, seed: int) -> None:
    """Write a synthetic audio-visual action dataset to OUT (MiT layout).

    Clips come with reference AudioSet tags (ast_tags.json) and per-frame captions
    (captions/*.json) standing in for AST and BLIP, so the whole method runs offline.
    """
    from vida.synth import synthesize

    result = synthesize(out, n_classes, clips_per_class, seed, progress=True)
    click.echo(f"{result.n_clips} clips of {len(result.classes)} classes in {out}")
    click.echo(f"tags     {result.tags_file}")
    click.echo(f"captions {result.captions_dir}")
    click.echo(f"next: vida-batch ingest {result.manifest}")


if __name__ == "__main__":
    main(prog_name="vida-batch")
