"""Bootstrap intervals and paired tests over test clips and seeds."""

from __future__ import annotations

import numpy as np
import pytest

from vida.stats import accuracy_interval, paired_difference


def test_interval_contains_the_mean_and_narrows_with_more_clips():
    rng = np.random.default_rng(0)
    small = (rng.random((3, 20)) < 0.7).astype(float)
    large = (rng.random((3, 500)) < 0.7).astype(float)
    a, b = accuracy_interval(small), accuracy_interval(large)
    assert a.low <= a.mean <= a.high and b.low <= b.mean <= b.high
    assert (b.high - b.low) < (a.high - a.low) / 3
    assert b.low < 0.7 < b.high


def test_a_variant_identical_to_the_baseline_has_no_difference():
    rng = np.random.default_rng(1)
    same = (rng.random((3, 50)) < 0.6).astype(float)
    paired = paired_difference(same, same)
    assert paired.difference.mean == 0 and paired.difference.low == paired.difference.high == 0
    assert paired.p_value == 1.0 and not paired.excludes_zero


def test_a_clearly_better_variant_is_told_apart_and_a_noisy_one_is_not():
    rng = np.random.default_rng(2)
    base = (rng.random((3, 120)) < 0.5).astype(float)
    better = np.maximum(base, (rng.random((3, 120)) < 0.5))  # right wherever base was, and more
    paired = paired_difference(better, base)
    assert paired.excludes_zero and paired.difference.low > 0 and paired.p_value < 0.01
    noisy = base.copy()
    flip = rng.choice(120, 4, replace=False)
    noisy[:, flip] = 1 - noisy[:, flip]  # 4 clips of 120 change, both ways
    assert not paired_difference(noisy, base).excludes_zero


def test_pairing_needs_the_same_clips_and_seeds():
    with pytest.raises(ValueError, match="same seeds and clips"):
        paired_difference(np.ones((3, 10)), np.ones((3, 11)))


def test_fewer_labels_get_as_many_optimisation_steps_not_fewer():
    from vida.jobs.label_efficiency import equal_step_epochs

    # 150 train clips in batches of 16: 10 steps per epoch, 100 in 10 epochs
    assert equal_step_epochs(10, 16, 150, 12) == 100  # 12 clips: 1 step per epoch
    assert equal_step_epochs(10, 16, 150, 30) == 50  # 30 clips: 2 steps per epoch
    assert equal_step_epochs(10, 16, 150, 150) == 10
    assert equal_step_epochs(10, 16, 20, 16) == 20  # 2 steps per epoch at 20 clips, 1 at 16
