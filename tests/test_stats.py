"""Bootstrap intervals and paired tests over test clips and seeds."""

from __future__ import annotations

import numpy as np
import pandas as pd
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
    from vida.jobs.experiments.label_efficiency import equal_step_epochs

    # 150 train clips in batches of 16: 10 steps per epoch, 100 in 10 epochs
    assert equal_step_epochs(10, 16, 150, 12) == 100  # 12 clips: 1 step per epoch
    assert equal_step_epochs(10, 16, 150, 30) == 50  # 30 clips: 2 steps per epoch
    assert equal_step_epochs(10, 16, 150, 150) == 10
    assert equal_step_epochs(10, 16, 20, 16) == 20  # 2 steps per epoch at 20 clips, 1 at 16


def _correct(rng, p: float, shape=(3, 200)) -> np.ndarray:
    return (rng.random(shape) < p).astype(float)


def test_recovery_is_the_share_of_real_audios_gain_and_undefined_without_one():
    from vida.stats import recovered_share

    rng = np.random.default_rng(3)
    vision = _correct(rng, 0.5)
    real = np.maximum(vision, _correct(rng, 0.5))  # right wherever vision is, and more
    half = np.where(rng.random(vision.shape) < 0.5, real, vision)  # half of real's wins
    share = recovered_share(half, vision, real)
    assert share is not None and share.low < share.mean < share.high
    assert abs(share.mean - 0.5) < 0.1 and share.low > 0.2 and share.high < 0.8
    assert recovered_share(real, vision, real).mean == pytest.approx(1.0)
    assert recovered_share(vision, vision, real).mean == 0.0
    # real audio that gains nothing significant leaves nothing to recover: undefined
    assert recovered_share(half, vision, vision) is None
    noisy = _correct(rng, 0.5, (3, 20))
    assert recovered_share(noisy, noisy, _correct(rng, 0.5, (3, 20))) is None


def test_one_family_counts_a_main_table_run_once_and_adjusts_every_p():
    import pandas as pd

    from vida.jobs.experiments.statistics import adjust_as_one_family
    from vida.views import verdicts

    main = pd.DataFrame({"variant": ["vision only", "+ real audio", "+ generated audio"],
                         "delta_vs_vision": [float("nan"), 0.2, 0.05],
                         "delta_ci_low": [float("nan"), 0.1, 0.001],
                         "delta_ci_high": [float("nan"), 0.3, 0.1],
                         "p_vs_vision": [float("nan"), 0.001, 0.04]})
    labels = pd.concat([main.assign(labels_per_class="all"),
                        main.assign(labels_per_class="2", p_vs_vision=[None, 0.03, 0.5])])
    tables, n = adjust_as_one_family({"main": main, "labels": labels, "study": None})
    assert n == 4  # the "all" rows are the main table's own comparisons
    adjusted = tables["main"].set_index("variant")["p_adjusted"]
    # Benjamini-Hochberg over 0.001, 0.04, 0.03, 0.5: 0.004, 0.053, 0.053, 0.5
    assert adjusted["+ real audio"] == pytest.approx(0.004)
    assert adjusted["+ generated audio"] == pytest.approx(0.04 * 4 / 3)
    assert tables["labels"]["p_adjusted"].iloc[:3].equals(tables["main"]["p_adjusted"])
    # its raw CI excludes 0, but with 4 comparisons "+ generated audio" is not a win
    lines = verdicts(tables["main"])
    assert lines[0].startswith("+ real audio beats vision only")
    assert lines[1].startswith("+ generated audio cannot be told from vision only")
    assert "adjusted p=0.0533" in lines[1]
    # the wins are read from the verdicts' values, never from the printed words
    from vida.views import winners

    renamed = tables["main"].replace({"+ real audio": "beats vision only, but renamed"})
    assert [w.split(" beats")[0] for w in winners(renamed)] == ["beats vision only, but renamed"]
    assert [w.split(":")[0] for w in winners(tables["main"], tables["labels"])] == [
        "+ real audio beats vision only", "+ real audio @ all labels/class beats vision only"]


def test_per_class_gains_name_the_class_that_audio_helps_and_correlate_across_classes():
    from vida.jobs.experiments.per_class import correlations, per_class_metrics, per_class_table

    rng = np.random.default_rng(4)
    truth = np.repeat(np.array(["a", "b", "c", "d"], dtype=object), 60)
    vision = _correct(rng, 0.5, (3, 240))
    # real audio helps class a a lot, b a little, c and d not; generated helps a only
    help_real = {"a": 0.9, "b": 0.3, "c": 0.0, "d": 0.0}
    real = vision.copy()
    generated = vision.copy()
    for cls, share in help_real.items():
        cols = truth == cls
        real[:, cols] = np.maximum(vision[:, cols], rng.random((3, cols.sum())) < share)
    generated[:, truth == "a"] = real[:, truth == "a"]
    table = per_class_table({"vision only": vision, "+ real audio": real,
                             "+ generated audio": generated}, truth)
    gen = table[table["variant"] == "+ generated audio"].set_index("class_name")
    assert gen.loc["a", "delta_ci_low"] > 0  # it helps a, significantly
    assert gen.loc["b", "delta_vs_vision"] == 0 and gen.loc["c", "delta_vs_vision"] == 0
    assert set(table["n_test"]) == {60}
    iou = pd.Series({"a": 0.6, "b": 0.4, "c": 0.1, "d": 0.2})
    found = correlations(table, iou)
    assert found["+ generated audio/with real audio's gain"].mean > 0.5
    assert set(found) == {"+ generated audio/with real audio's gain",
                          "+ real audio/with mean IoU", "+ generated audio/with mean IoU"}
    metrics = per_class_metrics(table, found)
    assert metrics["class=a/+ generated audio/delta_ci_low"] > 0
    assert "rank_correlation/+ generated audio/with mean IoU_ci_low" in metrics


def test_resampled_accuracies_equal_the_mean_of_each_drawn_block_to_the_bit():
    """The blockwise resampling gives what indexing each resample and taking its mean
    gives, for correctness and for paired differences, across block boundaries."""
    from vida.stats import _BLOCK, _indices, _resampled

    rng = np.random.default_rng(3)
    correct = (rng.random((3, 37)) < 0.6).astype(float)
    difference = correct - (rng.random((3, 37)) < 0.5)
    seeds, clips = _indices(3, 37, 2 * _BLOCK + 7, seed=5)
    for matrix in (correct, difference):
        naive = [matrix[np.ix_(s, c)].mean() for s, c in zip(seeds, clips, strict=True)]
        assert np.array_equal(_resampled(matrix, seeds, clips), np.array(naive))
