"""Action classifiers: SVDMap's LSTM and CAFMap's MLP on time-mean features."""

from __future__ import annotations

import torch
from torch import nn

from vida.errors import UsageError


class LSTMClassifier(nn.Module):
    """LSTM (1 layer, hidden 256); the last time step -> Linear(hidden -> classes)."""

    def __init__(self, in_dim: int, n_classes: int, hidden: int = 256) -> None:
        super().__init__()
        self.config = {"in_dim": in_dim, "n_classes": n_classes, "hidden": hidden}
        self.lstm = nn.LSTM(in_dim, hidden, batch_first=True)
        self.head = nn.Linear(hidden, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return self.head(out[:, -1])


class MLPClassifier(nn.Module):
    """Time-mean of the features -> width (512) -> width/2 -> classes; BatchNorm, ReLU,
    Dropout 0.3."""

    def __init__(self, in_dim: int, n_classes: int, dropout: float = 0.3, width: int = 512
                 ) -> None:
        super().__init__()
        self.config = {"in_dim": in_dim, "n_classes": n_classes, "dropout": dropout,
                       "width": width}
        half = width // 2
        self.net = nn.Sequential(
            nn.Linear(in_dim, width), nn.BatchNorm1d(width), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(width, half), nn.BatchNorm1d(half), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(half, n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.mean(dim=1))


def build_classifier(arch: str, in_dim: int, n_classes: int, hidden: int | None = None
                     ) -> nn.Module:
    """``hidden``: the LSTM's width, or the MLP's first layer (the second is half)
    [None: the study's]."""
    if arch == "lstm":
        return LSTMClassifier(in_dim, n_classes, hidden or 256)
    if arch == "mlp":
        return MLPClassifier(in_dim, n_classes, width=hidden or 512)
    raise UsageError(f"--arch must be lstm or mlp, got {arch!r}")
