"""`vida-batch catalog copy`: DuckDB -> PostgreSQL -> DuckDB keeps every row, and the
copies go on working (new ids never collide with copied ones)."""

from __future__ import annotations

import json

import numpy as np
from sqlalchemy import select

from tests.conftest import run_cli
from vida import open_catalog
from vida.catalog.records.runs import log_metrics, start_run
from vida.catalog.schema import Base
from vida.store import FeatureStore


def _plain(value):
    return json.dumps(value, sort_keys=True) if isinstance(value, list | dict) else value


def _tables(catalog) -> dict[str, list[tuple]]:
    """Every table's rows as sorted tuples of comparable Python values."""
    out = {}
    with catalog.connect(read_only=True) as conn:
        for table in Base.metadata.sorted_tables:
            rows = [tuple(_plain(v) for v in row) for row in conn.execute(select(table))]
            out[table.name] = sorted(rows, key=repr)
    return out


def test_duckdb_to_postgres_to_duckdb_keeps_every_row(synthetic, pg_url, tmp_path):
    source = open_catalog(synthetic / "catalog.db")
    run = start_run(source, kind="train-classifier", params={"lr": 1e-3, "classes": ["a"]})
    log_metrics(source, run, {"top1": 0.5, "loss": 1.25}, split="val", epoch=1)
    before = _tables(source)
    assert len(before["clips"]) == 40 and before["features"] and before["audio_tags"]
    assert before["run_metrics"] and before["shards"]
    source.dispose()

    back = tmp_path / "back.db"
    for src, dst in ((str(synthetic / "catalog.db"), pg_url), (pg_url, str(back))):
        result = run_cli("catalog", "copy", src, dst)
        assert result.returncode == 0, result.stderr
        assert "copied" in result.stdout
    for url in (pg_url, back):
        copy = _tables(open_catalog(url, create=True))
        for name, rows in before.items():
            assert copy[name] == rows, f"{name} differs after copying to {url}"

    # the copy is a working catalog: new shards and metrics get fresh ids
    pg = open_catalog(pg_url, create=True)
    store = FeatureStore(pg, synthetic / "store")
    store.register("rgb/new", modality="rgb", encoder="test", shape=(2,))
    with store.writer("rgb/new") as writer:
        writer.add("new/clip", np.ones(2, np.float32))
    log_metrics(pg, run, {"top1": 0.75}, split="test")
    ids = pg.sql("SELECT id FROM shards")["id"]
    assert ids.is_unique and ids.max() > max(row[0] for row in before["shards"])
    assert pg.sql("SELECT id FROM run_metrics")["id"].is_unique

    # a copy never merges into a catalog that has rows
    again = run_cli("catalog", "copy", str(back), pg_url)
    assert again.returncode == 1 and "already has rows" in again.stderr
    duck = open_catalog(back)
    log_metrics(duck, run, {"top1": 0.8}, split="test")
    assert duck.sql("SELECT id FROM run_metrics")["id"].is_unique
