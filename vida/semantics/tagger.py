"""Multi-label AudioSet tagging with AST (transformers' ASTForAudioClassification).

Two inputs:

* **real audio**: the clip's waveform (decoded again from its source media) goes
  through ``ASTFeatureExtractor``, as the study's code did;
* **features** in AST's input space (``ast-fbank``: the normalised 128-bin log-mel
  fbank averaged over T segments), e.g. generated audio, as the paper describes:
  each segment's vector is repeated over the fbank frames of that segment (10 ms
  hop), which renders a ``[T, 128]`` feature back into a ``[frames, 128]`` AST input;
  the rest of AST's fixed-length input is filled with the value AST's extractor
  gives silence-padding after normalisation, ``(0 - mean) / (2 * std)``.

Features from another audio encoder (e.g. a projected embedding) have no such
rendering: an encoder that wants generated features tagged must map its space to
AST's input; until then only waveforms (real audio) can be tagged.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from vida.encoders.builtin import segment_of_frames
from vida.encoders.pretrained import from_pretrained
from vida.media.decode import AUDIO_RATE

DEFAULT_AST = "MIT/ast-finetuned-audioset-10-10-0.4593"


@dataclass
class Tagger:
    extractor: object
    model: object

    @property
    def labels(self) -> dict[int, str]:
        return self.model.config.id2label

    @property
    def max_length(self) -> int:
        return int(self.model.config.max_length)

    @property
    def pad_value(self) -> float:
        fe = self.extractor
        return float((0.0 - fe.mean) / (fe.std * 2)) if fe.do_normalize else 0.0

    def _top_k(self, input_values: torch.Tensor, k: int) -> list[list[tuple[str, float]]]:
        with torch.no_grad():
            probs = torch.sigmoid(self.model(input_values=input_values).logits).numpy()
        out = []
        for row in probs:
            best = np.argsort(-row, kind="stable")[:k]
            out.append([(self.labels[int(i)], float(row[i])) for i in best])
        return out

    def tag_waveforms(self, waves: list[np.ndarray], k: int = 5) -> list[list[tuple[str, float]]]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # AST's own empty mel filter
            inputs = self.extractor(waves, sampling_rate=AUDIO_RATE, return_tensors="pt")
        return self._top_k(inputs["input_values"], k)

    def render(self, features: np.ndarray, n_samples: int) -> np.ndarray:
        """``[B, T, 128]`` segment features -> ``[B, max_length, 128]`` AST inputs."""
        segment = segment_of_frames(n_samples, features.shape[1])
        frames = features[:, segment]  # each fbank frame takes its segment's vector
        out = np.full((len(features), self.max_length, features.shape[2]), self.pad_value,
                      dtype=np.float32)
        n = min(self.max_length, frames.shape[1])
        out[:, :n] = frames[:, :n]
        return out

    def tag_features(self, features: np.ndarray, n_samples: int, k: int = 5
                     ) -> list[list[tuple[str, float]]]:
        return self._top_k(torch.from_numpy(self.render(features, n_samples)), k)


@lru_cache(maxsize=2)
def load_tagger(name_or_dir: str = DEFAULT_AST) -> Tagger:
    """AST from a hub name or a local directory (offline: a directory)."""
    from transformers import ASTFeatureExtractor, ASTForAudioClassification

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # AST's own empty mel filter
        extractor, model = from_pretrained("AST", name_or_dir, ASTFeatureExtractor,
                                           ASTForAudioClassification)
    model.eval()
    return Tagger(extractor, model)


def head_tags(model_name_or_dir: str, embeddings: np.ndarray, k: int = 5,
              projection: str | None = None) -> list[list[tuple[str, float]]]:
    """Tags of ``[B, T, D]`` AST pooled embeddings by AST's own AudioSet head.

    Each time step is a segment's embedding: the head's sigmoid probabilities are
    averaged over the T segments, then the top ``k`` labels taken.  A projected set
    is mapped back first (the PCA's inverse), so the head sees its own space.
    """
    from vida.encoders.audio import Projection, load_ast

    model, _ = load_ast(model_name_or_dir, "cpu", "float32")
    x = Projection(projection).inverse(embeddings) if projection else embeddings
    with torch.no_grad():
        logits = model.classifier(torch.from_numpy(np.ascontiguousarray(x, np.float32)))
        probs = torch.sigmoid(logits).mean(dim=1).numpy()
    labels = model.config.id2label
    out = []
    for row in probs:
        best = np.argsort(-row, kind="stable")[:k]
        out.append([(labels[int(i)], float(row[i])) for i in best])
    return out
