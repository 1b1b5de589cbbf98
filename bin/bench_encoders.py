#!/usr/bin/env python
"""Throughput of the transformer encoders: the whole pipeline against the model alone.

    .venv/bin/python bin/bench_encoders.py [--clips 6] [--out bench-encoders] [--quick]

For each encoder (tiny and base-sized configs, random weights: timing needs no
pretrained weights) and each device (CPU; CUDA when torch sees one, otherwise it
says so and skips), in one run:

* pipeline: ``vida-batch encode``'s job on real synthetic clips (decode workers ->
  batched encoding -> sealed shards), in clips/s;
* forward only: the same encoder on the same clips' inputs already in memory, at
  the same batch size, in clips/s;
* ratio = pipeline / forward only: >= 0.9 means decoding hides behind the model.

Writes ``OUT/results.json`` and ``OUT/results.md`` and prints the table.  Not a
test: it takes minutes, and its numbers are for the README.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vida import open_catalog  # noqa: E402
from vida.catalog.records.clip_queries import USABLE_CLIPS, clips_of  # noqa: E402
from vida.encoders import get_encoder  # noqa: E402
from vida.jobs.data.encode import DecodeForEncode, default_workers, encode_clips  # noqa: E402
from vida.jobs.data.ingest import ingest  # noqa: E402
from vida.jobs.data.split import assign_splits  # noqa: E402
from vida.store import FeatureStore  # noqa: E402
from vida.synth import synthesize  # noqa: E402

TINY_VIT = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
            "intermediate_size": 128, "image_size": 64, "patch_size": 16}


def make_models(root: Path, quick: bool) -> dict[str, tuple[str, str]]:
    """name -> (modality, spec) for random-weight models saved in folders."""
    import warnings

    from transformers import (
        ASTConfig,
        ASTFeatureExtractor,
        ASTForAudioClassification,
        ViTConfig,
        ViTModel,
    )

    torch.manual_seed(0)
    ViTModel(ViTConfig(**TINY_VIT), add_pooling_layer=False).save_pretrained(root / "vit-tiny")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ASTForAudioClassification(ASTConfig(hidden_size=64, num_hidden_layers=2,
                                            num_attention_heads=4, intermediate_size=128)
                                  ).save_pretrained(root / "ast-tiny")
        ASTFeatureExtractor().save_pretrained(root / "ast-tiny")
    models = {"vit-tiny": ("rgb", f"hf-image:{root / 'vit-tiny'}"),
              "ast-tiny (mean)": ("audio", f"ast:{root / 'ast-tiny'}?pooling=mean")}
    if not quick:
        ViTModel(ViTConfig(), add_pooling_layer=False).save_pretrained(root / "vit-base")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            ASTForAudioClassification(ASTConfig()).save_pretrained(root / "ast-base")
            ASTFeatureExtractor().save_pretrained(root / "ast-base")
        models["vit-base/16"] = ("rgb", f"hf-image:{root / 'vit-base'}")
        models["ast-base (mean)"] = ("audio", f"ast:{root / 'ast-base'}?pooling=mean")
    return models


def workdir(root: Path, clips: int) -> tuple:
    data = synthesize(root / "data", n_classes=2, clips_per_class=max(2, clips // 2), seed=1)
    catalog = open_catalog(root / "catalog.db", create=True)
    store = FeatureStore(catalog, root / "store")
    ingest(catalog, store, data.manifest, workers=2, progress=False)
    assign_splits(catalog, seed=1)
    return catalog, store


def forward_only(spec: str, modality: str, items: list, grid: dict, device: str, dtype: str,
                 batch_size: int) -> float:
    """clips/s of the encoder on inputs already decoded into memory."""
    decode = DecodeForEncode(grid["n_frames"], grid["fps"], grid["frame_size"], "farneback",
                             (modality,))
    inputs = np.stack([decode(item)[1][modality] for item in items])
    encoder = get_encoder(spec, n_frames=grid["n_frames"], device=device, dtype=dtype,
                          batch_size=batch_size)
    encoder.encode(inputs[:1])  # load the model and warm up, outside the timing
    clips_per_batch = max(1, batch_size // grid["n_frames"])
    start = time.perf_counter()
    for i in range(0, len(inputs), clips_per_batch):
        encoder.encode(inputs[i:i + clips_per_batch])
    return len(inputs) / (time.perf_counter() - start)


def pipeline(catalog, store, spec: str, modality: str, device: str, dtype: str,
             batch_size: int, workers: int) -> float:
    """clips/s of the encode job (the model already loaded in this process)."""
    summary = encode_clips(catalog, store, encoders={modality: spec}, device=device,
                           dtype=dtype, batch_size=batch_size, workers=workers, progress=False,
                           retry_failed=True)
    n = max(summary.encoded.values())
    return n / summary.seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clips", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=36)
    parser.add_argument("--workers", type=int, default=None,
                        help="decoding processes [encode's default: 1 on the CPU]")
    parser.add_argument("--out", type=Path, default=Path("bench-encoders"))
    parser.add_argument("--quick", action="store_true", help="tiny models only")
    args = parser.parse_args()
    workers = args.workers or default_workers("cpu")
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    if "cuda" not in devices:
        print("no CUDA device: GPU rows skipped (torch.cuda.is_available() is False)")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        models = make_models(root / "models", args.quick)
        catalog, store = workdir(root / "work", args.clips)
        grid = {k: store.info("rgb/hog-color").params[k] for k in ("n_frames", "fps",
                                                                     "frame_size")}
        clips = clips_of(catalog, default=USABLE_CLIPS,
                         needs=("clip_key", "source_uri", "class_name", "clip_id"))
        clips = clips[["clip_key", "source_uri", "class_name", "clip_id"]]
        items = [tuple(r) for r in clips.itertuples(index=False, name=None)]
        for name, (modality, spec) in models.items():
            for device in devices:
                dtypes = ["float32", "bfloat16"] if "base" in name and "vit" in name else [
                    "float32"]
                for dtype in dtypes:
                    alone = forward_only(spec, modality, items, grid, device, dtype,
                                         args.batch_size)
                    whole = pipeline(catalog, store, spec, modality, device, dtype,
                                     args.batch_size, workers if device == "cpu"
                                     else args.workers or default_workers(device))
                    rows.append({"encoder": name, "device": device, "dtype": dtype,
                                 "batch_size": args.batch_size, "clips": len(items),
                                 "pipeline_clips_s": round(whole, 3),
                                 "forward_only_clips_s": round(alone, 3),
                                 "ratio": round(whole / alone, 2)})
                    print(json.dumps(rows[-1]), flush=True)
                    # the next run must encode again: drop the set's rows
                    with catalog.transaction() as session:
                        session.execute(__import__("sqlalchemy").text(
                            "DELETE FROM features WHERE feature_set NOT IN "
                            "('rgb/hog-color', 'flow/flow-hist', 'audio/ast-fbank')"))
        catalog.dispose()
    machine = (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
               f"torch {torch.__version__}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps({"machine": machine, "rows": rows},
                                                      indent=1))
    header = "| encoder | device | dtype | pipeline clips/s | forward-only clips/s | ratio |"
    lines = [f"Machine: {machine}; {rows[0]['clips'] if rows else 0} clips of 18 frames, "
             f"batch {args.batch_size} frames, {workers} decoding process(es) on the CPU.", "",
             header,
             "| --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {r['encoder']} | {r['device']} | {r['dtype']} | {r['pipeline_clips_s']} | "
              f"{r['forward_only_clips_s']} | {r['ratio']} |" for r in rows]
    (args.out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
