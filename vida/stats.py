"""Confidence intervals and paired tests for classifier comparisons on the same test clips.

Every variant of an experiment is evaluated on the same test clips over the same
seeds, so each is a ``[seeds, clips]`` matrix of 0/1 correctness.  The bootstrap
resamples both what varies by chance: the test clips (the clips we happened to
have) and the seeds (the training randomness).  A variant's 95 % interval is the
2.5 and 97.5 percentiles of its resampled accuracy; its comparison with a
baseline uses the **same** resampled clips and seeds for both (a paired
bootstrap), and the p-value is twice the smaller tail of the difference around 0.

How much of real audio's gain a generated variant recovers is the ratio of two paired
differences, ``(variant - vision) / (real - vision)``, resampled together; and the
p-values of one experiment are adjusted as one family (Benjamini-Hochberg), since an
experiment prints a verdict for each of its comparisons.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

RESAMPLES = 4000
_BLOCK = 256  # resamples drawn at once: [seeds, block, clips] floats in memory


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
    """Accuracy of each resample: mean over its resampled seeds x clips.

    Summed per seed over the drawn clips, then over the drawn seeds, a block of
    resamples at a time; for 0/1 (or -1/0/1) matrices every partial sum is an exact
    integer, so the means are those of ``correct[np.ix_(s, c)].mean()`` to the bit."""
    out = np.empty(len(seeds))
    cells = seeds.shape[1] * clips.shape[1]
    for start in range(0, len(seeds), _BLOCK):
        block = slice(start, start + _BLOCK)
        per_seed = correct[:, clips[block]].sum(-1)  # [seeds, resamples in the block]
        out[block] = np.take_along_axis(per_seed.T, seeds[block], axis=1).sum(1) / cells
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


def recovered_share(variant: np.ndarray, baseline: np.ndarray, reference: np.ndarray,
                    resamples: int = RESAMPLES, seed: int = 0) -> Interval | None:
    """The share of ``reference``'s gain over ``baseline`` that ``variant`` recovers,
    ``(variant - baseline) / (reference - baseline)``, with its 95 % interval from a
    paired bootstrap that draws the same clips and seeds for both differences.

    None when the reference's own gain is not significant (its 95 % interval reaches
    0): there is then no gain to recover, and a ratio of noise would read as a number.
    Resamples in which the reference gains nothing are left out of the interval."""
    v, b, r = (np.asarray(a, float) for a in (variant, baseline, reference))
    if not paired_difference(r, b, resamples, seed).difference.low > 0:
        return None
    seeds, clips = _indices(*b.shape, resamples, seed)
    gain = _resampled(r - b, seeds, clips)
    share = _resampled(v - b, seeds, clips)
    ratios = share[gain > 0] / gain[gain > 0]
    low, high = np.percentile(ratios, [2.5, 97.5])
    return Interval(float((v - b).mean() / (r - b).mean()), float(low), float(high))


def explained_share(residual: np.ndarray, total: np.ndarray, resamples: int = RESAMPLES,
                    seed: int = 0) -> Interval:
    """``1 - sum(residual) / sum(total)`` for ``[seeds, clips]`` matrices of per-clip
    squared errors: R² of a prediction against the reference whose errors are
    ``total`` (0: no better than it; 1: exact), with its 95 % interval from the same
    resampled clips and seeds for both sums."""
    r, t = np.asarray(residual, float), np.asarray(total, float)
    seeds, clips = _indices(*r.shape, resamples, seed)
    values = 1 - _resampled(r, seeds, clips) / _resampled(t, seeds, clips)
    low, high = np.percentile(values, [2.5, 97.5])
    return Interval(float(1 - r.sum() / t.sum()), float(low), float(high))


def median_interval(values: np.ndarray, resamples: int = 1000, seed: int = 0) -> Interval:
    """The median of a ``[seeds, clips]`` matrix, with its 95 % interval from
    resampling clips and seeds (fewer resamples than a mean's: each sorts)."""
    v = np.asarray(values, float)
    seeds, clips = _indices(*v.shape, resamples, seed)
    medians = np.array([np.median(v[np.ix_(s, c)]) for s, c in zip(seeds, clips, strict=True)])
    low, high = np.percentile(medians, [2.5, 97.5])
    return Interval(float(np.median(v)), float(low), float(high))


def adjusted_p_values(p_values: Sequence[float]) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values of one family of comparisons: rejecting
    where they are below 0.05 keeps the expected share of false "wins" at 5 %."""
    from scipy.stats import false_discovery_control

    p = np.asarray(p_values, dtype=float)
    return false_discovery_control(p, method="bh") if len(p) else p


def rank_correlation(x: Sequence[float], y: Sequence[float], resamples: int = RESAMPLES,
                     seed: int = 0) -> Interval | None:
    """Spearman's rank correlation of paired values (one pair per class) with a 95 %
    bootstrap interval over the pairs; None with fewer than 3 pairs or a constant side.
    Resamples whose ranks are all tied (no correlation defined) are left out."""
    from scipy.stats import rankdata, spearmanr

    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    draws = np.random.default_rng(seed).integers(0, len(x), (resamples, len(x)))
    rx, ry = rankdata(x[draws], axis=1), rankdata(y[draws], axis=1)
    rx, ry = rx - rx.mean(1, keepdims=True), ry - ry.mean(1, keepdims=True)
    norm = np.sqrt((rx ** 2).sum(1) * (ry ** 2).sum(1))
    values = (rx * ry).sum(1)[norm > 0] / norm[norm > 0]  # Pearson of the ranks
    low, high = np.percentile(values, [2.5, 97.5])
    return Interval(float(spearmanr(x, y).statistic), float(low), float(high))
