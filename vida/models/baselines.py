"""The missing-modality baselines that generated audio is measured against, as plain
torch pieces (arrays and tensors in, tensors out; the experiment wires them):

* :class:`MissingAudioToken`: a learned embedding that stands in for missing audio,
  trained with the classifier (the missing-modality token of MMT and KARMMA);
* :class:`VideoToAudioMLP`: a per-time-step MLP from the frames' features to the
  audio's, trained with MSE where audio is present (SimMMDG's translator);
* :class:`JointGeneratorClassifier`: one LSTM over the frames with a classification
  head and an audio-generation head, the generated audio fed to the classifier, the
  loss cross-entropy plus ``weight`` x MSE where audio is present (Lee et al., ICASSP
  2019, the closest prior work: RGB and flow features of Moments in Time);
* :func:`tent_predict`: test-time adaptation of a classifier's normalisation layers by
  minimising the entropy of its predictions over the test batches (TENT, Wang et al.,
  ICLR 2021, a baseline of MiDl).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn


def _present(missing: torch.Tensor | None, n: int, device: torch.device) -> torch.Tensor:
    """``[n]`` booleans: whose audio is there (all, without a mask)."""
    if missing is None:
        return torch.ones(n, dtype=torch.bool, device=device)
    return ~missing.to(device=device, dtype=torch.bool)


class MissingAudioToken(nn.Module):
    """Audio ``[B, T, D]`` with each missing clip's replaced by one learned token
    (``[D]``, the same at every step), then the classifier on frames + audio."""

    def __init__(self, classifier: nn.Module, audio_dim: int) -> None:
        super().__init__()
        self.classifier = classifier
        self.token = nn.Parameter(torch.zeros(audio_dim))

    def forward(self, vision: torch.Tensor, audio: torch.Tensor,
                missing: torch.Tensor | None = None) -> torch.Tensor:
        present = _present(missing, len(audio), audio.device)[:, None, None]
        filled = torch.where(present, audio, self.token.expand_as(audio))
        return self.classifier(torch.cat([vision, filled], dim=-1))


class VideoToAudioMLP(nn.Module):
    """Frames' features ``[B, T, V]`` -> audio features ``[B, T, A]``, step by step."""

    def __init__(self, vision_dim: int, audio_dim: int, hidden: int = 256) -> None:
        super().__init__()
        self.config = {"vision_dim": vision_dim, "audio_dim": audio_dim, "hidden": hidden}
        self.net = nn.Sequential(nn.Linear(vision_dim, hidden), nn.ReLU(),
                                 nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, audio_dim))

    def forward(self, vision: torch.Tensor) -> torch.Tensor:
        return self.net(vision)


def masked_mse(predicted: torch.Tensor, target: torch.Tensor,
               missing: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared error over the clips whose audio is present (0 when none is)."""
    present = _present(missing, len(target), target.device)
    if not present.any():
        return predicted.sum() * 0.0
    return ((predicted[present] - target[present]) ** 2).mean()


class JointGeneratorClassifier(nn.Module):
    """Lee et al.'s network: an LSTM over the frames' features; per step a generation
    head predicts the audio features, and the classifier reads the last step's state
    with the generated audio's time-mean."""

    def __init__(self, vision_dim: int, audio_dim: int, n_classes: int, hidden: int = 256
                 ) -> None:
        super().__init__()
        self.config = {"vision_dim": vision_dim, "audio_dim": audio_dim,
                       "n_classes": n_classes, "hidden": hidden}
        self.lstm = nn.LSTM(vision_dim, hidden, batch_first=True)
        self.generate = nn.Linear(hidden, audio_dim)
        self.head = nn.Linear(hidden + audio_dim, n_classes)

    def forward(self, vision: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(class logits ``[B, C]``, generated audio ``[B, T, A]``)."""
        states, _ = self.lstm(vision)
        audio = self.generate(states)
        return self.head(torch.cat([states[:, -1], audio.mean(dim=1)], dim=-1)), audio

    @staticmethod
    def loss(logits: torch.Tensor, generated: torch.Tensor, labels: torch.Tensor,
             audio: torch.Tensor, missing: torch.Tensor | None = None, weight: float = 1.0
             ) -> torch.Tensor:
        """Cross-entropy plus ``weight`` x the generation's MSE where audio is present."""
        return nn.functional.cross_entropy(logits, labels) \
            + weight * masked_mse(generated, audio, missing)


def norm_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The affine parameters of the model's normalisation layers (what TENT adapts)."""
    norms = (nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm)
    return [p for m in model.modules() if isinstance(m, norms) for p in m.parameters()]


def entropy(logits: torch.Tensor) -> torch.Tensor:
    """Mean entropy of the softmax predictions."""
    log_p = torch.log_softmax(logits, dim=-1)
    return -(log_p.exp() * log_p).sum(-1).mean()


def tent_predict(model: nn.Module, batches: Iterable[torch.Tensor], lr: float = 1e-3
                 ) -> tuple[torch.Tensor, list[float]]:
    """Online TENT over unlabelled test batches, in order: each batch is predicted with
    the batch's own normalisation statistics, then the normalisation layers' scale and
    shift (and nothing else) take one Adam step down the predictions' entropy, and the
    next batch sees the adapted model.  Returns the logits of every batch and the
    entropy of each.  ``model`` is adapted in place.  A model without normalisation
    layers cannot be adapted: ValueError."""
    params = norm_parameters(model)
    if not params:
        raise ValueError("TENT adapts normalisation layers; this model has none")
    model.train()
    for module in model.modules():  # dropout off: adapt to the data, not to noise
        if isinstance(module, nn.Dropout):
            module.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    optimiser = torch.optim.Adam(params, lr=lr)
    logits, seen = [], []
    for x in batches:
        out = model(x)
        value = entropy(out)
        optimiser.zero_grad()
        value.backward()
        optimiser.step()
        logits.append(out.detach())
        seen.append(float(value.detach()))
    model.eval()
    return torch.cat(logits), seen
