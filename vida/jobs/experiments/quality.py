"""How good each generator's audio is, beside what it does for the classifier.

A generator's loss alone cannot tell one that learned each clip's sound from one that
learned each class's mean sound (label information vision already carries), or from
one that learned nothing.  So, for every generator of an experiment, on the test clips
its set was written for (:mod:`vida.models.audio_quality`):

* R² of its audio against the real audio, beside two references: the mean real audio
  of the train clips it learned from (R² 0 by construction) and their per-class mean
  (what a generator that only knows the class reaches); and its R² over the class
  mean (above 0: it knows more than the class);
* retrieval of each clip's own real audio among the test clips' by cosine similarity
  to its generated audio: median rank, recall@1 and recall@5, against chance;
* with an AST to tag them (SVDMap's ``tagger``), the IoU of AST's top-5 AudioSet
  labels on the generated against the real audio, beside the IoU that the train
  mean's labels reach (a generator that learned nothing).

Seeds of one generator are pooled: every interval resamples test clips and seeds.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from vida.catalog.database import Catalog
from vida.catalog.records.clip_queries import ClipQuery, clips_of
from vida.catalog.records.runs import log_metrics
from vida.jobs.experiments.plan import GENERATE, Plan, Step
from vida.jobs.semantics.tagging import top_labels
from vida.models.audio_quality import TrainMeans, retrieval_ranks, squared_errors
from vida.models.missing import missing_clips
from vida.stats import accuracy_interval, explained_share, median_interval
from vida.store.store import FeatureStore

QUALITY_PREFIX = "generator="  # run_metrics rows: generator=<name>/<measure>
_BLOCK = 4096  # train clips read at once for the means


def record_quality(catalog: Catalog, store: FeatureStore, plan: Plan,
                   generated: dict[str, str], experiment_id: str, folder: Path,
                   tagger: str | None = None, test_rates: Sequence[float] = ()
                   ) -> pd.DataFrame | None:
    """Measure every generator of the finished plan (and, per missing rate at test,
    on the test clips whose audio it stands in for); write ``generator_quality.csv``
    and the experiment's ``generator=`` metrics.  None when the plan has none."""
    table = generator_quality(catalog, store, plan, generated, tagger, test_rates)
    if table is None:
        return None
    table.to_csv(folder / "generator_quality.csv", index=False)
    log_metrics(catalog, experiment_id, {
        f"{QUALITY_PREFIX}{row['generator']}/{measure}": value
        for row in table.to_dict("records") for measure, value in row.items()
        if measure != "generator" and pd.notna(value)}, split="test")
    return table


def generator_quality(catalog: Catalog, store: FeatureStore, plan: Plan,
                      generated: dict[str, str], tagger: str | None = None,
                      test_rates: Sequence[float] = ()) -> pd.DataFrame | None:
    """One row per generator (its seeds pooled), in the plan's order, each followed by
    a row per missing rate at test strictly between 0 and 1: the same measures on the
    test clips whose audio is missing at that rate (each seed's own, as the
    classifiers draw them; every class loses the same share, so each seed has as many),
    retrieval still ranked among all the test clips."""
    by_name: dict[str, list[Step]] = {}
    for step in plan.steps:
        if step.kind == GENERATE and not step.key.endswith("/in-sample"):
            by_name.setdefault(step.key.split("/generate/", 1)[1], []).append(step)
    if not by_name:
        return None
    steps = {step.key: step for step in plan.steps}
    rows = []
    for name, generate_steps in by_name.items():
        per_clip = _per_clip(catalog, store, [(steps[s.source], s, generated[s.key])
                                              for s in generate_steps], tagger)
        n = per_clip["rank"].shape[1]
        rows.append(quality_row(name, per_clip))
        for rate in (r for r in test_rates if 0 < r < 1):
            masks = [_missing_at_test(catalog, s, rate) for s in generate_steps]
            rows.append(quality_row(f"{name} @ {rate:g} missing at test", {
                measure: np.stack([row[mask] for row, mask in zip(values, masks, strict=True)])
                for measure, values in per_clip.items()}, ranked_among=n))
    return pd.DataFrame(rows)


def _missing_at_test(catalog: Catalog, written: Step, rate: float) -> np.ndarray:
    """Per test clip of the generate step's set (clip_key order), whether its audio is
    missing at ``rate`` for the step's seed."""
    clips = clips_of(catalog, written.query)
    test = clips[clips["split"] == "test"]
    gone = set(missing_clips(test[["clip_key", "class_name", "split"]], [rate],
                             written.seed)["clip_key"])
    return test["clip_key"].isin(gone).to_numpy()


