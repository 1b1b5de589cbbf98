"""Principal components of frames, fitted a block of clips at a time.

The PCA control projects a training's vision frames on the first components of its
train frames.  At the study's scale those frames are 756,000 rows of 1,536 values:
an exact SVD of them (sklearn's ``PCA(svd_solver="full")``) needs them whole, in one
private copy, plus a factor as large, which no workstation that holds the training's
own copy has room for.  The components are the eigenvectors of the frames'
covariance, and the covariance is a sum over frames: accumulated block by block in
float64 (the frames shifted by the first block's mean, so that the sum of squares
keeps its digits), it is exact up to rounding, with memory of one block and a
1,536-square matrix.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from vida.errors import UsageError


class FramePCA:
    """``transform(rows) = (rows - mean) @ components.T``, in float32 as the saved
    model applies it; components as rows, each signed like sklearn's (its largest
    entry positive)."""

    def __init__(self, mean: np.ndarray, components: np.ndarray) -> None:
        self.mean_, self.components_ = mean, components

    @property
    def n_components_(self) -> int:
        return len(self.components_)

    @classmethod
    def fit(cls, blocks: Iterable[np.ndarray], width: int) -> FramePCA:
        """The first ``width`` components of the frames (the last axis) of ``blocks``."""
        shift, total, gram, n = None, None, None, 0
        for block in blocks:
            rows = block.reshape(-1, block.shape[-1]).astype(np.float64)
            if shift is None:
                shift = rows.mean(axis=0)
                total, gram = np.zeros_like(shift), np.zeros((len(shift), len(shift)))
            rows -= shift
            total += rows.sum(axis=0)
            gram += rows.T @ rows
            n += len(rows)
        if n < 2:
            raise UsageError("a PCA needs at least two frames")
        centre = total / n
        values, vectors = np.linalg.eigh((gram - n * np.outer(centre, centre)) / (n - 1))
        components = vectors[:, np.argsort(values)[::-1][:min(width, n, len(values))]].T
        largest = np.abs(components).argmax(axis=1)
        components *= np.sign(components[np.arange(len(components)), largest])[:, None]
        return cls((shift + centre).astype(np.float32), components.astype(np.float32))

    def transform(self, rows: np.ndarray) -> np.ndarray:
        """Rows ``[k, d]`` on the components: ``[k, width]``."""
        return (rows - self.mean_) @ self.components_.T
