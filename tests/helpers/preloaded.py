"""A module a test has the worker server import before any worker starts."""

from __future__ import annotations

import os

IMPORTED_IN = os.getpid()


def where(name: str) -> tuple[int, int, str | None]:
    """(process that imported this module, this process, the variable ``name``)."""
    return IMPORTED_IN, os.getpid(), os.environ.get(name)
