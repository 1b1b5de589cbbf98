"""Where and how a transformers encoder runs: device, dtype, batches.

``--device auto`` takes CUDA when torch sees it and the CPU otherwise; asking for
``cuda`` where there is none is a one-line error, never a silent CPU run.  The
dtype is the user's choice (``float32`` default): on CPUs without native bfloat16
kernels bfloat16 is *slower* than float32, which ``bin/bench_encoders.py`` shows,
so no dtype is chosen by habit.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from vida.errors import UsageError

DTYPES = ("float32", "bfloat16", "float16")

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(device: str = "auto") -> str:
    """``auto`` -> ``cuda`` or ``cpu``; ``cuda`` without CUDA -> ValueError."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"--device {device}: torch sees no CUDA device on this machine; "
                         "use --device cpu (or auto)")
    if device != "cpu" and not device.startswith("cuda"):
        raise UsageError(f"--device {device}: use one of {', '.join(DEVICES)}")
    return device


def resolve_dtype(dtype: str = "float32"):
    """A dtype name -> the torch dtype."""
    import torch

    if dtype not in DTYPES:
        raise UsageError(f"--dtype {dtype}: use one of {', '.join(DTYPES)}")
    return getattr(torch, dtype)


def in_batches(forward: Callable[[np.ndarray], np.ndarray], items: np.ndarray,
               batch_size: int) -> np.ndarray:
    """``forward`` over ``items`` in slices of ``batch_size``, concatenated (float32)."""
    if len(items) == 0:
        raise UsageError("nothing to encode")
    parts = [forward(items[i:i + batch_size]) for i in range(0, len(items), batch_size)]
    return np.concatenate(parts).astype(np.float32, copy=False)
