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
from vida.semantics.tags import load_tags
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

DEFAULT_CLIPS = ("SELECT clip_key, class_name, split FROM clips "
                 "WHERE split IS NOT NULL AND status <> 'failed'")
QUERY_HELP = "Read-only SELECT returning clip_key, class_name, split [default: all split clips]."


@main.command()
@click.option("--import", "import_file", type=click.Path(exists=True, path_type=Path),
              help="Import tags in the study's ast_pred_test.json format instead.")
@click.option("--model", default=None, metavar="NAME_OR_DIR",
              help="AST model: hub name or local directory "
                   "[default MIT/ast-finetuned-audioset-10-10-0.4593].")
@click.option("--on", "on_set", default="audio/ast-fbank", show_default=True,
              help="Feature set to tag: real audio (the waveform is tagged) or generated.")
@click.option("--top-k", default=5, show_default=True)
@click.option("--query", default=None, help="Clips to tag (clip_key, class_name, clip_id, "
              "source_uri) [default: all with the feature set].")
@click.option("--source", default=None, help="Name the tags are stored under.")
@click.pass_obj
@friendly_errors
def tag(obj: Context, import_file: Path | None, model: str | None, on_set: str, top_k: int,
        query: str | None, source: str | None) -> None:
    """AudioSet tags per clip, from AST or imported; stored in audio_tags."""
    if import_file is not None:
        from vida.semantics.tags import read_tag_json, store_tags

        catalog = obj.catalog()
        tags = read_tag_json(import_file)
        source = source or import_file.stem
        n = store_tags(catalog, source, tags)
        known = catalog.sql(
            "SELECT count(DISTINCT t.clip_key) AS n FROM audio_tags t JOIN clips c "
            "ON c.clip_key = t.clip_key WHERE t.source = :s", {"s": source})["n"][0]
        click.echo(f"imported tags of {n} clips as source {source!r} ({known} are in the catalog)")
        return
    from vida.jobs.tagging import tag_clips
    from vida.semantics.tagger import DEFAULT_AST

    source, n = tag_clips(obj.catalog(), obj.store(), model=model or DEFAULT_AST, on=on_set,
                          top_k=top_k, query=query, source=source)
    click.echo(f"tagged {n} clips as source {source!r}")


@main.group()
def dictionary() -> None:
    """The semantic dictionary: action class -> AudioSet labels."""


@dictionary.command("build")
@click.option("--text-encoder", default=None, metavar="NAME_OR_DIR",
              help="Sentence encoder [default: the bundled all-MiniLM-L6-v2].")
@click.option("--top-n", default=5, show_default=True)
@click.option("--name", default="minilm", show_default=True)
@click.option("--class", "class_names", multiple=True,
              help="Classes to include [default: every class in the catalog].")
@click.pass_obj
@friendly_errors
def dictionary_build(obj: Context, text_encoder: str | None, top_n: int, name: str,
                     class_names: tuple[str, ...]) -> None:
    """Build by cosine similarity of class-name and label-name sentence embeddings."""
    from vida.semantics.dictionary import build_dictionary, store_dictionary

    catalog = obj.catalog()
    classes = list(class_names) or sorted(
        catalog.sql("SELECT DISTINCT class_name FROM clips")["class_name"])
    if not classes:
        raise click.ClickException("no classes: ingest clips or pass --class")
    entries = build_dictionary(classes, top_n, text_encoder)
    store_dictionary(catalog, name, entries)
    for cls, items in entries.items():
        click.echo(f"{cls}: " + "; ".join(f"{label} ({sim:.2f})" for label, sim in items))


@dictionary.command("import")
@click.argument("csv_file", type=click.Path(exists=True, path_type=Path))
@click.option("--name", default=None, help="Dictionary name [default: file stem].")
@click.pass_obj
@friendly_errors
def dictionary_import(obj: Context, csv_file: Path, name: str | None) -> None:
    """Import the study's svd.csv (Video Label, Audio Labels joined by '; ')."""
    from vida.semantics.dictionary import read_svd_csv, store_dictionary

    entries = read_svd_csv(csv_file)
    n = store_dictionary(obj.catalog(), name or csv_file.stem, entries)
    click.echo(f"imported {len(entries)} classes ({n} entries) as {name or csv_file.stem!r}")


