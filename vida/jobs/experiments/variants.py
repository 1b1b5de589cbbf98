"""The variants an experiment compares, as named objects in one registry.

A :class:`Variant` has a stable ``id`` (what code and queries refer to), a display
``label`` (the row of the tables, as recorded in the catalog), what the classifier
trains on and how audio is filled in at training and at test (``fields``: the
changes it makes to the experiment's :class:`~vida.jobs.training.classifier.
ClassifierSpec`, given the seed's :class:`Inputs`), and two facts the tables need:
whether it learns from the training audio without hearing it at test (its share of
real audio's gain is computed) and whether it reads generated audio (it is drawn
against real audio class by class).  Code asks these of the variant, never of its
label's words.  Adding a baseline is one ``Variant`` and one line of ``REGISTRY``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Inputs:
    """What a seed's variants are built from: the real audio set, the seed's generated
    audio (a generate step's ``@`` name), another generated set (SVDMap's IoU-filtered
    one), the distilled student's teacher step, and the student's own settings in the
    label-efficiency table (its epochs, the pool it distils on)."""

    audio: str
    generated: str | None = None
    filtered: str | None = None
    teacher: str | None = None
    student: tuple[tuple[str, Any], ...] = ()
    joint_weight: float = 1.0  # the joint network's generation loss weight


@dataclass(frozen=True)
class Variant:
    id: str
    label: str
    fields: Callable[[Inputs], dict[str, Any]]
    learns_from_training_audio: bool = False
    reads_generated_audio: bool = False


def _vision(_: Inputs) -> dict[str, Any]:
    return {"audio": None}


def _real(inputs: Inputs) -> dict[str, Any]:
    return {"audio": inputs.audio}


def _generated(inputs: Inputs) -> dict[str, Any]:
    return {"audio": inputs.generated}


def _filtered(inputs: Inputs) -> dict[str, Any]:
    return {"audio": inputs.filtered}


def _generated_at_test(inputs: Inputs) -> dict[str, Any]:
    return {"audio": inputs.audio, "test_audio": inputs.generated}


def _dropout(inputs: Inputs) -> dict[str, Any]:
    return {"audio": inputs.audio, "test_audio": inputs.generated,
            "audio_dropout": inputs.generated}


def _zeros_at_test(inputs: Inputs) -> dict[str, Any]:
    return {"audio": inputs.audio, "test_audio": "zeros"}


def _mean_at_test(inputs: Inputs) -> dict[str, Any]:
    return {"audio": inputs.audio, "test_audio": "train-mean"}


def _token(inputs: Inputs) -> dict[str, Any]:
    return {"audio": inputs.audio, "test_audio": "token", "train_fill": "token"}


def _translated(inputs: Inputs) -> dict[str, Any]:
    return {"audio": inputs.audio, "test_audio": "mlp"}


def _joint(inputs: Inputs) -> dict[str, Any]:
    return {"audio": inputs.audio, "joint_weight": inputs.joint_weight}


def _tent(inputs: Inputs) -> dict[str, Any]:
    return {"audio": inputs.audio, "test_audio": "zeros", "tent": True}


def _distilled(inputs: Inputs) -> dict[str, Any]:
    return {"audio": None, "distill_from": inputs.teacher, **dict(inputs.student)}


def _generated_only(inputs: Inputs) -> dict[str, Any]:
    return {"audio": inputs.generated, "vision": False}


def _pca_control(inputs: Inputs) -> dict[str, Any]:
    return {"audio": None, "vision_pca": inputs.audio}


VISION = Variant("vision", "vision only", _vision)
REAL = Variant("real", "+ real audio", _real)
GENERATED = Variant("generated", "+ generated audio", _generated, True, True)
GENERATED_FILTERED = Variant("generated-filtered", "+ filtered generated audio", _filtered,
                             True, True)
GENERATED_IN_SAMPLE = Variant("generated-in-sample", "+ generated audio (in-sample)",
                              _generated, True, True)
# audio missing: the present clips' real audio, a stand-in for the missing clips' at
# training (where some are missing) and at test; with no train clip missing, the
# "+ real audio" model tested with the stand-in
GENERATED_AT_TEST = Variant("generated-fill", "generated for missing audio", _generated_at_test,
                            True, True)
DROPOUT = Variant("dropout", "generated for missing audio, dropout-trained", _dropout, True,
                  True)
ZEROS = Variant("zeros", "zeros for missing audio", _zeros_at_test)
MEAN = Variant("mean", "train mean for missing audio", _mean_at_test)
MLP = Variant("mlp", "MLP translation for missing audio", _translated, True)
# learned from the train clips whose audio is missing: none at a missing rate of 0
TOKEN = Variant("token", "learned token for missing audio", _token)
# the zeros model adapted at test by TENT (MiDl's baseline); the MLP classifier only
TENT = Variant("tent", "zeros for missing audio, TENT-adapted", _tent)
# Lee et al.: frames in, class and audio out; reads no audio at test
JOINT = Variant("joint", "joint generator-classifier (Lee et al.)", _joint, True)
DISTILL = Variant("distill", "distilled from + real audio", _distilled, True)
# label efficiency: the generator as a representation of the frames, and its control
GENERATED_ONLY = Variant("generated-only", "generated audio only", _generated_only, True, True)
PCA_CONTROL = Variant("pca-control", "vision PCA to audio's D", _pca_control)

REGISTRY: tuple[Variant, ...] = (VISION, REAL, GENERATED, GENERATED_FILTERED,
                                 GENERATED_IN_SAMPLE, GENERATED_AT_TEST, DROPOUT, ZEROS, MEAN,
                                 MLP, TOKEN, TENT, JOINT, DISTILL, GENERATED_ONLY,
                                 PCA_CONTROL)
_BY_LABEL = {variant.label: variant for variant in REGISTRY}
_BY_ID = {variant.id: variant for variant in REGISTRY}
assert len(_BY_LABEL) == len(_BY_ID) == len(REGISTRY), "ids and labels must be unique"

# the main table's variants after the generated ones, in its order
MISSING_AT_TEST = (GENERATED_AT_TEST, DROPOUT, ZEROS, MEAN, MLP, TENT)
# with train clips' audio missing too
MISSING_AT_TRAINING = (*MISSING_AT_TEST, TOKEN)
# those that read no audio at test: one row for every rate at test
NO_AUDIO_AT_TEST = (JOINT, DISTILL)
# always run: what every comparison is made with
REFERENCES = (VISION, REAL)
# the stand-ins peers use, the best of which generated audio is set against in each
# cell of the missing-rate grid
STAND_INS = (ZEROS, MEAN, TOKEN, DROPOUT)
# what --variants chooses from (the references always run)
CHOOSABLE = tuple(v for v in REGISTRY if v not in REFERENCES)
# the label-efficiency table's, in its order
LABEL_VARIANTS = (VISION, GENERATED, REAL, GENERATED_ONLY, PCA_CONTROL, DISTILL)
# a variant -> the control it is compared with
CONTROLS = {GENERATED_ONLY: PCA_CONTROL}


def variant(id_: str) -> Variant:
    """The registered variant ``id_``."""
    return _BY_ID[id_]


def labelled(label: str) -> Variant | None:
    """The registered variant whose row is ``label`` (None: a row of no registered
    variant, such as the study's class-level table's)."""
    return _BY_LABEL.get(label)


def learns_from_training_audio(label: str) -> bool:
    """A row of a variant that learns from the training audio without hearing it at
    test (generated audio, the distilled student): its share of real audio's gain
    counts."""
    found = labelled(label)
    return found is not None and found.learns_from_training_audio


def reads_generated_audio(label: str) -> bool:
    """A row of a variant that reads generated audio (drawn against real audio's gain
    class by class)."""
    found = labelled(label)
    return found is not None and found.reads_generated_audio
