"""Experiment commands: experiment svdmap / cafmap (from flags or a TOML file), rerun.

Each option's name is the experiment function's argument, so a command passes what
it parsed straight through, and the run records it whole (``experiment rerun``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from vida import views
from vida.cli.common import (
    QUERY_HELP,
    Context,
    experiment_running,
    friendly_errors,
    print_experiment,
)
from vida.cli.common import runs_option as _runs_option
from vida.cli.options import memory_budget_option
from vida.jobs.experiments.spec import (
    ARCHS,
    VARIANT_IDS,
    CAFMapSpec,
    ExperimentSpec,
    SVDMapSpec,
)

SPEC = ExperimentSpec  # the options both experiments take, with their defaults


@click.group()
def experiment() -> None:
    """The method's comparison tables: several seeds, the same test clips."""


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise click.BadParameter(f"{path}: {exc.strerror}", param_hint="--config") from None
    except tomllib.TOMLDecodeError as exc:
        raise click.BadParameter(f"{path}: not TOML ({exc})", param_hint="--config") from None


def _load_config(ctx: click.Context, param: click.Parameter, value: Path | None) -> None:
    """Options from a TOML file become the command's defaults: flags still override."""
    if value is None:
        return
    names = {p.name: p.name for p in ctx.command.params
             if p.name not in ("config", "runs", "dry_run", "no_progress")}
    for p in ctx.command.params:
        names.update({o.lstrip("-").replace("-", "_"): p.name for o in p.opts
                      if p.name in names})
    defaults = {}
    for key, setting in _read_toml(value).items():
        name = names.get(key.replace("-", "_"))
        if name is None:
            options = ", ".join(sorted(p.opts[0].lstrip("-") for p in ctx.command.params
                                       if p.name in names))
            raise click.BadParameter(f"{value}: {key!r} is no option of this experiment "
                                     f"(its options: {options})", param_hint="--config")
        defaults[name] = setting
    ctx.default_map = {**(ctx.default_map or {}), **defaults}


