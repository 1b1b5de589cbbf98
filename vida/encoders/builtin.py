"""Default encoders: deterministic, documented, and needing no downloaded weights.

* ``hog-color`` (rgb, D=768): per frame, HOG of the grayscale frame (128x128
  window, 32x32 blocks and stride, 16x16 cells, 9 bins: 576) and an HSV colour
  histogram over a 2x2 grid (16 bins per channel per cell: 192).
* ``flow-hist`` (flow, D=256): per flow field, a 4x4 grid; in each cell a
  magnitude-weighted 8-bin orientation histogram and an 8-bin histogram of
  log-magnitudes (a HOF-style motion descriptor).
* ``ast-fbank`` (audio, D=128): the exact input of AST (Kaldi-style 128-bin log-mel
  fbank, 16 kHz, 25 ms window, 10 ms hop, AST's normalisation) computed by
  transformers' ``ASTFeatureExtractor``, averaged over each of the T equal segments
  of the waveform.  Because it *is* AST's input space, a ``[T, 128]`` feature can
  be expanded back into an AST input for tagging generated audio.
"""

from __future__ import annotations

import warnings
from functools import lru_cache
from typing import Any

import cv2
import numpy as np

HOG_SIZE = 128


class HogColorEncoder:
    name = "hog-color"
    modality = "rgb"

    def __init__(self, n_frames: int = 18, **_: Any) -> None:
        self.shape = (n_frames, 768)
        self.params = {"hog": [HOG_SIZE, 32, 32, 16, 9], "color_grid": 2, "color_bins": 16}
        self._hog = cv2.HOGDescriptor((HOG_SIZE, HOG_SIZE), (32, 32), (32, 32), (16, 16), 9)

    def frame(self, rgb: np.ndarray) -> np.ndarray:
        if rgb.shape[:2] != (HOG_SIZE, HOG_SIZE):
            rgb = cv2.resize(rgb, (HOG_SIZE, HOG_SIZE), interpolation=cv2.INTER_AREA)
        hog = self._hog.compute(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)).reshape(-1)
        hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
        half = HOG_SIZE // 2
        hists = []
        for gy in range(2):
            for gx in range(2):
                cell = hsv[gy * half:(gy + 1) * half, gx * half:(gx + 1) * half]
                for channel, top in ((0, 180), (1, 256), (2, 256)):
                    h = cv2.calcHist([cell], [channel], None, [16], [0, top]).reshape(-1)
                    hists.append(h / (half * half))
        return np.concatenate([hog, *hists]).astype(np.float32)

    def encode(self, batch: np.ndarray) -> np.ndarray:
        return np.stack([np.stack([self.frame(f) for f in clip]) for clip in batch])


class FlowHistEncoder:
    name = "flow-hist"
    modality = "flow"

    def __init__(self, n_frames: int = 18, **_: Any) -> None:
        self.shape = (n_frames, 256)
        self.params = {"grid": 4, "orientation_bins": 8, "magnitude_bins": 8,
                       "log_magnitude_edges": [-3.0, 3.0]}

    def field(self, flow: np.ndarray) -> np.ndarray:
        magnitude, angle = cv2.cartToPolar(flow[..., 0], flow[..., 1])
        orient = np.minimum((angle / (2 * np.pi) * 8).astype(np.int64), 7)
        logmag = np.log(magnitude + 1e-3)
        mag_bin = np.clip(((logmag + 3.0) / 6.0 * 8).astype(np.int64), 0, 7)
        h, w = magnitude.shape
        out = []
        for gy in range(4):
            for gx in range(4):
                sl = (slice(gy * h // 4, (gy + 1) * h // 4), slice(gx * w // 4, (gx + 1) * w // 4))
                area = magnitude[sl].size
                out.append(np.bincount(orient[sl].ravel(), magnitude[sl].ravel(), 8) / area)
                out.append(np.bincount(mag_bin[sl].ravel(), minlength=8) / area)
        return np.concatenate(out).astype(np.float32)

    def encode(self, batch: np.ndarray) -> np.ndarray:
        return np.stack([np.stack([self.field(f) for f in clip]) for clip in batch])


FBANK_HOP = 160  # samples (10 ms at 16 kHz)
FBANK_WINDOW = 400  # samples (25 ms)


def segment_of_frames(n_samples: int, n_segments: int) -> np.ndarray:
    """The segment (0..T-1) each fbank frame's centre falls in, for a waveform that is
    zero-padded to a multiple of T samples and cut into T equal parts (the study's rule)."""
    padded = -(-n_samples // n_segments) * n_segments
    n_fbank = 1 + (padded - FBANK_WINDOW) // FBANK_HOP
    centres = np.arange(n_fbank) * FBANK_HOP + FBANK_WINDOW // 2
    return np.minimum(centres // (padded // n_segments), n_segments - 1)


class AstFbankEncoder:
    name = "ast-fbank"
    modality = "audio"

    def __init__(self, n_frames: int = 18, **_: Any) -> None:
        self.shape = (n_frames, 128)
        self.params = {"sampling_rate": 16000, "num_mel_bins": 128, "window_ms": 25,
                       "hop_ms": 10, "normalised_like": "ASTFeatureExtractor",
                       "segments": n_frames}

    @staticmethod
    @lru_cache(maxsize=8)
    def extractor(n_fbank_frames: int) -> Any:
        """AST's own feature extractor, sized to exactly the clip's fbank frames."""
        from transformers import ASTFeatureExtractor

        return ASTFeatureExtractor(max_length=n_fbank_frames)

    def clip(self, waveform: np.ndarray) -> np.ndarray:
        n_seg = self.shape[0]
        padded = np.zeros(-(-len(waveform) // n_seg) * n_seg, dtype=np.float32)
        padded[: len(waveform)] = waveform
        segment = segment_of_frames(len(waveform), n_seg)
        with warnings.catch_warnings():
            # AST's 128 mel bins over a 512-point FFT leave one filter empty; that
            # is AST's own configuration, not a problem of this input.
            warnings.simplefilter("ignore", UserWarning)
            fbank = self.extractor(len(segment))(
                padded, sampling_rate=16000, return_tensors="np"
            )["input_values"][0]
        sums = np.zeros((n_seg, fbank.shape[1]), np.float64)
        np.add.at(sums, segment, fbank)
        counts = np.bincount(segment, minlength=n_seg)[:, None]
        return (sums / np.maximum(counts, 1)).astype(np.float32)

    def encode(self, batch: np.ndarray) -> np.ndarray:
        return np.stack([self.clip(w) for w in batch])
