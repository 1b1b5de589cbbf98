"""Training an action classifier: train on train, select on val, evaluate on test.

Metrics go to ``run_metrics`` (per epoch on val; final on test: top-1, top-5,
macro-F1, per-class accuracy), every test prediction to ``predictions``, and a
confusion-matrix PNG next to the checkpoint.
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from functools import partial

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import confusion_matrix, f1_score
from torch import nn

from vida.catalog.database import Catalog
from vida.catalog.records.predictions import add_predictions
from vida.catalog.records.runs import (
    add_metric_rows,
    close_run,
    epoch_rows,
    start_run,
)
from vida.clock import utcnow
from vida.errors import UsageError
from vida.jobs.core.batch_job import run_lifecycle
from vida.jobs.core.confusion import confusion_png
from vida.jobs.training.common import (
    checkpoint_bytes,
    fill_arch_defaults,
    fit,
    runs_root,
    seed_everything,
    torch_threads,
    training_device,
    write_checkpoint,
)
from vida.jobs.training.distill import DistillLoss, Teacher, distil_batches, soft_targets
from vida.jobs.training.inputs import (
    Blocks,
    ChunkOrder,
    Standardizer,
    batches,
    holding_for,
    load_blocks,
    read_float32,
    source_rows,
)
from vida.jobs.training.plan_reads import PlanReads
from vida.models import build_classifier
from vida.models.baselines import (
    JointLoss,
    JointOnInputs,
    VideoToAudioMLP,
    fit_translator,
    tent_predict,
    translate,
    with_missing_flag,
)
from vida.models.missing import missing_clips
from vida.models.pca import FramePCA
from vida.store.atomic import write_whole
from vida.store.located import Located, read_rows
from vida.store.store import FeatureStore

# what stands in for missing audio, computed in the training itself: zeros, the present
# train clips' mean audio, a learned missing-audio token, a video-to-audio MLP fitted
# where audio is present (any other name: a feature set, e.g. generated audio)
ZEROS, TRAIN_MEAN, TOKEN, MLP = "zeros", "train-mean", "token", "mlp"
STAND_INS = (ZEROS, TRAIN_MEAN, TOKEN, MLP)

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
    hidden: int | None = None  # the model's width [None: the study's, per arch]
    variant: str | None = None  # label within an experiment
    # audio missing at test time: test with this set in place of ``audio``, or with
    # "zeros" or "train-mean" (the train clips' mean audio feature)
    test_audio: str | None = None
    # the share of test clips whose audio is missing (drawn per class from ``seed`` by
    # vida.models.missing): the stand-in fills only theirs [None: every test clip's]
    test_missing: float | None = None
    # modality dropout: each train clip's real audio is replaced, with probability
    # ``dropout_p`` (seeded), by its features from this (generated) set
    audio_dropout: str | None = None
    dropout_p: float = 0.5
    # audio missing at training: the share of train clips whose audio is missing (drawn
    # per class from ``seed``, as at test), filled in with ``train_fill``: a stand-in
    # (:data:`STAND_INS`) or a (generated) set; the other clips keep their real audio
    train_missing: float | None = None
    train_fill: str | None = None
    # Lee et al.'s joint network in place of the classifier: it classifies from the
    # frames and generates audio, trained on cross-entropy plus this weight x the
    # generation's MSE where audio is present (None: not the joint network)
    joint_weight: float | None = None
    # TENT at test: the normalisation layers adapted over the test batches by
    # minimising the entropy of the predictions (the MLP classifier has them)
    tent: bool = False
    # vision alone, reduced by a PCA fitted on the train clips to this feature set's
    # width: the control for a classifier on an input as small as the audio's
    vision_pca: str | None = None
    # cross-modal distillation: a vision-only student of the teacher run/step named
    # here (vision + real audio), on cross-entropy plus KL to its soft outputs at this
    # temperature, over the train clips of ``distill_pool`` (None: its own)
    distill_from: str | None = None
    temperature: float = 2.0
    distill_pool: str | None = None

    def __post_init__(self) -> None:
        if self.arch not in DEFAULTS:
            raise UsageError("--arch must be lstm or mlp")
        if not self.vision and not self.audio:
            raise UsageError("a classifier needs vision features, audio features or both")
        if (self.test_audio or self.audio_dropout) and not self.audio:
            raise UsageError("test-time or dropout audio needs a classifier trained with audio")
        if self.test_missing is not None and not (
                self.test_audio and 0.0 <= self.test_missing <= 1.0):
            raise UsageError(f"a missing rate at test ({self.test_missing}) needs a stand-in "
                             "for the missing audio and lies between 0 and 1")
        self._check_train_missing()
        if self.joint_weight is not None and not (self.audio and self.vision
                                                  and self.test_audio is None):
            raise UsageError("the joint network learns to generate the audio from the frames: "
                             "it needs both, and reads no audio at test")
        if self.tent and self.arch != "mlp":
            raise UsageError("TENT adapts normalisation layers, which only the MLP classifier "
                             "has: use --arch mlp")
        if self.vision_pca and (self.audio or not self.vision):
            raise UsageError("a PCA of vision is a vision-only classifier: no audio")
        if self.distill_from and (self.audio or not self.vision):
            raise UsageError("a distilled student is a vision-only classifier: no audio")
        fill_arch_defaults(self, DEFAULTS)

    def _check_train_missing(self) -> None:
        if self.train_missing is not None and not (
                self.audio and self.train_fill and 0.0 <= self.train_missing <= 1.0):
            raise UsageError(f"a missing rate at training ({self.train_missing}) needs a "
                             "classifier with audio, a fill for the missing audio, and lies "
                             "between 0 and 1")
        if (self.test_audio == TOKEN) != (self.train_fill == TOKEN and self.test_audio
                                          is not None):
            raise UsageError("a learned missing-audio token is learned at training: give "
                             "it as both the training fill and the test stand-in")

    @property
    def input_sets(self) -> list[str]:
        return ([self.rgb, self.flow] if self.vision else []) + ([self.audio] if self.audio
                                                                   else [])


def _predict(model: nn.Module, x: Blocks, norm: Standardizer, device: str = "cpu"
             ) -> np.ndarray:
    """Class probabilities of every clip, a batch at a time (the same bits as one
    pass over the split, without its activations all in memory at once)."""
    model.eval()
    with torch.no_grad():
        parts = [torch.softmax(model(xb), dim=-1).cpu().numpy()
                 for xb, _ in batches(x, np.zeros(x.n), PREDICT_BATCH, False, norm=norm,
                                      device=device)]
    return np.concatenate(parts)


PREDICT_BATCH = 256


def _accuracy(model: nn.Module, data) -> dict[str, float]:
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for xb, yb in data:
            correct += int((model(xb).argmax(-1) == yb).sum())
            total += len(yb)
    return {"top1": correct / max(total, 1)}


@dataclass(frozen=True)
class ClassifierTask:
    """One classifier training, ready to run anywhere: its clips, their labels and
    where their features are (located in the driver; the worker reads no catalog)."""

    spec: ClassifierSpec
    classes: tuple[str, ...]
    keys: dict[str, tuple[str, ...]]  # split -> clip keys, in clip_key order
    labels: dict[str, np.ndarray]  # split -> class indices
    inputs: dict[str, tuple[Located, ...]]  # split -> the input sets' rows
    test_audio: Located | None = None  # the stand-in for audio at test time
    test_missing: np.ndarray | None = None  # per test clip: its audio is missing [all]
    dropout: tuple[np.ndarray, Located] | None = None  # swapped train rows, their audio
    audio_width: int = 0  # D of the audio block (the last of the inputs)
    threads: int = 1
    device: str = "cpu"  # fixed, so that a training gives the same numbers wherever it runs
    # a trained twin's checkpoint and best epoch: this item only tests that model (the
    # same training, another test-time input), it does not train again
    trained: tuple[bytes, int] | None = None
    pca_width: int = 0  # the vision block's PCA components (spec.vision_pca's width)
    teacher: Teacher | None = None  # distillation: the teacher and its clips' inputs
    # where the features are held: "memory" (read once), "stream" (batches read from
    # the store: the features exceed the memory budget); and the scratch folder whose
    # read-only copies the trainings of one machine share (None: this process's own)
    holding: str = "memory"
    scratch: str | None = None
    chunk_order: bool | None = None  # shuffle by stored chunk [None: when streamed]
    train_missing: np.ndarray | None = None  # per train clip: its audio is missing [none]


@dataclass
class ClassifierResult:
    """What a classifier training hands back to the driver to commit."""

    epochs: list[tuple[int, dict[str, float], dict[str, float]]]
    metrics: dict[str, float]
    per_class: dict[str, float]
    probs: np.ndarray  # test clips x classes
    truth: np.ndarray  # test clips' class indices
    matrix: np.ndarray
    checkpoint: bytes
    config: dict
    started_at: datetime
    finished_at: datetime
    confusion: bytes = b""  # the confusion matrix's PNG

    @property
    def correct(self) -> np.ndarray:
        """Per test clip (clip_key order), 1 where the prediction was right."""
        return (self.probs.argmax(-1) == self.truth).astype(float)


def plan_teacher(reads: PlanReads, query: str, spec: ClassifierSpec, teacher: ClassifierSpec,
                 checkpoint: bytes) -> Teacher:
    """Locate the distillation pool's train clips for the teacher's inputs."""
    clips = reads.clips(spec.distill_pool or query)
    keys = tuple(clips.loc[clips["split"] == "train", "clip_key"])
    inputs = tuple(reads.locate(name, keys) for name in teacher.input_sets)
    return Teacher(checkpoint, teacher.arch, teacher.hidden, inputs, keys,
                   reads.info(teacher.audio).shape[-1])


def plan_classifier(catalog: Catalog, store: FeatureStore, query: str, spec: ClassifierSpec,
                    classes: list[str] | None = None, threads: int = 1,
                    device: str = "cpu", reads: PlanReads | None = None) -> ClassifierTask:
    """The driver's half before training: choose the clips, locate their features
    (through ``reads``, which an experiment shares between its trainings)."""
    reads = reads or PlanReads(catalog, store)
    clips = reads.clips(query)
    classes = classes or sorted(clips["class_name"].unique())
    index = {c: i for i, c in enumerate(classes)}
    parts = {s: clips[clips["split"] == s] for s in ("train", "val", "test")}
    for split, part in parts.items():
        if len(part) == 0:
            raise UsageError(f"the query has no {split} clips: run `vida-batch split`")
    keys = {s: tuple(p["clip_key"]) for s, p in parts.items()}
    try:
        inputs = {s: tuple(reads.locate(name, k) for name in spec.input_sets)
                  for s, k in keys.items()}
    except KeyError as exc:
        raise UsageError(f"{exc.args[0].split(';')[0]}; restrict the --query to clips that "
                         "have it") from None
    test_audio = (reads.locate(spec.test_audio, keys["test"])
                  if spec.test_audio and spec.test_audio not in STAND_INS else None)
    train_missing = _missing(parts["train"], "train", spec.train_missing, spec.seed)
    width = reads.info(spec.audio).shape[-1] if spec.audio else 0
    pca_width = reads.info(spec.vision_pca).shape[-1] if spec.vision_pca else 0
    return ClassifierTask(spec, tuple(classes), keys,
                          {s: p["class_name"].map(index).to_numpy(np.int64)
                           for s, p in parts.items()}, inputs, test_audio,
                          _missing(parts["test"], "test", spec.test_missing, spec.seed),
                          _swapped_train_audio(reads, spec, keys["train"], train_missing),
                          width, threads, device, pca_width=pca_width,
                          train_missing=train_missing)


def _swapped_train_audio(reads: PlanReads, spec: ClassifierSpec, train: tuple[str, ...],
                         missing: np.ndarray | None) -> tuple[np.ndarray, Located] | None:
    """The train clips whose audio comes from another set, and their rows there:
    modality dropout's draw (seeded), and the missing clips where that set fills them."""
    swap = np.zeros(len(train), dtype=bool)
    source = None
    if spec.audio_dropout:
        swap = np.random.default_rng(spec.seed + 11).random(len(train)) < spec.dropout_p
        source = spec.audio_dropout
    if missing is not None and spec.train_fill not in STAND_INS:
        if source not in (None, spec.train_fill):
            raise UsageError("modality dropout and the missing clips' fill must be one set")
        swap, source = swap | missing, spec.train_fill
    chosen = [k for k, s in zip(train, swap, strict=True) if s]
    return (swap, reads.locate(source, chosen)) if chosen else None


