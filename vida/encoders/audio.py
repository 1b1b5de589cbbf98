"""Audio encoders from AST (the Audio Spectrogram Transformer).

``ast[:MODEL]`` gives one vector per time step (the waveform cut into T equal
segments, the study's rule), in one of three poolings:

* ``pooled`` (default): each segment through AST on its own; the vector is AST's
  pooled output, the mean of its [CLS] and distillation tokens after the final
  layer norm, which is exactly what AST's AudioSet head reads.  So generated
  features in this space can be tagged by AST's own head (``vida-batch tag``).
* ``cls``: the same forward, the [CLS] token alone (the study's choice).
* ``mean``: one forward over the whole clip; the patch tokens whose time falls in
  segment t are averaged (one forward instead of T: far cheaper, not head-taggable).

``projection=FILE`` applies a PCA fitted on the train split (``vida-batch encode
--project D`` fits and stores it); the set's params name the file and its hash, and
the same file is applied wherever that set is produced.

``study-ast``: the study's audio feature, AST [CLS] per segment then a seeded
*random* Linear(768 -> 128), for exact reproduction only.
"""

from __future__ import annotations

import hashlib
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from vida.encoders.builtin import segment_of_frames
from vida.encoders.pretrained import from_pretrained, model_revision, slug
from vida.encoders.runtime import in_batches, resolve_device, resolve_dtype
from vida.errors import UsageError
from vida.media.decode import AUDIO_RATE

DEFAULT_AST = "MIT/ast-finetuned-audioset-10-10-0.4593"
POOLINGS = ("pooled", "cls", "mean")
RATE = AUDIO_RATE  # AST's input rate: what decoding gives every clip


@lru_cache(maxsize=2)
def load_ast(name_or_dir: str, device: str, dtype: str) -> tuple[Any, Any]:
    """(ASTForAudioClassification, its feature extractor), once per process."""
    from transformers import ASTFeatureExtractor, ASTForAudioClassification

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # AST's own empty mel filter
        extractor, model = from_pretrained("AST", name_or_dir, ASTFeatureExtractor,
                                           ASTForAudioClassification)
    return model.to(device=device, dtype=resolve_dtype(dtype)).eval(), extractor


