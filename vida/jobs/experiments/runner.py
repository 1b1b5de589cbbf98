"""Running an experiment's plan under its run: recorded, resumed, summarised."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from vida.catalog.database import Catalog
from vida.catalog.records.clip_queries import ClipQuery
from vida.jobs.core.batch_job import run_lifecycle
from vida.jobs.core.executor import current_executor, parse_executor
from vida.jobs.experiments.driver import PlanRunner, Trained
from vida.jobs.experiments.opening import start_experiment
from vida.jobs.experiments.plan import Plan
from vida.jobs.experiments.quality import record_quality
from vida.jobs.experiments.results import ExperimentResult
from vida.jobs.experiments.spec import ExperimentOptions
from vida.jobs.training.common import training_device
from vida.store.store import FeatureStore


def run_experiment_plan(catalog: Catalog, store: FeatureStore, plan: Plan, *, kind: str,
                        experiment_id: str, params: dict, query: ClipQuery, runs: str | None,
                        options: ExperimentOptions, log: Callable[[str], None],
                        summarise: Callable[[dict[str, Trained]], ExperimentResult],
                        tagger: str | None = None, test_rates: tuple[float, ...] = ()
                        ) -> ExperimentResult | None:
    """Record the plan with the experiment's run, run what is not done yet and
    summarise the outcomes, all in the run's lifecycle; None for a dry run (the plan
    is printed, nothing trained).  ``tagger``: the AST that tags generated and real
    audio for how close they are; ``test_rates``: the missing rates at test at which
    they are measured again."""
    device = training_device(options.device)
    counts = plan.counts()
    log(f"experiment {experiment_id}: " + ", ".join(f"{n} {k}" for k, n in counts.items()))
    if options.dry_run:
        return None
    runner = PlanRunner(catalog, store, plan, experiment_id=experiment_id, runs=runs,
                        log=log, progress=options.progress, device=device,
                        memory_budget=options.memory_budget)
    executor = parse_executor(current_executor(), options.workers)
    where = {"executor": executor.describe(), "workers": executor.workers, "device": device}
    with run_lifecycle(catalog, partial(start_experiment, catalog, experiment_id, kind,
                                        {**params, "plan": counts, "steps": plan.describe(),
                                         **where}, query)) as run:
        reused = runner.resume()
        if reused:
            log(f"  {reused} trainings finished before are reused")
        result = summarise(runner.run(executor))
        result.quality = record_quality(catalog, store, plan, runner.generated,
                                        experiment_id, result.csv.parent, tagger,
                                        test_rates)
        run.checkpoint = str(result.csv)
    return result