def _missing(clips: pd.DataFrame, split: str, rate: float | None, seed: int
             ) -> np.ndarray | None:
    """Per clip of the split (clip_key order), whether its audio is missing at the
    rate (None: no rate, every clip's audio as it is asked for)."""
    if rate is None:
        return None
    drawn = clips[["clip_key", "class_name"]].assign(split=split)
    gone = set(missing_clips(drawn, [rate], seed)["clip_key"])
    return clips["clip_key"].isin(gone).to_numpy()


def fit_classifier(task: ClassifierTask) -> ClassifierResult:
    """Train on train, select on val, predict test: the map of a classifier item (it
    runs in any process and touches no catalog).  With ``task.trained``, only test
    that model."""
    started = utcnow()
    spec = task.spec
    with torch_threads(task.threads):
        g = seed_everything(spec.seed)
        x = _swap_audio(task, {s: load_blocks(parts, stream=task.holding == "stream",
                                              scratch=task.scratch)
                               for s, parts in task.inputs.items()})
        x, reduction = _principal_components(x, task.pca_width)
        y = task.labels
        train_x, train_y, loss_fn = _training_set(task, x)
        norm = Standardizer.fit_blocks(train_x)
        model, loss_fn = _model(task, train_x.width, loss_fn)
        model.to(task.device)
        epochs: list = []
        if task.trained is not None:
            blob, best_epoch = task.trained
            state = torch.load(io.BytesIO(blob), weights_only=True,
                               map_location="cpu")["state_dict"]
        else:
            state, best_epoch = fit(
                model, batches(train_x, train_y, spec.batch_size, True, norm=norm, generator=g,
                               device=task.device, sampler=_order(task, train_x)),
                batches(x["val"], y["val"], 256, False, norm=norm, device=task.device),
                loss_fn, epochs=spec.epochs, lr=spec.lr, score=_accuracy,
                better=lambda a, b: a["top1"] > b["top1"],
                on_epoch=lambda e, t, v: epochs.append((e, t, v)))
        model.load_state_dict(state)
        probs = (_tent_predict(model, x["test"], norm, task.device) if spec.tent else
                 _predict(model, x["test"], norm, task.device))
    metrics, per_class, matrix = _test_metrics(probs, y["test"], list(task.classes), best_epoch)
    blob = checkpoint_bytes(state, {"input_norm": norm.state(), **reduction})
    config = {"model": model.config, "arch": spec.arch, "spec": asdict(spec),
              "classes": list(task.classes)}
    png = confusion_png(matrix, list(task.classes),
                        f"{spec.variant or spec.arch}: test top-1 {metrics['top1']:.3f}")
    return ClassifierResult(epochs, metrics, per_class, probs, y["test"], matrix, blob, config,
                            started, utcnow(), png)


