"""Representative frames: the frames right after unusually strong motion.

Rule (the study's, made total): DIS optical flow (fast preset) between consecutive
grid frames; ``m_i`` = mean flow magnitude of pair ``(i, i+1)``; frame ``i+1`` is
representative when ``m_i >= ratio * mean(m)`` (ratio 1.2).  So that every clip
has at least one: when no frame passes (motion spread evenly), the frame after the
strongest pair is taken; when there is no motion at all, the middle frame.
"""

from __future__ import annotations

import numpy as np

from vida.media.flow import pairwise_flow

RULE = "dis-magnitude>=ratio*mean"


def motion_magnitudes(frames: np.ndarray) -> np.ndarray:
    """``[T-1]`` mean DIS flow magnitude of each consecutive pair."""
    flows = pairwise_flow(frames, "dis")
    return np.linalg.norm(flows, axis=-1).mean(axis=(1, 2))


def representative_frames(magnitudes: np.ndarray, ratio: float = 1.2) -> list[int]:
    """Indices (into the T frames) chosen by the rule above; never empty."""
    n_frames = len(magnitudes) + 1
    mean = float(magnitudes.mean()) if len(magnitudes) else 0.0
    if mean <= 0:
        return [n_frames // 2]
    chosen = [i + 1 for i, m in enumerate(magnitudes) if m >= ratio * mean]
    return chosen or [int(np.argmax(magnitudes)) + 1]
