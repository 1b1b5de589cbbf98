"""Data commands: synth (a synthetic dataset) and demo (the whole method on it)."""

from __future__ import annotations

from pathlib import Path

import click

from vida import views
from vida.cli.common import Context, echo_lines, friendly_errors
from vida.jobs.experiments.spec import ExperimentSpec


@click.command()
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option("--classes", "n_classes", default=6, show_default=True,
              help="Number of action classes (2-9).")
@click.option("--clips-per-class", default=30, show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.pass_obj
@friendly_errors
def synth(obj: Context, out: Path, n_classes: int, clips_per_class: int, seed: int) -> None:
    """Write a synthetic audio-visual action dataset to OUT (MiT layout).

    Clips come with reference AudioSet tags (ast_tags.json) and per-frame captions
    (captions/*.json) standing in for AST and BLIP, so the whole method runs offline.
    """
    from vida.jobs.core.executor import ordered_mapper
    from vida.synth import synthesize

    with ordered_mapper() as mapper:  # the same clips on any number of cores
        result = synthesize(out, n_classes, clips_per_class, seed, progress=True,
                            mapper=mapper)
    echo_lines(views.synth_lines(result, out))


@click.command()
@click.option("--workdir", default="vida-demo", show_default=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Everything goes here: data/, catalog.db, store/, runs/.")
@click.option("--classes", default=6, show_default=True)
@click.option("--clips-per-class", default=50, show_default=True)
@click.option("--seeds", default=ExperimentSpec.default("seeds"), show_default=True)
@click.option("--epochs", default=ExperimentSpec.default("epochs"), show_default=True)
@click.option("--generator-epochs", default=ExperimentSpec.default("generator_epochs"),
              show_default=True)
@click.option("--workers", type=int, default=None, help="Ingest processes [all cores].")
@click.option("--labels-per-class", default=None,
              help="Label counts of the label-efficiency curves ('' to skip) [SVDMap: "
                   "2,all; CAFMap: 2,5,all].")
@click.option("--train-missing", default=None, metavar="RATE,RATE,...",
              help="CAFMap's missing-rate grid: these shares of train clips without audio "
                   "('' to skip) [the demo's grid].")
@click.pass_obj
@friendly_errors
def demo(obj: Context, workdir: Path, classes: int, clips_per_class: int, seeds: int,
         epochs: int, generator_epochs: int, workers: int | None,
         labels_per_class: str | None, train_missing: str | None) -> None:
    """Run the whole method offline on a synthetic dataset (a few minutes)."""
    from vida.jobs.core import preload
    from vida.jobs.core.executor import start_workers_early

    start_workers_early(obj.executor, workers, preload.DEMO)
    from vida.jobs.demo import DemoOptions, run_demo

    grid = {} if train_missing is None else {"train_missing": train_missing or None}
    options = DemoOptions(classes=classes, clips_per_class=clips_per_class, seeds=seeds,
                          epochs=epochs, generator_epochs=generator_epochs, workers=workers,
                          labels_per_class=labels_per_class, **grid)
    result = run_demo(workdir, options, log=click.echo)
    echo_lines(views.demo_lines(result, workdir))


COMMANDS = [synth, demo]
