"""The study's feature files, read safely.

The original notebooks saved ``{(class, clip_id): array}`` dicts with ``np.save``
and read them back with ``np.load(..., allow_pickle=True)``, which executes any
code a crafted file contains.  Here the ``.npy`` header is parsed by NumPy and
the pickle payload by an unpickler that resolves only the globals NumPy needs to
rebuild arrays; anything else (``os.system``, ``builtins.eval``, ...) is refused.
"""

from __future__ import annotations

import io
import pickle
import re
from pathlib import Path
from typing import Any

import numpy as np
from numpy.lib import format as npy_format

# (module, name) pairs a pickled dict of ndarrays may reference.
from vida.errors import UsageError

_ALLOWED_GLOBALS = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("_codecs", "encode"),  # protocol-2 pickles encode bytes through it
}
_ALLOWED_TYPES = (dict, tuple, list, str, int, float, np.ndarray, np.generic)

# rgb_filtered_train.npy, flow_train.npy, audio_val.npy, gen_audio_filtered_test.npy ...
_NAME = re.compile(r"^(gen_audio|rgb|flow|audio)(?:_.*)?_(train|val|test)$")
_MODALITY = {"rgb": "rgb", "flow": "flow", "audio": "audio", "gen_audio": "generated"}


class UnsafePickle(UsageError):
    """A pickle that tried to reach something other than plain data and arrays."""


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, stream: io.BufferedIOBase, origin: str) -> None:
        super().__init__(stream)
        self.origin = origin

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise UnsafePickle(
            f"{self.origin}: refused to load: the pickle asks for {module}.{name}; only "
            "dicts of NumPy arrays are accepted (re-save the file with plain arrays)"
        )


def _check_types(value: Any, origin: str, depth: int = 0) -> None:
    if not isinstance(value, _ALLOWED_TYPES) or depth > 4:
        raise UnsafePickle(f"{origin}: holds a {type(value).__name__}, not plain data")
    if isinstance(value, dict):
        for k, v in value.items():
            _check_types(k, origin, depth + 1)
            _check_types(v, origin, depth + 1)
    elif isinstance(value, (tuple, list)):
        for v in value:
            _check_types(v, origin, depth + 1)
    elif isinstance(value, np.ndarray) and value.dtype == object:
        raise UnsafePickle(f"{origin}: holds an object array inside the dict")


def load_feature_dict(path: Path) -> dict[tuple[str, str], np.ndarray]:
    """``{(class, clip_id): array}`` from a study ``.npy`` file, without running code."""
    origin = str(path)
    with open(path, "rb") as fh:
        try:
            version = npy_format.read_magic(fh)
            read_header = (
                npy_format.read_array_header_1_0
                if version == (1, 0)
                else npy_format.read_array_header_2_0
            )
            shape, _fortran, dtype = read_header(fh)
        except ValueError as exc:
            raise UsageError(f"{origin}: not a .npy file ({exc})") from None
        if dtype.kind != "O":
            raise UsageError(f"{origin}: holds a plain {dtype} array {shape}, not a feature dict")
        try:
            payload = _RestrictedUnpickler(fh, origin).load()
        except UnsafePickle:
            raise
        except Exception as exc:  # truncated or garbled pickle data
            raise UsageError(f"{origin}: unreadable pickle payload ({exc})") from None
    if isinstance(payload, np.ndarray) and payload.dtype.kind == "O" and payload.shape == ():
        payload = payload.item()  # np.save(dict) wraps the dict in a 0-d object array
    _check_types(payload, origin)
    if not isinstance(payload, dict):
        raise UsageError(f"{origin}: expected a dict of (class, clip_id) -> array")
    out: dict[tuple[str, str], np.ndarray] = {}
    for key, value in payload.items():
        if not (isinstance(key, tuple) and len(key) == 2 and all(isinstance(k, str) for k in key)):
            raise UsageError(f"{origin}: key {key!r} is not a (class, clip_id) pair")
        out[key] = np.asarray(value)
    return out


def parse_legacy_name(path: Path) -> tuple[str, str, str]:
    """``(kind, modality, split)`` from a study file name, e.g. rgb_filtered_train.npy."""
    match = _NAME.match(path.stem)
    if not match:
        raise UsageError(
            f"{path.name}: not a study feature file name "
            "(<rgb|flow|audio|gen_audio>[_...]_<train|val|test>.npy)"
        )
    kind, split = match.groups()
    return kind, _MODALITY[kind], split


def legacy_files(root: Path) -> list[Path]:
    return [root] if root.is_file() else sorted(root.glob("*.npy"))
