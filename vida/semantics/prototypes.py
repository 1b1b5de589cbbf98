"""AudioSet label prototypes: one 128-d vector per label.

* From AudioSet's embedding TFRecords (``tf.train.SequenceExample``: context
  ``video_id``, ``labels`` (int64 indices), ``start_time_seconds``,
  ``end_time_seconds``; feature list ``audio_embedding``: one 128-byte uint8 vector
  per second), read with the ``tfrecord`` package (no TensorFlow).  Bytes are
  dequantised the way AudioSet quantised them, ``q / 255 * 4 - 2`` (range [-2, 2]);
  per clip the mean over time, per label the mean over its clips.
* From the catalog: per label, the mean (over time, then clips) of the audio
  feature of the **train** clips tagged with it.  This is the default, because
  conditions then live in the same space as the generator's targets (the study
  mixed AudioSet's embedding space with projected AST features).
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd

from vida.semantics.audioset import label_mids, load_labels

QUANT_MIN, QUANT_MAX = -2.0, 2.0


def dequantise(q: np.ndarray) -> np.ndarray:
    return q.astype(np.float32) / 255.0 * (QUANT_MAX - QUANT_MIN) + QUANT_MIN


def balanced_segments(path: Path) -> dict[str, list[str]]:
    """YTID -> positive label mids, from balanced_train_segments.csv (3 comment lines)."""
    out = {}
    with open(path, newline="") as fh:
        for row in csv.reader(line for line in fh if not line.startswith("#")):
            if len(row) >= 4:
                out[row[0].strip()] = [m.strip().strip('"') for m in ",".join(row[3:]).split(",")]
    return out


def prototypes_from_tfrecords(folder: Path, labels_csv: str | None = None,
                              segments_csv: Path | None = None) -> dict[str, np.ndarray]:
    from tfrecord.reader import tfrecord_loader

    files = sorted(folder.glob("*.tfrecord")) if folder.is_dir() else [folder]
    if not files:
        raise FileNotFoundError(f"{folder}: no .tfrecord files")
    names = load_labels(labels_csv)
    segments = balanced_segments(segments_csv) if segments_csv else None
    mids = label_mids(labels_csv) if segments_csv else {}
    sums: dict[str, np.ndarray] = defaultdict(lambda: np.zeros(128, np.float64))
    counts: dict[str, int] = defaultdict(int)
    for file in files:
        records = tfrecord_loader(str(file), None,
                                  description={"video_id": "byte", "labels": "int"},
                                  sequence_description={"audio_embedding": "byte"})
        for context, sequence in records:
            video_id = bytes(context["video_id"]).decode()
            frames = [np.frombuffer(bytes(f), dtype=np.uint8) if not isinstance(f, np.ndarray)
                      else np.asarray(f, dtype=np.uint8).reshape(-1)
                      for f in sequence["audio_embedding"]]
            if not frames:
                continue
            clip = dequantise(np.stack(frames)).mean(axis=0)
            if segments is not None:
                if video_id not in segments:
                    continue  # not a balanced-train segment
                labels = [mids[m] for m in segments[video_id] if m in mids]
            else:
                labels = [names[int(i)] for i in np.asarray(context["labels"]).reshape(-1)]
            for label in labels:
                sums[label] += clip
                counts[label] += 1
    return {label: (sums[label] / counts[label]).astype(np.float32) for label in sums}


def label_prototypes(pairs: pd.DataFrame, clip_means: dict[str, np.ndarray]
                     ) -> dict[str, np.ndarray]:
    """Per label, the mean of ``clip_means`` over the clips tagged with it.

    ``pairs`` has columns clip_key, label (one row per tag); ``clip_means`` maps each
    of those clips to its time-averaged audio feature.
    """
    out = {}
    for label, group in pairs.groupby("label"):
        out[label] = np.mean([clip_means[k] for k in group["clip_key"]], axis=0).astype(np.float32)
    return out
