"""An experiment as a plan of trainings: what to train, on which clips, after what.

A :class:`Step` is one generator training, one generated set, or one classifier
training.  Its key names it for good (``s0/generator/all``,
``labels=2/s1/classifier/vision only``): a rerun after a kill finds its finished
steps by key.  A classifier that learns from generated audio names the generate step
that makes it (``"@s0/generate/all"`` in its spec) and lists it in ``needs``.

:class:`Plan` also says which steps make which row of which table, so that the
summary reads the same whether the steps ran one after another or side by side.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

from vida.catalog.database import Catalog
from vida.catalog.records.clip_queries import ClipQuery, clips_of
from vida.jobs.experiments.label_efficiency import ALL, equal_step_epochs, labelled_query
from vida.jobs.experiments.variants import (
    DISTILL,
    DROPOUT,
    GENERATED_AT_TEST,
    GENERATED_FILTERED,
    GENERATED_IN_SAMPLE,
    JOINT,
    LABEL_VARIANTS,
    MISSING_AT_TEST,
    MISSING_AT_TRAINING,
    NO_AUDIO_AT_TEST,
    REAL,
    REFERENCES,
    TENT,
    VISION,
    Inputs,
    Variant,
)
from vida.jobs.experiments.variants import GENERATED as GENERATED_AUDIO
from vida.jobs.training.classifier import ClassifierSpec
from vida.jobs.training.generator import GeneratorSpec, cross_fit_folds
from vida.models.missing import missing_clips

GENERATOR, GENERATE, CLASSIFIER = "generator", "generate", "classifier"
GENERATED = "@"  # a spec field naming a generate step's set


@dataclass(frozen=True)
class Step:
    key: str
    kind: str
    query: ClipQuery
    spec: ClassifierSpec | GeneratorSpec | None = None
    needs: tuple[str, ...] = ()
    seed: int = 0
    classes: tuple[str, ...] = ()  # classifier: the experiment's classes
    exclude: tuple[str, ...] = ()  # generator: a cross-fitting fold's clips, left out
    fold: str | None = None  # generator: "2/3" of a cross-fitting
    source: str | None = None  # generate: the generator step
    folds: tuple[str, ...] = ()  # generate: its cross-fitting generator steps
    # classifier: the step whose trained model this one tests (another test-time input)
    trained_by: str | None = None

    @property
    def trains(self) -> bool:
        return self.kind != GENERATE and self.trained_by is None

    @property
    def counted_as(self) -> str:
        """Its kind in the plan's counts: a classifier that only tests is "test-only"."""
        return "test-only" if self.trained_by else self.kind


@dataclass
class Plan:
    steps: list[Step] = field(default_factory=list)
    # table -> variant -> the step keys of its seeds, in seed order
    tables: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    # the variants the spec chose (ids; None: all that apply), the joint network's
    # generation weight, and why a variant the spec chose does not run
    variants: frozenset[str] | None = None
    joint_weight: float = 1.0
    notes: list[str] = field(default_factory=list)

    def runs(self, variant: Variant, spec: ClassifierSpec) -> bool:
        """Whether ``variant`` runs with the experiment's classifier ``spec`` (a variant
        chosen that cannot is noted once)."""
        if variant in REFERENCES:
            return True
        if self.variants is not None and variant.id not in self.variants:
            return False
        if variant is TENT and spec.arch != "mlp":
            self.note(f"{TENT.id}: not run: TENT adapts normalisation layers, and the "
                      f"{spec.arch} classifier has none (--arch mlp has them)")
            return False
        return True

    def note(self, line: str) -> None:
        if line not in self.notes:
            self.notes.append(line)

    def add(self, step: Step, table: str | None = None, variant: str | None = None) -> Step:
        if all(s.key != step.key for s in self.steps):
            self.steps.append(step)
        if table is not None and variant is not None:
            self.tables.setdefault(table, {}).setdefault(variant, []).append(step.key)
        return step

    def counts(self) -> dict[str, int]:
        """Steps per kind (for ``--dry-run`` and the experiment's params)."""
        return dict(Counter(step.counted_as for step in self.steps))

    def describe(self) -> list[dict[str, Any]]:
        return [{"key": s.key, "kind": s.kind, "needs": list(s.needs)} for s in self.steps]


def generated(step: Step) -> str:
    return GENERATED + step.key


