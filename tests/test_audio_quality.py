"""How close generated audio is to the real audio: the measures, on cases whose
answer is known (a copy, the class's mean sound, the train mean, noise)."""

from __future__ import annotations

import numpy as np
import pytest

from vida.jobs.experiments.quality import quality_row
from vida.models.audio_quality import TrainMeans, retrieval_ranks, squared_errors
from vida.stats import explained_share, median_interval


def _clips(n_per_class: int = 30, classes: int = 4, seed: int = 0):
    """Audio = its class's sound + the clip's own sound, [clips, T=3, D=8]."""
    rng = np.random.default_rng(seed)
    labels = np.repeat([f"c{i}" for i in range(classes)], n_per_class)
    centres = {c: rng.normal(0, 3, (3, 8)) for c in np.unique(labels)}
    own = rng.normal(0, 1, (len(labels), 3, 8))
    return labels, np.stack([centres[c] for c in labels]) + own


def test_train_means_added_in_blocks_are_the_means():
    labels, audio = _clips()
    means = TrainMeans()
    for start in range(0, len(labels), 7):
        means.add(audio[start:start + 7], labels[start:start + 7])
    flat = audio.reshape(len(audio), -1)
    np.testing.assert_allclose(means.overall(), flat.mean(0))
    np.testing.assert_allclose(means.of_classes(["c2", "unseen"]),
                               np.stack([flat[labels == "c2"].mean(0), flat.mean(0)]))


def test_retrieval_ranks_a_copy_first_and_a_shuffle_at_chance():
    _, audio = _clips()
    assert (retrieval_ranks(audio, audio, block=16) == 1).all()
    shuffled = audio[np.random.default_rng(1).permutation(len(audio))]
    ranks = retrieval_ranks(shuffled, audio)
    assert np.median(ranks) > len(audio) / 4
    assert retrieval_ranks(np.zeros_like(audio), audio).min() == len(audio)  # all tie


def test_a_prediction_as_good_as_the_reference_explains_nothing():
    _, audio = _clips()
    errors = squared_errors(audio.reshape(len(audio), -1).mean(0), audio)[None]
    assert explained_share(errors, errors).mean == pytest.approx(0.0)
    perfect = explained_share(np.zeros_like(errors), errors)
    assert (perfect.mean, perfect.low, perfect.high) == (1.0, 1.0, 1.0)
    assert median_interval(np.arange(1, 102)[None].astype(float)).mean == 51


@pytest.mark.parametrize("kind", ["clip sound", "class sound", "train mean"])
def test_the_quality_row_tells_clip_sound_from_class_sound_from_nothing(kind):
    labels, real = _clips(seed=2)
    train_labels, train = _clips(seed=2)  # the same classes' centres, other clips
    train = train + np.random.default_rng(3).normal(0, 1, train.shape)
    means = TrainMeans()
    means.add(train, train_labels)
    rng = np.random.default_rng(4)
    made = {"clip sound": real + rng.normal(0, 0.3, real.shape),
            "class sound": means.of_classes(labels).reshape(real.shape),
            "train mean": np.broadcast_to(means.overall().reshape(1, 3, 8), real.shape)}[kind]
    per_clip = {"error": squared_errors(made, real)[None],
                "train_mean_error": squared_errors(means.overall(), real)[None],
                "class_mean_error": squared_errors(means.of_classes(labels), real)[None],
                "rank": retrieval_ranks(made, real)[None]}
    row = quality_row("g", per_clip)
    assert row["class_mean_r2_ci_low"] > 0  # the class explains much of the sound
    if kind == "clip sound":
        assert row["r2_over_class_mean_ci_low"] > 0 and row["recall1"] > 0.5
    elif kind == "class sound":
        assert row["r2_over_class_mean"] == pytest.approx(0.0)
        assert row["recall1"] < 0.2 and row["r2_ci_low"] > 0
    else:
        assert row["r2"] == pytest.approx(0.0) and row["r2_over_class_mean_ci_high"] < 0
    assert row["chance_recall5"] == pytest.approx(5 / len(labels))
