"""The SVDMap experiment: the IoU filter's keep/drop, then a plan of generators and
classifiers over seeds (all clips, kept clips, the study's class-level variant).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from vida.catalog.database import Catalog
from vida.catalog.records.clip_queries import ClipQuery, clips_of
from vida.catalog.records.dictionaries import load_dictionary
from vida.catalog.records.filters import store_decisions
from vida.catalog.records.tags import load_tags
from vida.errors import UsageError
from vida.jobs.experiments.opening import (
    check_feature_sets,
    open_experiment,
    record_masks,
    with_features,
)
from vida.jobs.experiments.plan import (
    Plan,
    classifier_step,
    generated,
    generator_steps,
    label_efficiency_steps,
    seed_main_steps,
)
from vida.jobs.experiments.results import ExperimentResult, record_results
from vida.jobs.experiments.runner import run_experiment_plan
from vida.jobs.experiments.spec import ExperimentOptions, SVDMapSpec
from vida.jobs.experiments.statistics import (
    label_table,
    missing_grid_table,
    per_class_of,
    tables_of,
)
from vida.jobs.training.classifier import ClassifierSpec
from vida.jobs.training.generator import GeneratorSpec
from vida.semantics.iou_filter import FilterResult, clip_ious, decide
from vida.semantics.tagger import load_tagger
from vida.store.store import FeatureStore


def _svdmap_plan(catalog: Catalog, *, seeds: int, base: ClipQuery, gen_base: ClipQuery,
                 kept_query: ClipQuery, classes: list[str], gspec: GeneratorSpec,
                 cspec: ClassifierSpec, audio: str, cross_fit: int,
                 in_sample_ablation: bool, labels: list[int | str],
                 test_rates: tuple[float, ...] = (), train_rates: tuple[float, ...] = (),
                 variants: frozenset[str] | None = None, joint_weight: float = 1.0) -> Plan:
    plan = Plan(variants=variants, joint_weight=joint_weight)
    generated_by_seed = {}
    for seed in range(seeds):
        g = replace(gspec, seed=seed)
        gen_all = generator_steps(plan, catalog, "all", seed, gen_base, g, cross_fit, base)
        gen_kept = generator_steps(plan, catalog, "kept", seed, kept_query, g, cross_fit, base)
        generated_by_seed[seed] = gen_all
        seed_main_steps(plan, catalog, seed, gen_all, base=base, gen_base=gen_base, gspec=g,
                         cspec=cspec, audio=audio, classes=classes, cross_fit=cross_fit,
                         in_sample_ablation=in_sample_ablation, filtered=gen_kept,
                         test_rates=test_rates, train_rates=train_rates)
    label_efficiency_steps(plan, catalog, labels, base=base, seeds=seeds, spec=cspec,
                           audio=audio, generated_by_seed=generated_by_seed, classes=classes,
                           pool=gen_base)
    return plan


def _study_steps(plan: Plan, catalog: Catalog, *, seeds: int, study_query: ClipQuery,
                 kept_classes: list[str], gspec: GeneratorSpec, cspec: ClassifierSpec,
                 top_classes: int) -> None:
    """The study's own protocol: generator and classifiers on its top classes only."""
    for seed in range(seeds):
        g = replace(gspec, seed=seed, lr=None, batch_size=None)
        gen = generator_steps(plan, catalog, "study", seed, study_query, g, 0, study_query)
        for variant, audio in ((f"study {top_classes} classes: vision", None),
                               (f"study {top_classes} classes: filtered gen.", generated(gen))):
            classifier_step(plan, "study", variant, seed, study_query,
                            replace(cspec, audio=audio), kept_classes, prefix="study/")


# the spec's entries an SVDMap experiment's run also records at the top of its params
_SVDMAP_PARAMS = ("seeds", "tags", "dictionary", "min_iou", "generator_query",
                  "labels_per_class", "generator_batch_size", "generator_lr", "arch", "epochs",
                  "generator_epochs", "cross_fit", "in_sample_ablation", "generator_hidden",
                  "classifier_hidden", "distill_temperature")


def _iou_filter(catalog: Catalog, experiment_id: str, gen_base: ClipQuery, tags: str,
                dictionary: str, min_iou: float, log: Callable[[str], None]
                ) -> tuple[FilterResult, str, str]:
    """The clip-level IoU filter of the experiment, stored under its name; returns its
    decisions, its name and the query of the generator clips it keeps."""
    decisions = decide(clip_ious(load_tags(catalog, tags), load_dictionary(catalog, dictionary)),
                       mode="clip", min_iou=min_iou)
    filter_name = f"{experiment_id}/iou>={min_iou:g}"
    store_decisions(catalog, filter_name, decisions.decisions)
    kept_query = gen_base.narrowed(kept_by=filter_name)
    n_kept = int((clips_of(catalog, kept_query)["split"] == "train").sum())
    if n_kept == 0:
        raise UsageError(f"the IoU filter (>= {min_iou}) keeps no train clip; lower --min-iou")
    log(f"experiment {experiment_id}: filter keeps {n_kept} train clips")
    return decisions, filter_name, kept_query