def generator_steps(plan: Plan, catalog: Catalog, name: str, seed: int, query: ClipQuery,
                    spec: GeneratorSpec, cross_fit: int, base: ClipQuery, in_sample: bool = False
                    ) -> Step:
    """A generator, its cross-fitting folds, and the step that writes its set for the
    ``base`` clips; returns that generate step."""
    trained = plan.add(Step(f"s{seed}/generator/{name}", GENERATOR, query, spec, seed=seed))
    folds: list[Step] = []
    if cross_fit and not in_sample:
        for i, excluded in enumerate(cross_fit_folds(catalog, query, spec.seed, cross_fit)):
            folds.append(plan.add(Step(f"{trained.key}/fold{i + 1}of{cross_fit}", GENERATOR,
                                       query, spec, seed=seed, exclude=tuple(excluded),
                                       fold=f"{i + 1}/{cross_fit}")))
    suffix = "/in-sample" if in_sample else ""
    return plan.add(Step(f"s{seed}/generate/{name}{suffix}", GENERATE, base,
                         needs=(trained.key, *(f.key for f in folds)), seed=seed,
                         source=trained.key, folds=tuple(f.key for f in folds)))


def classifier_step(plan: Plan, table: str, variant: str, seed: int, query: ClipQuery,
                    spec: ClassifierSpec, classes: list[str], prefix: str = "") -> Step:
    """A classifier training, or, when the plan already trains the same model and only
    the test-time audio differs, a step that tests that model (it needs it)."""
    spec = replace(spec, seed=seed, variant=variant)
    twin = _trained_twin(plan, query, spec, tuple(classes))
    needs = tuple(dict.fromkeys(
        [v[len(GENERATED):] for v in (spec.audio, spec.test_audio, spec.audio_dropout,
                                      spec.train_fill)
         if isinstance(v, str) and v.startswith(GENERATED)]
        + [key for key in (twin, spec.distill_from) if key]))
    return plan.add(Step(f"{prefix}s{seed}/classifier/{variant}", CLASSIFIER, query, spec,
                         needs=needs, seed=seed, classes=tuple(classes), trained_by=twin),
                    table, variant)


def _trained_twin(plan: Plan, query: ClipQuery, spec: ClassifierSpec, classes: tuple[str, ...]
                  ) -> str | None:
    """The key of a planned training that is ``spec``'s own training: same clips, same
    spec but for the label and the test-time audio (seeded, so the same weights)."""
    if spec.test_audio is None:
        return None
    same = _training_of(spec)
    for step in plan.steps:
        if (step.kind == CLASSIFIER and step.trains and step.query == query
                and step.classes == classes and _training_of(step.spec) == same):
            return step.key
    return None


def _training_of(spec: ClassifierSpec) -> ClassifierSpec:
    """What a classifier trains, without what it is tested with."""
    return replace(spec, variant=None, test_audio=None, test_missing=None, tent=False)


def variant_step(plan: Plan, table: str, variant: Variant, seed: int, query: ClipQuery,
                 spec: ClassifierSpec, inputs: Inputs, classes: list[str], prefix: str = "",
                 **changes: Any) -> Step | None:
    """The classifier step of ``variant``: the experiment's classifier as the variant
    changes it (and ``changes``); None where the variant does not run."""
    if not plan.runs(variant, spec):
        return None
    inputs = replace(inputs, joint_weight=plan.joint_weight)
    return classifier_step(plan, table, variant.label, seed, query,
                           replace(spec, **{**variant.fields(inputs), **changes}), classes,
                           prefix=prefix)


def missing_table(test_rate: float, train_rate: float = 0.0) -> str:
    """The plan's table of the models tested with a share ``test_rate`` of test audio
    missing, trained with a share ``train_rate`` of train audio missing."""
    test = f"{MISSING_PREFIX}{test_rate:g}"
    return f"{TRAIN_MISSING_PREFIX}{train_rate:g}/{test}" if train_rate else test


MISSING_PREFIX = "test_missing="
TRAIN_MISSING_PREFIX = "train_missing="


def missing_rates(table: str) -> tuple[float, float] | None:
    """(train rate, test rate) of a :func:`missing_table` name (None: another table)."""
    train = 0.0
    if table.startswith(TRAIN_MISSING_PREFIX):
        first, _, table = table.partition("/")
        train = float(first.removeprefix(TRAIN_MISSING_PREFIX))
    if not table.startswith(MISSING_PREFIX):
        return None
    return train, float(table.removeprefix(MISSING_PREFIX))


def _references(plan: Plan, table: str, seed: int, variants: tuple[Variant, ...]) -> None:
    """Rows of ``table`` that are the main table's own runs of ``seed`` (those it has)."""
    main = plan.tables["main"]
    rows = plan.tables.setdefault(table, {})
    for variant in variants:
        if variant.label in main:
            rows.setdefault(variant.label, []).append(main[variant.label][seed])


