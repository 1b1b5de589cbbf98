"""Loading transformers models from a hub name or a local directory, with a clear error.

Offline (this is the common case here) only a local directory works; the message
says so instead of showing a hub connection traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vida.errors import UsageError


def from_pretrained(what: str, name_or_dir: str, *classes: Any) -> list[Any]:
    """``cls.from_pretrained(name_or_dir)`` for each class, or one ValueError line."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # no load reports (e.g. an unused pooler) per worker
    hf_logging.disable_progress_bar()  # VIDA's own bars say what is going on
    try:
        return [cls.from_pretrained(name_or_dir) for cls in classes]
    except OSError as exc:
        hint = "" if Path(name_or_dir).exists() else " (offline: pass a local directory)"
        raise UsageError(f"cannot load {what} {name_or_dir!r}{hint}: "
                         f"{str(exc).splitlines()[0]}") from None
    finally:
        hf_logging.set_verbosity(verbosity)
        hf_logging.enable_progress_bar()


def model_revision(name_or_dir: str, config: Any) -> str | None:
    """What identifies the weights: the hub commit when the model came from the hub,
    else the SHA-256 (first 16 hex digits) of the local weights file."""
    commit = getattr(config, "_commit_hash", None)
    if commit:
        return str(commit)
    folder = Path(name_or_dir)
    for file in ("model.safetensors", "pytorch_model.bin"):
        if (folder / file).is_file():
            import hashlib

            digest = hashlib.sha256()
            with open(folder / file, "rb") as fh:
                while chunk := fh.read(1 << 22):
                    digest.update(chunk)
            return f"sha256:{digest.hexdigest()[:16]}"
    return None


def slug(name_or_dir: str) -> str:
    """A short feature-set-safe name for a model: its last path component, lowercased."""
    last = Path(str(name_or_dir).rstrip("/")).name or str(name_or_dir)
    return "".join(c if c.isalnum() or c in "-._" else "-" for c in last.lower())
