"""SVDMap's semantic commands: tag, dictionary build/import, filter."""

from __future__ import annotations

from pathlib import Path

import click

from vida import views
from vida.cli.common import Context, echo_lines, exit_for_failures, friendly_errors, strict_option


@click.command()
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
@click.option("--redo", is_flag=True, help="Tag again the clips this source has tagged "
              "already (by default they are skipped, so a rerun resumes).")
@strict_option
@click.pass_obj
@friendly_errors
def tag(obj: Context, import_file: Path | None, model: str | None, on_set: str, top_k: int,
        query: str | None, source: str | None, redo: bool, strict: bool) -> None:
    """AudioSet tags per clip, from AST or imported; stored in audio_tags."""
    if import_file is not None:
        from vida.jobs.semantics.tagging import import_tags

        source, n, known = import_tags(obj.catalog(), import_file, source)
        click.echo(views.tags_imported_line(source, n, known))
        return
    from vida.jobs.semantics.tagging import tag_clips
    from vida.semantics.tagger import DEFAULT_AST

    source, n, unread = tag_clips(obj.catalog(), obj.store(), model=model or DEFAULT_AST,
                                  on=on_set, top_k=top_k, query=query, source=source,
                                  redo=redo)
    click.echo(views.tagged_line(source, n, unread))
    exit_for_failures(n, len(unread), f"no audio at the source of {unread[0]}" if unread
                      else "", strict=strict)


@click.group()
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
    from vida.jobs.semantics.dictionary import build_dictionary_job

    entries = build_dictionary_job(obj.catalog(), name, classes=list(class_names) or None,
                                   top_n=top_n, text_encoder=text_encoder)
    echo_lines(views.dictionary_lines(entries))


@dictionary.command("import")
@click.argument("csv_file", type=click.Path(exists=True, path_type=Path))
@click.option("--name", default=None, help="Dictionary name [default: file stem].")
@click.pass_obj
@friendly_errors
def dictionary_import(obj: Context, csv_file: Path, name: str | None) -> None:
    """Import the study's svd.csv (Video Label, Audio Labels joined by '; ')."""
    from vida.jobs.semantics.dictionary import import_dictionary

    name, entries, n = import_dictionary(obj.catalog(), csv_file, name)
    click.echo(views.dictionary_imported_line(name, len(entries), n))


@click.command(name="filter")
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
    from vida.jobs.semantics.dictionary import filter_job

    name, summary, kept, total = filter_job(
        obj.catalog(), dictionary=dictionary_name, tags=tag_source, mode=mode,
        min_iou=min_iou, top_classes=top_classes, name=name)
    echo_lines(views.filter_lines(summary, name, kept, total))


COMMANDS = [tag, dictionary, filter_command]
