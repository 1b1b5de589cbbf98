"""What an experiment computes (:class:`ExperimentSpec`, one per architecture) and how
it runs (:class:`ExperimentOptions`, which changes no number).

A spec is built once, from the CLI's flags (their defaults are the spec's), a TOML
file, the demo or a recorded run, and checked here, in one place.  Its
:meth:`~ExperimentSpec.params` are what the experiment's run records as
``params.spec``: ``experiment rerun`` builds the same spec from them, and an
unfinished run with the same spec is resumed.  This module imports nothing heavy: the
CLI reads its defaults before it starts the workers.
"""

from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, fields
from typing import Any, ClassVar

from vida.errors import UsageError
from vida.keys import SPLIT_CLIPS

ALL = "all"  # every labelled train clip, in ``labels_per_class``
ARCHS = ("lstm", "mlp")


def parse_labels(text: str | None) -> list[int | str]:
    """``"2,5,10,all"`` -> [2, 5, 10, "all"]."""
    if not text:
        return []
    out: list[int | str] = []
    for part in text.split(","):
        part = part.strip().lower()
        if part == ALL:
            out.append(ALL)
        elif part.isdigit() and int(part) > 0:
            out.append(int(part))
        else:
            raise UsageError(f"--labels-per-class {text!r}: give counts like 2,5,10,all")
    return out


def parse_rates(text: str | None, option: str) -> tuple[float, ...]:
    """``"0.5,0.25,1"`` -> (0.25, 0.5, 1.0): shares of clips, sorted, each once."""
    if not text:
        return ()
    try:
        rates = sorted({float(part) for part in text.split(",")})
    except ValueError:
        raise UsageError(f"{option} {text!r}: give shares of clips like 0.25,0.5,1") from None
    if any(not 0.0 <= r <= 1.0 for r in rates):
        raise UsageError(f"{option} {text!r}: a missing rate is a share of clips, from 0 to 1")
    return tuple(rates)


# the ids --variants takes (vida/jobs/experiments/variants.py: CHOOSABLE; kept here,
# where the CLI reads them without importing the experiments, and held equal by a test)
VARIANT_IDS = ("generated", "generated-filtered", "generated-in-sample", "generated-fill",
               "dropout", "zeros", "mean", "mlp", "token", "tent", "joint", "distill",
               "generated-only", "pca-control")


def parse_variants(text: str | None) -> frozenset[str] | None:
    """``"zeros,mean"`` -> those ids (None: every variant that applies)."""
    if text is None:
        return None
    chosen = frozenset(part.strip() for part in text.split(",") if part.strip())
    unknown = sorted(chosen - set(VARIANT_IDS))
    if unknown:
        raise UsageError(f"--variants {text!r}: no variant {unknown[0]!r}; choose from "
                         f"{', '.join(VARIANT_IDS)} (vision only and + real audio always run)")
    return chosen