def _model(task: ClassifierTask, width: int, loss_fn: nn.Module
           ) -> tuple[nn.Module, nn.Module]:
    """The classifier the spec names, and its loss (the joint network's adds its
    generation's)."""
    spec = task.spec
    if spec.joint_weight is None:
        return build_classifier(spec.arch, width, len(task.classes), spec.hidden), loss_fn
    vision = width - task.audio_width - 1  # the frames, the audio, its missing flag
    model = JointOnInputs(vision, task.audio_width, len(task.classes), spec.hidden or 256)
    return model, JointLoss(model, spec.joint_weight)


def _tent_predict(model: nn.Module, x: Blocks, norm: Standardizer, device: str
                  ) -> np.ndarray:
    """Class probabilities of the test clips, the model adapted by TENT over their
    batches, in clip_key order (online: each batch sees the model the batches before
    it adapted)."""
    test = batches(x, np.zeros(x.n), TENT_BATCH, False, norm=norm, device=device)
    logits, _ = tent_predict(model, (xb for xb, _ in test), lr=TENT_LR)
    return torch.softmax(logits, dim=-1).cpu().numpy()


TENT_BATCH, TENT_LR = 64, 1e-3  # TENT's own: batches of 64 (its ImageNet runs), Adam


def _order(task: ClassifierTask, train: Blocks) -> ChunkOrder | None:
    """Streamed (or asked for): the train clips shuffled by stored chunk, so that a
    batch reads few chunks; otherwise None, a permutation of every clip."""
    chunked = task.holding == "stream" if task.chunk_order is None else task.chunk_order
    if not chunked or task.teacher is not None:
        return None
    return ChunkOrder(task.inputs["train"][0], task.spec.seed)


