"""Running an experiment's plan: its trainings mapped over the executor, committed by
the driver as they finish.

* **plan**  the steps (``experiment_plan``), stored with the experiment's run;
* **map**   each training is located here (``plan_classifier``/``plan_generator``)
  and fitted anywhere (``fit_classifier``/``fit_generator``: a local worker process, a
  Dask worker, or this process with one worker); it reads the store, never the
  catalog, and fixes its seed and thread count, so it gives the same numbers
  wherever it runs;
* **commit** the driver opens each child run as it hands the training out and records
  its result (checkpoint, epoch and test metrics, predictions) as it comes back;
  a generate step is mapped too (:func:`~vida.jobs.training.generated.generate_rows` seals
  its shards in the worker) and committed here, once its generators are in;
* **resume** a step whose run finished under this experiment before (a killed
  driver, a failed training) is not trained again: its outcome is read back.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from vida.catalog.database import Catalog
from vida.catalog.records.predictions import correct_on_test
from vida.catalog.records.runs import (
    failed_on_error,
    finish_run,
    run_row,
    runs_with_params,
    summary_metrics,
)
from vida.errors import UsageError
from vida.jobs.core.executor import ExecutorSpec, open_pool
from vida.jobs.core.machine_scratch import machine_scratch
from vida.jobs.experiments.plan import GENERATE, GENERATED, GENERATOR, Plan, Step
from vida.jobs.training.classifier import (
    ClassifierSpec,
    classifier_parts,
    fit_classifier,
    plan_classifier,
    plan_teacher,
    record_classifier,
    start_classifier_run,
)
from vida.jobs.training.generated import (
    PlannedGenerate,
    generate_rows,
    plan_generate,
    record_generate,
    start_generate_run,
)
from vida.jobs.training.generator import (
    fit_generator,
    generator_parts,
    plan_generator,
    record_generator,
    start_generator_run,
)
from vida.jobs.training.inputs import feature_bytes, holding_for
from vida.jobs.training.plan_reads import PlanReads
from vida.store.store import FeatureStore


@dataclass
class Trained:
    """A finished classifier step: its run, test metrics and per-clip correctness."""

    run_id: str
    metrics: dict[str, float]
    correct: np.ndarray
    truth: np.ndarray | None = None  # per test clip (clip_key order), its class's name


def finished_steps(catalog: Catalog, experiment_id: str) -> dict[str, str]:
    """plan key -> run id of the child runs of the experiment that finished."""
    return {params["plan_key"]: run_id
            for run_id, params in runs_with_params(catalog, experiment_id=experiment_id)
            if params.get("plan_key")}


def checkpoint_of(catalog: Catalog, run_id: str) -> bytes:
    """A finished training's checkpoint, as bytes to hand to a worker."""
    path = Path(str(run_row(catalog, run_id).checkpoint))
    if not path.is_file():
        raise UsageError(f"checkpoint {path} of run {run_id} is missing (was runs/ moved?): "
                         "restore it, or rerun the experiment with a new --runs")
    return path.read_bytes()


def _trained_from_catalog(catalog: Catalog, run_id: str) -> Trained:
    return Trained(run_id, summary_metrics(catalog, run_id), *correct_on_test(catalog, run_id))


@dataclass(frozen=True)
class InFlight:
    """A step handed out to a worker, until it comes back: its task and its open run."""

    step: Step
    task: Any  # ClassifierTask, GeneratorTask or PlannedGenerate
    run_id: str


# the driver keeps the catalog between commits this close together, for this long at most
LINGER_SECONDS = 1.0
HOLD_SECONDS = 5.0


