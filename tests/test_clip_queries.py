"""The one way to ask for clips: the same rows, order and messages on every backend."""

from __future__ import annotations

import pytest

from vida import open_catalog
from vida.catalog.records.clip_queries import ClipQuery, clips_of
from vida.catalog.schema import Clip
from vida.errors import UsageError

# inserted out of order; upper case, digits and a non-ASCII class sort differently
# under a locale's collation than in Python (and DuckDB's binary) order
KEYS = ["b/2", "a/10", "B/1", "a/9", "\u00e9t\u00e9/1", "a/1", "A/3"]
ALL = "SELECT clip_key, class_name, split FROM clips"


@pytest.fixture(params=["duckdb", "postgresql"])
def cat(request, tmp_path):
    url = str(tmp_path / "c.db") if request.param == "duckdb" else request.getfixturevalue("pg_url")
    catalog = open_catalog(url, create=True)
    with catalog.transaction() as session:
        for i, key in enumerate(KEYS):
            cls, clip = key.split("/")
            session.add(Clip(clip_key=key, class_name=cls, clip_id=clip, status="ok",
                             split=(None, "train", "val", "test")[i % 4]))
    return catalog


def test_clips_come_in_pythons_order_of_keys_on_every_backend(cat):
    assert clips_of(cat, ALL + " ORDER BY clip_id DESC")["clip_key"].tolist() == sorted(KEYS)
    narrowed = clips_of(cat, ClipQuery(ALL, classes=("a", "b", "B")))
    assert narrowed["clip_key"].tolist() == sorted(k for k in KEYS if k[0] in "abB")
    assert list(narrowed.columns) == ["clip_key", "class_name", "split"]
    split = clips_of(cat)  # the default: every clip with a split
    assert split["clip_key"].tolist() == sorted(k for i, k in enumerate(KEYS) if i % 4)


def test_a_query_short_of_a_jobs_columns_or_with_a_clip_twice_is_refused_in_one_line(cat):
    message = (r"^--query returns clip_key, split: it lacks class_name \(this job needs "
               r"clip_key, class_name, split\)$")
    for query in ("SELECT clip_key, split FROM clips",
                  ClipQuery("SELECT clip_key, split FROM clips", classes=("a",))):
        with pytest.raises(UsageError, match=message):
            clips_of(cat, query)
    with pytest.raises(UsageError, match="some clips twice; add DISTINCT"):
        clips_of(cat, f"{ALL} UNION ALL {ALL}")
    assert clips_of(cat, "SELECT clip_key FROM clips", needs=["clip_key"]).shape == (7, 1)
