"""Cross-modal distillation, the baseline a reviewer asks for beside generated audio.

A teacher trained on vision + real audio is taught to a vision-only student of the
classifier's architecture: cross-entropy on the labelled clips plus the KL divergence
to the teacher's soft outputs at a temperature ``T`` (Hinton et al., 2015; Garcia et
al., ECCV 2018), tested on vision only.  With few labels, the student distils on every
clip of the generator's pool, whose real audio the teacher hears: generated audio and
distillation then use the same unlabelled audio.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from vida.errors import UsageError
from vida.jobs.training.inputs import Blocks, Standardizer, load_blocks
from vida.models import build_classifier
from vida.store.located import Located

UNLABELLED = -1  # a pool clip's hard label: it only has the teacher's soft one


@dataclass(frozen=True)
class Teacher:
    """A trained vision + audio classifier, and where its inputs for the clips to
    distil on are (located in the driver)."""

    checkpoint: bytes
    arch: str
    hidden: int | None
    inputs: tuple[Located, ...]  # the distil clips' rgb, flow and audio rows
    keys: tuple[str, ...]  # those clips, in clip_key order
    audio_width: int  # D of the audio block, the last of the inputs


def soft_targets(teacher: Teacher, n_classes: int, temperature: float,
                 scratch: str | None = None) -> tuple[Blocks, np.ndarray]:
    """The distil clips' vision blocks (for the student) and the teacher's softened
    class probabilities from their vision + real audio, a batch at a time."""
    x = load_blocks(teacher.inputs, scratch=scratch)
    if x.widths[-1] != teacher.audio_width:
        raise UsageError(f"the teacher's audio is {teacher.audio_width}-d, its last input "
                         f"{x.widths[-1]}-d")
    saved = torch.load(io.BytesIO(teacher.checkpoint), weights_only=True,
                       map_location="cpu")
    model = build_classifier(teacher.arch, x.width, n_classes, teacher.hidden)
    model.load_state_dict(saved["state_dict"])
    model.eval()
    norm = Standardizer.from_state(saved["input_norm"])
    soft = []
    with torch.no_grad():
        for i in range(0, x.n, 256):
            logits = model(torch.from_numpy(norm.apply_(x.rows(slice(i, i + 256)))))
            soft.append(torch.softmax(logits / temperature, dim=-1).numpy())
    return Blocks.of(x.sources[:-1]), np.concatenate(soft)


def distil_batches(labels: np.ndarray, keys: tuple[str, ...], pool_x: Blocks,
                   soft: np.ndarray, pool_keys: tuple[str, ...]
                   ) -> tuple[Blocks, np.ndarray]:
    """The student's training set: every pool clip with its soft target, and with its
    hard label where it is one of the labelled clips (``UNLABELLED`` otherwise),
    packed as ``[hard label, soft targets...]`` rows so that one loader carries both."""
    pool = set(pool_keys)
    outside = [k for k in keys if k not in pool]
    if outside:
        raise UsageError(f"{len(outside)} labelled clips are not in the distillation pool "
                         f"(e.g. {outside[0]}): the pool must hold the labelled clips")
    label_of = dict(zip(keys, labels.tolist(), strict=True))
    hard = np.array([label_of.get(k, UNLABELLED) for k in pool_keys], dtype=np.float32)
    return pool_x, np.concatenate([hard[:, None], soft.astype(np.float32)], axis=1)


class DistillLoss(nn.Module):
    """``(1 - weight) * CE(labelled) + weight * T^2 * KL(teacher || student / T)``."""

    def __init__(self, temperature: float, weight: float = 0.5) -> None:
        super().__init__()
        self.temperature, self.weight = temperature, weight

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        hard, soft = target[:, 0].long(), target[:, 1:]
        t = self.temperature
        kl = F.kl_div(F.log_softmax(logits / t, dim=-1), soft, reduction="batchmean") * t * t
        labelled = hard != UNLABELLED
        ce = (F.cross_entropy(logits[labelled], hard[labelled]) if labelled.any()
              else logits.sum() * 0.0)
        return (1 - self.weight) * ce + self.weight * kl
