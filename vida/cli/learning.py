"""Learning commands: train generator/classifier, generate, experiment svdmap/cafmap."""

from __future__ import annotations

import click

from vida.cli.common import (
    DEFAULT_CLIPS,
    QUERY_HELP,
    Context,
    friendly_errors,
    print_experiment,
    runs_option,
)


@click.group()
def train() -> None:
    """Train generators and classifiers on the clips of a query."""


@train.command("generator")
@click.option("--arch", type=click.Choice(["svdmap", "cafmap"]), default="svdmap",
              show_default=True)
@click.option("--query", default=DEFAULT_CLIPS, help=QUERY_HELP)
@click.option("--rgb", default="rgb/hog-color", show_default=True)
@click.option("--flow", default="flow/flow-hist", show_default=True)
@click.option("--audio", default="audio/ast-fbank", show_default=True, help="Target set.")
@click.option("--condition", default=None, help="CAFMap condition set.")
@click.option("--epochs", default=10, show_default=True)
@click.option("--lr", type=float, default=None, help="[svdmap 1e-3, cafmap 1e-4]")
@click.option("--batch-size", type=int, default=None, help="[svdmap 4, cafmap 32]")
@click.option("--seed", default=0, show_default=True)
@runs_option
@click.pass_obj
@friendly_errors
def train_generator_command(obj: Context, arch: str, query: str, rgb: str, flow: str,
                            audio: str, condition: str | None, epochs: int, lr: float | None,
                            batch_size: int | None, seed: int, runs: str | None) -> None:
    """LSTM audio-feature generator; best epoch on val; checkpoint in runs/<run_id>/."""
    from vida.jobs.generator import GeneratorSpec, train_generator

    spec = GeneratorSpec(arch=arch, rgb=rgb, flow=flow, audio=audio, condition=condition,
                         epochs=epochs, lr=lr, batch_size=batch_size, seed=seed)
    run_id = train_generator(obj.catalog(), obj.store(), query, spec, runs=runs)
    click.echo(f"run {run_id}; next: vida-batch generate --run {run_id}")


@train.command("classifier")
@click.option("--arch", type=click.Choice(["lstm", "mlp"]), default="lstm", show_default=True)
@click.option("--audio", default="none", show_default=True,
              help="Audio feature set, or none for vision only.")
@click.option("--query", default=DEFAULT_CLIPS, help=QUERY_HELP)
@click.option("--rgb", default="rgb/hog-color", show_default=True)
@click.option("--flow", default="flow/flow-hist", show_default=True)
@click.option("--epochs", default=10, show_default=True)
@click.option("--lr", type=float, default=None, help="[lstm 1e-3, mlp 1e-4]")
@click.option("--batch-size", type=int, default=None, help="[lstm 16, mlp 32]")
@click.option("--seed", default=0, show_default=True)
@runs_option
@click.pass_obj
@friendly_errors
def train_classifier_command(obj: Context, arch: str, audio: str, query: str, rgb: str,
                             flow: str, epochs: int, lr: float | None, batch_size: int | None,
                             seed: int, runs: str | None) -> None:
    """Action classifier: train on train, select on val, evaluate on test."""
    from vida.jobs.classifier import ClassifierSpec, train_classifier

    spec = ClassifierSpec(arch=arch, rgb=rgb, flow=flow,
                          audio=None if audio == "none" else audio, epochs=epochs, lr=lr,
                          batch_size=batch_size, seed=seed)
    run_id, metrics = train_classifier(obj.catalog(), obj.store(), query, spec, runs=runs)
    click.echo(f"run {run_id}: test top-1 {metrics['top1']:.3f}, top-5 {metrics['top5']:.3f}, "
               f"macro-F1 {metrics['macro_f1']:.3f}")


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
    from vida.jobs.generator import cross_fit_generate
    from vida.jobs.generator import generate as run_generate

    name = (cross_fit_generate(obj.catalog(), obj.store(), run_id, cross_fit, query, runs=runs)
            if cross_fit else run_generate(obj.catalog(), obj.store(), run_id, query))
    click.echo(f"wrote {len(obj.store().keys(name))} clips to {name}")


@click.group()
def experiment() -> None:
    """The method's comparison tables: several seeds, the same test clips."""


