#!/usr/bin/env python
"""Time and disk of each step of the README's quick start, per 1,000 clips.

    .venv/bin/python bin/bench_quickstart.py [--clips 8] [--out bench/quickstart]

Runs the quick start's commands (the installed ``vida-batch``, each a process of its
own, as a user runs them) on a MiT-shaped tree of synthetic clips (its
``trainingSet.csv`` and ``validationSet.csv``), with models of the real sizes built
from configs with random weights (timing needs no pretrained weights): DINOv2-small
(ViT-S/14 at 224 px) for rgb and flow, AST base for audio (its pooled output per
time step, the vector its AudioSet head reads), BLIP base for captions.  Each step's
seconds and the bytes it added to the store and catalog are scaled to 1,000 clips.
The experiments are left out: they scale with seeds, epochs and feature sizes as
much as with clips (``vida-batch demo`` times them on 300 clips).

On a machine with CUDA it runs the encoders and captioner there too and says so;
without, it says that the GPU rows are skipped.  Writes ``OUT/results.json`` and
``OUT/results.md``.  Not a test: minutes of CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.helpers.mit_tree import mit_tree  # noqa: E402
from vida.semantics.audioset import load_labels  # noqa: E402
from vida.synth import synthesize  # noqa: E402

VIDA = str(Path(sys.executable).with_name("vida-batch"))


def make_models(root: Path) -> dict[str, Path]:
    """DINOv2-small, AST base (527 AudioSet labels) and BLIP base, random weights."""
    import warnings

    from transformers import (
        ASTConfig,
        ASTFeatureExtractor,
        ASTForAudioClassification,
        BertTokenizer,
        BlipConfig,
        BlipForConditionalGeneration,
        BlipImageProcessor,
        BlipProcessor,
        Dinov2Config,
        Dinov2Model,
    )

    torch.manual_seed(0)
    paths = {name: root / name for name in ("dinov2-small", "ast-base", "blip-base")}
    Dinov2Model(Dinov2Config(hidden_size=384, num_hidden_layers=12, num_attention_heads=6,
                             patch_size=14, image_size=224)).save_pretrained(
        paths["dinov2-small"])
    labels = load_labels()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ASTForAudioClassification(ASTConfig(
            id2label=dict(enumerate(labels)), label2id={n: i for i, n in enumerate(labels)})
        ).save_pretrained(paths["ast-base"])
        ASTFeatureExtractor().save_pretrained(paths["ast-base"])
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(30519)]
    tokenizer = BertTokenizer(vocab={w: i for i, w in enumerate(vocab)})
    BlipForConditionalGeneration(BlipConfig()).save_pretrained(paths["blip-base"])
    BlipProcessor(image_processor=BlipImageProcessor(), tokenizer=tokenizer).save_pretrained(
        paths["blip-base"])
    return paths


def disk_bytes(*paths: Path) -> int:
    total = 0
    for path in paths:
        if path.is_file():
            total += path.stat().st_size
        for file in path.rglob("*") if path.is_dir() else []:
            total += file.stat().st_size if file.is_file() else 0
    return total


def steps(models: dict[str, Path], device: str) -> list[tuple[str, list[str]]]:
    """The quick start's commands, in order (with this machine's device)."""
    dino, ast, blip = (str(models[k]) for k in ("dinov2-small", "ast-base", "blip-base"))
    rgb, audio = "rgb/dinov2-small-mean", "audio/ast-base-pooled"
    return [
        ("ingest (hand-made features, 2 workers)",
         ["ingest", "../MiT/trainingSet.csv", "--no-progress"]),
        ("ingest validationSet.csv", ["ingest", "../MiT/validationSet.csv", "--no-progress"]),
        ("split --mit", ["split", "--mit", "--val-fraction", "0.5"]),
        ("encode rgb + flow (DINOv2-small) + audio (AST base, pooled)",
         ["encode", "--encoder", f"rgb=hf-image:{dino}?pooling=mean",
          "--encoder", f"flow=hf-flow:{dino}", "--encoder", f"audio=ast:{ast}",
          "--device", device, "--no-progress"]),
        ("tag --model (AST head on the pooled set)",
         ["tag", "--model", ast, "--on", audio, "--source", "ast"]),
        ("dictionary build", ["dictionary", "build"]),
        ("filter", ["filter", "--dictionary", "minilm", "--tags", "ast", "--min-iou", "0"]),
        ("frames", ["frames", "--rgb", rgb]),
        ("caption --model (BLIP base)",
         ["caption", "--model", blip, "--rgb", rgb]),
        ("prototypes", ["prototypes", "--audio", audio, "--tags", "ast", "--name", "ast"]),
        ("condition", ["condition", "--prototypes", "prototype/ast", "--name", "ast"]),
    ]


def run_steps(work: Path, models: dict[str, Path], n_clips: int, device: str) -> list[dict]:
    rows = []
    for name, args in steps(models, device):
        before = disk_bytes(work / "store", work / "catalog.db")
        start = time.perf_counter()
        done = subprocess.run([VIDA, *args], cwd=work, capture_output=True, text=True,
                              env={**os.environ, "HF_HUB_OFFLINE": "1"})
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(f"{name} failed:\n{done.stderr}")
        added = disk_bytes(work / "store", work / "catalog.db") - before
        rows.append({"step": name, "device": device, "seconds": round(seconds, 2),
                     "s_per_1000": round(seconds * 1000 / n_clips),
                     "mb_per_1000": round(added / n_clips * 1000 / 1e6, 1)})
        print(f"{name:<62} {seconds:8.1f} s", flush=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clips", type=int, default=8, help="clips in all (3 classes)")
    parser.add_argument("--out", type=Path, default=Path("bench/quickstart"))
    args = parser.parse_args()
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    if "cuda" not in devices:
        print("no CUDA device: GPU rows skipped (torch.cuda.is_available() is False)")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        models = make_models(root / "models")
        per_class = max(2, -(-args.clips // 3))
        synthesize(root / "synth", n_classes=3, clips_per_class=per_class, seed=1)
        for device in devices:
            mit = mit_tree(root / "synth", root / device / "MiT", val_per_class=1)
            work = mit.parent / "lab"
            work.mkdir()
            rows += run_steps(work, models, 3 * per_class, device)
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps({"machine": machine, "clips": 3 * per_class,
                                                       "rows": rows}, indent=1))
    lines = [f"{3 * per_class} clips of 18 frames at 6 fps, {machine}", "",
             "| step | device | seconds | s / 1,000 clips | MB / 1,000 clips |",
             "| --- | --- | --- | --- | --- |"]
    lines += [f"| {r['step']} | {r['device']} | {r['seconds']} | {r['s_per_1000']:,} | "
              f"{r['mb_per_1000']} |" for r in rows]
    (args.out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
