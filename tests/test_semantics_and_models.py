"""The pure rooms on their own: semantics (IoU filter, conditions, representative
frames) and models (generator, classifiers), arrays in and arrays out."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vida.models import build_classifier
from vida.models.generators import LSTMGenerator
from vida.semantics.conditions import clip_condition
from vida.semantics.iou_filter import class_summary, clip_ious, decide, filter_name, jaccard
from vida.semantics.representative import representative_frames


def test_jaccard_is_the_share_of_labels_the_two_sets_have_in_common():
    assert jaccard({"Hammer", "Wood"}, {"Hammer", "Tools"}) == pytest.approx(1 / 3)
    assert jaccard(set(), set()) == 0.0 and jaccard({"a"}, {"a"}) == 1.0


def test_clip_filter_keeps_clips_at_the_threshold_and_class_filter_the_top_classes():
    tags = {"hammering/a": {"Hammer", "Wood"}, "hammering/b": {"Music"},
            "drilling/c": {"Drill", "Power tool"}, "unknown/d": {"Drill"}}
    dictionary = {"hammering": {"Hammer", "Tools"}, "drilling": {"Drill", "Power tool"}}
    ious = clip_ious(tags, dictionary)
    assert set(ious["clip_key"]) == {"hammering/a", "hammering/b", "drilling/c"}  # no class
    by_clip = decide(ious, mode="clip", min_iou=1 / 3)
    assert by_clip.decisions.set_index("clip_key")["keep"].to_dict() == {
        "hammering/a": True, "hammering/b": False, "drilling/c": True}
    by_class = decide(ious, mode="class", top_classes=1)
    assert set(by_class.decisions.loc[by_class.decisions["keep"], "class_name"]) == {"drilling"}
    summary = class_summary(by_clip)
    assert summary["class_name"].tolist() == ["drilling", "hammering"]  # best mean IoU first
    assert summary.set_index("class_name")["kept"].to_dict() == {"drilling": 1, "hammering": 1}
    assert filter_name("d", "t", mode="clip", min_iou=0.2, top_classes=5) == "d:t:iou>=0.2"
    with pytest.raises(ValueError, match="clip or class"):
        decide(ious, mode="frame")


def test_a_condition_averages_the_prototypes_of_the_labels_above_the_top_ks_mean():
    prototypes = np.eye(4, dtype=np.float32)
    labels = ["a", "b", "c", "d"]
    similarities = np.array([[0.9, 0.8, 0.1, 0.0],   # a, b above the top-3 mean (0.6)
                             [0.2, 0.2, 0.2, 0.9]])  # only d
    condition = clip_condition([1, 3], similarities, prototypes, labels, n_frames=5, top_k=3)
    assert condition.mask.tolist() == [False, True, False, True, False]
    assert condition.sequence[1].tolist() == [0.5, 0.5, 0.0, 0.0]
    assert condition.sequence[3].tolist() == [0.0, 0.0, 0.0, 1.0]
    assert not condition.sequence[[0, 2, 4]].any()
    assert [(f, r, label) for f, r, label, _ in condition.chosen] == [
        (1, 1, "a"), (1, 2, "b"), (3, 1, "d")]


def test_representative_frames_are_the_moving_ones_and_never_none():
    magnitudes = np.array([0.1, 2.0, 0.1, 1.5])  # pairs (0,1) (1,2) (2,3) (3,4)
    assert representative_frames(magnitudes, ratio=1.2) == [2, 4]
    assert representative_frames(np.zeros(4)) == [2]  # no motion: the middle frame
    assert representative_frames(np.array([1.0, 1.0]), ratio=5) == [1]  # the most moving


def test_models_map_their_inputs_to_the_documented_shapes_and_widths():
    torch.manual_seed(0)
    x = torch.randn(3, 18, 40)
    generator = LSTMGenerator(40, out_dim=16, hidden=32)
    assert generator(x).shape == (3, 18, 16)
    for arch, width in (("lstm", 24), ("mlp", 64)):
        model = build_classifier(arch, 40, 5, hidden=width).eval()
        assert model(x).shape == (3, 5)
        assert model.config["hidden" if arch == "lstm" else "width"] == width
    with pytest.raises(ValueError, match="lstm or mlp"):
        build_classifier("cnn", 40, 5)


def test_the_mlp_classifier_reads_the_time_mean_and_the_lstm_the_sequence():
    """Shuffling the time steps leaves the MLP's output alone (it averages over time)
    and changes the LSTM's (it reads the order)."""
    torch.manual_seed(0)
    x = torch.randn(2, 6, 8)
    shuffled = x[:, torch.randperm(6)]
    mlp, lstm = build_classifier("mlp", 8, 3, 16).eval(), build_classifier("lstm", 8, 3, 16)
    assert torch.allclose(mlp(x), mlp(shuffled), atol=1e-6)
    assert not torch.allclose(lstm(x), lstm(shuffled), atol=1e-4)


def test_frame_pca_fitted_block_by_block_is_sklearns_exact_pca():
    """Frames far from the origin (the sum of squares would lose its digits unshifted),
    fitted 64 clips at a time: the components (signs included), the mean and the
    projection are sklearn's exact SVD of all the frames at once (the mean closer
    still: it is summed in float64)."""
    from sklearn.decomposition import PCA

    from vida.models.pca import FramePCA

    rng = np.random.default_rng(0)
    mixing = rng.standard_normal((40, 40))
    clips = (rng.standard_normal((300, 18, 40)) @ mixing + 1000).astype(np.float32)
    frames = clips.reshape(-1, 40)
    exact = PCA(n_components=8, svd_solver="full").fit(frames)
    blockwise = FramePCA.fit((clips[i:i + 64] for i in range(0, 300, 64)), 8)
    assert blockwise.n_components_ == 8
    np.testing.assert_allclose(blockwise.components_, exact.components_, atol=1e-4)
    np.testing.assert_allclose(blockwise.mean_, frames.mean(axis=0, dtype=np.float64),
                               rtol=1e-7)  # sklearn's float32 mean is 4e-6 off
    np.testing.assert_allclose(blockwise.transform(frames), exact.transform(frames),
                               atol=1e-3 * np.abs(exact.transform(frames)).max())
    with pytest.raises(ValueError, match="two frames"):
        FramePCA.fit([clips[:1, :1]], 8)
