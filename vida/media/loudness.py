"""Loudness in dBFS, computed in float64 (the study squared int16 samples and overflowed)."""

from __future__ import annotations

import numpy as np

SILENCE_FLOOR_DB = -120.0


def dbfs(waveform: np.ndarray) -> float:
    """RMS level relative to full scale (1.0); -120 for digital silence."""
    if waveform.size == 0:
        return SILENCE_FLOOR_DB
    samples = waveform.astype(np.float64)
    if np.issubdtype(waveform.dtype, np.integer):
        samples /= float(np.iinfo(waveform.dtype).max) + 1.0
    rms = float(np.sqrt(np.mean(samples * samples)))
    return max(SILENCE_FLOOR_DB, 20.0 * np.log10(rms)) if rms > 0 else SILENCE_FLOOR_DB
