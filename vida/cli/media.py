"""Media commands: ingest (video trees, manifests, frame folders, the study's .npy dicts)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from vida import views
from vida.cli.common import Context, echo_lines, exit_for_failures, friendly_errors, strict_option
from vida.cli.options import store_dtype_option
from vida.encoders.runtime import DEVICES, DTYPES
from vida.media.sources import LAYOUTS


@click.command()
@click.argument("root", type=click.Path(exists=True, path_type=Path))
@click.option("--layout", type=click.Choice(LAYOUTS), default=None,
              help="Source layout (default: detected from ROOT).")
@click.option("--classes", default=None, metavar="FILE|kinetics-sounds",
              help="Keep only these classes: a file with one class a line, or "
                   "kinetics-sounds (the 34 classes of Arandjelovic & Zisserman 2017).")
@click.option("--frames", "n_frames", default=18, show_default=True, help="Time steps T.")
@click.option("--fps", default=6.0, show_default=True, help="Sampling rate F of the grid.")
@click.option("--frame-size", default=128, show_default=True,
              help="Frames are resized to SIZE x SIZE before encoding.")
@click.option("--flow", "flow_method", type=click.Choice(["farneback", "dis"]),
              default="farneback", show_default=True)
@click.option("--silence-dbfs", default=-50.0, show_default=True,
              help="Audio below this RMS level is marked silent.")
@click.option("--strict", is_flag=True,
              help="Fail clips shorter than T/F s instead of padding them, and exit non-zero "
                   "if any clip fails (default: only if every clip does).")
@click.option("--retry-failed", is_flag=True, help="Try clips that failed before again.")
@click.option("--workers", type=int, default=None,
              help="Local processes [default: number of cores]; with --executor dask, the "
                   "cluster's workers.")
@click.option("--rows-per-shard", default=128, show_default=True)
@click.option("--rgb-encoder", default="hog-color", show_default=True)
@click.option("--flow-encoder", default="flow-hist", show_default=True)
@click.option("--audio-encoder", default="ast-fbank", show_default=True)
@click.option("--name-suffix", default="", metavar="S",
              help="Feature sets become e.g. rgb/hog-color-S (for a second grid or size).")
@click.option("--device", type=click.Choice(DEVICES), default="cpu", show_default=True,
              help="Where transformers encoders run in each worker.")
@click.option("--dtype", type=click.Choice(DTYPES), default="float32", show_default=True)
@click.option("--batch-size", default=32, show_default=True,
              help="Frames (or audio segments) per transformers forward.")
@store_dtype_option
@click.option("--no-progress", is_flag=True)
@click.pass_obj
@friendly_errors
def ingest(obj: Context, root: Path, layout: str | None, classes: str | None,
           workers: int | None, no_progress: bool, **spec: Any) -> None:
    """Decode clips under ROOT into RGB, flow and audio features in the store.

    ROOT is a video tree (<split>/<class>/<clip>.mp4 or <class>/<clip>.mp4), a
    manifest CSV (path,class[,split]), the study's frame folders (RGB/, Audio/), a
    folder of the study's .npy feature dicts, or a dataset as it ships: VGGSound
    (vggsound.csv), Kinetics (train.csv, validate.csv, test.csv) or AVE
    (Annotations.txt and its set files), or one of their annotation files; their
    videos are found by name anywhere under the annotations' folder (or
    --media-root). Rerunning skips clips already
    ingested with the same content; failures are recorded, never fatal.
    """
    from vida.jobs.core.executor import start_workers_early
    from vida.jobs.data.ingest_map import IngestOptions, worker_modules
    from vida.media.sources import detect_layout

    if (layout or detect_layout(root)) == "legacy":
        _import_legacy(obj, root, spec["store_dtype"])
        return
    options = IngestOptions(**spec)  # the grid, the encoders, how clips are judged
    # the workers' modules load on another core while this process opens the catalog
    start_workers_early(obj.executor, workers, worker_modules(options))
    from vida.jobs.data.ingest import ingest as run_ingest

    summary = run_ingest(obj.catalog(), obj.store(), root, layout=layout, options=options,
                         workers=workers, executor=obj.executor, progress=not no_progress,
                         classes=classes)
    echo_lines(views.ingest_lines(summary))
    click.echo(views.run_line(summary.run_id, "see `vida-batch status`"))
    failed = summary.by_status["failed"] + len(summary.refused)
    exit_for_failures(summary.total + len(summary.refused) - failed, failed,
                      summary.commonest_failure(), strict=options.strict)


def _import_legacy(obj: Context, root: Path, store_dtype: str) -> None:
    """The study's .npy feature dicts, imported as they are (no decoding)."""
    from vida.jobs.data.legacy_import import import_legacy

    report = import_legacy(obj.catalog(), obj.store(), root, dtype=store_dtype)
    imported, refused = views.legacy_import_lines(report)
    echo_lines(imported)
    echo_lines(refused, err=True)
    if report.refused:
        sys.exit(1)