def _training_set(task: ClassifierTask, x: dict[str, Blocks]
                  ) -> tuple[Blocks, np.ndarray, nn.Module]:
    """What the classifier trains on: its train clips and labels, or, for a distilled
    student, every pool clip with the teacher's soft outputs (and its label where it
    has one)."""
    if task.teacher is None:
        return x["train"], task.labels["train"], nn.CrossEntropyLoss()
    pool_x, soft = soft_targets(task.teacher, len(task.classes), task.spec.temperature,
                                task.scratch)
    pool_x, target = distil_batches(task.labels["train"], task.keys["train"], pool_x, soft,
                                    task.teacher.keys)
    return pool_x, target, DistillLoss(task.spec.temperature)


def _principal_components(x: dict[str, Blocks], width: int
                          ) -> tuple[dict[str, Blocks], dict[str, dict]]:
    """Each split's frames projected on the first ``width`` principal components of
    the train clips' frames (none: ``x`` as it is), and the projection to keep.  The
    fit reads the train frames a few clips at a time: no copy of them is made."""
    if not width:
        return x, {}
    train = x["train"]
    pca = FramePCA.fit((train.rows(slice(i, i + _PCA_CLIPS))
                        for i in range(0, train.n, _PCA_CLIPS)), width)
    reduced = {s: Blocks.of([_projected(pca, b)]) for s, b in x.items()}
    return reduced, {"input_pca": {"mean": torch.from_numpy(pca.mean_.astype(np.float32)),
                                   "components": torch.from_numpy(
                                       pca.components_.astype(np.float32))}}


