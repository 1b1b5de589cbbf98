"""The CAFMap experiment: generators conditioned on caption conditions, then the same
classifier variants over seeds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from vida.catalog.database import Catalog
from vida.catalog.records.clip_queries import ClipQuery, clips_of
from vida.jobs.experiments.opening import (
    check_feature_sets,
    open_experiment,
    record_masks,
    with_features,
)
from vida.jobs.experiments.plan import (
    Plan,
    generator_steps,
    label_efficiency_steps,
    seed_main_steps,
)
from vida.jobs.experiments.results import ExperimentResult, record_results
from vida.jobs.experiments.runner import run_experiment_plan
from vida.jobs.experiments.spec import CAFMapSpec, ExperimentOptions
from vida.jobs.experiments.statistics import (
    label_table,
    missing_grid_table,
    per_class_of,
    tables_of,
)
from vida.jobs.training.classifier import ClassifierSpec
from vida.jobs.training.generator import GeneratorSpec
from vida.store.store import FeatureStore


def cafmap_experiment(catalog: Catalog, store: FeatureStore, spec: CAFMapSpec, *,
                      runs: str | None = None, log: Callable[[str], None] = print,
                      options: ExperimentOptions | None = None) -> ExperimentResult | None:
    """Vision only / + real audio / + audio generated from caption conditions
    (cross-fitted for the train clips unless ``cross_fit`` is 0); what it takes:
    :class:`~vida.jobs.experiments.spec.CAFMapSpec`, the rest as
    :func:`~vida.jobs.experiments.svdmap.svdmap_experiment`'s."""
    options = options or ExperimentOptions()
    check_feature_sets(store, {"rgb": spec.rgb, "flow": spec.flow, "audio": spec.audio,
                               "condition": spec.condition})
    experiment_id = open_experiment(catalog, "cafmap", spec.params(), log)
    sets = [spec.rgb, spec.flow, spec.audio, spec.condition]
    base = with_features(spec.query, sets)
    gen_base = with_features(spec.generator_query, sets) if spec.generator_query else base
    clips = clips_of(catalog, base)
    classes = sorted(clips["class_name"].unique())
    log(f"experiment {experiment_id}: {len(clips)} clips")
    gspec = GeneratorSpec(arch="cafmap", condition=spec.condition, audio=spec.audio,
                          epochs=spec.generator_epochs, lr=spec.generator_lr,
                          batch_size=spec.generator_batch_size, hidden=spec.generator_hidden)
    cspec = ClassifierSpec(arch=spec.arch, rgb=spec.rgb, flow=spec.flow, epochs=spec.epochs,
                           lr=spec.classifier_lr, hidden=spec.classifier_hidden,
                           temperature=spec.distill_temperature)
    plan = _cafmap_plan(catalog, seeds=spec.seeds, base=base, gen_base=gen_base,
                        classes=classes, gspec=gspec, cspec=cspec, audio=spec.audio,
                        cross_fit=spec.cross_fit, in_sample_ablation=spec.in_sample_ablation,
                        labels=spec.labels, test_rates=spec.test_rates,
                        train_rates=spec.train_rates,
                        variants=spec.chosen_variants, joint_weight=spec.joint_weight)
    for line in plan.notes:
        log(f"experiment {experiment_id}: {line}")
    record_masks(catalog, experiment_id, base, spec.seeds, spec.test_rates,
                 spec.train_rates)
    recorded = spec.params()
    params = {**{name: recorded[name] for name in _CAFMAP_PARAMS},
              "feature_sets": sets[:3], "spec": recorded,
              "notes": plan.notes}
    return run_experiment_plan(
        catalog, store, plan, kind="cafmap", experiment_id=experiment_id, params=params,
        query=base, runs=runs, options=options, log=log, test_rates=spec.test_rates,
        summarise=lambda outcomes: record_results(
            catalog, experiment_id, tables_of(plan, outcomes, "main"), runs,
            f"CAFMap {experiment_id} ({spec.seeds} seeds, same test clips)",
            labels=label_table(plan, outcomes, log), per_class=per_class_of(plan, outcomes),
            missing=missing_grid_table(plan, outcomes), notes=plan.notes))


# the spec's entries a CAFMap experiment's run also records at the top of its params
_CAFMAP_PARAMS = ("seeds", "condition", "generator_query", "labels_per_class", "arch",
                  "epochs", "generator_epochs", "generator_lr", "generator_batch_size",
                  "cross_fit", "in_sample_ablation", "classifier_lr", "generator_hidden",
                  "classifier_hidden", "distill_temperature")


def _cafmap_plan(catalog: Catalog, *, seeds: int, base: ClipQuery, gen_base: ClipQuery,
                 classes: list[str], gspec: GeneratorSpec, cspec: ClassifierSpec, audio: str,
                 cross_fit: int, in_sample_ablation: bool, labels: list[int | str],
                 test_rates: tuple[float, ...] = (), train_rates: tuple[float, ...] = (),
                 variants: frozenset[str] | None = None, joint_weight: float = 1.0) -> Plan:
    plan = Plan(variants=variants, joint_weight=joint_weight)
    generated_by_seed = {}
    for seed in range(seeds):
        g = replace(gspec, seed=seed)
        gen = generator_steps(plan, catalog, "all", seed, gen_base, g, cross_fit, base)
        generated_by_seed[seed] = gen
        seed_main_steps(plan, catalog, seed, gen, base=base, gen_base=gen_base, gspec=g,
                         cspec=cspec, audio=audio, classes=classes, cross_fit=cross_fit,
                         in_sample_ablation=in_sample_ablation, test_rates=test_rates,
                         train_rates=train_rates)
    label_efficiency_steps(plan, catalog, labels, base=base, seeds=seeds, spec=cspec,
                           audio=audio, generated_by_seed=generated_by_seed, classes=classes,
                           pool=gen_base)
    return plan
