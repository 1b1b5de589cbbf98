"""Missing-audio masks: stratified by class, nested over rates, reproducible, recorded."""

from __future__ import annotations

import pandas as pd
import pytest

from vida.errors import UsageError
from vida.models.missing import checked_rates, missing_clips, missing_count

RATES = (0.0, 0.25, 0.5, 0.75, 0.9, 1.0)


def _clips(sizes: dict[str, int], split: str = "train") -> pd.DataFrame:
    rows = [(f"{name}/{split}{i:03d}", name, split) for name, n in sizes.items() for i in range(n)]
    return pd.DataFrame(rows, columns=["clip_key", "class_name", "split"])


def _by_rate(found: pd.DataFrame) -> dict[float, set[str]]:
    return {rate: set(group["clip_key"]) for rate, group in found.groupby("rate")}


def test_each_class_loses_its_share_and_masks_are_nested():
    clips = pd.concat([_clips({"run": 20, "swim": 7, "cook": 3}),
                       _clips({"run": 10, "swim": 4}, split="test")])
    found = missing_clips(clips, RATES, seed=0)
    for (split, _), group in clips.groupby(["split", "class_name"]):
        mine = found[found["clip_key"].isin(group["clip_key"]) & (found["split"] == split)]
        for rate in RATES:
            assert (mine["rate"] == rate).sum() == missing_count(len(group), rate)
    by_rate = _by_rate(found)
    assert 0.0 not in by_rate  # no clip is missing at rate 0
    assert by_rate[1.0] == set(clips["clip_key"])
    for low, high in zip(RATES[1:], RATES[2:], strict=False):
        assert by_rate[low] <= by_rate[high], (low, high)
    assert missing_count(7, 0.5) == 4 and missing_count(3, 0.25) == 1  # halves round up


def test_masks_are_reproducible_and_each_class_keeps_its_own():
    clips = _clips({"run": 30, "swim": 30, "cook": 30})
    found = missing_clips(clips, [0.5], seed=3)
    shuffled = clips.sample(frac=1.0, random_state=1)
    pd.testing.assert_frame_equal(missing_clips(shuffled, [0.5], seed=3), found)
    assert set(missing_clips(clips, [0.5], seed=4)["clip_key"]) != set(found["clip_key"])
    without_cook = missing_clips(clips[clips["class_name"] != "cook"], [0.5], seed=3)
    assert set(without_cook["clip_key"]) == {k for k in found["clip_key"]
                                             if not k.startswith("cook/")}


@pytest.mark.parametrize("rate", [-0.1, 1.5, float("nan")])
def test_a_rate_that_is_not_a_share_is_refused(rate):
    with pytest.raises(UsageError, match="not a share of clips"):
        checked_rates([0.5, rate], "--train-missing")


@pytest.mark.parametrize("backend", ["duckdb", "postgresql"])
def test_masks_are_recorded_and_selectable(request, tmp_path, backend):
    from vida import open_catalog
    from vida.catalog.records.missing import record_missing, recorded_missing

    url = str(tmp_path / "c.db") if backend == "duckdb" else request.getfixturevalue("pg_url")
    catalog = open_catalog(url, create=True)
    clips = _clips({"Run": 12, "swim": 5, "çook": 4})
    for seed in (0, 1):
        found = missing_clips(clips, (0.5, 0.9), seed=seed)
        assert record_missing(catalog, "exp-1", seed, found) == len(found)
        pd.testing.assert_frame_equal(recorded_missing(catalog, "exp-1", seed), found,
                                      check_dtype=False)
    again = missing_clips(clips, (0.25,), seed=0)  # recording again replaces
    record_missing(catalog, "exp-1", 0, again)
    pd.testing.assert_frame_equal(recorded_missing(catalog, "exp-1", 0), again,
                                  check_dtype=False)
    counted = catalog.sql("SELECT seed, rate, count(*) AS n FROM missing_audio "
                          "WHERE experiment_id = 'exp-1' GROUP BY seed, rate ORDER BY seed, rate")
    # per class of 12, 5 and 4 clips: 3+1+1 at 0.25, 6+3+2 at 0.5, 11+5+4 at 0.9
    assert counted.values.tolist() == [[0, 0.25, 5], [1, 0.5, 11], [1, 0.9, 20]]
    catalog.dispose()