def missing_at_test_steps(plan: Plan, seed: int, query: ClipQuery, spec: ClassifierSpec,
                          inputs: Inputs, classes: list[str], rates: tuple[float, ...]
                          ) -> None:
    """Each model of the deployment case tested again with a share of its test clips'
    audio missing (the same clips for every variant of a seed), beside the main
    table's runs of vision only, + real audio and the variants that read no audio at
    test.  At rate 1 every clip's is missing: the main table's own runs; at rate 0
    none is: + real audio's, but for TENT, which adapts to the test clips anyway."""
    for rate in rates:
        table = missing_table(rate)
        _references(plan, table, seed, (*REFERENCES, *NO_AUDIO_AT_TEST))
        for variant in MISSING_AT_TEST:
            if rate == 1 or (rate == 0 and variant is not TENT):
                source = REAL if rate == 0 else variant
                if variant.label in plan.tables["main"]:
                    plan.tables[table].setdefault(variant.label, []).append(
                        plan.tables["main"][source.label][seed])
                continue
            step = variant_step(plan, table, variant, seed, query, spec, inputs, classes,
                                prefix=f"{table}/", test_missing=rate)
            _relabel(plan, step, f"{variant.label} @ {rate:g} missing at test")


def missing_at_training_steps(plan: Plan, catalog: Catalog, seed: int, *, base: ClipQuery,
                              gen_base: ClipQuery, gspec: GeneratorSpec, cspec: ClassifierSpec,
                              audio: str, classes: list[str], cross_fit: int,
                              train_rates: tuple[float, ...], test_rates: tuple[float, ...]
                              ) -> None:
    """At each missing rate at training above 0: a generator learns from the train clips
    whose audio is present (and the pool's), and every variant fills the missing train
    clips its own way, then is tested at every missing rate at test (one training, a
    test-only step per further rate; the joint network, which reads no audio at test,
    once for every rate), beside the main table's vision only and + real audio."""
    if DISTILL.label in plan.tables.get("main", {}) and any(r > 0 for r in train_rates):
        plan.note(f"{DISTILL.id}: run with every train clip's audio only (with some "
                  "missing, its teacher would learn from the others: not yet)")
    for train_rate in (r for r in train_rates if r > 0):
        inputs = Inputs(audio)
        if any(plan.runs(v, cspec) for v in (GENERATED_AT_TEST, DROPOUT)):
            present = _present_train_keys(catalog, base, gen_base, train_rate, seed)
            gen = generator_steps(plan, catalog, f"train_missing={train_rate:g}", seed,
                                  gen_base.narrowed(train_keys=present), gspec, cross_fit,
                                  base)
            inputs = Inputs(audio, generated=generated(gen))
        joint = None
        for test_rate in test_rates:
            table = missing_table(test_rate, train_rate)
            _references(plan, table, seed, REFERENCES)
            for variant in MISSING_AT_TRAINING:
                if not plan.runs(variant, cspec):
                    continue
                step = variant_step(plan, table, variant, seed, base, cspec, inputs, classes,
                                    prefix=f"{table}/", train_missing=train_rate,
                                    train_fill=variant.fields(inputs)["test_audio"],
                                    test_missing=test_rate)
                _relabel(plan, step, f"{variant.label} @ {train_rate:g} missing at "
                                     f"training, {test_rate:g} at test")
            if joint is None:
                joint = variant_step(plan, table, JOINT, seed, base, cspec, inputs, classes,
                                     prefix=f"{table}/", train_missing=train_rate,
                                     train_fill="zeros")
                _relabel(plan, joint, f"{JOINT.label} @ {train_rate:g} missing at training")
            else:
                plan.tables[table].setdefault(JOINT.label, []).append(joint.key)


def _present_train_keys(catalog: Catalog, base: ClipQuery, gen_base: ClipQuery, rate: float,
                        seed: int) -> tuple[str, ...]:
    """The generator clips' train clips but those of ``base`` whose audio is missing
    at ``rate`` (the classifiers draw the same: the seed's mask of ``base``'s clips)."""
    clips = clips_of(catalog, base)
    train = clips.loc[clips["split"] == "train", ["clip_key", "class_name", "split"]]
    gone = set(missing_clips(train, [rate], seed)["clip_key"])
    pool = clips_of(catalog, gen_base)
    keys = pool.loc[pool["split"] == "train", "clip_key"]
    return tuple(k for k in keys if k not in gone)


