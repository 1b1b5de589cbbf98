"""Loading transformers models from a hub name or a local directory, with a clear error.

Offline (this is the common case here) only a local directory works; the message
says so instead of showing a hub connection traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def from_pretrained(what: str, name_or_dir: str, *classes: Any) -> list[Any]:
    """``cls.from_pretrained(name_or_dir)`` for each class, or one ValueError line."""
    try:
        return [cls.from_pretrained(name_or_dir) for cls in classes]
    except OSError as exc:
        hint = "" if Path(name_or_dir).exists() else " (offline: pass a local directory)"
        raise ValueError(f"cannot load {what} {name_or_dir!r}{hint}: "
                         f"{str(exc).splitlines()[0]}") from None
