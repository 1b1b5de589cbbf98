"""Dense optical flow between consecutive frames (OpenCV).

Farneback with the study's parameters is the default; DIS (fast preset) is the
option CAFMap's representative-frame rule uses.  T frames give T-1 flows; the first
is repeated so the flow sequence has T steps on the frames' grid (the study's
convention).
"""

from __future__ import annotations

import cv2
import numpy as np

from vida.errors import UsageError

FARNEBACK_PARAMS = {
    "pyr_scale": 0.3, "levels": 2, "winsize": 7, "iterations": 2, "poly_n": 5,
    "poly_sigma": 1.1, "flags": 0,
}
METHODS = ("farneback", "dis")


def _gray(frames: np.ndarray) -> list[np.ndarray]:
    return [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]


def pairwise_flow(frames: np.ndarray, method: str = "farneback") -> np.ndarray:
    """Flow of each consecutive pair: ``[T-1, H, W, 2]`` float32 (dx, dy in pixels)."""
    if method not in METHODS:
        raise UsageError(f"flow method {method!r} is not one of {', '.join(METHODS)}")
    gray = _gray(frames)
    if method == "dis":
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
        flows = [dis.calc(a, b, None) for a, b in zip(gray[:-1], gray[1:], strict=True)]
    else:
        flows = [
            cv2.calcOpticalFlowFarneback(a, b, None, **FARNEBACK_PARAMS)
            for a, b in zip(gray[:-1], gray[1:], strict=True)
        ]
    if not flows:
        return np.zeros((0, *gray[0].shape, 2), np.float32)
    return np.stack(flows).astype(np.float32)


def flow_sequence(frames: np.ndarray, method: str = "farneback") -> np.ndarray:
    """``[T, H, W, 2]``: the T-1 pairwise flows with the first repeated in front."""
    flows = pairwise_flow(frames, method)
    if len(flows) == 0:
        return np.zeros((len(frames), *frames.shape[1:3], 2), np.float32)
    return np.concatenate([flows[:1], flows])
