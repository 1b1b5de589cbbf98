"""Which clips' audio counts as missing at a rate: stratified, nested, seeded.

A missing rate ``η`` of a split means that a share ``η`` of the split's clips have no
audio.  Within each class of each split, the clips (sorted by key, so the draw does
not depend on the order they come in) are put in one random order drawn from the
seed, the split and the class name; at rate ``η`` the first ``round(η · n)`` of the
class's ``n`` clips are missing (halves round up).  Hence:

* *stratified*: every class loses the same share of its clips, up to rounding;
* *nested*: one order serves every rate, so a clip missing at 0.5 is missing at 0.9;
* *reproducible*: the same clips, seed and rates give the same masks, and a class's
  mask does not move when clips of other classes come or go.

This is the protocol of the missing-modality literature (SMIL keeps the second
modality for a share of the training samples; MAP draws one missing rate for train,
val and test; MiDl reports rates 0 to 1 at test).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable

import numpy as np
import pandas as pd

from vida.errors import UsageError


def checked_rates(rates: Iterable[float], option: str = "missing rate") -> tuple[float, ...]:
    """The rates sorted and without repeats; a rate outside [0, 1] is the user's error."""
    values = sorted({float(r) for r in rates})
    wrong = [r for r in values if not 0.0 <= r <= 1.0 or math.isnan(r)]
    if wrong:
        raise UsageError(f"{option} {wrong[0]:g} is not a share of clips: give rates from "
                         "0 (every clip has its audio) to 1 (none has)")
    return tuple(values)


def missing_count(n: int, rate: float) -> int:
    """How many of a class's ``n`` clips are missing at ``rate`` (halves round up)."""
    return min(n, int(math.floor(rate * n + 0.5)))


def missing_order(clips: pd.DataFrame, seed: int) -> pd.DataFrame:
    """``clips`` (clip_key, class_name, split) with ``rank``: the place of each clip in
    its class's and split's order of going missing (0 first), and ``n``: how many
    clips that class has in that split."""
    parts = []
    for (split, name), group in clips.groupby(["split", "class_name"], sort=True):
        keys = np.sort(group["clip_key"].to_numpy(dtype=object))
        rng = np.random.default_rng([seed, zlib.crc32(str(split).encode()),
                                     zlib.crc32(str(name).encode())])
        parts.append(pd.DataFrame({"clip_key": keys[rng.permutation(len(keys))],
                                   "class_name": name, "split": split,
                                   "rank": np.arange(len(keys)), "n": len(keys)}))
    if not parts:
        return pd.DataFrame(columns=["clip_key", "class_name", "split", "rank", "n"])
    return pd.concat(parts, ignore_index=True)


def missing_clips(clips: pd.DataFrame, rates: Iterable[float], seed: int) -> pd.DataFrame:
    """(split, rate, clip_key) of every clip whose audio is missing at each rate."""
    order = missing_order(clips, seed)
    parts = []
    for rate in checked_rates(rates):
        n = order["n"].to_numpy(np.int64)
        cut = np.minimum(n, np.floor(rate * n + 0.5).astype(np.int64))  # missing_count
        gone = order[order["rank"].to_numpy() < cut]
        parts.append(pd.DataFrame({"split": gone["split"], "rate": rate,
                                   "clip_key": gone["clip_key"]}))
    if not parts:
        return pd.DataFrame(columns=["split", "rate", "clip_key"])
    found = pd.concat(parts, ignore_index=True)
    return found.sort_values(["split", "rate", "clip_key"], kind="stable",
                             ignore_index=True)
