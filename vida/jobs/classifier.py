"""Training an action classifier: train on train, select on val, evaluate on test.

Metrics go to ``run_metrics`` (per epoch on val; final on test: top-1, top-5,
macro-F1, per-class accuracy), every test prediction to ``predictions``, and a
confusion-matrix PNG next to the checkpoint.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from sklearn.metrics import confusion_matrix, f1_score
from torch import nn

from vida.catalog.database import Catalog
from vida.catalog.schema import Prediction
from vida.catalog.writes import upsert
from vida.jobs.runs import failure_recorded, finish_run, log_metrics, start_run
from vida.jobs.training import (
    Standardizer,
    epoch_logger,
    fit,
    load_clips,
    load_inputs,
    loader,
    runs_root,
    save_checkpoint,
    seed_everything,
)
from vida.models import build_classifier
from vida.store.store import FeatureStore

DEFAULTS = {"lstm": {"lr": 1e-3, "batch_size": 16}, "mlp": {"lr": 1e-4, "batch_size": 32}}


@dataclass
class ClassifierSpec:
    arch: str = "lstm"
    rgb: str = "rgb/hog-color"
    flow: str = "flow/flow-hist"
    audio: str | None = None  # None: vision only
    vision: bool = True  # False: audio only (e.g. generated audio as a representation)
    epochs: int = 10
    lr: float | None = None
    batch_size: int | None = None
    seed: int = 0
    variant: str | None = None  # label within an experiment
    # audio missing at test time: test with this set in place of ``audio``, or with
    # "zeros" or "train-mean" (the train clips' mean audio feature)
    test_audio: str | None = None
    # modality dropout: each train clip's real audio is replaced, with probability
    # ``dropout_p`` (seeded), by its features from this (generated) set
    audio_dropout: str | None = None
    dropout_p: float = 0.5

    def __post_init__(self) -> None:
        if self.arch not in DEFAULTS:
            raise ValueError("--arch must be lstm or mlp")
        if not self.vision and not self.audio:
            raise ValueError("a classifier needs vision features, audio features or both")
        if (self.test_audio or self.audio_dropout) and not self.audio:
            raise ValueError("test-time or dropout audio needs a classifier trained with audio")
        self.lr = self.lr or DEFAULTS[self.arch]["lr"]
        self.batch_size = self.batch_size or DEFAULTS[self.arch]["batch_size"]

    @property
    def input_sets(self) -> list[str]:
        return ([self.rgb, self.flow] if self.vision else []) + ([self.audio] if self.audio
                                                                   else [])


def _audio_swaps(store: FeatureStore, spec: ClassifierSpec, parts: dict,
                 x: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Modality dropout on the train clips, and the test-time stand-in for audio."""
    if not (spec.test_audio or spec.audio_dropout):
        return x
    width = store.info(spec.audio).shape[-1]  # the audio block is the last one
    if spec.test_audio == "zeros":
        x["test"][:, :, -width:] = 0.0
    elif spec.test_audio == "train-mean":  # the real train audio's mean, before any dropout
        x["test"][:, :, -width:] = x["train"][:, :, -width:].mean(axis=0)
    elif spec.test_audio:
        x["test"][:, :, -width:] = store.read(spec.test_audio, parts["test"]["clip_key"].tolist())
    if spec.audio_dropout:
        keys = parts["train"]["clip_key"].tolist()
        swap = np.random.default_rng(spec.seed + 11).random(len(keys)) < spec.dropout_p
        if swap.any():
            chosen = [k for k, s in zip(keys, swap, strict=True) if s]
            x["train"][swap, :, -width:] = store.read(spec.audio_dropout, chosen)
    return x


def _predict(model: nn.Module, x: np.ndarray) -> np.ndarray:
    model.eval()
    with torch.no_grad():
        return torch.softmax(model(torch.from_numpy(x)), dim=-1).numpy()


def _accuracy(model: nn.Module, data) -> dict[str, float]:
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for xb, yb in data:
            correct += int((model(xb).argmax(-1) == yb).sum())
            total += len(yb)
    return {"top1": correct / max(total, 1)}