def split_segments(wave: np.ndarray, n: int) -> list[np.ndarray]:
    """Zero-pad to a multiple of ``n`` samples and cut into ``n`` equal segments."""
    padded = np.zeros(-(-len(wave) // n) * n, dtype=np.float32)
    padded[: len(wave)] = wave
    return list(padded.reshape(n, -1))


class Projection:
    """A PCA fitted on train clips: ``mean`` [D] and ``components`` [k, D]."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        with np.load(self.path) as data:
            self.mean = data["mean"].astype(np.float32)
            self.components = data["components"].astype(np.float32)
        self.sha256 = hashlib.sha256(self.path.read_bytes()).hexdigest()[:16]

    @property
    def dim(self) -> int:
        return int(self.components.shape[0])

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean) @ self.components.T).astype(np.float32)

    def inverse(self, y: np.ndarray) -> np.ndarray:
        return (y @ self.components + self.mean).astype(np.float32)

    @staticmethod
    def save(path: Path, mean: np.ndarray, components: np.ndarray, **info: Any) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as fh:
            np.savez(fh, mean=mean.astype(np.float32), components=components.astype(np.float32),
                     **{k: np.asarray(v) for k, v in info.items()})
        return path


class AstEmbeddingEncoder:
    """``ast[:MODEL][?pooling=pooled|cls|mean&projection=FILE]``: AST embeddings per segment."""

    modality = "audio"

    def __init__(self, model: str | None = None, n_frames: int = 18, pooling: str = "pooled",
                 device: str = "auto", dtype: str = "float32", batch_size: int | str = 32,
                 projection: str | None = None, **_: Any) -> None:
        from transformers import AutoConfig

        model = model or DEFAULT_AST
        if pooling not in POOLINGS:
            raise UsageError(f"pooling={pooling}: use one of {', '.join(POOLINGS)}")
        config = from_pretrained("AST config", model, AutoConfig)[0]
        self.model, self.pooling, self.dtype = model, pooling, dtype
        self.device = resolve_device(device)
        self.batch_size = int(batch_size)
        self.n_frames = n_frames
        self.hidden = int(config.hidden_size)
        self.projection = Projection(projection) if projection else None
        dim = self.projection.dim if self.projection else self.hidden
        self.shape = (n_frames, dim)
        self.name = f"{slug(model)}-{pooling}" + ("" if dtype == "float32" else f"-{dtype}")
        self.params: dict[str, Any] = {
            "model": model, "revision": model_revision(model, config), "pooling": pooling,
            "dtype": dtype, "segments": n_frames, "embedding_dim": self.hidden,
            "head_taggable": pooling == "pooled"}
        if self.projection:
            self.name += f"-pca{dim}"
            self.params["projection"] = {"kind": "pca", "dim": dim, "fitted_on": "train",
                                         "file": str(self.projection.path),
                                         "sha256": self.projection.sha256}

    def _inputs(self, waves: list[np.ndarray]) -> Any:
        import torch

        _, extractor = load_ast(self.model, self.device, self.dtype)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            values = extractor(waves, sampling_rate=RATE, return_tensors="pt")["input_values"]
        return values.to(device=self.device, dtype=resolve_dtype(self.dtype)), torch

    def segment_embeddings(self, segments: np.ndarray) -> np.ndarray:
        """``[n, samples]`` segments -> ``[n, D]``: one AST forward per segment."""
        model, _ = load_ast(self.model, self.device, self.dtype)
        values, torch = self._inputs(list(segments))
        with torch.inference_mode():
            out = model.audio_spectrogram_transformer(input_values=values)
        vectors = out.pooler_output if self.pooling == "pooled" else out.last_hidden_state[:, 0]
        return vectors.float().cpu().numpy()

    def clip_mean(self, wave: np.ndarray) -> np.ndarray:
        """One forward over the clip; patch tokens averaged per time segment: ``[T, D]``."""
        model, _ = load_ast(self.model, self.device, self.dtype)
        values, torch = self._inputs([wave])
        ast = model.audio_spectrogram_transformer
        f_dim, t_dim = ast.embeddings.get_shape(model.config)
        with torch.inference_mode():
            tokens = ast(input_values=values).last_hidden_state[0, 2:]  # after CLS, distill
        tokens = tokens.float().cpu().numpy().reshape(f_dim, t_dim, -1).mean(axis=0)  # [t, D]
        centres = np.arange(t_dim) * int(model.config.time_stride) + 8  # patch centres
        segment_of = segment_of_frames(len(wave), self.n_frames)  # fbank frame -> segment
        token_segment = np.where(centres < len(segment_of),
                                 segment_of[np.minimum(centres, len(segment_of) - 1)], -1)
        out = np.zeros((self.n_frames, tokens.shape[1]), np.float32)
        for t in range(self.n_frames):
            chosen = token_segment == t
            if not chosen.any():  # a segment shorter than a patch stride: nearest patch
                chosen = np.abs(centres - np.flatnonzero(segment_of == t).mean()).argmin()
            out[t] = tokens[chosen].reshape(-1, tokens.shape[1]).mean(axis=0)
        return out

    def embed(self, waves: np.ndarray) -> np.ndarray:
        """``[B, n]`` waveforms -> ``[B, T, D]`` unprojected embeddings."""
        if self.pooling == "mean":
            return np.stack([self.clip_mean(w) for w in waves])
        segments = np.stack([s for w in waves for s in split_segments(w, self.n_frames)])
        flat = in_batches(self.segment_embeddings, segments, self.batch_size)
        return flat.reshape(len(waves), self.n_frames, -1)

    def encode(self, batch: np.ndarray) -> np.ndarray:
        x = self.embed(batch)
        return self.projection(x) if self.projection else x


class StudyAstEncoder(AstEmbeddingEncoder):
    """``study-ast``: AST [CLS] per segment, then the study's seeded random
    Linear(768 -> 128) (an untrained projection: for reproduction only)."""

    def __init__(self, model: str | None = None, n_frames: int = 18, seed: int | str = 0,
                 dim: int | str = 128, **options: Any) -> None:
        options.pop("pooling", None)
        options.pop("projection", None)
        super().__init__(model, n_frames, pooling="cls", **options)
        import torch

        generator = torch.Generator().manual_seed(int(seed))
        linear = torch.nn.Linear(self.hidden, int(dim))
        bound = 1 / np.sqrt(self.hidden)  # nn.Linear's own initialisation, seeded
        with torch.no_grad():
            linear.weight.uniform_(-bound, bound, generator=generator)
            linear.bias.uniform_(-bound, bound, generator=generator)
        self.weight = linear.weight.detach().numpy().T.copy()
        self.bias = linear.bias.detach().numpy().copy()
        self.shape = (n_frames, int(dim))
        self.name = "study-ast"
        self.params.update(study=True, seed=int(seed), projection={
            "kind": "random-linear", "dim": int(dim), "seed": int(seed)}, head_taggable=False)

    def encode(self, batch: np.ndarray) -> np.ndarray:
        return (self.embed(batch) @ self.weight + self.bias).astype(np.float32)
