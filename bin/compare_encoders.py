#!/usr/bin/env python
"""What an encoder changes: vision-only accuracy with the default features against the
same classifier on another encoder's features, on the same clips.

    .venv/bin/python bin/compare_encoders.py --rgb study-vit --flow study-vit-flow
    .venv/bin/python bin/compare_encoders.py --rgb hf-image:models/dinov2-small \\
        --flow hf-flow:models/dinov2-small --classes 6 --clips-per-class 50

Builds (or reuses, in --workdir) a synthetic dataset, ingests it with the default
encoders, adds the other encoders' sets with ``vida-batch encode``, then trains the
vision-only LSTM classifier on both over several seeds and prints top-1 with its 95 %
CI and the paired difference.  Not a test: its numbers are for the README.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vida import open_catalog, views  # noqa: E402
from vida.catalog.records.predictions import correct_on_test  # noqa: E402
from vida.jobs.data.encode import encode_clips  # noqa: E402
from vida.jobs.data.ingest import ingest  # noqa: E402
from vida.jobs.data.split import assign_splits  # noqa: E402
from vida.jobs.training.classifier import ClassifierSpec, train_classifier  # noqa: E402
from vida.keys import SPLIT_CLIPS  # noqa: E402
from vida.stats import accuracy_interval, paired_difference  # noqa: E402
from vida.store import FeatureStore  # noqa: E402
from vida.synth import synthesize  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rgb", required=True)
    parser.add_argument("--flow", required=True)
    parser.add_argument("--classes", type=int, default=4)
    parser.add_argument("--clips-per-class", type=int, default=12)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=36)
    parser.add_argument("--workdir", type=Path, default=Path("compare-encoders"))
    args = parser.parse_args()
    catalog = open_catalog(args.workdir / "catalog.db", create=True)
    store = FeatureStore(catalog, args.workdir / "store")
    if catalog.sql("SELECT count(*) AS n FROM clips")["n"][0] == 0:
        data = synthesize(args.workdir / "data", args.classes, args.clips_per_class, seed=0)
        ingest(catalog, store, data.manifest, workers=2, progress=False)
        assign_splits(catalog, ratios=(0.5, 0.1, 0.4), seed=42)
    summary = encode_clips(catalog, store, encoders={"rgb": args.rgb, "flow": args.flow},
                           device="cpu", batch_size=args.batch_size, workers=1)
    print("\n".join(views.encode_lines(summary)))
    variants = {"default (hog-color + flow-hist)": ("rgb/hog-color", "flow/flow-hist"),
                f"{args.rgb} + {args.flow}": (summary.sets["rgb"], summary.sets["flow"])}
    correct: dict[str, np.ndarray] = {}
    for name, (rgb, flow) in variants.items():
        rows = []
        for seed in range(args.seeds):
            run_id, _ = train_classifier(catalog, store, SPLIT_CLIPS,
                                         ClassifierSpec(rgb=rgb, flow=flow, seed=seed),
                                         runs=str(args.workdir / "runs"), progress=False)
            rows.append(correct_on_test(catalog, run_id)[0])
        correct[name] = np.stack(rows)
    base, other = correct.values()
    for name, matrix in correct.items():
        ci = accuracy_interval(matrix)
        print(f"{name:<45} top-1 {ci.mean:.3f} [{ci.low:.3f}, {ci.high:.3f}]")
    diff = paired_difference(other, base)
    print(f"difference {diff.difference.mean:+.3f} [{diff.difference.low:+.3f}, "
          f"{diff.difference.high:+.3f}], p={diff.p_value:.3g} "
          f"({base.shape[1]} test clips x {base.shape[0]} seeds)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