@main.command(name="filter")
@click.option("--dictionary", "dictionary_name", required=True)
@click.option("--tags", "tag_source", required=True, help="Tag source (see audio_tags.source).")
@click.option("--min-iou", default=0.2, show_default=True)
@click.option("--mode", type=click.Choice(["clip", "class"]), default="clip", show_default=True,
              help="clip: keep clips with IoU >= min; class: the study's top classes by mean.")
@click.option("--top-classes", default=5, show_default=True)
@click.option("--name", default=None, help="Filter name [default derived from the options].")
@click.pass_obj
@friendly_errors
def filter_command(obj: Context, dictionary_name: str, tag_source: str, min_iou: float,
                   mode: str, top_classes: int, name: str | None) -> None:
    """IoU of each clip's tags with its class's dictionary labels -> keep/drop."""
    from vida.semantics.dictionary import load_dictionary
    from vida.semantics.iou_filter import clip_ious, decide, store_decisions

    catalog = obj.catalog()
    ious = clip_ious(load_tags(catalog, tag_source), load_dictionary(catalog, dictionary_name))
    if ious.empty:
        raise click.ClickException("no tagged clip has a class in the dictionary")
    result = decide(ious, mode=mode, min_iou=min_iou, top_classes=top_classes)
    name = name or (f"{dictionary_name}:{tag_source}:iou>={min_iou:g}" if mode == "clip"
                    else f"{dictionary_name}:{tag_source}:top{top_classes}-classes")
    store_decisions(catalog, name, result.decisions)
    summary = result.decisions.groupby("class_name").agg(
        mean_iou=("iou", "mean"), clips=("keep", "size"), kept=("keep", "sum"))
    summary = summary.loc[result.class_means.index].reset_index()
    click.echo(format_frame(summary.round(4), "table"))
    click.echo(f"filter {name!r}: kept {int(result.decisions['keep'].sum())} of "
               f"{len(result.decisions)} clips")


@main.group()
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
@click.option("--runs", default=None, envvar="VIDA_RUNS", help="Checkpoint root [./runs].")
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
@click.option("--runs", default=None, envvar="VIDA_RUNS", help="Checkpoint root [./runs].")
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


@main.command()
@click.option("--run", "run_id", required=True, help="A finished generator run.")
@click.option("--query", default=None, help="Clips to generate for [default: all with inputs].")
@click.pass_obj
@friendly_errors
def generate(obj: Context, run_id: str, query: str | None) -> None:
    """Write a generator run's audio features as the feature set generated/<run>."""
    from vida.jobs.generator import generate as run_generate

    name = run_generate(obj.catalog(), obj.store(), run_id, query)
    n = len(obj.store().keys(name))
    click.echo(f"wrote {n} clips to {name}")


@main.group()
def experiment() -> None:
    """The method's comparison tables: several seeds, the same test clips."""


def print_experiment(result) -> None:
    from vida.views import experiment_table

    click.echo(experiment_table(result.table))
    if result.study_table is not None:
        click.echo("\nthe study's class-level filter (other classes, other test clips: "
                   "not comparable with the table above)")
        click.echo(experiment_table(result.study_table))
    click.echo(f"\nexperiment {result.experiment_id}\nplot  {result.plot}\ntable {result.csv}")


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
@click.option("--runs", default=None, envvar="VIDA_RUNS")
@click.pass_obj
@friendly_errors
def experiment_svdmap(obj: Context, query: str, seeds: int, tag_source: str,
                      dictionary_name: str, min_iou: float, arch: str, epochs: int,
                      generator_epochs: int, study_class_filter: bool, top_classes: int,
                      runs: str | None) -> None:
    """Vision only / + real / + generated / + filtered generated audio."""
    from vida.jobs.experiment import svdmap_experiment

    result = svdmap_experiment(
        obj.catalog(), obj.store(), query=query, seeds=seeds, tags=tag_source,
        dictionary=dictionary_name, min_iou=min_iou, arch=arch, epochs=epochs,
        generator_epochs=generator_epochs, study_variant=study_class_filter,
        top_classes=top_classes, runs=runs, log=click.echo)
    print_experiment(result)


