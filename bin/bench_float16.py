"""What storing sets as float16, and streaming them, cost: ``bin/bench --only float16``.

The demo's data is synthesised once and ingested twice, with ``--store-dtype float32``
and ``float16``; each store then runs the demo's SVDMap experiment (same options,
2 workers), and the float32 store runs it once more with every training streamed
(``--memory-budget 0``: batches read from the store in chunk-shuffled order).  Per
variant of the main table, every seed's test clips are paired with the float32
in-memory run's (the same clips: the same split seed) and the difference in top-1
gets its 95 % bootstrap interval and paired p-value
(``vida.stats.paired_difference``).  Beside it: the stores' bytes, the ingest's
seconds, and a cold read of the three sets.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SETS = ["rgb/hog-color", "flow/flow-hist", "audio/ast-fbank"]


def _vida_batch() -> list[str]:
    return [str(Path(sys.executable).parent / "vida-batch")]


def _run(args: list, cwd: Path) -> str:
    done = subprocess.run([*_vida_batch(), *map(str, args)], cwd=cwd, capture_output=True,
                          text=True)
    if done.returncode:
        raise RuntimeError(f"vida-batch {' '.join(map(str, args))}:\n{done.stderr[-2000:]}")
    return done.stdout


def _prepare(data: Path, work: Path, dtype: str, options) -> float:
    work.mkdir(parents=True)
    start = time.perf_counter()
    _run(["ingest", data / "manifest.csv", "--store-dtype", dtype, "--no-progress"], work)
    seconds = time.perf_counter() - start
    _run(["split", "--ratios", ",".join(map(str, options.ratios))], work)
    _run(["tag", "--import", data / "ast_tags.json", "--source", "synth-ast"], work)
    _run(["dictionary", "build"], work)
    return seconds


def _experiment(work: Path, options, *extra: str) -> str:
    args = ["experiment", "svdmap", "--tags", "synth-ast", "--dictionary", "minilm",
            "--seeds", options.seeds, "--min-iou", options.min_iou,
            "--epochs", options.epochs, "--generator-epochs", options.generator_epochs,
            "--cross-fit", options.cross_fit, "--labels-per-class", "",
            "--generator-batch-size", options.generator_batch_size,
            "--generator-lr", options.generator_lr,
            "--generator-hidden", options.generator_hidden,
            "--classifier-hidden", options.classifier_hidden, "--workers", 2, "--no-progress",
            *extra]
    out = _run(args, work)
    return out.split("experiment ", 1)[1].split(":", 1)[0].strip()


def _correct_by_variant(work: Path, experiment_id: str) -> dict[str, np.ndarray]:
    """Main-table variant -> [seeds, test clips] 0/1 (clips in clip_key order)."""
    from vida import open_catalog
    from vida.catalog.records.predictions import correct_on_test
    from vida.catalog.records.runs import runs_with_params

    catalog = open_catalog(work / "catalog.db")
    rows: dict[str, dict[int, np.ndarray]] = {}
    for run_id, params in runs_with_params(catalog, experiment_id=experiment_id):
        key = params.get("plan_key", "")
        if "variant" not in params or "/classifier/" not in key or key.startswith("labels="):
            continue
        rows.setdefault(params["variant"], {})[int(params["seed"])] = \
            correct_on_test(catalog, run_id)[0]
    catalog.dispose()
    return {v: np.stack([by_seed[s] for s in sorted(by_seed)]) for v, by_seed in rows.items()}


def _cold_read(work: Path) -> float:
    from vida import open_catalog
    from vida.store import FeatureStore

    catalog = open_catalog(work / "catalog.db")
    keys = catalog.sql("SELECT clip_key FROM clips WHERE status = 'ok' ORDER BY 1")
    store = FeatureStore(catalog, work / "store")
    start = time.perf_counter()
    store.read_sets(SETS, keys["clip_key"].tolist())
    seconds = time.perf_counter() - start
    store.close()
    catalog.dispose()
    return seconds


def bench_float16(tmp: Path) -> dict:
    from vida.jobs.demo import DemoOptions
    from vida.stats import paired_difference

    options = DemoOptions()
    data = tmp / "data"
    _run(["synth", data, "--classes", options.classes, "--clips-per-class",
          options.clips_per_class, "--seed", options.seed], tmp)
    out: dict = {"stores": {}, "variants": {}, "streamed": {}}
    correct = {}
    for dtype in ("float32", "float16"):
        work = tmp / dtype
        ingest_s = _prepare(data, work, dtype, options)
        experiment_id = _experiment(work, options)
        correct[dtype] = _correct_by_variant(work, experiment_id)
        out["stores"][dtype] = {
            "bytes": sum(p.stat().st_size for s in SETS for p in (work / "store" / s).rglob(
                "*.h5")),
            "ingest_s": ingest_s, "cold_read_s": _cold_read(work), "experiment": experiment_id}
    streamed = _experiment(tmp / "float32", options, "--memory-budget", "0")
    correct["streamed"] = _correct_by_variant(tmp / "float32", streamed)
    for side, key in (("float16", "variants"), ("streamed", "streamed")):
        for variant, full in correct["float32"].items():
            out[key][variant] = _paired(correct[side][variant], full, paired_difference)
    return out


def _paired(other: np.ndarray, full: np.ndarray, paired_difference) -> dict:
    paired = paired_difference(other, full)
    return {"top1_float32": float(full.mean()), "top1_other": float(other.mean()),
            "difference": paired.difference.mean, "ci_low": paired.difference.low,
            "ci_high": paired.difference.high, "p": paired.p_value,
            "clips": int(full.shape[1]), "seeds": int(full.shape[0])}


def markdown(r: dict) -> str:
    s32, s16 = r["stores"]["float32"], r["stores"]["float16"]
    lines = ["| measure | float32 | float16 |", "| --- | --- | --- |",
             f"| the demo's rgb+flow+audio sets on disk | {s32['bytes'] / 1e6:.1f} MB | "
             f"{s16['bytes'] / 1e6:.1f} MB ({s16['bytes'] / s32['bytes']:.0%}) |",
             f"| ingest of the demo's clips | {s32['ingest_s']:.1f} s | "
             f"{s16['ingest_s']:.1f} s |",
             f"| cold read of the three sets | {s32['cold_read_s'] * 1e3:.0f} ms | "
             f"{s16['cold_read_s'] * 1e3:.0f} ms |"]
    for key, label in (("variants", "float16 store"), ("streamed", "streamed (float32)")):
        lines += ["", f"| variant (SVDMap, demo) | top-1 float32 in memory | top-1 {label} | "
                  "difference [95 % CI], paired p |", "| --- | --- | --- | --- |"]
        for variant, v in r[key].items():
            lines.append(f"| {variant} | {v['top1_float32']:.3f} | {v['top1_other']:.3f} | "
                         f"{v['difference']:+.3f} [{v['ci_low']:+.3f}, {v['ci_high']:+.3f}], "
                         f"p={v['p']:.2f} |")
    return "\n".join(lines)