def teacher_key(seed: int, prefix: str = "") -> str:
    """The step of the "+ real audio" classifier a distilled student learns from."""
    return f"{prefix}s{seed}/classifier/{REAL.label}"


def label_efficiency_steps(plan: Plan, catalog: Catalog, counts: list[int | str], *,
                           base: ClipQuery, seeds: int, spec: ClassifierSpec, audio: str,
                           generated_by_seed: dict[int, Step], classes: list[str],
                           pool: ClipQuery | None = None) -> None:
    """Every label-efficiency variant at every label count; at ``all`` labels the
    experiment's own classifiers stand in where they are the same training.

    "Generated audio only": the generator as a learned representation of the frames
    (it predicts the sound, which it learned from every clip with audio), to see
    whether that representation needs fewer labels than the frames do; and its control,
    the frames reduced by a PCA to the audio's width, since with few labels a smaller
    input may win whatever it encodes.  The distilled student learns from the teacher
    "+ real audio" of its label count, on every clip of the generator's ``pool`` (whose
    audio the generator heard too), for the optimisation steps of the full set."""
    n_all = _n_train(catalog, base)
    for n in counts:
        table = f"labels={n}"
        for seed in range(seeds):
            query = labelled_query(catalog, base, n, seed)
            assert spec.batch_size is not None  # set by ClassifierSpec.__post_init__
            epochs = equal_step_epochs(spec.epochs, spec.batch_size, n_all,
                                       _n_train(catalog, query))
            inputs = Inputs(audio, generated=generated(generated_by_seed[seed]),
                            teacher=teacher_key(seed, f"{table}/"),
                            student=(("epochs", spec.epochs),
                                     ("distill_pool", pool and str(pool))))
            for variant in LABEL_VARIANTS:
                main = plan.tables.get("main", {}).get(variant.label)
                if n == ALL and main and len(main) > seed:
                    plan.tables.setdefault(table, {}).setdefault(variant.label, []).append(
                        main[seed])
                    continue
                step = variant_step(plan, table, variant, seed, query,
                                    replace(spec, epochs=epochs), inputs, classes,
                                    prefix=f"{table}/")
                _relabel(plan, step, f"{variant.label} @ {n} labels/class")


def _relabel(plan: Plan, step: Step | None, variant: str) -> None:
    """The run's variant label says its label count (the table row keeps the name)."""
    if step is None:
        return
    index = plan.steps.index(step)
    plan.steps[index] = replace(step, spec=replace(step.spec, variant=variant))


def _n_train(catalog: Catalog, query: ClipQuery) -> int:
    return int((clips_of(catalog, query)["split"] == "train").sum())


def seed_main_steps(plan: Plan, catalog: Catalog, seed: int, gen: Step, *,
                     base: ClipQuery, gen_base: ClipQuery, gspec: GeneratorSpec,
                     cspec: ClassifierSpec, audio: str, classes: list[str], cross_fit: int,
                     in_sample_ablation: bool, filtered: Step | None = None,
                     test_rates: tuple[float, ...] = (), train_rates: tuple[float, ...] = ()
                     ) -> None:
    """One seed's main table: vision only, + real audio, + generated audio (``gen``'s
    set), + filtered generated audio (``filtered``'s, SVDMap), the deployment case
    (trained with real audio, tested without it: generated audio in its place after
    plain or modality-dropout training, beside the stand-ins peers use, zeros and the
    train clips' mean audio), the distilled student, and the in-sample ablation when
    asked for."""
    inputs = Inputs(audio, generated=generated(gen),
                    filtered=generated(filtered) if filtered else None,
                    teacher=teacher_key(seed))
    main = (VISION, REAL, GENERATED_AUDIO, *([GENERATED_FILTERED] if filtered else []),
            *MISSING_AT_TEST, DISTILL, JOINT)
    for variant in main:
        variant_step(plan, "main", variant, seed, base, cspec, inputs, classes)
    missing_at_test_steps(plan, seed, base, cspec, inputs, classes, test_rates)
    missing_at_training_steps(plan, catalog, seed, base=base, gen_base=gen_base, gspec=gspec,
                              cspec=cspec, audio=audio, classes=classes, cross_fit=cross_fit,
                              train_rates=train_rates, test_rates=test_rates)
    if in_sample_ablation and cross_fit:
        in_sample = generator_steps(plan, catalog, "all", seed, gen_base, gspec, cross_fit,
                                    base, in_sample=True)
        variant_step(plan, "main", GENERATED_IN_SAMPLE, seed, base, cspec,
                     Inputs(audio, generated=generated(in_sample)), classes)
