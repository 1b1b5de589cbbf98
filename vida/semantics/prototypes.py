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
import struct
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from vida.errors import MissingInput, UsageError
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


class DamagedTFRecord(UsageError):
    """A TFRecord file that is truncated or corrupt, with the record where it broke."""

    def __init__(self, path: Path, index: int, cause: str) -> None:
        super().__init__(f"{path}: record {index} is unreadable ({cause}): the file is "
                         "truncated or corrupt; download it again")
        self.path, self.index = path, index


@dataclass
class TFRecordPrototypes:
    prototypes: dict[str, np.ndarray]
    skipped: list[DamagedTFRecord] = field(default_factory=list)


def check_framing(path: Path) -> int:
    """The number of records, after checking that each record's length field fits in
    the file: the ``tfrecord`` reader allocates whatever a length says, so a corrupt
    one would ask for exabytes before any error."""
    size, offset, index = path.stat().st_size, 0, 0
    with open(path, "rb") as fh:
        while offset < size:
            head = fh.read(12)
            if len(head) < 12:
                raise DamagedTFRecord(path, index, f"header cut short at byte {offset}")
            (length,) = struct.unpack("<Q", head[:8])
            end = offset + 12 + length + 4
            if end > size:
                raise DamagedTFRecord(path, index, f"it claims {length} bytes, past the "
                                      f"file's end at byte {size}")
            offset = fh.seek(end)
            index += 1
    return index


def _clip_embeddings(path: Path) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """(video_id, label indices, mean embedding) per record with frames."""
    from google.protobuf.message import DecodeError  # tfrecord's own dependency
    from tfrecord.reader import tfrecord_loader

    check_framing(path)
    records = tfrecord_loader(str(path), None,
                              description={"video_id": "byte", "labels": "int"},
                              sequence_description={"audio_embedding": "byte"})
    index = 0  # the record being read when one fails
    try:
        for context, sequence in records:
            frames = [np.frombuffer(bytes(f), dtype=np.uint8) if not isinstance(f, np.ndarray)
                      else np.asarray(f, dtype=np.uint8).reshape(-1)
                      for f in sequence["audio_embedding"]]
            if frames:
                yield (bytes(context["video_id"]).decode(), np.asarray(context["labels"]),
                       dequantise(np.stack(frames)).mean(axis=0))
            index += 1
    except (DecodeError, KeyError, ValueError, TypeError, RuntimeError) as exc:
        raise DamagedTFRecord(path, index, f"{type(exc).__name__}: {exc}") from None


def _file_sums(path: Path, names: list[str], segments: dict | None, mids: dict
               ) -> tuple[dict[str, np.ndarray], Counter]:
    """Per label, the sum of one file's clip embeddings and their count."""
    sums: dict[str, np.ndarray] = defaultdict(lambda: np.zeros(128, np.float64))
    counts: Counter = Counter()
    for video_id, label_ids, clip in _clip_embeddings(path):
        if segments is not None:
            if video_id not in segments:
                continue  # not a balanced-train segment
            labels = [mids[m] for m in segments[video_id] if m in mids]
        else:
            labels = [names[int(i)] for i in label_ids.reshape(-1)]
        for label in labels:
            sums[label] += clip
            counts[label] += 1
    return sums, counts


def prototypes_from_tfrecords(folder: Path, labels_csv: str | None = None,
                              segments_csv: Path | None = None, strict: bool = False
                              ) -> TFRecordPrototypes:
    """Per label, the mean embedding of its clips over every readable file; a damaged
    file is skipped whole (listed in ``skipped``), or raised with ``strict``."""
    files = sorted(folder.glob("*.tfrecord")) if folder.is_dir() else [folder]
    if not files:
        raise MissingInput(f"{folder}: no .tfrecord files")
    names = load_labels(labels_csv)
    segments = balanced_segments(segments_csv) if segments_csv else None
    mids = label_mids(labels_csv) if segments_csv else {}
    sums: dict[str, np.ndarray] = defaultdict(lambda: np.zeros(128, np.float64))
    counts: Counter = Counter()
    result = TFRecordPrototypes({})
    for file in files:
        try:
            file_sums, file_counts = _file_sums(file, names, segments, mids)
        except DamagedTFRecord as exc:
            if strict:
                raise
            result.skipped.append(exc)
            continue
        for label, total in file_sums.items():
            sums[label] += total
        counts.update(file_counts)
    result.prototypes = {label: (sums[label] / counts[label]).astype(np.float32)
                         for label in sums}
    return result


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