class PlanRunner:
    """The driver's state while a plan runs: what is done, what is in flight."""

    def __init__(self, catalog: Catalog, store: FeatureStore, plan: Plan, *,
                 experiment_id: str, runs: str | None, log: Callable[[str], None],
                 progress: bool = True, device: str = "cpu",
                 memory_budget: int | None = None) -> None:
        self.catalog, self.store, self.plan = catalog, store, plan
        self.experiment_id, self.runs, self.log = experiment_id, runs, log
        self.generators: dict[str, str] = {}  # generator step -> its finished run
        self.generated: dict[str, str] = {}  # generate step -> the set it wrote
        self.trained: dict[str, Trained] = {}  # classifier step -> what it gave
        self._running: dict[Future, InFlight] = {}
        self.progress, self.device = progress, device
        self.memory_budget = memory_budget  # bytes of features per training [default]
        self.scratch: str | None = None  # set while the plan runs
        self._side_by_side = 1
        self.reads = PlanReads(catalog, store)
        self.by_key = {s.key: s for s in plan.steps}

    def resume(self) -> int:
        """Take the outcomes of steps finished before; returns how many trainings."""
        done = finished_steps(self.catalog, self.experiment_id)
        reused = 0
        for step in self.plan.steps:
            if step.kind == GENERATE or step.key not in done:
                continue  # a generate step is planned again: it resumes its set
            if step.kind == GENERATOR:
                self.generators[step.key] = done[step.key]
            else:
                self.trained[step.key] = _trained_from_catalog(self.catalog, done[step.key])
            reused += step.trains
        return reused

    def _done(self, key: str) -> bool:
        return key in self.generators or key in self.generated or key in self.trained

    def _ready(self, pending: list[Step]) -> list[Step]:
        return [s for s in pending if all(self._done(n) for n in s.needs)]

    def _resolve(self, spec: ClassifierSpec) -> ClassifierSpec:
        """The spec with each ``@step`` replaced by the set that step wrote."""
        fields = {f: self.generated[getattr(spec, f)[len(GENERATED):]]
                  for f in ("audio", "test_audio", "audio_dropout", "train_fill")
                  if isinstance(getattr(spec, f), str) and getattr(spec, f).startswith(GENERATED)}
        return replace(spec, **fields) if fields else spec

    def _plan_generate(self, step: Step) -> PlannedGenerate:
        folds = [list(self.by_key[key].exclude) for key in step.folds]
        return plan_generate(self.catalog, self.store, self.generators[step.source],
                             step.query, folds, [self.generators[k] for k in step.folds],
                             reads=self.reads)

    def _dispatch(self, step: Step) -> tuple[InFlight, Callable]:
        """Locate the step's clips and open its run: the step in flight, and the map
        function that runs its task."""
        if step.kind == GENERATE:
            planned = self._plan_generate(step)
            run_id = start_generate_run(self.catalog, planned, step.query,
                                        experiment_id=self.experiment_id, sweep=False)
            return InFlight(step, planned, run_id), generate_rows
        task, run_id, work = self._open_training(step)
        return InFlight(step, task, run_id), work

    def _open_training(self, step: Step) -> tuple[Any, str, Callable]:
        """A generator's or classifier's task, its open run, and its map function."""
        params = {"plan_key": step.key}
        if step.kind == GENERATOR:
            task = plan_generator(self.catalog, self.store, step.query, step.spec,
                                  step.exclude, device=self.device, reads=self.reads)
            task = replace(task, **self._holding(step, generator_parts(task), params))
            if step.fold:
                params.update(fold=f"{step.fold} of {step.key.rsplit('/', 1)[0]}",
                              excluded_clips=len(step.exclude))
            run_id = start_generator_run(self.catalog, step.spec, step.query,
                                         experiment_id=self.experiment_id, sweep=False,
                                         **params)
            return task, run_id, fit_generator
        task = plan_classifier(self.catalog, self.store, step.query,
                               self._resolve(step.spec), list(step.classes),
                               device=self.device, reads=self.reads)
        if step.trained_by:
            twin = self.trained[step.trained_by]
            task = replace(task, trained=(checkpoint_of(self.catalog, twin.run_id),
                                          int(twin.metrics["best_epoch"])))
            params["trained_by"] = twin.run_id
        if step.spec.distill_from:
            teacher = self.trained[step.spec.distill_from]
            task = replace(task, teacher=plan_teacher(
                self.reads, step.query, step.spec, self.by_key[step.spec.distill_from].spec,
                checkpoint_of(self.catalog, teacher.run_id)))
            params["teacher"] = teacher.run_id
        task = replace(task, **self._holding(step, classifier_parts(task), {}))
        run_id = start_classifier_run(self.catalog, task, step.query, self.experiment_id,
                                      sweep=False, **params)
        return task, run_id, fit_classifier

    def _holding(self, step: Step, parts: list, params: dict) -> dict[str, Any]:
        """In memory, shared through the scratch folder, or streamed past the budget
        (said in the log and in the run's params: the batch order differs)."""
        holding = holding_for(parts, self.memory_budget, self._side_by_side)
        if holding == "memory":
            return {"holding": holding, "scratch": self.scratch}
        params["holding"] = holding
        self.log(f"  {step.key}: {feature_bytes(parts) / 1e9:.1f} GB of features exceed "
                 "the memory budget: streamed from the store")
        return {"holding": holding, "scratch": None}

    def _commit(self, flight: InFlight, result: Any) -> None:
        """The step's results and its run's end, in one transaction; a commit that
        fails (a full disk, say) fails the run with its error."""
        with failed_on_error(self.catalog, flight.run_id):
            self._commit_step(flight, result)

    def _commit_step(self, flight: InFlight, result: Any) -> None:
        step, task, run_id = flight.step, flight.task, flight.run_id
        if step.kind == GENERATE:
            record_generate(self.catalog, task, result, run_id)
            self.generated[step.key] = task.name
            return
        if step.kind == GENERATOR:
            record_generator(self.catalog, result, run_id, self.runs)
            self.generators[step.key] = run_id
            return
        record_classifier(self.catalog, task, result, run_id, self.runs)
        self.trained[step.key] = Trained(run_id, result.metrics, result.correct,
                                         np.array(task.classes, dtype=object)[result.truth])
        self.log(f"  seed {step.seed} {step.spec.variant:<28} test top-1 "
                 f"{result.metrics['top1']:.3f}")

    def run(self, executor: ExecutorSpec) -> dict[str, Trained]:
        """Every step not done yet, trainings side by side, in dependency order; the
        classifier steps' outcomes."""
        from tqdm import tqdm

        pending = [s for s in self.plan.steps if not self._done(s.key)]
        trainings = sum(s.trains for s in self.plan.steps)
        bar = tqdm(total=trainings, initial=trainings - sum(s.trains for s in pending),
                   unit="training", desc="experiment", disable=not self.progress,
                   file=sys.stderr)
        try:
            # one GPU per training on a Dask cluster whose workers declare GPU=1
            resources = {"GPU": 1} if self.device == "cuda" and executor.remote else None
            with open_pool(executor, resources=resources) as pool, \
                    machine_scratch(pool) as self.scratch:
                # trainings side by side on one machine (Dask: per worker's machine
                # unknown here; the driver's cores stand in)
                self._side_by_side = pool.spec.workers
                self._schedule(pending, pool, bar)
        except BaseException as exc:
            for flight in self._running.values():
                finish_run(self.catalog, flight.run_id, status="failed",
                           error=f"stopped: {type(exc).__name__}: {exc}")
            raise
        finally:
            bar.close()
        return self.trained

    def _schedule(self, pending: list[Step], pool: Any, bar: Any) -> None:
        """Until every step is done, in bursts on one catalog connection:

        1. what came back is committed (a step whose worker was lost is pending again);
        2. what is ready is handed out, as far as there is room;
        3. the next step to come back is waited for: within :data:`LINGER_SECONDS`
           the burst goes on, otherwise the catalog is let go while the workers work.

        Each DuckDB connection ends in a checkpoint that rewrites the tables' indexes,
        which costs more than a burst's own writes; keeping the file between commits
        that come close together pays it once for several.  It is let go at least
        every :data:`HOLD_SECONDS`, so a reader elsewhere waits that long at most."""
        came_back: set[Future] = set()
        while True:
            with self.catalog.held():
                held_until = time.monotonic() + HOLD_SECONDS
                while True:
                    pending = pending + self._commit_came_back(came_back, pool, bar)
                    pending = self._hand_out(pending, pool, bar)
                    if not self._running:
                        if pending:
                            raise RuntimeError("plan steps wait on steps that never run: "
                                               + ", ".join(s.key for s in pending[:3]))
                        return
                    linger = min(LINGER_SECONDS, held_until - time.monotonic())
                    came_back = self._coming_back(linger) if linger > 0 else set()
                    if not came_back:
                        break
            came_back = self._coming_back(None)

    def _coming_back(self, timeout: float | None) -> set[Future]:
        """The steps in flight that come back within ``timeout`` (None: the first)."""
        return wait(list(self._running), timeout=timeout, return_when=FIRST_COMPLETED).done

    def _hand_out(self, pending: list[Step], pool: Any, bar: Any) -> list[Step]:
        """Hand out the ready steps while there is room, generate steps first
        (classifiers wait on them); returns the steps still pending.  A generated set
        that has every clip already is committed here and now, which may make more
        steps ready."""
        pending = list(pending)
        while True:
            ready = sorted(self._ready(pending), key=lambda s: s.kind != GENERATE)
            room = max(0, _queue_depth(pool.spec.workers) - len(self._running))
            done_here = False
            for step in ready[:room]:
                pending.remove(step)
                flight, work = self._dispatch(step)
                if step.kind == GENERATE and flight.task.task is None:
                    self._commit(flight, None)
                    done_here = True
                    continue
                task = flight.task.task if step.kind == GENERATE else flight.task
                self._running[pool.submit(work, task)] = flight
            if not done_here:
                break
        bar.set_postfix_str(", ".join(f.step.key for f in self._running.values())[:60])
        return pending

    def _commit_came_back(self, came_back: set[Future], pool: Any, bar: Any) -> list[Step]:
        """Commit the steps that came back; returns those whose worker was lost, and
        any that a broken local pool took along, to hand out again."""
        lost = []
        for future in came_back:
            flight = self._running.pop(future)
            exc = future.exception()
            if exc is not None and pool.lost(exc):  # a killed worker: trained elsewhere
                finish_run(self.catalog, flight.run_id, status="failed",
                           error=f"worker lost ({exc}); trained again")
                lost.append(flight.step)
            elif exc is not None:
                finish_run(self.catalog, flight.run_id, status="failed",
                           error=f"{type(exc).__name__}: {exc}")
                raise exc
            else:
                self._commit(flight, future.result())
                bar.update(int(flight.step.trains))
        if lost:
            self.log(f"  a worker was lost: {len(lost)} training(s) handed out again")
            lost += self._restart_pool(pool)
        return lost

    def _restart_pool(self, pool: Any) -> list[Step]:
        """A new local pool (a broken one takes every step in flight along with it);
        returns those steps, their runs failed."""
        taken = []
        for future in list(self._running) if pool.spec.kind == "local" else ():
            flight = self._running.pop(future)
            finish_run(self.catalog, flight.run_id, status="failed",
                       error="worker pool restarted")
            taken.append(flight.step)
        pool.restart()
        return taken


def _queue_depth(workers: int) -> int:
    """Trainings handed out at once: one more than the workers, so that a worker
    that finishes starts its next training while the driver commits the last one."""
    return workers + 1 if workers > 1 else 1
