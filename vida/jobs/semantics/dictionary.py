"""``vida-batch dictionary`` and ``filter``: the semantic dictionary and the IoU filter."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from vida.catalog.database import Catalog
from vida.catalog.records.clips import class_names
from vida.catalog.records.dictionaries import Entries, load_dictionary, store_dictionary
from vida.catalog.records.filters import store_decisions
from vida.catalog.records.tags import load_tags
from vida.errors import UsageError
from vida.jobs.core.batch_job import import_as_run, recorded
from vida.semantics.dictionary import build_dictionary, read_svd_csv
from vida.semantics.iou_filter import class_summary, clip_ious, decide, filter_name


def build_dictionary_job(catalog: Catalog, name: str, *, classes: list[str] | None = None,
                         top_n: int = 5, text_encoder: str | None = None) -> Entries:
    """Embed the catalog's class names (or ``classes``) and AudioSet's labels; store the
    ``top_n`` nearest labels per class as dictionary ``name``."""
    classes = classes or class_names(catalog)  # plan
    if not classes:
        raise UsageError("no classes: ingest clips or pass --class")
    params = {"name": name, "top_n": top_n, "text_encoder": text_encoder or "bundled-minilm",
              "classes": classes}
    with recorded(catalog, "dictionary", params) as run:
        entries = build_dictionary(classes, top_n, text_encoder)  # map (one item)
        run.metrics["entries"] = store_dictionary(catalog, name, entries)  # commit
    return entries


def import_dictionary(catalog: Catalog, csv_file: Path, name: str | None = None
                      ) -> tuple[str, Entries, int]:
    """The study's ``svd.csv`` -> (dictionary name, entries, rows stored)."""
    entries, named = read_svd_csv(csv_file), name or csv_file.stem
    return named, entries, import_as_run(
        catalog, "dictionary-import", {"file": str(csv_file), "name": named},
        lambda: store_dictionary(catalog, named, entries), "entries")


def filter_job(catalog: Catalog, *, dictionary: str, tags: str, mode: str = "clip",
               min_iou: float = 0.2, top_classes: int = 5, name: str | None = None
               ) -> tuple[str, pd.DataFrame, int, int]:
    """IoU of each clip's tags with its class's labels -> keep/drop, stored as filter
    ``name``.  Returns (name, per-class summary, clips kept, clips decided)."""
    ious = clip_ious(load_tags(catalog, tags), load_dictionary(catalog, dictionary))  # plan
    if ious.empty:
        raise UsageError("no tagged clip has a class in the dictionary")
    name = name or filter_name(dictionary, tags, mode=mode, min_iou=min_iou,
                               top_classes=top_classes)
    params = {"name": name, "dictionary": dictionary, "tags": tags, "mode": mode,
              "min_iou": min_iou, "top_classes": top_classes}
    with recorded(catalog, "filter", params) as run:
        result = decide(ious, mode=mode, min_iou=min_iou, top_classes=top_classes)  # map
        store_decisions(catalog, name, result.decisions)  # commit
        kept, total = int(result.decisions["keep"].sum()), len(result.decisions)
        run.metrics.update(clips_kept=kept, clips=total)
    return name, class_summary(result), kept, total