def _study_variant(plan: Plan, catalog: Catalog, decisions: FilterResult, base: ClipQuery, *,
                   seeds: int, top_classes: int, gspec: GeneratorSpec, cspec: ClassifierSpec
                   ) -> None:
    """The study's class-level filter: the top classes by mean IoU, apart."""
    class_level = decide(decisions.decisions[["clip_key", "class_name", "iou"]],
                         mode="class", top_classes=top_classes)
    kept_classes = sorted(class_level.class_means.index[:top_classes])
    _study_steps(plan, catalog, seeds=seeds,
                 study_query=base.narrowed(classes=tuple(kept_classes)),
                 kept_classes=kept_classes, gspec=gspec, cspec=cspec, top_classes=top_classes)


def svdmap_experiment(catalog: Catalog, store: FeatureStore, spec: SVDMapSpec, *,
                      runs: str | None = None, log: Callable[[str], None] = print,
                      options: ExperimentOptions | None = None) -> ExperimentResult | None:
    """Vision only / + real audio / + generated / + filtered generated, same test clips
    (what it takes: :class:`~vida.jobs.experiments.spec.SVDMapSpec`).

    The generators learn from ``generator_query``'s clips (any clips with audio; by
    default the classifier's), the classifiers from ``query``'s.

    "Filtered generated": the generator learns only from IoU-kept *train* clips; the
    classifier still trains on all train clips (with that generator's audio) and is
    tested on all test clips.  The filter needs each clip's class, so it can only
    select training data.

    ``runs``: the folder for the tables and plots; ``log``: where progress lines go;
    ``options``: how the plan runs (:class:`ExperimentOptions`: it changes no number).
    """
    options = options or ExperimentOptions()
    check_feature_sets(store, {"rgb": spec.rgb, "flow": spec.flow, "audio": spec.audio})
    if spec.tagger is not None:  # an AST that cannot load fails here, before any training
        load_tagger(spec.tagger)
    experiment_id = open_experiment(catalog, "svdmap", spec.params(), log)
    sets = [spec.rgb, spec.flow, spec.audio]
    base = with_features(spec.query, sets)
    gen_base = with_features(spec.generator_query, sets) if spec.generator_query else base
    decisions, filter_name, kept_query = _iou_filter(catalog, experiment_id, gen_base,
                                                     spec.tags, spec.dictionary, spec.min_iou,
                                                     log)
    classes = sorted(clips_of(catalog, base)["class_name"].unique())
    gspec = GeneratorSpec(arch="svdmap", rgb=spec.rgb, flow=spec.flow, audio=spec.audio,
                          epochs=spec.generator_epochs, lr=spec.generator_lr,
                          batch_size=spec.generator_batch_size, hidden=spec.generator_hidden)
    cspec = ClassifierSpec(arch=spec.arch, rgb=spec.rgb, flow=spec.flow, epochs=spec.epochs,
                           hidden=spec.classifier_hidden, temperature=spec.distill_temperature)
    plan = _svdmap_plan(catalog, seeds=spec.seeds, base=base, gen_base=gen_base,
                        kept_query=kept_query, classes=classes, gspec=gspec, cspec=cspec,
                        audio=spec.audio, cross_fit=spec.cross_fit,
                        in_sample_ablation=spec.in_sample_ablation, labels=spec.labels,
                        test_rates=spec.test_rates, train_rates=spec.train_rates,
                        variants=spec.chosen_variants, joint_weight=spec.joint_weight)
    for line in plan.notes:
        log(f"experiment {experiment_id}: {line}")
    record_masks(catalog, experiment_id, base, spec.seeds, spec.test_rates,
                 spec.train_rates)
    if spec.study_variant:
        _study_variant(plan, catalog, decisions, base, seeds=spec.seeds,
                       top_classes=spec.top_classes, gspec=gspec, cspec=cspec)
    recorded = spec.params()
    params = {**{name: recorded[name] for name in _SVDMAP_PARAMS}, "filter": filter_name,
              "feature_sets": sets, "spec": recorded,
              "notes": plan.notes}
    return run_experiment_plan(
        catalog, store, plan, kind="svdmap", experiment_id=experiment_id, params=params,
        query=base, runs=runs, options=options, log=log, tagger=spec.tagger,
        test_rates=spec.test_rates,
        summarise=lambda outcomes: record_results(
            catalog, experiment_id, tables_of(plan, outcomes, "main"), runs,
            f"SVDMap {experiment_id} ({spec.seeds} seeds, same test clips)",
            tables_of(plan, outcomes, "study"), label_table(plan, outcomes, log),
            per_class_of(plan, outcomes, decisions.class_means),
            missing=missing_grid_table(plan, outcomes), notes=plan.notes))
