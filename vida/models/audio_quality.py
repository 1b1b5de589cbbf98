"""How close generated audio features are to the real ones, clip by clip.

Three questions, each against what a generator could reach without learning the
clip's sound:

* squared error per clip, of the generated features and of two references: the mean
  of the real train audio (what a generator that learned nothing predicts) and the
  mean of the real train audio of the clip's class (what one that only knows the
  class, which vision already tells the classifier, predicts);
* retrieval: the rank of a clip's own real audio among all the test clips' real
  audio, by cosine similarity to its generated audio (1: its own comes first;
  chance: the middle).

Arrays in, arrays out: ``[clips, ...]`` features, flattened per clip.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def _flat(features: np.ndarray) -> np.ndarray:
    return np.asarray(features, dtype=np.float64).reshape(len(features), -1)


class TrainMeans:
    """The mean real audio of the train clips, overall and per class, summed a block
    at a time (a training set need not fit in memory twice)."""

    def __init__(self) -> None:
        self._sums: dict[str, np.ndarray] = {}
        self._counts: dict[str, int] = {}

    def add(self, features: np.ndarray, classes: Iterable[str]) -> None:
        flat, classes = _flat(features), np.asarray(list(classes), dtype=object)
        for name in np.unique(classes):
            rows = flat[classes == name]
            self._sums[name] = self._sums.get(name, 0) + rows.sum(0)
            self._counts[name] = self._counts.get(name, 0) + len(rows)

    def overall(self) -> np.ndarray:
        return sum(self._sums.values()) / sum(self._counts.values())

    def of_classes(self, classes: Iterable[str]) -> np.ndarray:
        """Each clip's class mean (the overall mean for a class with no train clip)."""
        overall = self.overall()
        return np.stack([self._sums[c] / self._counts[c] if c in self._sums else overall
                         for c in classes])


def squared_errors(predicted: np.ndarray, real: np.ndarray) -> np.ndarray:
    """Per clip, the summed squared error of ``predicted`` (``[clips, ...]``, or one
    vector for every clip) against ``real``."""
    real = _flat(real)
    predicted = np.asarray(predicted, dtype=np.float64)
    predicted = predicted.reshape(len(real), -1) if predicted.size == real.size \
        else predicted.reshape(1, -1)
    return ((real - predicted) ** 2).sum(1)


def retrieval_ranks(generated: np.ndarray, real: np.ndarray, block: int = 1024
                    ) -> np.ndarray:
    """Per clip, the rank (1 = first) of its own real audio among every clip's real
    audio, by cosine similarity to its generated audio; ties count against it."""
    gen, ref = _unit(_flat(generated)), _unit(_flat(real))
    ranks = np.empty(len(gen), dtype=np.int64)
    for start in range(0, len(gen), block):
        similar = gen[start:start + block] @ ref.T  # [block, clips]
        own = similar[np.arange(len(similar)), np.arange(start, start + len(similar))]
        ranks[start:start + block] = (similar >= own[:, None]).sum(1)
    return ranks


def _unit(rows: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return rows / np.where(norms > 0, norms, 1.0)