def confusion_png(matrix: np.ndarray, classes: list[str], path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    size = max(4.0, 0.45 * len(classes) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(classes)), classes, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(classes)), classes, fontsize=8)
    for (i, j), v in np.ndenumerate(matrix):
        if v:
            ax.text(j, i, str(v), ha="center", va="center", fontsize=7,
                    color="white" if v > matrix.max() / 2 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def train_classifier(catalog: Catalog, store: FeatureStore, query: str, spec: ClassifierSpec,
                     *, classes: list[str] | None = None, experiment_id: str | None = None,
                     runs: str | None = None, progress: bool = True) -> tuple[str, dict]:
    clips = load_clips(catalog, query)
    classes = classes or sorted(clips["class_name"].unique())
    index = {c: i for i, c in enumerate(classes)}
    parts = {s: clips[clips["split"] == s] for s in ("train", "val", "test")}
    for split, part in parts.items():
        if len(part) == 0:
            raise ValueError(f"the query has no {split} clips: run `vida-batch split`")
    g = seed_everything(spec.seed)
    run_id = start_run(catalog, kind="train-classifier", arch=spec.arch,
                       params={**asdict(spec), "classes": classes}, query=query,
                       feature_sets=spec.input_sets, seed=spec.seed, experiment_id=experiment_id)
    on_epoch = epoch_logger(catalog, run_id, spec.epochs, progress,
                            lambda t, v: f"train loss {t['loss']:.3f} val top-1 {v['top1']:.3f}")

    with failure_recorded(catalog, run_id):  # a damaged shard fails the run, recorded
        x = {s: load_inputs(store, p["clip_key"].tolist(), spec.input_sets)
             for s, p in parts.items()}
        x = _audio_swaps(store, spec, parts, x)
        y = {s: p["class_name"].map(index).to_numpy(np.int64) for s, p in parts.items()}
        norm = Standardizer.fit(x["train"])
        x = {s: norm(v) for s, v in x.items()}
        model = build_classifier(spec.arch, x["train"].shape[-1], len(classes))
        state, best_epoch = fit(
            model, loader(x["train"], y["train"], spec.batch_size, True, g),
            loader(x["val"], y["val"], 256, False), nn.CrossEntropyLoss(), epochs=spec.epochs,
            lr=spec.lr, score=_accuracy, better=lambda a, b: a["top1"] > b["top1"],
            on_epoch=on_epoch)
        model.load_state_dict(state)
        probs = _predict(model, x["test"])
        pred = probs.argmax(-1)
        truth = y["test"]
        top5 = np.argsort(-probs, axis=1)[:, :5]
        matrix = confusion_matrix(truth, pred, labels=list(range(len(classes))))
        metrics = {
            "top1": float((pred == truth).mean()),
            "top5": float(np.mean([t in row for t, row in zip(truth, top5, strict=True)])),
            "macro_f1": float(f1_score(truth, pred, average="macro",
                                       labels=list(range(len(classes))), zero_division=0)),
            "best_epoch": float(best_epoch),
            "n_test": float(len(truth)),
        }
        per_class = {f"acc/{c}": float(matrix[i, i] / matrix[i].sum())
                     for i, c in enumerate(classes) if matrix[i].sum()}
        folder = runs_root(runs) / run_id
        path = save_checkpoint(folder, model, state, {"input_norm": norm.state()},
                               {"arch": spec.arch, "spec": asdict(spec), "classes": classes})
        confusion_png(matrix, classes, folder / "confusion.png",
                      f"{spec.variant or spec.arch}: test top-1 {metrics['top1']:.3f}")
        log_metrics(catalog, run_id, {**metrics, **per_class}, split="test")
        rows = [{"run_id": run_id, "clip_key": k, "split": "test", "true_class": classes[t],
                 "pred_class": classes[p], "score": float(probs[i, p])}
                for i, (k, t, p) in enumerate(zip(parts["test"]["clip_key"], truth, pred,
                                                  strict=True))]
        with catalog.transaction() as session:
            upsert(session, Prediction, rows, key=("run_id", "clip_key"))
    finish_run(catalog, run_id, checkpoint=str(path))
    return run_id, metrics
