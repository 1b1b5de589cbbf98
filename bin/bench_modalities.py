#!/usr/bin/env python
"""Does audio matter on the synthetic dataset?  Vision only vs + real audio.

    .venv/bin/python bin/bench_modalities.py [--workdir DIR] [--seeds 3]

Builds the default demo dataset (6 classes x 50 clips; reused if DIR has it),
trains the SVDMap LSTM and the CAFMap MLP classifiers with and without the real
audio over several seeds on the same test clips, prints the table, and exits 1 if
real audio does not beat vision only for both (the dataset is designed so it must).
Not a test: it takes minutes and its numbers are for the record.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from vida import open_catalog
from vida.jobs.data.ingest import ingest
from vida.jobs.data.split import assign_splits
from vida.jobs.demo import DemoOptions
from vida.jobs.experiments.opening import with_features
from vida.jobs.training.classifier import ClassifierSpec, train_classifier
from vida.keys import SPLIT_CLIPS
from vida.store import FeatureStore
from vida.synth import synthesize


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workdir", type=Path, default=Path("bench-modalities"))
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    opts = DemoOptions()
    catalog = open_catalog(args.workdir / "catalog.db", create=True)
    store = FeatureStore(catalog, args.workdir / "store")
    if catalog.sql("SELECT count(*) AS n FROM clips")["n"][0] == 0:
        data = synthesize(args.workdir / "data", opts.classes, opts.clips_per_class, opts.seed)
        ingest(catalog, store, data.manifest, progress=sys.stderr.isatty())
        assign_splits(catalog, ratios=opts.ratios, seed=42)
    query = with_features(SPLIT_CLIPS, ["rgb/hog-color", "flow/flow-hist", "audio/ast-fbank"])
    rows, ok = [], True
    for arch, lr in (("lstm", None), ("mlp", 1e-3)):
        scores = {}
        for audio in (None, "audio/ast-fbank"):
            scores[audio] = [train_classifier(
                catalog, store, query, ClassifierSpec(arch=arch, audio=audio, seed=s, lr=lr),
                runs=str(args.workdir / "runs"), progress=False)[1]["top1"]
                for s in range(args.seeds)]
            rows.append((arch, audio or "none", np.mean(scores[audio]), np.std(scores[audio])))
        ok &= np.mean(scores["audio/ast-fbank"]) > np.mean(scores[None])
    print(f"{'classifier':<10} {'audio':<16} {'top-1 mean':>10} {'std':>6}")
    for arch, audio, mean, std in rows:
        print(f"{arch:<10} {audio:<16} {mean:>10.3f} {std:>6.3f}")
    print("real audio beats vision only" if ok else "REAL AUDIO DOES NOT BEAT VISION ONLY")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
