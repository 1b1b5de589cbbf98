"""``vida-batch split``: train/val/test assignment, per class, deterministic, recorded.

Random mode follows the study: within each class the clips (sorted by key, so the
result does not depend on ingest order) are shuffled with a seeded generator and cut
by the ratios.  ``from_source`` maps MiT's folders instead (training -> train,
validation -> val, testing -> test; a dataset's own split files, the same way), and
with ``val_fraction`` makes val a seeded share of each class's source-train clips
(VGGSound ships train and test only).  ``mit`` is how MiT is evaluated, since its test
labels are not public: its validation set is the test set, and val is a seeded share
of each class's training clips.  ``avmit`` tests on AVMIT's rated test set (imported
with ``vida-batch ratings import test_set.csv``); val is a seeded share of each
class's other clips.  Failed clips get no split.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from vida.catalog.database import Catalog
from vida.catalog.records.clips import split_counts, splittable_clips, write_splits
from vida.catalog.records.ratings import rated_test_set
from vida.errors import UsageError
from vida.jobs.core.batch_job import recorded

SOURCE_SPLITS = {"training": "train", "train": "train", "validation": "val", "val": "val",
                 "testing": "test", "test": "test"}


def _counts(n: int, ratios: Sequence[float]) -> tuple[int, int]:
    n_train = int(round(n * ratios[0]))
    n_val = int(round(n * ratios[1]))
    return n_train, min(n_val, n - n_train)


def plan_splits(clips: pd.DataFrame, ratios: Sequence[float], seed: int) -> dict[str, str]:
    """clip_key -> split for a frame of (clip_key, class_name)."""
    rng = np.random.default_rng(seed)
    out: dict[str, str] = {}
    for _cls, group in sorted(clips.groupby("class_name"), key=lambda g: g[0]):
        keys = sorted(group["clip_key"])
        order = rng.permutation(len(keys))
        n_train, n_val = _counts(len(keys), ratios)
        for rank, i in enumerate(order):
            cut = "train" if rank < n_train else "val" if rank < n_train + n_val else "test"
            out[keys[i]] = cut
    return out


def _source_splits(clips: pd.DataFrame, option: str) -> pd.Series:
    """Each clip's source split as train/val/test; every clip must have one."""
    unknown = sorted(set(clips["source_split"].dropna()) - set(SOURCE_SPLITS))
    if clips["source_split"].isna().any() or unknown:
        raise UsageError(f"{option} needs every clip under a training/validation/test "
                         f"folder or CSV; found {unknown or 'clips without one'}")
    return clips["source_split"].map(SOURCE_SPLITS)


def mit_plan(clips: pd.DataFrame, val_fraction: float, seed: int) -> dict[str, str]:
    """MiT's validation clips -> test; ``val_fraction`` of each class's training clips
    -> val (seeded), the rest -> train."""
    source = _source_splits(clips, "--mit")
    plan = {k: "test" for k in clips["clip_key"][source != "train"]}
    training = clips[source == "train"]
    plan.update(plan_splits(training, (1 - val_fraction, val_fraction, 0.0), seed))
    return plan


def source_plan(clips: pd.DataFrame, val_fraction: float | None, seed: int
                ) -> dict[str, str]:
    """Each clip's own split; with ``val_fraction``, that share of each class's
    source-train clips (seeded) -> val."""
    source = _source_splits(clips, "--from-source")
    if val_fraction is None:
        return dict(zip(clips["clip_key"], source, strict=True))
    plan = {k: s for k, s in zip(clips["clip_key"], source, strict=True) if s != "train"}
    plan.update(plan_splits(clips[source == "train"], (1 - val_fraction, val_fraction, 0.0),
                            seed))
    return plan


def avmit_plan(clips: pd.DataFrame, test_keys: set[str], val_fraction: float, seed: int
               ) -> dict[str, str]:
    """AVMIT's rated test set -> test; ``val_fraction`` of each class's other clips ->
    val (seeded), the rest -> train."""
    if not test_keys & set(clips["clip_key"]):
        raise UsageError("--avmit: no clip of the catalog is in AVMIT's test set; import it "
                         "first: vida-batch ratings import test_set.csv")
    tested = clips["clip_key"].isin(test_keys)
    plan = {k: "test" for k in clips["clip_key"][tested]}
    plan.update(plan_splits(clips[~tested], (1 - val_fraction, val_fraction, 0.0), seed))
    return plan


def assign_splits(catalog: Catalog, *, ratios: Sequence[float] = (0.7, 0.15, 0.15),
                  seed: int = 42, from_source: bool = False, mit: bool = False,
                  val_fraction: float | None = None, avmit: str | None = None
                  ) -> pd.DataFrame:
    """Write splits into ``clips``; returns counts per class and split.  ``avmit``:
    the ratings source whose test set is the test split."""
    if len(ratios) != 3 or any(r < 0 for r in ratios) or abs(sum(ratios) - 1) > 1e-6:
        raise UsageError(f"--ratios must be three non-negative numbers summing to 1, got {ratios}")
    if val_fraction is not None and not 0 < val_fraction < 1:
        raise UsageError(f"--val-fraction must be between 0 and 1, got {val_fraction}")
    if sum((from_source, mit, avmit is not None)) > 1:
        raise UsageError("give one of --from-source, --mit and --avmit")
    clips = splittable_clips(catalog)
    share = 0.1 if val_fraction is None else val_fraction
    if avmit is not None:
        plan = avmit_plan(clips, rated_test_set(catalog, avmit), share, seed)
    elif mit:
        plan = mit_plan(clips, share, seed)
    elif from_source:
        plan = source_plan(clips, val_fraction, seed)
    else:
        plan = plan_splits(clips, ratios, seed)
    params = {"ratios": list(ratios), "from_source": from_source, "mit": mit,
              "avmit": avmit, "val_fraction": val_fraction}
    with recorded(catalog, "split", params, seed=seed) as run:
        write_splits(catalog, plan)
        run.metrics.update({f"clips_{s}": float(sum(v == s for v in plan.values()))
                            for s in ("train", "val", "test")})
    return split_counts(catalog)