def experiment_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """What both experiments take: the clips, the feature sets, seeds and epochs, how
    the generated audio of train clips is made, and how many labels classifiers get."""
    options = [
        click.option("--config", type=click.Path(dir_okay=False, path_type=Path),
                     callback=_load_config, is_eager=True, expose_value=False,
                     help="A TOML file of these options (e.g. seeds = 5, rgb = \"rgb/...\"); "
                          "flags given here override it."),
        click.option("--query", default=SPEC.default("query"), help=QUERY_HELP),
        click.option("--rgb", default=SPEC.default("rgb"), show_default=True),
        click.option("--flow", default=SPEC.default("flow"), show_default=True),
        click.option("--audio", default=SPEC.default("audio"), show_default=True,
                     help="Real audio set; the generated audio is in its space."),
        click.option("--seeds", default=SPEC.default("seeds"), show_default=True),
        click.option("--epochs", default=SPEC.default("epochs"), show_default=True,
                     help="Classifier epochs."),
        click.option("--generator-epochs", default=SPEC.default("generator_epochs"),
                     show_default=True),
        click.option("--cross-fit", default=SPEC.default("cross_fit"), show_default=True,
                     metavar="K",
                     help="Generated audio of train clips from generators that never saw "
                          "them (K folds); 0: in-sample."),
        click.option("--in-sample-ablation", is_flag=True,
                     help="Also the in-sample generated variant, to see what cross-fitting "
                          "changes."),
        click.option("--generator-query", default=None,
                     help="Clips the generators learn from (any clips with audio and a "
                          "train/val split; labels unused) [default: --query]."),
        click.option("--labels-per-class", default=None, metavar="N,N,...",
                     help="Also train the classifiers on N labelled clips per class, e.g. "
                          "2,5,10,all: accuracy vs labels (table + PNG)."),
        click.option("--test-missing", default=None, metavar="RATE,RATE,...",
                     help="Also test every model trained with real audio with this share of "
                          "its test clips' audio missing, each variant standing in its own "
                          "way, e.g. 0.25,0.5,0.75,1 (table + PNG; the masks are in the "
                          "catalog's missing_audio)."),
        click.option("--train-missing", default=None, metavar="RATE,RATE,...",
                     help="Also train with this share of the train clips' audio missing, "
                          "e.g. 0.5,0.9: a generator learns from the present clips, every "
                          "variant fills the missing ones its own way, and each is tested "
                          "at 0, 1 and every --test-missing rate (grid table, panels and "
                          "heatmap)."),
        click.option("--variants", default=None, metavar="ID,ID,...",
                     help="The variants to run besides vision only and + real audio, by id, "
                          "e.g. generated-fill,zeros,mean,token [every one that applies]: "
                          + ", ".join(VARIANT_IDS) + "."),
        click.option("--joint-weight", type=float, default=SPEC.default("joint_weight"),
                     show_default=True,
                     help="The joint network's (Lee et al.) weight of its audio-generation "
                          "loss beside cross-entropy."),
        click.option("--generator-lr", type=float, default=None,
                     help="Generator Adam learning rate [default: the study's, per arch]."),
        click.option("--generator-batch-size", type=int, default=None,
                     help="Generator batch size [default: the study's, per arch]."),
        click.option("--generator-hidden", type=int, default=SPEC.default("generator_hidden"),
                     show_default=True,
                     help="The generator LSTM's width (the study's is 512)."),
        click.option("--classifier-hidden", type=int, default=None,
                     help="The classifier's width [default: the study's: LSTM 256, MLP "
                          "512]."),
        click.option("--distill-temperature", type=float,
                     default=SPEC.default("distill_temperature"), show_default=True,
                     help="Temperature of the distillation baseline: a vision-only student "
                          "learns the + real audio teacher's outputs softened by it."),
        _runs_option,
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def running_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """How an experiment runs, not what it computes (so not part of its spec)."""
    options = [
        click.option("--workers", type=int, default=None,
                     help="Trainings side by side, one thread each [every core]; with "
                          "--executor dask://HOST:PORT, the cluster's workers run them."),
        click.option("--dry-run", is_flag=True,
                     help="Print the plan (trainings per kind) and stop."),
        click.option("--no-progress", is_flag=True),
        click.option("--group-by", default=None, metavar="SQL",
                     help="Also show the main table by groups of test clips: a read-only "
                          "SELECT clip_key, <group> FROM ... (e.g. AVMIT's audible ratings)."),
        click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
                     show_default=True, help="Where trainings run (auto: CUDA where it is; "
                                             "on Dask, one GPU per training)."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return memory_budget_option(fn)


@experiment.command("svdmap")
@experiment_options
@running_options
@click.option("--tags", required=True, help="Tag source of the clips' real audio.")
@click.option("--dictionary", required=True, help="Semantic dictionary name.")
@click.option("--min-iou", default=SVDMapSpec.default("min_iou"), show_default=True)
@click.option("--arch", type=click.Choice(ARCHS), default=SVDMapSpec.default("arch"),
              show_default=True)
@click.option("--study-class-filter", "study_variant", is_flag=True,
              help="Also run the study's class-level variant (top classes only), apart.")
@click.option("--top-classes", default=SVDMapSpec.default("top_classes"), show_default=True)
@click.option("--tagger", default=None, metavar="MODEL",
              help="AST (hub name or local folder) that tags the test clips' generated and "
                   "real audio: the IoU of their top-5 labels, beside how close the audio "
                   "is [not measured].")
@click.pass_obj
@friendly_errors
def experiment_svdmap(obj: Context, runs: str | None, **options: Any) -> None:
    """Vision only / + real / + generated / + filtered generated audio."""
    spec, running = experiment_running(obj, options, SVDMapSpec)
    from vida.jobs.experiments.svdmap import svdmap_experiment

    print_experiment(svdmap_experiment(obj.catalog(), obj.store(), spec, runs=runs,
                                       log=click.echo, options=running),
                     obj.catalog(), running.group_by)


@experiment.command("cafmap")
@experiment_options
@running_options
@click.option("--condition", required=True, help="Condition feature set (`condition`).")
@click.option("--arch", type=click.Choice(ARCHS), default=CAFMapSpec.default("arch"),
              show_default=True)
@click.option("--classifier-lr", type=float, default=CAFMapSpec.default("classifier_lr"),
              help="Classifier Adam learning rate [default: the study's, per arch].")
@click.pass_obj
@friendly_errors
def experiment_cafmap(obj: Context, runs: str | None, **options: Any) -> None:
    """Vision only / + real audio / + audio generated from caption conditions."""
    spec, running = experiment_running(obj, options, CAFMapSpec)
    from vida.jobs.experiments.cafmap import cafmap_experiment

    print_experiment(cafmap_experiment(obj.catalog(), obj.store(), spec, runs=runs,
                                       log=click.echo, options=running),
                     obj.catalog(), running.group_by)


@experiment.command("rerun")
@click.argument("run_id")
@_runs_option
@click.pass_obj
@friendly_errors
def experiment_rerun(obj: Context, run_id: str, runs: str | None) -> None:
    """Run experiment RUN_ID again with the spec it recorded (a new run, same numbers on
    the same machine)."""
    from vida.jobs.experiments.rerun import rerun_experiment

    print_experiment(rerun_experiment(obj.catalog(), obj.store(), run_id, runs=runs,
                                      log=click.echo))


@click.command()
@click.argument("experiment_id")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where the page goes [report-EXPERIMENT_ID.html].")
@click.option("--group-by", default=None, metavar="SQL",
              help="Add the main table by groups of test clips: a read-only SELECT "
                   "clip_key, <group> FROM ... (recorded; replaces an earlier grouping).")
@click.pass_obj
@friendly_errors
def report(obj: Context, experiment_id: str, output: Path | None, group_by: str | None
           ) -> None:
    """Write experiment EXPERIMENT_ID's results as one self-contained HTML page: its
    tables with CIs and adjusted p-values, its plots, its spec and the SQL behind each
    table."""
    from vida.jobs.reports.report import write_report

    out = write_report(obj.catalog(), experiment_id,
                       output or Path(f"report-{experiment_id}.html"), group_by)
    click.echo(views.report_line(out))


COMMANDS = [experiment, report]
