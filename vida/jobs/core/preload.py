"""What each job's worker processes import before their first item.

A command starts the workers' server (:func:`~vida.jobs.core.executor.start_workers_early`)
before it imports the job itself: the server imports these on another core while the
driver starts, and every worker forks warm instead of importing torch again.  They are
listed here, apart from the jobs, because reading the list must not import the jobs.
(Ingest's depend on its encoders: :func:`vida.jobs.data.ingest_map.worker_modules`.)
"""

from __future__ import annotations

# what a training worker runs
TRAINING = ("vida.jobs.training.classifier", "vida.jobs.training.generator",
            "vida.jobs.training.generated")

# what every pool of the demo runs: synthesis, ingest's encoders, the trainings
DEMO = ("vida.synth", "vida.jobs.data.ingest_map", "vida.encoders.builtin",
        "transformers.audio_utils", *TRAINING)
