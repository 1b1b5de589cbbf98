"""CAFMap's condition of one clip: captions -> AudioSet labels -> a [T, D] sequence.

Each representative frame's caption is matched to the labels that have a
prototype (cosine similarity of sentence embeddings, computed by the caller); of
the top-k labels, those at or above the mean of the top-k similarities are kept;
the frame's condition vector is the mean of their prototypes.  Frames that are
not representative stay zero and are off in the mask (the generator puts seeded
noise there).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass
class ClipCondition:
    sequence: np.ndarray  # [T, D] float32, zeros off the representative frames
    mask: np.ndarray  # [T] bool, True on representative frames
    chosen: list[tuple[int, int, str, float]]  # (frame_index, rank, label, similarity)


def clip_condition(frame_indices: Sequence[int], similarities: np.ndarray,
                   prototypes: np.ndarray, labels: Sequence[str], n_frames: int,
                   top_k: int = 5) -> ClipCondition:
    """``similarities[j]`` are frame ``frame_indices[j]``'s caption vs every label."""
    sequence = np.zeros((n_frames, prototypes.shape[1]), np.float32)
    mask = np.zeros(n_frames, bool)
    chosen: list[tuple[int, int, str, float]] = []
    for index, row in zip(frame_indices, similarities, strict=True):
        top = np.argsort(-row, kind="stable")[:top_k]
        keep = [i for i in top if row[i] >= row[top].mean()]
        sequence[int(index)] = prototypes[keep].mean(axis=0)
        mask[int(index)] = True
        chosen += [(int(index), rank, labels[i], float(row[i]))
                   for rank, i in enumerate(keep, 1)]
    return ClipCondition(sequence, mask, chosen)
