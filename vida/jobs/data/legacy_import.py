"""Importing the study's pickled feature dicts as feature sets ``legacy/<kind>``.

``rgb_filtered_train.npy`` becomes rows of ``legacy/rgb`` for clips whose split is
``train``; the clips are added to the catalog (status ok) when missing.  A file
that is refused (unsafe pickle, wrong name, wrong shapes) is reported and skipped;
the other files are still imported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from vida.catalog.database import Catalog
from vida.clock import utcnow
from vida.errors import MissingInput, UsageError
from vida.jobs.core.batch_job import recorded
from vida.jobs.data.ingest_map import CLIP_KEY, check_store_dtype
from vida.keys import clip_key
from vida.media.legacy import legacy_files, load_feature_dict, parse_legacy_name
from vida.store.store import FeatureStore


@dataclass
class LegacyImportReport:
    imported: dict[str, int] = field(default_factory=dict)  # file name -> rows
    refused: dict[str, str] = field(default_factory=dict)  # file name -> one-line reason


def import_legacy(catalog: Catalog, store: FeatureStore, root: Path,
                  prefix: str = "legacy", dtype: str = "float32") -> LegacyImportReport:
    check_store_dtype(dtype)
    report = LegacyImportReport()
    files = legacy_files(root)
    if not files:
        raise MissingInput(f"{root}: no .npy feature files found")
    with recorded(catalog, "import-legacy", {"root": str(root)}) as run:
        for path in files:
            _import_file(store, path, prefix, run.run_id, report, dtype)
        run.metrics.update(files_imported=len(report.imported),
                           files_refused=len(report.refused))
    return report


def _import_file(store: FeatureStore, path: Path, prefix: str, run_id: str,
                 report: LegacyImportReport, dtype: str) -> None:
    """One study .npy file as a feature set with its clips, or its one-line refusal."""
    try:
        kind, modality, split = parse_legacy_name(path)
        features = load_feature_dict(path)
        shapes = {a.shape for a in features.values()}
        if len(shapes) != 1:
            raise UsageError(f"{path}: arrays of several shapes {sorted(shapes)[:3]}")
        name = f"{prefix}/{kind}"
        store.register(name, modality=modality, encoder=f"legacy:{kind}",
                       shape=shapes.pop(), params={"source": "VIDA study .npy"},
                       dtype=dtype, produced_by_run=run_id)
    except ValueError as exc:
        report.refused[path.name] = str(exc).splitlines()[0]
        return
    with store.bundle_writer([name]) as writer:
        for (cls, cid), array in sorted(features.items()):
            key = clip_key(cls, cid)
            row = {"clip_key": key, "class_name": cls, "clip_id": cid, "split": split,
                   "source_uri": str(path.resolve()), "status": "ok", "ingested_at": utcnow()}
            writer.add(key, {name: array},
                       records=[("clips", row, CLIP_KEY)])
    report.imported[path.name] = len(features)
