"""Ratings commands: per-clip ratings from a dataset's files (AVMIT's), beside the clips."""

from __future__ import annotations

from pathlib import Path

import click

from vida import views
from vida.cli.common import Context, echo_lines, friendly_errors


@click.group(name="ratings")
def ratings_group() -> None:
    """Per-clip ratings (AVMIT's: is the labelled action heard and seen?)."""


@ratings_group.command(name="import")
@click.argument("files", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--source", default="avmit", show_default=True,
              help="Name of the ratings in clip_ratings.source.")
@click.option("--audible-threshold", type=int, default=2, show_default=True,
              help="A clip is audible when at least this many of its 3 raters scored it "
                   "2 or 3 (the labelled action is there as an audiovisual event).")
@click.pass_obj
@friendly_errors
def import_command(obj: Context, files: tuple[Path, ...], source: str,
                   audible_threshold: int) -> None:
    """Import AVMIT's video_ratings.csv and/or test_set.csv into clip_ratings.

    Columns are read by their header names. Rows whose clip is not in the catalog are
    counted and reported, never an error."""
    from vida.jobs.data.ratings import import_ratings

    for path in files:
        report = import_ratings(obj.catalog(), path, source=source,
                                threshold=audible_threshold)
        echo_lines(views.ratings_lines(report))


COMMANDS = [ratings_group]
