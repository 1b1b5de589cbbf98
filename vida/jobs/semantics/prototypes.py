"""``vida-batch prototypes``: one vector per AudioSet label, stored as a feature set."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from vida.catalog.database import Catalog
from vida.catalog.records.tags import tag_pairs_of_split
from vida.errors import UsageError
from vida.jobs.core.batch_job import recorded
from vida.semantics.prototypes import label_prototypes, prototypes_from_tfrecords
from vida.store.locks import job_lock
from vida.store.store import FeatureStore


def prototypes_from_catalog(catalog: Catalog, store: FeatureStore, audio: str,
                            tag_source: str, split: str = "train") -> dict[str, np.ndarray]:
    """Per label, the mean audio feature (over time, then clips) of the ``split`` clips
    tagged with it: conditions then live in the generator's target space."""
    pairs = tag_pairs_of_split(catalog, tag_source, split)
    pairs = pairs[pairs["clip_key"].isin(set(store.keys(audio)))]
    if pairs.empty:
        raise UsageError(f"no {split} clip has both tags {tag_source!r} and {audio}")
    pairs = pairs.sort_values(["label", "clip_key"], kind="stable")  # see load_clips
    keys = sorted(set(pairs["clip_key"]))
    means = dict(zip(keys, store.read(audio, keys).mean(axis=1), strict=True))
    return label_prototypes(pairs, means)


def store_prototypes(store: FeatureStore, name: str, protos: dict[str, np.ndarray],
                     params: dict) -> str:
    """Write ``protos`` (label -> vector) as the feature set ``prototype/<name>``."""
    dims = {v.shape for v in protos.values()}
    if len(dims) != 1:
        raise UsageError(f"prototypes of several shapes {dims}")
    set_name = f"prototype/{name}"
    store.register(set_name, modality="prototype", encoder=params.get("source", "prototype"),
                   shape=dims.pop(), params=params)
    with store.writer(set_name) as writer:
        for label in sorted(protos):
            writer.add(label, protos[label])
    return set_name


def prototypes_job(catalog: Catalog, store: FeatureStore, *, tfrecords: Path | None = None,
                   labels_csv: str | None = None, segments: Path | None = None,
                   audio: str = "audio/ast-fbank", tags: str | None = None,
                   name: str | None = None, strict: bool = False,
                   warn: Callable[[str], None] = print) -> tuple[str, int]:
    """AudioSet TFRecords, or else the catalog's tagged train clips -> (set name, labels).

    A damaged TFRecord file is skipped, said once through ``warn`` and listed in the
    run's metrics; with ``strict`` it fails the job before anything is stored."""
    if tfrecords is not None:
        name = name or "audioset"
        params = {"source": "audioset-tfrecords", "path": str(tfrecords),
                  "dequantise": "q/255*4-2"}
    else:
        if not tags:
            raise UsageError("--from-catalog needs --tags SOURCE")
        name = name or f"{Path(audio).name}-{tags}"
        params = {"source": "catalog", "audio": audio, "tags": tags, "split": "train"}
    with job_lock(store.root, f"prototypes-{name}"), recorded(
            catalog, "prototypes", {"name": name, **params}) as run:
        if tfrecords is not None:
            read = prototypes_from_tfrecords(tfrecords, labels_csv, segments, strict)
            for damaged in read.skipped:
                warn(f"skipped {damaged}")
            if not read.prototypes and read.skipped:
                raise read.skipped[0]
            protos = read.prototypes
            run.metrics["skipped_files"] = len(read.skipped)
        else:
            protos = prototypes_from_catalog(catalog, store, audio, tags)
        set_name = store_prototypes(store, name, protos, params)
        run.metrics["labels"] = len(protos)
    return set_name, len(protos)
