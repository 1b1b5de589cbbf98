"""The CAFMap experiment: generators conditioned on caption conditions, then the same
classifier variants over seeds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from vida.catalog.database import Catalog
from vida.catalog.records.clip_queries import ClipQuery, clips_of
from vida.jobs.experiments.label_efficiency import parse_labels
from vida.jobs.experiments.plan import (
    Plan,
    generator_steps,
    label_efficiency_steps,
    seed_main_steps,
)
from vida.jobs.experiments.results import ExperimentResult, record_results
from vida.jobs.experiments.runner import run_experiment_plan
from vida.jobs.experiments.spec import (
    ExperimentOptions,
    check_feature_sets,
    experiment_spec,
    open_experiment,
    with_features,
)
from vida.jobs.experiments.statistics import label_table, per_class_of, tables_of
from vida.jobs.training.classifier import ClassifierSpec
from vida.jobs.training.generator import GeneratorSpec
from vida.keys import SPLIT_CLIPS
from vida.store.store import FeatureStore


def cafmap_experiment(
    catalog: Catalog, store: FeatureStore, *, condition: str, query: str = SPLIT_CLIPS,
    seeds: int = 3, arch: str = "mlp", epochs: int = 10, generator_epochs: int = 10,
    rgb: str = "rgb/hog-color", flow: str = "flow/flow-hist", audio: str = "audio/ast-fbank",
    classifier_lr: float | None = None, generator_lr: float | None = None,
    cross_fit: int = 3, in_sample_ablation: bool = False, generator_query: str | None = None,
    labels_per_class: str | None = None, generator_batch_size: int | None = None,
    generator_hidden: int = 512, classifier_hidden: int | None = None,
    distill_temperature: float = 2.0,
    runs: str | None = None, log: Callable[[str], None] = print,
    options: ExperimentOptions | None = None,
) -> ExperimentResult | None:
    """Vision only / + real audio / + audio generated from caption conditions
    (cross-fitted for the train clips unless ``cross_fit`` is 0).

    ``condition``: the condition set the generator reads; the other parameters are
    :func:`svdmap_experiment`'s."""
    spec = experiment_spec(locals())
    options = options or ExperimentOptions()
    check_feature_sets(store, {"rgb": rgb, "flow": flow, "audio": audio,
                               "condition": condition})
    experiment_id = open_experiment(catalog, "cafmap", spec, log)
    base = with_features(query, [rgb, flow, audio, condition])
    gen_base = (with_features(generator_query, [rgb, flow, audio, condition])
                if generator_query else base)
    clips = clips_of(catalog, base)
    classes = sorted(clips["class_name"].unique())
    log(f"experiment {experiment_id}: {len(clips)} clips")
    gspec = GeneratorSpec(arch="cafmap", condition=condition, audio=audio,
                          epochs=generator_epochs, lr=generator_lr,
                          batch_size=generator_batch_size, hidden=generator_hidden)
    cspec = ClassifierSpec(arch=arch, rgb=rgb, flow=flow, epochs=epochs, lr=classifier_lr,
                           hidden=classifier_hidden, temperature=distill_temperature)
    plan = _cafmap_plan(catalog, seeds=seeds, base=base, gen_base=gen_base, classes=classes,
                        gspec=gspec, cspec=cspec, audio=audio, cross_fit=cross_fit,
                        in_sample_ablation=in_sample_ablation,
                        labels=parse_labels(labels_per_class))
    params = {"seeds": seeds, "condition": condition, "generator_query": generator_query,
              "labels_per_class": labels_per_class, "arch": arch, "epochs": epochs,
              "generator_epochs": generator_epochs, "generator_lr": generator_lr,
              "generator_batch_size": generator_batch_size, "cross_fit": cross_fit,
              "in_sample_ablation": in_sample_ablation, "feature_sets": [rgb, flow, audio],
              "classifier_lr": classifier_lr, "generator_hidden": generator_hidden,
              "classifier_hidden": classifier_hidden,
              "distill_temperature": distill_temperature, "spec": spec}
    return run_experiment_plan(
        catalog, store, plan, kind="cafmap", experiment_id=experiment_id, params=params,
        query=base, runs=runs, options=options, log=log,
        summarise=lambda outcomes: record_results(
            catalog, experiment_id, tables_of(plan, outcomes, "main"), runs,
            f"CAFMap {experiment_id} ({seeds} seeds, same test clips)",
            labels=label_table(plan, outcomes, log), per_class=per_class_of(plan, outcomes)))


def _cafmap_plan(catalog: Catalog, *, seeds: int, base: ClipQuery, gen_base: ClipQuery,
                 classes: list[str], gspec: GeneratorSpec, cspec: ClassifierSpec, audio: str,
                 cross_fit: int, in_sample_ablation: bool, labels: list[int | str]) -> Plan:
    plan = Plan()
    generated_by_seed = {}
    for seed in range(seeds):
        g = replace(gspec, seed=seed)
        gen = generator_steps(plan, catalog, "all", seed, gen_base, g, cross_fit, base)
        generated_by_seed[seed] = gen
        seed_main_steps(plan, catalog, seed, gen, base=base, gen_base=gen_base, gspec=g,
                         cspec=cspec, audio=audio, classes=classes, cross_fit=cross_fit,
                         in_sample_ablation=in_sample_ablation)
    label_efficiency_steps(plan, catalog, labels, base=base, seeds=seeds, spec=cspec,
                           audio=audio, generated_by_seed=generated_by_seed, classes=classes,
                           pool=gen_base)
    return plan