@dataclass(frozen=True, kw_only=True)
class ExperimentSpec:
    """What both architectures' experiments take."""

    query: str = SPLIT_CLIPS  # the classifiers' clips (SQL: clip_key, class_name, split)
    generator_query: str | None = None  # the generators' clips (any with audio) [query]
    seeds: int = 3  # repetitions: each seed retrains every generator and classifier
    arch: str = "lstm"  # the classifier
    epochs: int = 10  # the classifier's
    classifier_hidden: int | None = None  # its width [the study's: LSTM 256, MLP 512]
    generator_epochs: int = 10
    generator_batch_size: int | None = None  # [the study's, per architecture]
    generator_lr: float | None = None  # [the study's, per architecture]
    generator_hidden: int = 512  # the generator LSTM's width (the study's)
    rgb: str = "rgb/hog-color"  # the feature sets the variants read
    flow: str = "flow/flow-hist"
    audio: str = "audio/ast-fbank"  # the real audio; generated audio is in its space
    cross_fit: int = 3  # folds whose generators give train clips out-of-sample audio (0: none)
    in_sample_ablation: bool = False  # also the in-sample generated variant
    labels_per_class: str | None = None  # e.g. "2,5,all": the label-efficiency table
    # e.g. "0.25,0.5,1": every model trained with real audio tested again with that
    # share of its test clips' audio missing (stood in for as each variant does)
    test_missing: str | None = None
    # e.g. "0.5,0.9": the share of train clips whose audio is missing; at each, a
    # generator learns from the present clips and every variant fills the missing ones
    # its own way, tested at 0, 1 and every --test-missing rate
    train_missing: str | None = None
    distill_temperature: float = 2.0  # the distilled student's softening of its teacher
    # e.g. "zeros,mean,generated-fill": the variants to run besides vision only and
    # + real audio (ids of vida/jobs/experiments/variants.py) [all that apply]
    variants: str | None = None
    # the joint network's (Lee et al.) weight of its generation loss beside
    # cross-entropy
    joint_weight: float = 1.0

    kind: ClassVar[str] = ""  # svdmap, cafmap: the experiment's arch in its run

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """A value no experiment can run with is the user's error, said in one line."""
        positive = {"seeds": self.seeds, "epochs": self.epochs,
                    "generator-epochs": self.generator_epochs,
                    "generator-hidden": self.generator_hidden,
                    "classifier-hidden": self.classifier_hidden,
                    "generator-batch-size": self.generator_batch_size}
        for option, value in positive.items():
            if value is not None and value < 1:
                raise UsageError(f"--{option} {value}: give a whole number of at least 1")
        if self.arch not in ARCHS:
            raise UsageError(f"--arch {self.arch}: choose one of {', '.join(ARCHS)}")
        if self.cross_fit < 0 or self.cross_fit == 1:
            raise UsageError(f"--cross-fit {self.cross_fit}: give 0 (one generator, in "
                             "sample) or 2 folds or more")
        if not self.distill_temperature > 0:
            raise UsageError(f"--distill-temperature {self.distill_temperature}: give a "
                             "temperature above 0")
        parse_labels(self.labels_per_class)
        parse_variants(self.variants)
        if not self.joint_weight >= 0:
            raise UsageError(f"--joint-weight {self.joint_weight}: give a weight of 0 or more")
        parse_rates(self.test_missing, "--test-missing")
        parse_rates(self.train_missing, "--train-missing")

    @property
    def chosen_variants(self) -> frozenset[str] | None:
        return parse_variants(self.variants)

    @property
    def labels(self) -> list[int | str]:
        return parse_labels(self.labels_per_class)

    @property
    def test_rates(self) -> tuple[float, ...]:
        """The missing rates at test; with rates at training, also 0 and 1 (the grid's
        ends, where every variant's robustness is measured from)."""
        rates = parse_rates(self.test_missing, "--test-missing")
        if self.train_rates:
            return tuple(sorted({0.0, 1.0, *rates}))
        return rates

    @property
    def train_rates(self) -> tuple[float, ...]:
        """The missing rates at training (0: the main table's models)."""
        return parse_rates(self.train_missing, "--train-missing")

    def params(self) -> dict[str, Any]:
        """What the experiment's run records as ``params.spec``."""
        return asdict(self)

    @classmethod
    def from_params(cls, recorded: dict[str, Any]) -> ExperimentSpec:
        """The spec a run recorded (:meth:`params`), built and checked again."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(recorded) - known)
        if unknown:
            raise UsageError(f"the recorded spec has {', '.join(unknown)}, which a "
                             f"{cls.kind} experiment of this VIDA does not take")
        return cls(**recorded)

    @classmethod
    def default(cls, name: str) -> Any:
        """The default of field ``name`` (the CLI's option shows it)."""
        found = next(f for f in fields(cls) if f.name == name)
        return None if found.default is MISSING else found.default


@dataclass(frozen=True, kw_only=True)
class SVDMapSpec(ExperimentSpec):
    """SVDMap's experiment: the clip-level IoU filter of the real audio's AST tags
    against the semantic dictionary, and the study's class-level filter apart."""

    tags: str  # the tag source of the clips' real audio
    dictionary: str  # the semantic dictionary
    min_iou: float = 0.2  # a train clip is kept when its IoU reaches this
    study_variant: bool = False  # also the study's class-level filter, as its own table
    top_classes: int = 5  # the classes that filter keeps
    # AST (a hub name or a folder) that tags the generated and the real audio of the
    # test clips: the IoU of their top-5 labels, in how close generated audio is [none]
    tagger: str | None = None

    kind: ClassVar[str] = "svdmap"

    def check(self) -> None:
        super().check()
        if not 0.0 <= self.min_iou <= 1.0:
            raise UsageError(f"--min-iou {self.min_iou}: an IoU lies between 0 and 1")
        if self.top_classes < 1:
            raise UsageError(f"--top-classes {self.top_classes}: give at least 1")


@dataclass(frozen=True, kw_only=True)
class CAFMapSpec(ExperimentSpec):
    """CAFMap's experiment: the generator reads the caption conditions."""

    condition: str  # the condition set the generator reads
    arch: str = "mlp"
    classifier_lr: float | None = None  # [the study's, per architecture]

    kind: ClassVar[str] = "cafmap"


SPECS: dict[str, type[ExperimentSpec]] = {"svdmap": SVDMapSpec, "cafmap": CAFMapSpec}


@dataclass
class ExperimentOptions:
    """How an experiment runs (not what it computes: the numbers do not depend on it)."""

    workers: int | None = None  # trainings side by side [every core]
    dry_run: bool = False
    progress: bool = True
    device: str = "auto"  # auto: CUDA where it is
    # bytes of features one training may hold in memory; past it, streamed (a batch
    # order of its own: recorded in that training's run) [a share of what is free]
    memory_budget: int | None = None
    # the test clips' groups to show the main table by (a --group-by query)
    group_by: str | None = None