@main.command()
@click.option("--ratio", default=1.2, show_default=True,
              help="Frame i+1 is representative when motion of pair i >= RATIO x mean.")
@click.option("--rgb", default="rgb/hog-color", show_default=True,
              help="The frame grid (T, F, size) is taken from this feature set.")
@click.pass_obj
@friendly_errors
def frames(obj: Context, ratio: float, rgb: str) -> None:
    """Representative frames per clip (DIS motion), stored in representative_frames."""
    from vida.jobs.cafmap import find_representative_frames

    n = find_representative_frames(obj.catalog(), obj.store(), ratio=ratio, rgb=rgb)
    click.echo(f"representative frames of {n} clips")


@main.command()
@click.option("--import", "import_path", type=click.Path(exists=True, path_type=Path),
              help="A {split}_{class}_captions.json file or a folder of them.")
@click.option("--model", default=None, metavar="NAME_OR_DIR",
              help="BLIP: hub name or local directory "
                   "[default Salesforce/blip-image-captioning-base].")
@click.option("--captioner", default=None, help="Name the captions are stored under.")
@click.option("--batch-size", default=8, show_default=True)
@click.pass_obj
@friendly_errors
def caption(obj: Context, import_path: Path | None, model: str | None, captioner: str | None,
            batch_size: int) -> None:
    """Captions of the representative frames (BLIP), or imported ones."""
    if import_path is not None:
        from vida.semantics.captions import read_caption_files, store_captions

        captions = read_caption_files(import_path)
        n = store_captions(obj.catalog(), captioner or "imported", captions)
        click.echo(f"imported {n} captions of {len(captions)} clips as "
                   f"{captioner or 'imported'!r}")
        return
    from vida.jobs.cafmap import caption_clips
    from vida.semantics.captions import DEFAULT_BLIP

    n = caption_clips(obj.catalog(), obj.store(), model=model or DEFAULT_BLIP,
                      batch=batch_size, captioner_name=captioner)
    click.echo(f"captioned {n} frames")


@main.command()
@click.option("--audioset-tfrecords", type=click.Path(exists=True, path_type=Path),
              help="Folder of AudioSet embedding TFRecords.")
@click.option("--labels", "labels_csv", type=click.Path(exists=True), default=None,
              help="class_labels_indices.csv [default: the bundled copy].")
@click.option("--segments", type=click.Path(exists=True, path_type=Path), default=None,
              help="balanced_train_segments.csv: keep those clips, take their labels.")
@click.option("--from-catalog", is_flag=True,
              help="Mean audio feature of the train clips tagged with each label (default).")
@click.option("--audio", default="audio/ast-fbank", show_default=True)
@click.option("--tags", "tag_source", default=None, help="Tag source (with --from-catalog).")
@click.option("--name", default=None, help="Stored as prototype/NAME.")
@click.pass_obj
@friendly_errors
def prototypes(obj: Context, audioset_tfrecords: Path | None, labels_csv: str | None,
               segments: Path | None, from_catalog: bool, audio: str, tag_source: str | None,
               name: str | None) -> None:
    """One prototype vector per AudioSet label, as a feature set of modality prototype."""
    from vida.semantics import prototypes as proto

    store = obj.store()
    if audioset_tfrecords is not None:
        protos = proto.prototypes_from_tfrecords(audioset_tfrecords, labels_csv, segments)
        name = name or "audioset"
        params = {"source": "audioset-tfrecords", "path": str(audioset_tfrecords),
                  "dequantise": "q/255*4-2"}
    else:
        if not tag_source:
            raise click.ClickException("--from-catalog needs --tags SOURCE")
        protos = proto.prototypes_from_catalog(obj.catalog(), store, audio, tag_source)
        name = name or f"{Path(audio).name}-{tag_source}"
        params = {"source": "catalog", "audio": audio, "tags": tag_source, "split": "train"}
    set_name = proto.store_prototypes(store, name, protos, params)
    click.echo(f"{len(protos)} label prototypes in {set_name}")


