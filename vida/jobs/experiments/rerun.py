"""An experiment run again with the spec it recorded."""

from __future__ import annotations

from collections.abc import Callable

from vida.catalog.database import Catalog
from vida.catalog.records.runs import run_row
from vida.errors import UsageError
from vida.jobs.experiments.cafmap import cafmap_experiment
from vida.jobs.experiments.results import ExperimentResult
from vida.jobs.experiments.spec import SPECS
from vida.jobs.experiments.svdmap import svdmap_experiment
from vida.store.store import FeatureStore


def rerun_experiment(catalog: Catalog, store: FeatureStore, run_id: str, *,
                     runs: str | None = None, log: Callable[[str], None] = print
                     ) -> ExperimentResult:
    """Run experiment ``run_id`` again with the spec it recorded."""
    record = run_row(catalog, run_id)
    if record is None or record.kind != "experiment":
        raise UsageError(f"{run_id}: no experiment run of that id (list them with `vida-batch "
                         "sql \"SELECT run_id, arch FROM runs WHERE kind = 'experiment'\"`)")
    spec = record.params.get("spec")
    if spec is None:
        raise UsageError(f"{run_id} was recorded before experiments stored their spec; run "
                         "it again with its options")
    run = {"svdmap": svdmap_experiment, "cafmap": cafmap_experiment}[record.arch]
    return run(catalog, store, SPECS[record.arch].from_params(spec), runs=runs, log=log)