def _per_clip(catalog: Catalog, store: FeatureStore,
              runs: Sequence[tuple[Step, Step, str]], tagger: str | None = None
              ) -> dict[str, np.ndarray]:
    """``[seeds, test clips]`` matrices of each per-clip measure, one row per seed."""
    found: dict[str, list[np.ndarray]] = {}
    means: dict[tuple[str, ClipQuery], TrainMeans] = {}
    for trained, written, generated_set in runs:
        audio = trained.spec.audio
        test = clips_of(catalog, written.query)
        test = test[test["split"] == "test"]
        keys = test["clip_key"].tolist()
        real = store.read(audio, keys)
        made = store.read(generated_set, keys)
        if (audio, trained.query) not in means:
            means[(audio, trained.query)] = _train_means(catalog, store, audio, trained.query)
        train = means[(audio, trained.query)]
        for name, values in {"error": squared_errors(made, real),
                             "train_mean_error": squared_errors(train.overall(), real),
                             "class_mean_error": squared_errors(
                                 train.of_classes(test["class_name"]), real),
                             "rank": retrieval_ranks(made, real),
                             **_tag_ious(store, audio, tagger, made, real,
                                         train.overall())}.items():
            found.setdefault(name, []).append(values)
    return {name: np.stack(values) for name, values in found.items()}


def _tag_ious(store: FeatureStore, audio: str, tagger: str | None, made: np.ndarray,
              real: np.ndarray, mean: np.ndarray) -> dict[str, np.ndarray]:
    """Per test clip, the IoU of AST's top-5 labels on the generated (and on the train
    mean) audio against those on the real audio; none without a tagger."""
    if tagger is None:
        return {}
    truth = top_labels(store, audio, tagger, real)
    ours = top_labels(store, audio, tagger, made)
    mean = np.asarray(mean, dtype=np.float32).reshape(1, *real.shape[1:])  # stored flat
    reference = top_labels(store, audio, tagger, mean)[0]
    return {"tag_iou": np.array([_iou(a, b) for a, b in zip(ours, truth, strict=True)]),
            "train_mean_tag_iou": np.array([_iou(reference, b) for b in truth])}


def _iou(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a | b else 0.0


def _train_means(catalog: Catalog, store: FeatureStore, audio: str, query: ClipQuery
                 ) -> TrainMeans:
    """The real audio's means over the train clips a generator learned from."""
    clips = clips_of(catalog, query)
    clips = clips[(clips["split"] == "train") & clips["class_name"].notna()]
    means = TrainMeans()
    for start in range(0, len(clips), _BLOCK):
        part = clips.iloc[start:start + _BLOCK]
        means.add(store.read(audio, part["clip_key"].tolist()), part["class_name"])
    return means


def quality_row(name: str, per_clip: dict[str, np.ndarray], ranked_among: int | None = None
                ) -> dict[str, float | str]:
    """The measures over ``per_clip``'s clips; retrieval's chance levels are those of
    ranking among ``ranked_among`` clips [the clips measured]."""
    error, base = per_clip["error"], per_clip["train_mean_error"]
    ranks = per_clip["rank"]
    n = ranked_among or ranks.shape[1]
    row: dict[str, float | str] = {"generator": name, "n_test": ranks.shape[1],
                                   "seeds": len(ranks)}
    for measure, interval in (
            ("r2", explained_share(error, base)),
            ("class_mean_r2", explained_share(per_clip["class_mean_error"], base)),
            ("r2_over_class_mean", explained_share(error, per_clip["class_mean_error"])),
            ("median_rank", median_interval(ranks)),
            ("recall1", accuracy_interval(ranks <= 1)),
            ("recall5", accuracy_interval(ranks <= 5))):
        row.update({measure: interval.mean, f"{measure}_ci_low": interval.low,
                    f"{measure}_ci_high": interval.high})
    if "tag_iou" in per_clip:
        for measure in ("tag_iou", "train_mean_tag_iou"):
            interval = accuracy_interval(per_clip[measure])
            row.update({measure: interval.mean, f"{measure}_ci_low": interval.low,
                        f"{measure}_ci_high": interval.high})
    row.update({"chance_median_rank": (n + 1) / 2, "chance_recall1": 1 / n,
                "chance_recall5": min(5, n) / n})
    return row
