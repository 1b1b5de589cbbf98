"""Confidence intervals and paired tests for classifier comparisons on the same test clips.

Every variant of an experiment is evaluated on the same test clips over the same
seeds, so each is a ``[seeds, clips]`` matrix of 0/1 correctness.  The bootstrap
resamples both what varies by chance: the test clips (the clips we happened to
have) and the seeds (the training randomness).  A variant's 95 % interval is the
2.5 and 97.5 percentiles of its resampled accuracy; its comparison with a
baseline uses the **same** resampled clips and seeds for both (a paired
bootstrap), and the p-value is twice the smaller tail of the difference around 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RESAMPLES = 4000


@dataclass(frozen=True)
class Interval:
    mean: float
    low: float
    high: float


@dataclass(frozen=True)
class Paired:
    difference: Interval  # variant - baseline
    p_value: float

    @property
    def excludes_zero(self) -> bool:
        return self.difference.low > 0 or self.difference.high < 0


def _indices(n_seeds: int, n_clips: int, resamples: int, seed: int
             ) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (rng.integers(0, n_seeds, (resamples, n_seeds)),
            rng.integers(0, n_clips, (resamples, n_clips)))


def _resampled(correct: np.ndarray, seeds: np.ndarray, clips: np.ndarray) -> np.ndarray:
    """Accuracy of each resample: mean over its resampled seeds x clips."""
    out = np.empty(len(seeds))
    for b, (s, c) in enumerate(zip(seeds, clips, strict=True)):
        out[b] = correct[np.ix_(s, c)].mean()
    return out


def accuracy_interval(correct: np.ndarray, resamples: int = RESAMPLES, seed: int = 0
                      ) -> Interval:
    """95 % bootstrap interval of accuracy for a ``[seeds, clips]`` 0/1 matrix."""
    correct = np.asarray(correct, dtype=float)
    seeds, clips = _indices(*correct.shape, resamples, seed)
    values = _resampled(correct, seeds, clips)
    return Interval(float(correct.mean()), *map(float, np.percentile(values, [2.5, 97.5])))


def paired_difference(variant: np.ndarray, baseline: np.ndarray, resamples: int = RESAMPLES,
                      seed: int = 0) -> Paired:
    """Paired bootstrap of ``accuracy(variant) - accuracy(baseline)`` on the same clips
    and seeds; two-sided p-value for "no difference"."""
    variant, baseline = np.asarray(variant, float), np.asarray(baseline, float)
    if variant.shape != baseline.shape:
        raise ValueError(f"paired comparison needs the same seeds and clips: "
                         f"{variant.shape} vs {baseline.shape}")
    seeds, clips = _indices(*variant.shape, resamples, seed)
    diff = _resampled(variant - baseline, seeds, clips)
    observed = float((variant - baseline).mean())
    p = min(1.0, 2 * min((diff <= 0).mean(), (diff >= 0).mean()))
    low, high = np.percentile(diff, [2.5, 97.5])
    return Paired(Interval(observed, float(low), float(high)), float(max(p, 1 / resamples)))
