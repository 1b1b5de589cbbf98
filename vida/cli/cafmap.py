"""CAFMap's semantic commands: frames, caption, prototypes, condition."""

from __future__ import annotations

from pathlib import Path

import click

from vida import views
from vida.cli.common import Context, exit_for_failures, friendly_errors, strict_option


@click.command()
@click.option("--ratio", default=1.2, show_default=True,
              help="Frame i+1 is representative when motion of pair i >= RATIO x mean.")
@click.option("--rgb", default="rgb/hog-color", show_default=True,
              help="The frame grid (T, F, size) is taken from this feature set.")
@click.option("--redo", is_flag=True, help="Choose again for clips that have frames by this "
              "rule already (by default they are skipped, so a rerun resumes).")
@strict_option
@click.pass_obj
@friendly_errors
def frames(obj: Context, ratio: float, rgb: str, redo: bool, strict: bool) -> None:
    """Representative frames per clip (DIS motion), stored in representative_frames."""
    from vida.jobs.semantics.conditions import find_representative_frames

    tally = find_representative_frames(obj.catalog(), obj.store(), ratio=ratio, rgb=rgb,
                                       redo=redo)
    click.echo(views.frames_line(tally))
    exit_for_failures(tally.done, tally.failed, tally.commonest(), strict=strict)


@click.command()
@click.option("--import", "import_path", type=click.Path(exists=True, path_type=Path),
              help="A {split}_{class}_captions.json file or a folder of them.")
@click.option("--model", default=None, metavar="NAME_OR_DIR",
              help="BLIP: hub name or local directory "
                   "[default Salesforce/blip-image-captioning-base].")
@click.option("--captioner", default=None, help="Name the captions are stored under.")
@click.option("--rgb", default="rgb/hog-color", show_default=True,
              help="Frames are decoded on this feature set's grid (give `frames` the same).")
@click.option("--batch-size", default=8, show_default=True)
@click.option("--redo", is_flag=True, help="Caption again the frames this captioner has "
              "captioned already (by default they are skipped, so a rerun resumes).")
@strict_option
@click.pass_obj
@friendly_errors
def caption(obj: Context, import_path: Path | None, model: str | None, captioner: str | None,
            rgb: str, batch_size: int, redo: bool, strict: bool) -> None:
    """Captions of the representative frames (BLIP), or imported ones."""
    if import_path is not None:
        from vida.jobs.semantics.conditions import import_captions

        n, clips = import_captions(obj.catalog(), import_path, captioner or "imported")
        click.echo(views.captions_imported_line(n, clips, captioner or "imported"))
        return
    from vida.jobs.semantics.conditions import caption_clips
    from vida.semantics.captions import DEFAULT_BLIP

    tally = caption_clips(obj.catalog(), obj.store(), model=model or DEFAULT_BLIP, rgb=rgb,
                          batch=batch_size, captioner_name=captioner, redo=redo)
    click.echo(views.captioned_line(tally))
    exit_for_failures(tally.done, tally.failed, tally.commonest(), "frames", strict=strict)


@click.command()
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
@click.option("--strict", is_flag=True,
              help="Stop at a damaged TFRecord file (default: skip it and say so).")
@click.pass_obj
@friendly_errors
def prototypes(obj: Context, audioset_tfrecords: Path | None, labels_csv: str | None,
               segments: Path | None, from_catalog: bool, audio: str, tag_source: str | None,
               name: str | None, strict: bool) -> None:
    """One prototype vector per AudioSet label, as a feature set of modality prototype."""
    from vida.jobs.semantics.prototypes import prototypes_job

    set_name, n = prototypes_job(obj.catalog(), obj.store(), tfrecords=audioset_tfrecords,
                                 labels_csv=labels_csv, segments=segments, audio=audio,
                                 tags=tag_source, name=name, strict=strict,
                                 warn=lambda line: click.echo(views.warning_line(line),
                                                              err=True))
    click.echo(views.prototypes_line(n, set_name))


@click.command()
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
    from vida.jobs.semantics.conditions import build_conditions

    set_name = build_conditions(obj.catalog(), obj.store(), prototypes=prototype_set,
                                captioner=captioner, text_encoder=text_encoder, top_k=top_k,
                                name=name)
    click.echo(views.wrote_line(len(obj.store().keys(set_name)), set_name))


COMMANDS = [frames, caption, prototypes, condition]