@main.command()
@click.option("--prototypes", "prototype_set", required=True, help="A prototype/... set.")
@click.option("--text-encoder", default=None, metavar="NAME_OR_DIR",
              help="Sentence encoder [default: the bundled all-MiniLM-L6-v2].")
@click.option("--top-k", default=5, show_default=True)
@click.option("--captioner", default=None, help="Use only this captioner's captions.")
@click.option("--name", default=None, help="Stored as condition/NAME.")
@click.pass_obj
@friendly_errors
def condition(obj: Context, prototype_set: str, text_encoder: str | None, top_k: int,
              captioner: str | None, name: str | None) -> None:
    """Caption -> AudioSet labels -> mean prototype, on the representative frames."""
    from vida.jobs.cafmap import build_conditions

    set_name = build_conditions(obj.catalog(), obj.store(), prototypes=prototype_set,
                                captioner=captioner, text_encoder=text_encoder, top_k=top_k,
                                name=name)
    click.echo(f"wrote {len(obj.store().keys(set_name))} clips to {set_name}")


@experiment.command("cafmap")
@click.option("--condition", "condition_set", required=True)
@click.option("--query", default=DEFAULT_CLIPS, help=QUERY_HELP)
@click.option("--seeds", default=3, show_default=True)
@click.option("--arch", type=click.Choice(["mlp", "lstm"]), default="mlp", show_default=True)
@click.option("--epochs", default=10, show_default=True, help="Classifier epochs.")
@click.option("--generator-epochs", default=10, show_default=True)
@click.option("--runs", default=None, envvar="VIDA_RUNS")
@click.pass_obj
@friendly_errors
def experiment_cafmap(obj: Context, condition_set: str, query: str, seeds: int, arch: str,
                      epochs: int, generator_epochs: int, runs: str | None) -> None:
    """Vision only / + real audio / + audio generated from caption conditions."""
    from vida.jobs.experiment import cafmap_experiment

    result = cafmap_experiment(obj.catalog(), obj.store(), condition=condition_set, query=query,
                               seeds=seeds, arch=arch, epochs=epochs,
                               generator_epochs=generator_epochs, runs=runs, log=click.echo)
    print_experiment(result)


@main.command()
@click.option("--workdir", default="vida-demo", show_default=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Everything goes here: data/, catalog.db, store/, runs/.")
@click.option("--classes", default=6, show_default=True)
@click.option("--clips-per-class", default=24, show_default=True)
@click.option("--seeds", default=3, show_default=True)
@click.option("--epochs", default=10, show_default=True)
@click.option("--generator-epochs", default=10, show_default=True)
@click.option("--workers", type=int, default=None, help="Ingest processes [all cores].")
def demo(workdir: Path, classes: int, clips_per_class: int, seeds: int, epochs: int,
         generator_epochs: int, workers: int | None) -> None:
    """Run the whole method offline on a synthetic dataset (a few minutes)."""
    from vida.jobs.demo import DemoOptions, run_demo

    options = DemoOptions(classes=classes, clips_per_class=clips_per_class, seeds=seeds,
                          epochs=epochs, generator_epochs=generator_epochs, workers=workers)
    try:
        result = run_demo(workdir, options, log=click.echo)
    except (ValueError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo("\n== SVDMap ==")
    print_experiment(result.svdmap)
    click.echo("\n== CAFMap ==")
    print_experiment(result.cafmap)
    click.echo(f"\ndone in {result.seconds:.0f} s; explore with: "
               f"vida-batch --catalog {workdir}/catalog.db --store {workdir}/store status")


if __name__ == "__main__":
    main(prog_name="vida-batch")