_PCA_CLIPS = 256  # clips of frames per step of the PCA's fit (float64: 57 MB at 1,536-d)


def _projected(pca: FramePCA, x: Blocks, clips: int = 1024) -> np.ndarray:
    """Each frame of the split projected on the components, a few clips at a time."""
    out = np.empty((x.n, x.steps, pca.n_components_), dtype=np.float32)
    for i in range(0, x.n, clips):
        part = x.rows(slice(i, i + clips))
        out[i:i + len(part)] = pca.transform(part.reshape(-1, part.shape[-1])).reshape(
            *part.shape[:-1], -1)
    return out


def _swap_audio(task: ClassifierTask, x: dict[str, Blocks]) -> dict[str, Blocks]:
    """Missing audio filled in (the test-time stand-in, the missing train clips' fill,
    modality dropout; the audio block is the last one of the inputs): each a private
    audio block, the vision blocks untouched."""
    spec = task.spec
    if not (spec.test_audio or spec.audio_dropout or spec.train_missing is not None
            or spec.joint_weight is not None):
        return x
    fill = _Fill(task, x["train"])
    if spec.test_audio:
        x["test"] = x["test"].replaced(-1, _test_audio(task, x["test"], fill))
    if task.dropout is not None or spec.train_missing is not None or \
            spec.joint_weight is not None:
        x["train"] = x["train"].replaced(-1, _train_audio(task, x["train"], fill))
    flagged = ("val", "test") if spec.joint_weight is not None else ("val",)
    if TOKEN in (spec.train_fill, spec.test_audio) or spec.joint_weight is not None:
        for split in flagged:  # every clip has its audio: no flag raised
            blocks = x[split]
            x[split] = blocks.replaced(-1, with_missing_flag(np.asarray(
                source_rows(blocks.sources[-1], slice(None)), dtype=np.float32), None))
    return x


