"""The missing-modality baselines that generated audio is measured against, as plain
torch pieces (arrays and tensors in, tensors out; the experiment wires them):

* :func:`with_missing_flag`: a learned embedding that stands in for missing audio,
  trained with the classifier (the missing-modality token of MMT and KARMMA);
* :class:`VideoToAudioMLP` (:func:`fit_translator`): a per-time-step MLP from the
  frames' features to the audio's, trained with MSE where audio is present (SimMMDG's
  translator);
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

import numpy as np
import torch
from torch import nn


def _present(missing: torch.Tensor | None, n: int, device: torch.device) -> torch.Tensor:
    """``[n]`` booleans: whose audio is there (all, without a mask)."""
    if missing is None:
        return torch.ones(n, dtype=torch.bool, device=device)
    return ~missing.to(device=device, dtype=torch.bool)


def with_missing_flag(audio: np.ndarray, missing: np.ndarray | None) -> np.ndarray:
    """Audio ``[n, T, D]`` with one more channel, 1 where the clip's audio is missing
    (its audio there: zeros).  The classifier's first layer learns that channel's
    weights: a learned missing-audio embedding in the space the layer maps audio to,
    trained with the classifier (the missing-modality token of MMT and KARMMA, here
    over any classifier the experiment trains)."""
    flag = np.zeros((*audio.shape[:-1], 1), dtype=np.float32)
    if missing is not None:
        flag[np.asarray(missing, dtype=bool)] = 1.0
    return np.concatenate([audio, flag], axis=-1)


class VideoToAudioMLP(nn.Module):
    """Frames' features ``[B, T, V]`` -> audio features ``[B, T, A]``, step by step."""

    def __init__(self, vision_dim: int, audio_dim: int, hidden: int = 256) -> None:
        super().__init__()
        self.config = {"vision_dim": vision_dim, "audio_dim": audio_dim, "hidden": hidden}
        self.net = nn.Sequential(nn.Linear(vision_dim, hidden), nn.ReLU(),
                                 nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, audio_dim))

        # the standardisation of its inputs and outputs, fitted with it
        for name, size in (("in_mean", vision_dim), ("in_std", vision_dim),
                           ("out_mean", audio_dim), ("out_std", audio_dim)):
            self.register_buffer(name, torch.zeros(size) if "mean" in name
                                 else torch.ones(size))

    def forward(self, vision: torch.Tensor) -> torch.Tensor:
        """Audio features in their own units."""
        z = self.net((vision - self.in_mean) / self.in_std)
        return z * self.out_std + self.out_mean


def fit_translator(vision: np.ndarray, audio: np.ndarray, *, seed: int, epochs: int = 20,
                   batch: int = 256, lr: float = 1e-3, hidden: int = 256) -> VideoToAudioMLP:
    """A :class:`VideoToAudioMLP` fitted by MSE on the clips given (those whose audio is
    present: ``vision [n, T, V]``, ``audio [n, T, A]``), seeded."""
    torch.manual_seed(seed)
    x = torch.from_numpy(np.ascontiguousarray(vision, dtype=np.float32))
    y = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))
    model = VideoToAudioMLP(x.shape[-1], y.shape[-1], hidden)
    for name, value in (("in", x), ("out", y)):
        flat = value.reshape(-1, value.shape[-1])
        getattr(model, f"{name}_mean").copy_(flat.mean(0))
        getattr(model, f"{name}_std").copy_(flat.std(0) + 1e-6)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    order = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        for index in torch.randperm(len(x), generator=order).split(batch):
            optimiser.zero_grad()
            loss = ((model(x[index]) - y[index]) / model.out_std).pow(2).mean()
            loss.backward()
            optimiser.step()
    model.eval()
    return model


def translate(model: VideoToAudioMLP, vision: np.ndarray, batch: int = 1024) -> np.ndarray:
    """The audio features the translator gives for the frames ``[n, T, V]``."""
    with torch.no_grad():
        parts = [model(torch.from_numpy(np.ascontiguousarray(vision[i:i + batch],
                                                             dtype=np.float32))).numpy()
                 for i in range(0, len(vision), batch)]
    if not parts:
        return np.zeros((0, *vision.shape[1:-1], model.config["audio_dim"]), np.float32)
    return np.concatenate(parts)


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


class JointOnInputs(nn.Module):
    """:class:`JointGeneratorClassifier` over a classifier's input ``[B, T, V + A + 1]``
    (frames, audio, missing flag, standardised): it classifies from the frames alone;
    in training it keeps the MSE of its generated audio against the clips' audio where
    that is present (the flag, standardised, is above its mean where it is missing),
    for :class:`JointLoss`."""

    def __init__(self, vision_dim: int, audio_dim: int, n_classes: int, hidden: int = 256
                 ) -> None:
        super().__init__()
        self.net = JointGeneratorClassifier(vision_dim, audio_dim, n_classes, hidden)
        self.config = {**self.net.config, "joint": True}
        self.vision_dim, self.audio_dim = vision_dim, audio_dim
        self.generation_loss: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v, a = self.vision_dim, self.audio_dim
        logits, generated = self.net(x[..., :v])
        if self.training:
            missing = x[..., v + a:].mean(dim=(1, 2)) > 0
            self.generation_loss = masked_mse(generated, x[..., v:v + a], missing)
        return logits


class JointLoss(nn.Module):
    """Cross-entropy plus ``weight`` x the generation's MSE that ``model`` kept."""

    def __init__(self, model: JointOnInputs, weight: float) -> None:
        super().__init__()
        self.model, self.weight = model, weight

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        loss = nn.functional.cross_entropy(logits, labels)
        if self.model.generation_loss is not None:
            loss = loss + self.weight * self.model.generation_loss
        return loss


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
