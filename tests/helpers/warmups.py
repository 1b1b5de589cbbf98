"""Warm-ups for ``open_pool(prepare=...)`` tests: importable by spawned workers."""

from __future__ import annotations

import os
from pathlib import Path


def mark_warm(folder: str) -> None:
    """Leave a file named by this worker's pid."""
    (Path(folder) / str(os.getpid())).touch()


def warmed(folder: str) -> bool:
    """Did this worker warm up before running this item?"""
    return (Path(folder) / str(os.getpid())).exists()


def fail_warm() -> None:
    raise RuntimeError("the model could not be loaded")


def needs_the_model(_item: object) -> None:
    """An item whose work needs what :func:`fail_warm` could not load."""
    fail_warm()
