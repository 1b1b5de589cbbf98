"""Default encoders: deterministic, documented, and needing no downloaded weights.

* ``hog-color`` (rgb, D=768): per frame, HOG of the grayscale frame (128x128
  window, 32x32 blocks and stride, 16x16 cells, 9 bins: 576) and an HSV colour
  histogram over a 2x2 grid (16 bins per channel per cell: 192).
* ``flow-hist`` (flow, D=256): per flow field, a 4x4 grid; in each cell a
  magnitude-weighted 8-bin orientation histogram and an 8-bin histogram of
  log-magnitudes (a HOF-style motion descriptor).
* ``ast-fbank`` (audio, D=128): the exact input of AST (Kaldi-style 128-bin log-mel
  fbank, 16 kHz, 25 ms window, 10 ms hop, AST's normalisation) computed as
  transformers' ``ASTFeatureExtractor`` does, averaged over each of the T equal segments
  of the waveform.  Because it *is* AST's input space, a ``[T, 128]`` feature can
  be expanded back into an AST input for tagging generated audio.
"""

from __future__ import annotations

import warnings
from functools import lru_cache
from typing import Any

import cv2
import numpy as np

from vida.media.decode import AUDIO_RATE

HOG_SIZE = 128
AST_MEAN, AST_STD = -4.2677393, 4.5689974  # ASTFeatureExtractor's normalisation


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
        """The descriptor of one flow field ``[H, W, 2]``."""
        return self.fields(flow[None])[0]

    def fields(self, flows: np.ndarray) -> np.ndarray:
        """``[N, H, W, 2]`` -> ``[N, 256]``, all fields in one pass of ``bincount``
        (each bin sums its pixels in the same order as a per-cell loop would)."""
        n, h, w = flows.shape[:3]
        magnitude, angle = cv2.cartToPolar(np.ascontiguousarray(flows[..., 0]).reshape(n * h, w),
                                           np.ascontiguousarray(flows[..., 1]).reshape(n * h, w))
        magnitude, angle = magnitude.reshape(n, h, w), angle.reshape(n, h, w)
        orient = np.minimum((angle / (2 * np.pi) * 8).astype(np.int64), 7)
        logmag = np.log(magnitude + 1e-3)
        mag_bin = np.clip(((logmag + 3.0) / 6.0 * 8).astype(np.int64), 0, 7)
        rows = np.searchsorted([g * h // 4 for g in range(4)], np.arange(h), side="right") - 1
        cols = np.searchsorted([g * w // 4 for g in range(4)], np.arange(w), side="right") - 1
        cell = (rows[:, None] * 4 + cols[None, :])[None]  # [1, H, W]
        base = (np.arange(n)[:, None, None] * 16 + cell) * 8
        size = n * 16 * 8
        orient_hist = np.bincount((base + orient).ravel(), magnitude.ravel(), size)
        mag_hist = np.bincount((base + mag_bin).ravel(), minlength=size).astype(np.float64)
        area = np.bincount(cell.ravel(), minlength=16).astype(np.float64)[None, :, None]
        out = np.stack([orient_hist.reshape(n, 16, 8) / area, mag_hist.reshape(n, 16, 8) / area],
                       axis=2)  # per cell: 8 orientation bins, then 8 magnitude bins
        return out.reshape(n, 256).astype(np.float32)

    def encode(self, batch: np.ndarray) -> np.ndarray:
        b, t = batch.shape[:2]
        return self.fields(batch.reshape(b * t, *batch.shape[2:])).reshape(b, t, 256)


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
    preload = ("transformers.audio_utils",)  # slow to import; numpy only (no torch)

    def __init__(self, n_frames: int = 18, **_: Any) -> None:
        self.shape = (n_frames, 128)
        self.params = {"sampling_rate": AUDIO_RATE, "num_mel_bins": 128, "window_ms": 25,
                       "hop_ms": 10, "normalised_like": "ASTFeatureExtractor",
                       "segments": n_frames}

    def warm(self) -> None:
        """Import transformers' audio code and build the filters now: a
        worker does it as it starts, while the driver plans."""
        self._filters()

    @staticmethod
    @lru_cache(maxsize=1)
    def _filters() -> tuple[np.ndarray, np.ndarray]:
        """AST's mel filters and window, as ``ASTFeatureExtractor`` builds them."""
        from transformers.audio_utils import mel_filter_bank, window_function

        with warnings.catch_warnings():
            # AST's 128 mel bins over a 512-point FFT leave one filter empty; that
            # is AST's own configuration, not a problem of this input.
            warnings.simplefilter("ignore", UserWarning)
            filters = mel_filter_bank(num_frequency_bins=257, num_mel_filters=128,
                                      min_frequency=20, max_frequency=8000,
                                      sampling_rate=AUDIO_RATE, norm=None, mel_scale="kaldi",
                                      triangularize_in_mel_space=True)
        return filters, window_function(400, "hann", periodic=False)

    @classmethod
    def fbank(cls, waveform: np.ndarray, n_fbank_frames: int) -> np.ndarray:
        """AST's input for a 16 kHz waveform: ``[n_fbank_frames, 128]``, normalised.

        The same computation as transformers' ``ASTFeatureExtractor`` (its path
        without torchaudio: the same ``audio_utils`` calls, the same padding and
        normalisation; ``tests/test_encoder_plugins.py`` holds them equal) without importing
        its module, which imports torch into every worker's start-up."""
        from transformers.audio_utils import spectrogram

        filters, window = cls._filters()
        fbank = spectrogram(np.squeeze(waveform).astype(np.float32), window, frame_length=400,
                            hop_length=160, fft_length=512, power=2.0, center=False,
                            preemphasis=0.97, mel_filters=filters, log_mel="log",
                            mel_floor=1.192092955078125e-07, remove_dc_offset=True).T
        out = np.zeros((n_fbank_frames, fbank.shape[1]), dtype=np.float32)
        take = min(n_fbank_frames, len(fbank))
        out[:take] = fbank[:take]
        return (out - AST_MEAN) / (AST_STD * 2)

    def clip(self, waveform: np.ndarray) -> np.ndarray:
        n_seg = self.shape[0]
        padded = np.zeros(-(-len(waveform) // n_seg) * n_seg, dtype=np.float32)
        padded[: len(waveform)] = waveform
        segment = segment_of_frames(len(waveform), n_seg)
        fbank = self.fbank(padded, len(segment))
        sums = np.zeros((n_seg, fbank.shape[1]), np.float64)
        starts = np.flatnonzero(np.r_[True, segment[1:] != segment[:-1]])  # sorted segments
        sums[segment[starts]] = np.add.reduceat(fbank.astype(np.float64), starts)
        counts = np.bincount(segment, minlength=n_seg)[:, None]
        return (sums / np.maximum(counts, 1)).astype(np.float32)

    def encode(self, batch: np.ndarray) -> np.ndarray:
        return np.stack([self.clip(w) for w in batch])
