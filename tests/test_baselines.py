"""The missing-modality baselines, each on a tiny set whose answer is known: each
learns what it should, and only from what it may see."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from vida.models.baselines import (
    JointGeneratorClassifier,
    fit_translator,
    masked_mse,
    tent_predict,
    translate,
    with_missing_flag,
)
from vida.models.classifiers import LSTMClassifier, MLPClassifier

T, V, A = 4, 6, 3


def _clips(n: int = 200, seed: int = 0):
    """Two classes; the frames carry the class weakly, the audio strongly; the audio is
    a fixed linear function of the frames plus the class's sound."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (n,), generator=g)
    vision = torch.randn(n, T, V, generator=g) + 0.3 * labels[:, None, None]
    mixing = torch.randn(V, A, generator=torch.Generator().manual_seed(99))
    audio = vision @ mixing + 2.0 * (labels[:, None, None] * 2 - 1)
    return vision, audio, labels


def _train(model: nn.Module, step, epochs: int = 60, lr: float = 1e-2) -> None:
    torch.manual_seed(0)
    optimiser = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    model.train()
    for _ in range(epochs):
        optimiser.zero_grad()
        loss = step()
        loss.backward()
        optimiser.step()
    model.eval()


def _accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    return float((logits.argmax(-1) == labels).float().mean())


def test_the_missing_audio_token_is_learned_and_used_only_where_audio_is_missing():
    vision, audio, labels = _clips()
    missing = (torch.arange(len(labels)) % 2 == 0).numpy()  # half the clips have no audio
    filled = audio.numpy().copy()
    filled[missing] = 0.0
    flagged = torch.from_numpy(with_missing_flag(filled, missing))
    assert flagged.shape == (len(labels), T, A + 1)
    assert (flagged[missing][..., -1] == 1).all() and (flagged[~missing][..., -1] == 0).all()
    torch.manual_seed(0)
    model = LSTMClassifier(V + A + 1, 2, hidden=16)
    x = torch.cat([vision, flagged], dim=-1)
    _train(model, lambda: nn.functional.cross_entropy(model(x), labels), epochs=120)
    held_vision, held_audio, held_labels = _clips(seed=5)  # clips it never saw
    with torch.no_grad():
        present = model(torch.cat([held_vision, torch.from_numpy(with_missing_flag(
            held_audio.numpy(), None))], dim=-1))
        silent = torch.zeros(len(held_labels), T, A)
        token = model(torch.cat([held_vision, torch.from_numpy(with_missing_flag(
            silent.numpy(), np.ones(len(held_labels), dtype=bool)))], dim=-1))
        unflagged = model(torch.cat([held_vision, torch.from_numpy(with_missing_flag(
            silent.numpy(), None))], dim=-1))
    assert _accuracy(present, held_labels) > 0.9  # the audio carries the class
    # without audio, the token lets the frames' weak signal decide (above chance) ...
    assert _accuracy(token, held_labels) > 0.6
    # ... and it is what the model reads: zeros without the flag are another input
    assert not torch.allclose(token, unflagged)


def test_the_translator_learns_the_audio_from_the_frames_where_it_is_present():
    vision, audio, labels = _clips(400)
    present = (torch.arange(400) < 300).numpy()
    target = (audio - 2.0 * (labels[:, None, None] * 2 - 1)).numpy()  # what frames carry
    model = fit_translator(vision.numpy()[present], target[present], seed=0, epochs=150,
                           batch=64, hidden=32)
    held_out = translate(model, vision.numpy()[~present])
    error = float(((held_out - target[~present]) ** 2).mean())
    assert error < 0.1 * float(target[~present].var())  # held-out clips: R² above 0.9
    # it never reads a missing clip's audio: the same fit whatever that audio was
    poisoned = target.copy()
    poisoned[~present] = 1e6
    again = fit_translator(vision.numpy()[present], poisoned[present], seed=0, epochs=150,
                           batch=64, hidden=32)
    np.testing.assert_array_equal(translate(again, vision.numpy()[~present]), held_out)
    assert float(masked_mse(torch.from_numpy(target), torch.from_numpy(target + 1),
                            torch.ones(400, dtype=torch.bool))) == 0.0


def test_the_joint_network_classifies_and_generates_where_audio_is_present():
    vision, audio, labels = _clips(300)
    missing = torch.arange(300) % 3 == 0
    torch.manual_seed(0)
    model = JointGeneratorClassifier(V, A, 2, hidden=32)

    def step() -> torch.Tensor:
        logits, generated = model(vision)
        return JointGeneratorClassifier.loss(logits, generated, labels, audio, missing, 1.0)

    _train(model, step, epochs=200)
    with torch.no_grad():
        logits, generated = model(vision)
    assert _accuracy(logits, labels) > 0.85
    assert float(((generated - audio) ** 2).mean()) < 0.2 * float(audio.var())
    # the generation loss never reads a missing clip's audio
    poisoned = audio.clone()
    poisoned[missing] = 1e6
    assert float(masked_mse(generated, poisoned, missing)) == pytest.approx(
        float(masked_mse(generated, audio, missing)))


def test_tent_recovers_a_classifier_on_shifted_test_data():
    vision, _, labels = _clips(400, seed=1)
    vision = vision + 1.5 * labels[:, None, None]  # a clearly separable source
    torch.manual_seed(0)
    model = MLPClassifier(V, 2, width=16)
    _train(model, lambda: nn.functional.cross_entropy(model(vision), labels), epochs=100)
    test, _, test_labels = _clips(400, seed=2)
    shifted = (test + 1.5 * test_labels[:, None, None]) * 3.0 + 4.0  # another sensor
    with torch.no_grad():
        before = _accuracy(model(shifted), test_labels)
    logits, entropies = tent_predict(model, shifted.split(100), lr=1e-2)
    assert _accuracy(logits, test_labels) > max(before + 0.2, 0.85)
    assert len(entropies) == 4 and np.isfinite(entropies).all()
    assert not any(p.requires_grad for p in model.parameters()
                   if p.dim() > 1)  # only normalisation layers moved
    with pytest.raises(ValueError, match="normalisation layers"):
        tent_predict(LSTMClassifier(V, 2, hidden=4), [test])