@click.command()
@click.option("--encoder", "encoder_specs", multiple=True, required=True,
              metavar="MODALITY=SPEC",
              help="e.g. rgb=hf-image:facebook/dinov2-small?pooling=mean, "
                   "flow=hf-flow:DIR?render=xy, audio=ast:DIR (repeatable).")
@click.option("--query", default=None, help="Clips to encode (clip_key, source_uri, class_name, "
              "clip_id) [default: every clip that decoded].")
@click.option("--grid-from", default="rgb/hog-color", show_default=True,
              help="Decode on the grid (T, F, size) this feature set was made on.")
@click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True)
@click.option("--dtype", type=click.Choice(DTYPES), default="float32", show_default=True)
@click.option("--batch-size", default=32, show_default=True,
              help="Frames (or audio segments) per forward; clips are batched across.")
@click.option("--workers", type=int, default=None,
              help="Decoding processes [1 on the CPU, where the model uses every core; all "
                   "cores with CUDA].")
@click.option("--project", type=int, default=None, metavar="D",
              help="Also write each new audio set projected to D dims by a PCA fitted on "
                   "the train split.")
@click.option("--retry-failed", is_flag=True, help="Try clips that failed before again.")
@store_dtype_option
@click.option("--no-progress", is_flag=True)
@strict_option
@click.pass_obj
@friendly_errors
def encode(obj: Context, encoder_specs: tuple[str, ...], query: str | None, grid_from: str,
           device: str, dtype: str, batch_size: int, workers: int | None, project: int | None,
           retry_failed: bool, store_dtype: str, no_progress: bool, strict: bool) -> None:
    """Add feature sets to clips already in the catalog (resumable; failures recorded)."""
    from vida.jobs.data.encode import default_workers, encode_clips

    encoders = {}
    for spec in encoder_specs:
        modality, sep, rest = spec.partition("=")
        if not sep or modality not in ("rgb", "flow", "audio") or not rest:
            raise click.BadParameter(f"{spec!r}: write MODALITY=SPEC with MODALITY rgb, flow "
                                     "or audio", param_hint="--encoder")
        encoders[modality] = rest
    summary = encode_clips(obj.catalog(), obj.store(), encoders=encoders, query=query,
                           grid_from=grid_from, device=device, dtype=dtype,
                           batch_size=batch_size, workers=workers or default_workers(device),
                           project=project, retry_failed=retry_failed,
                           store_dtype=store_dtype, progress=not no_progress)
    echo_lines(views.encode_lines(summary))
    click.echo(views.run_line(summary.run_id))
    exit_for_failures(max(summary.encoded.values(), default=0),
                      max(summary.failed.values(), default=0), summary.commonest_failure(),
                      strict=strict)


COMMANDS = [ingest, encode]