class _Fill:
    """The stand-ins computed in the training (:data:`STAND_INS`), from the real audio
    of the train clips whose audio is present."""

    def __init__(self, task: ClassifierTask, train: Blocks) -> None:
        self.task, self.train = task, train
        self._mean: np.ndarray | None = None
        self._translator: VideoToAudioMLP | None = None

    def rows(self, name: str, blocks: Blocks, index: np.ndarray) -> np.ndarray:
        """The stand-in of the clips ``index`` of ``blocks`` (a split's inputs)."""
        shape = (len(index), blocks.steps, self.task.audio_width)
        if name in (ZEROS, TOKEN):  # the token: zeros, and the missing flag learned
            return np.zeros(shape, dtype=np.float32)
        if name == TRAIN_MEAN:
            return np.broadcast_to(self.mean(), shape)
        if name == MLP:
            return translate(self.translator(), _vision(blocks).rows(index))
        raise ValueError(f"no stand-in {name!r}")

    def present(self) -> np.ndarray | slice:
        missing = self.task.train_missing
        return slice(None) if missing is None else np.flatnonzero(~missing)

    def mean(self) -> np.ndarray:
        if self._mean is None:  # the real train audio's, before any fill or dropout
            self._mean = source_rows(self.train.sources[-1], self.present()).mean(axis=0)
        return self._mean

    def translator(self) -> VideoToAudioMLP:
        if self._translator is None:
            present = self.present()
            self._translator = fit_translator(
                _vision(self.train).rows(present),
                np.asarray(source_rows(self.train.sources[-1], present), dtype=np.float32),
                seed=self.task.spec.seed)
        return self._translator


def _vision(blocks: Blocks) -> Blocks:
    return Blocks.of(blocks.sources[:-1])


def _test_audio(task: ClassifierTask, test: Blocks, fill: _Fill) -> np.ndarray:
    """The test clips' audio: their own where present, the stand-in where missing (at
    ``task.test_missing``; without a rate, every clip's is)."""
    name = task.spec.test_audio
    missing = task.test_missing
    if missing is None:
        missing = np.ones(test.n, dtype=bool)
        own = np.empty((test.n, test.steps, task.audio_width), dtype=np.float32)
    else:
        own = np.array(source_rows(test.sources[-1], slice(None)), dtype=np.float32)
    gone = np.flatnonzero(missing)
    if task.test_audio is not None:
        own[gone] = read_float32(task.test_audio)[gone]
    elif len(gone):
        own[gone] = fill.rows(name, test, gone)
    return with_missing_flag(own, missing) if name == TOKEN else own


def _train_audio(task: ClassifierTask, train: Blocks, fill: _Fill) -> np.ndarray:
    """The train clips' audio: their own, dropout's and the missing clips' from another
    set (``task.dropout``), or the missing clips' stand-in."""
    own = np.array(source_rows(train.sources[-1], slice(None)), dtype=np.float32)
    if task.dropout is not None:
        swap, audio = task.dropout
        own[swap] = read_rows(audio)
    missing, name = task.train_missing, task.spec.train_fill
    if missing is not None and name in STAND_INS and missing.any():
        gone = np.flatnonzero(missing)
        own[gone] = fill.rows(name, train, gone)
    if name == TOKEN or task.spec.joint_weight is not None:
        return with_missing_flag(own, missing)
    return own


