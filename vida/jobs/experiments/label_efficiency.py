"""Label efficiency: accuracy against the number of labelled clips per class.

Generated audio can only add what the classifier could not learn from its own
labelled clips, so the place to look for its worth is where labels are few and the
generator learned from a larger pool of clips with audio but no labels.  For each
``n`` in ``--labels-per-class`` the classifiers train on ``n`` train clips per
class (drawn per seed), select on the same val clips and are tested on the same
test clips as every other variant; the generators are the experiment's own.

Every label count gets the same number of optimisation steps as the full training
set (fewer clips, proportionally more epochs; the best epoch still chosen on val).
With a fixed epoch count, 2 clips per class would mean one Adam step per epoch, and
the curve would measure how little the classifier was trained, not how little it
was told.
"""

from __future__ import annotations

import math

import numpy as np

from vida.catalog.database import Catalog
from vida.catalog.records.clip_queries import ClipQuery, clips_of
from vida.jobs.experiments.spec import ALL


def labelled_query(catalog: Catalog, base: ClipQuery, n: int | str, seed: int) -> ClipQuery:
    """``base`` with its train clips cut to ``n`` per class (seeded); val/test unchanged."""
    if n == ALL:
        return base
    clips = clips_of(catalog, base)
    train = clips[clips["split"] == "train"]
    rng = np.random.default_rng(1000 + seed)
    chosen = []
    for _, group in train.groupby("class_name", sort=True):
        keys = group["clip_key"].tolist()
        chosen += [keys[i] for i in sorted(rng.permutation(len(keys))[:int(n)])]
    return base.narrowed(train_keys=tuple(chosen))


def equal_step_epochs(epochs: int, batch_size: int, n_all: int, n_labelled: int) -> int:
    """Epochs that give ``n_labelled`` train clips the optimisation steps that
    ``epochs`` give ``n_all`` (batches of ``batch_size``; the last batch may be short)."""
    steps = epochs * math.ceil(n_all / batch_size)
    return max(epochs, math.ceil(steps / math.ceil(max(n_labelled, 1) / batch_size)))