def generation_options(fn):
    """Which clips the generators learn from, how they make the generated audio of the
    classifier's train clips, and how many labels the classifiers get."""
    fn = click.option("--generator-query", default=None,
                      help="Clips the generators learn from (any clips with audio and a "
                           "train/val split; labels unused) [default: --query].")(fn)
    fn = click.option("--labels-per-class", default=None, metavar="N,N,...",
                      help="Also train the classifiers on N labelled clips per class, e.g. "
                           "2,5,10,all: accuracy vs labels (table + PNG).")(fn)
    fn = click.option("--generator-lr", type=float, default=None,
                      help="Generator Adam learning rate [default: the study's, per arch].")(fn)
    fn = click.option("--generator-batch-size", type=int, default=None,
                      help="Generator batch size [default: the study's, per arch].")(fn)
    fn = click.option("--in-sample-ablation", is_flag=True,
                      help="Also the in-sample generated variant, to see what cross-fitting "
                           "changes.")(fn)
    return click.option("--cross-fit", "cross_fit", default=3, show_default=True, metavar="K",
                        help="Generated audio of train clips from generators that never saw "
                             "them (K folds); 0: in-sample.")(fn)


@experiment.command("svdmap")
@click.option("--query", default=DEFAULT_CLIPS, help=QUERY_HELP)
@click.option("--seeds", default=3, show_default=True)
@click.option("--tags", "tag_source", required=True)
@click.option("--dictionary", "dictionary_name", required=True)
@click.option("--min-iou", default=0.2, show_default=True)
@click.option("--arch", type=click.Choice(["lstm", "mlp"]), default="lstm", show_default=True)
@click.option("--epochs", default=10, show_default=True, help="Classifier epochs.")
@click.option("--generator-epochs", default=10, show_default=True)
@click.option("--study-class-filter", is_flag=True,
              help="Also run the study's class-level variant (top classes only), apart.")
@click.option("--top-classes", default=5, show_default=True)
@generation_options
@runs_option
@click.pass_obj
@friendly_errors
def experiment_svdmap(obj: Context, query: str, seeds: int, tag_source: str,
                      dictionary_name: str, min_iou: float, arch: str, epochs: int,
                      generator_epochs: int, study_class_filter: bool, top_classes: int,
                      cross_fit: int, in_sample_ablation: bool, generator_query: str | None,
                      labels_per_class: str | None, generator_lr: float | None,
                      generator_batch_size: int | None, runs: str | None) -> None:
    """Vision only / + real / + generated / + filtered generated audio."""
    from vida.jobs.experiment import svdmap_experiment

    result = svdmap_experiment(
        obj.catalog(), obj.store(), query=query, seeds=seeds, tags=tag_source,
        dictionary=dictionary_name, min_iou=min_iou, arch=arch, epochs=epochs,
        generator_epochs=generator_epochs, study_variant=study_class_filter,
        top_classes=top_classes, cross_fit=cross_fit, in_sample_ablation=in_sample_ablation,
        generator_query=generator_query, labels_per_class=labels_per_class,
        generator_lr=generator_lr, generator_batch_size=generator_batch_size, runs=runs,
        log=click.echo)
    print_experiment(result)


@experiment.command("cafmap")
@click.option("--condition", "condition_set", required=True)
@click.option("--query", default=DEFAULT_CLIPS, help=QUERY_HELP)
@click.option("--seeds", default=3, show_default=True)
@click.option("--arch", type=click.Choice(["mlp", "lstm"]), default="mlp", show_default=True)
@click.option("--epochs", default=10, show_default=True, help="Classifier epochs.")
@click.option("--generator-epochs", default=10, show_default=True)
@generation_options
@runs_option
@click.pass_obj
@friendly_errors
def experiment_cafmap(obj: Context, condition_set: str, query: str, seeds: int, arch: str,
                      epochs: int, generator_epochs: int, cross_fit: int,
                      in_sample_ablation: bool, generator_query: str | None,
                      labels_per_class: str | None, generator_lr: float | None,
                      generator_batch_size: int | None, runs: str | None) -> None:
    """Vision only / + real audio / + audio generated from caption conditions."""
    from vida.jobs.experiment import cafmap_experiment

    result = cafmap_experiment(obj.catalog(), obj.store(), condition=condition_set, query=query,
                               seeds=seeds, arch=arch, epochs=epochs,
                               generator_epochs=generator_epochs, cross_fit=cross_fit,
                               in_sample_ablation=in_sample_ablation,
                               generator_query=generator_query,
                               labels_per_class=labels_per_class, generator_lr=generator_lr,
                               generator_batch_size=generator_batch_size, runs=runs,
                               log=click.echo)
    print_experiment(result)


COMMANDS = [train, generate, experiment]