def _test_metrics(probs: np.ndarray, truth: np.ndarray, classes: list[str], best_epoch: int
                  ) -> tuple[dict[str, float], dict[str, float], np.ndarray]:
    pred = probs.argmax(-1)
    top5 = np.argsort(-probs, axis=1)[:, :5]
    labels = list(range(len(classes)))
    matrix = confusion_matrix(truth, pred, labels=labels)
    metrics = {
        "top1": float((pred == truth).mean()),
        "top5": float(np.mean([t in row for t, row in zip(truth, top5, strict=True)])),
        "macro_f1": float(f1_score(truth, pred, average="macro", labels=labels,
                                   zero_division=0)),
        "best_epoch": float(best_epoch),
        "n_test": float(len(truth)),
    }
    per_class = {f"acc/{c}": float(matrix[i, i] / matrix[i].sum())
                 for i, c in enumerate(classes) if matrix[i].sum()}
    return metrics, per_class, matrix


def record_classifier(catalog: Catalog, task: ClassifierTask, result: ClassifierResult,
                      run_id: str, runs: str | None) -> None:
    """The driver's half after training: checkpoint, confusion PNG, epoch and test
    metrics, every test prediction; the run finished."""
    folder = runs_root(runs) / run_id
    path = write_checkpoint(folder, result.checkpoint, result.config)
    write_whole(folder / "confusion.png", result.confusion)
    pred = result.probs.argmax(-1)
    classes = np.asarray(task.classes, dtype=object)
    rows = pd.DataFrame({"clip_key": list(task.keys["test"]),
                         "true_class": classes[result.truth], "pred_class": classes[pred],
                         "score": result.probs[np.arange(len(pred)), pred].astype(float)})
    with catalog.transaction() as session:
        add_metric_rows(session, [*epoch_rows(run_id, result.epochs),
                                  (run_id, None, "test", {**result.metrics, **result.per_class})])
        add_predictions(session, run_id, "test", rows)
        close_run(session, run_id, checkpoint=str(path))


def classifier_run_params(task: ClassifierTask) -> dict:
    streamed = {"holding": "stream"} if task.holding == "stream" else {}
    return {**asdict(task.spec), "classes": list(task.classes), **streamed}


def classifier_parts(task: ClassifierTask) -> list[Located]:
    """Every located input of the training (its features' size decides their holding)."""
    return [part for parts in task.inputs.values() for part in parts]


def start_classifier_run(catalog: Catalog, task: ClassifierTask, query: str,
                         experiment_id: str | None = None, sweep: bool = True,
                         **params: object) -> str:
    """A ``train-classifier`` run, or a ``test-classifier`` one for a task that tests
    a trained twin's model."""
    spec = task.spec
    kind = "train-classifier" if task.trained is None else "test-classifier"
    return start_run(catalog, kind=kind, arch=spec.arch,
                     params={**classifier_run_params(task), **params}, query=query,
                     feature_sets=spec.input_sets, seed=spec.seed, experiment_id=experiment_id,
                     sweep=sweep)


def train_classifier(catalog: Catalog, store: FeatureStore, query: str, spec: ClassifierSpec,
                     *, classes: list[str] | None = None, experiment_id: str | None = None,
                     runs: str | None = None, progress: bool = True,
                     memory_budget: int | None = None, device: str = "cpu"
                     ) -> tuple[str, dict]:
    """Plan, fit and record one classifier in this process; returns (run id, metrics).
    Features past ``memory_budget`` bytes (None: :func:`default_budget`) are streamed."""
    task = plan_classifier(catalog, store, query, spec, classes, threads=0,
                           device=training_device(device))
    task = replace(task, holding=holding_for(classifier_parts(task), memory_budget))
    with run_lifecycle(catalog, partial(start_classifier_run, catalog, task, query,
                                        experiment_id)) as run:
        result = fit_classifier(task)  # a damaged shard fails the run, recorded
        if progress:
            for epoch, train, val in result.epochs:
                print(f"  {run.run_id} epoch {epoch}/{spec.epochs}: train loss "
                      f"{train['loss']:.3f} val top-1 {val['top1']:.3f}", flush=True)
        record_classifier(catalog, task, result, run.run_id, runs)
        run.closed = True
    return run.run_id, result.metrics
