"""Learning commands: train generator/classifier, generate."""

from __future__ import annotations

import click

from vida import views
from vida.cli.common import (
    QUERY_HELP,
    Context,
    friendly_errors,
    runs_option,
)
from vida.cli.options import device_option, memory_budget_option
from vida.keys import SPLIT_CLIPS


@click.group()
def train() -> None:
    """Train generators and classifiers on the clips of a query."""


@train.command("generator")
@click.option("--arch", type=click.Choice(["svdmap", "cafmap"]), default="svdmap",
              show_default=True)
@click.option("--query", default=SPLIT_CLIPS, help=QUERY_HELP)
@click.option("--rgb", default="rgb/hog-color", show_default=True)
@click.option("--flow", default="flow/flow-hist", show_default=True)
@click.option("--audio", default="audio/ast-fbank", show_default=True, help="Target set.")
@click.option("--condition", default=None, help="CAFMap condition set.")
@click.option("--epochs", default=10, show_default=True)
@click.option("--lr", type=float, default=None, help="[svdmap 1e-3, cafmap 1e-4]")
@click.option("--batch-size", type=int, default=None, help="[svdmap 4, cafmap 32]")
@click.option("--seed", default=0, show_default=True)
@runs_option
@memory_budget_option
@device_option
@click.pass_obj
@friendly_errors
def train_generator_command(obj: Context, arch: str, query: str, rgb: str, flow: str,
                            audio: str, condition: str | None, epochs: int, lr: float | None,
                            batch_size: int | None, seed: int, runs: str | None,
                            memory_budget: int | None, device: str) -> None:
    """LSTM audio-feature generator; best epoch on val; checkpoint in runs/<run_id>/."""
    from vida.jobs.training.generator import GeneratorSpec, train_generator

    spec = GeneratorSpec(arch=arch, rgb=rgb, flow=flow, audio=audio, condition=condition,
                         epochs=epochs, lr=lr, batch_size=batch_size, seed=seed)
    run_id = train_generator(obj.catalog(), obj.store(), query, spec, runs=runs,
                             memory_budget=memory_budget, device=device)
    click.echo(views.generator_trained_line(run_id))


@train.command("classifier")
@click.option("--arch", type=click.Choice(["lstm", "mlp"]), default="lstm", show_default=True)
@click.option("--audio", default="none", show_default=True,
              help="Audio feature set, or none for vision only.")
@click.option("--query", default=SPLIT_CLIPS, help=QUERY_HELP)
@click.option("--rgb", default="rgb/hog-color", show_default=True)
@click.option("--flow", default="flow/flow-hist", show_default=True)
@click.option("--epochs", default=10, show_default=True)
@click.option("--lr", type=float, default=None, help="[lstm 1e-3, mlp 1e-4]")
@click.option("--batch-size", type=int, default=None, help="[lstm 16, mlp 32]")
@click.option("--seed", default=0, show_default=True)
@runs_option
@memory_budget_option
@device_option
@click.pass_obj
@friendly_errors
def train_classifier_command(obj: Context, arch: str, audio: str, query: str, rgb: str,
                             flow: str, epochs: int, lr: float | None, batch_size: int | None,
                             seed: int, runs: str | None, memory_budget: int | None,
                             device: str) -> None:
    """Action classifier: train on train, select on val, evaluate on test."""
    from vida.jobs.training.classifier import ClassifierSpec, train_classifier

    spec = ClassifierSpec(arch=arch, rgb=rgb, flow=flow,
                          audio=None if audio == "none" else audio, epochs=epochs, lr=lr,
                          batch_size=batch_size, seed=seed)
    run_id, metrics = train_classifier(obj.catalog(), obj.store(), query, spec, runs=runs,
                                       memory_budget=memory_budget, device=device)
    click.echo(views.classifier_trained_line(run_id, metrics))


@click.command()
@click.option("--run", "run_id", required=True, help="A finished generator run.")
@click.option("--query", default=None, help="Clips to generate for [default: all with inputs].")
@click.option("--cross-fit", "cross_fit", type=int, default=0, metavar="K",
              help="Train clips get the output of a generator trained on the other K-1 folds "
                   "(set generated/<run>-xfK); 0: the run's own generator for every clip.")
@runs_option
@click.pass_obj
@friendly_errors
def generate(obj: Context, run_id: str, query: str | None, cross_fit: int,
             runs: str | None) -> None:
    """Write a generator run's audio features as the feature set generated/<run>."""
    from vida.jobs.training.generated import cross_fit_generate
    from vida.jobs.training.generated import generate as run_generate

    name = (cross_fit_generate(obj.catalog(), obj.store(), run_id, cross_fit, query, runs=runs)
            if cross_fit else run_generate(obj.catalog(), obj.store(), run_id, query))
    click.echo(views.wrote_line(len(obj.store().keys(name)), name))


COMMANDS = [train, generate]
