"""The semantic dictionary: for each action class, the AudioSet labels it should sound like.

Built by cosine similarity between sentence embeddings of the class name ('+' read
as a space) and of each of the 527 AudioSet label names; or imported from the
study's ``svd.csv`` (``Video Label``, ``Audio Labels`` joined by "; ").
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from vida.errors import UsageError
from vida.semantics.audioset import load_labels
from vida.semantics.text import class_phrase, embed

Entries = dict[str, list[tuple[str, float | None]]]  # class -> [(label, similarity)]


def build_dictionary(classes: Sequence[str], top_n: int = 5, text_encoder: str | None = None,
                     labels: Sequence[str] | None = None) -> Entries:
    labels = list(labels or load_labels())
    label_vecs = embed(labels, text_encoder)
    class_vecs = embed([class_phrase(c) for c in classes], text_encoder)
    sims = class_vecs @ label_vecs.T
    out: Entries = {}
    for cls, row in zip(classes, sims, strict=True):
        best = np.argsort(-row, kind="stable")[:top_n]
        out[cls] = [(labels[i], float(row[i])) for i in best]
    return out


def read_svd_csv(path: Path) -> Entries:
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or not {"Video Label", "Audio Labels"} <= set(reader.fieldnames):
            raise UsageError(f"{path}: expected columns 'Video Label' and 'Audio Labels'")
        out: Entries = {}
        for n, row in enumerate(reader, start=2):
            cls = (row["Video Label"] or "").strip()
            labels = [x.strip() for x in (row["Audio Labels"] or "").split(";") if x.strip()]
            if not cls or not labels:
                raise UsageError(f"{path} row {n}: empty class or labels")
            out[cls] = [(label, None) for label in labels]
    return out
