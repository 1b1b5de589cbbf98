"""The audio-feature generator shared by SVDMap and CAFMap."""

from __future__ import annotations

import torch
from torch import nn


class LSTMGenerator(nn.Module):
    """LSTM (2 layers, hidden 512, dropout 0.3) then Linear(hidden -> out) per time step.

    SVDMap feeds concat(rgb, flow) ``[B, T, D_rgb + D_flow]``; CAFMap feeds the
    condition sequence ``[B, T, D_audio]``.  Output: generated audio ``[B, T, out]``.
    """

    def __init__(self, in_dim: int, out_dim: int = 128, hidden: int = 512, layers: int = 2,
                 dropout: float = 0.3) -> None:
        super().__init__()
        self.config = {"in_dim": in_dim, "out_dim": out_dim, "hidden": hidden,
                       "layers": layers, "dropout": dropout}
        self.lstm = nn.LSTM(in_dim, hidden, num_layers=layers, batch_first=True,
                            dropout=dropout if layers > 1 else 0.0)
        self.head = nn.Linear(hidden, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return self.head(out)
