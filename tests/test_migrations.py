"""The schema comes from Alembic migrations, on DuckDB and on a real PostgreSQL."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.pool import NullPool

from tests.conftest import run_cli
from vida.catalog import CatalogOutdated, migrate, open_catalog
from vida.catalog.revisions import head_revision
from vida.catalog.schema import metadata


def _revisions_in_order() -> list[str]:
    """Every revision in migrations/, first to head (read from the folder, so a new
    migration needs no change here)."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(migrate.alembic_config())
    return [r.revision for r in reversed(list(script.walk_revisions("base", "heads")))]


REVISIONS = _revisions_in_order()
FIRST = REVISIONS[0]

EXPECTED_TABLES = {
    "clips", "feature_sets", "shards", "features", "audio_tags", "dictionary_entries",
    "filter_decisions", "captions", "runs", "run_metrics", "predictions",
    "representative_frames", "condition_labels",
}


def _url(kind: str, tmp_path, request) -> str:
    if kind == "duckdb":
        return f"duckdb:///{tmp_path / 'cat.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture(params=["duckdb", "postgresql"])
def url(request, tmp_path) -> str:
    return _url(request.param, tmp_path, request)


def test_first_open_creates_schema_at_head(url):
    cat = open_catalog(url, create=True)
    assert cat.revision() == migrate.head_revision()
    with cat.connect() as conn:
        tables = set(inspect(conn).get_table_names())
    assert EXPECTED_TABLES <= tables


def test_revisions_read_without_alembic_agree_with_alembic(url):
    """Opening a catalog reads its revision and the head without Alembic; both must be
    what Alembic says, before any migration, part way, and at head."""
    from vida.catalog import revisions

    assert revisions.head_revision() == migrate.head_revision()
    engine = create_engine(url, poolclass=NullPool)
    with engine.connect() as conn:
        assert revisions.current_revision(conn) is None
        assert migrate.current_revision(conn) is None
        for step in (FIRST, REVISIONS[len(REVISIONS) // 2], "head"):
            migrate.upgrade(conn, step)
            assert revisions.current_revision(conn) == migrate.current_revision(conn)
        assert revisions.current_revision(conn) == revisions.head_revision()
    engine.dispose()


def test_opening_a_catalog_does_not_import_alembic_and_a_worker_no_catalog(tmp_path):
    """Start-up is paid by every command and every worker: Alembic loads only to
    migrate (not to open a catalog at head), and a worker's map imports nothing of
    the catalog.  (DuckDB's driver imports pandas itself on its first query.)"""
    from tests.helpers.imports import imported_after

    open_catalog(tmp_path / "c.db", create=True)
    opened = ("from vida.catalog import open_catalog; "
              f"open_catalog({str(tmp_path / 'c.db')!r})\nimport vida.jobs.data.ingest_map")
    assert imported_after(opened, ("alembic", "mako", "torch", "transformers")) == []
    assert imported_after("import vida.jobs.data.ingest_map",
                          ("sqlalchemy", "duckdb", "alembic", "pandas")) == []


def test_models_match_migrations_on_postgresql(pg_url):
    """Autogenerate finds nothing to add, drop or retype: models and migrations agree,
    column types included.

    (Full reflection needs PostgreSQL; DuckDB's pg_catalog cannot do it.)
    """
    open_catalog(pg_url, create=True)
    engine = create_engine(pg_url, poolclass=NullPool)
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = list(compare_metadata(ctx, metadata))
    engine.dispose()
    assert diff == []


def test_models_columns_match_migrations_on_duckdb(tmp_path):
    cat = open_catalog(tmp_path / "c.db", create=True)
    with cat.connect() as conn:
        insp = inspect(conn)
        for table in metadata.sorted_tables:
            reflected = {c["name"]: c["nullable"] for c in insp.get_columns(table.name)}
            modelled = {c.name: c.nullable for c in table.columns}
            assert reflected == modelled, table.name


def test_upgrade_from_first_revision_preserves_rows(url):
    engine = create_engine(url, poolclass=NullPool)
    with engine.connect() as conn:
        migrate.upgrade(conn, FIRST)
        conn.execute(text(
            "INSERT INTO clips (clip_key, class_name, clip_id, status, ingested_at, split, "
            "audio_dbfs) VALUES ('barking/a1', 'barking', 'a1', 'ok', '2026-01-01 00:00:00', "
            "'train', -20.5)"
        ))
        conn.execute(text(
            "INSERT INTO feature_sets (name, modality, encoder, params, shape, dtype, created_at) "
            "VALUES ('rgb/x', 'rgb', 'x', '{}', '[18, 4]', 'float32', '2026-01-01 00:00:00')"
        ))
        conn.commit()
    engine.dispose()

    with pytest.raises(CatalogOutdated, match="vida-batch upgrade"):
        open_catalog(url, create=True)

    cat = open_catalog(url, check=False, create=True)
    applied = cat.upgrade()  # every revision after the first, in order, up to the head
    assert applied == REVISIONS[1:] and applied[-1] == head_revision()
    assert applied == sorted(applied) and len(applied) == len(set(applied))
    cat = open_catalog(url, create=True)  # now passes the check
    rows = cat.sql("SELECT clip_key, split, audio_dbfs FROM clips").to_dict("records")
    assert rows == [{"clip_key": "barking/a1", "split": "train", "audio_dbfs": -20.5}]
    assert cat.sql("SELECT name, shape FROM feature_sets")["shape"].tolist() == ["[18, 4]"]
    # the tables of the later revisions are there and usable
    from vida.catalog.schema import Run

    with cat.transaction() as session:
        session.add(Run(run_id="r1", kind="train", params={"lr": 0.001}))
    assert cat.sql("SELECT count(*) AS n FROM runs")["n"].tolist() == [1]


def test_cli_upgrade_on_an_outdated_duckdb_catalog(tmp_path):
    path = tmp_path / "catalog.db"
    engine = create_engine(f"duckdb:///{path}", poolclass=NullPool)
    with engine.connect() as conn:
        migrate.upgrade(conn, FIRST)
        conn.commit()
    engine.dispose()

    behind = run_cli("status", cwd=tmp_path)
    assert behind.returncode == 1
    assert "run `vida-batch upgrade`" in behind.stderr
    assert "Traceback" not in behind.stderr

    done = run_cli("upgrade", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert all(revision in done.stdout for revision in REVISIONS[1:])
    assert run_cli("status", cwd=tmp_path).returncode == 0


def test_sequences_give_integer_keys(url):
    cat = open_catalog(url, create=True)
    from vida.catalog.schema import RunMetric, Shard

    with cat.transaction() as session:
        a = Shard(feature_set="x", path="x/a.h5", n_rows=1, sha256="0")
        b = Shard(feature_set="x", path="x/b.h5", n_rows=1, sha256="0")
        session.add_all([a, b])
        session.add(RunMetric(run_id="r", epoch=1, split="val", name="loss", value=0.5))
        session.flush()
        assert isinstance(a.id, int) and b.id == a.id + 1


def test_reals_are_double_precision_after_upgrade(url):
    """0004 widened REAL columns: a value keeps all its digits."""
    cat = open_catalog(url, create=True)
    from vida.catalog.schema import FilterDecision

    with cat.transaction() as session:
        session.add(FilterDecision(filter_name="f", clip_key="a/b", iou=0.1109265411590992,
                                   keep=True))
    assert cat.sql("SELECT iou FROM filter_decisions")["iou"][0] == 0.1109265411590992
    # the secondary indexes dropped around the change are back
    query = ("SELECT index_name AS name FROM duckdb_indexes() WHERE table_name = 'clips'"
             if cat.is_duckdb else
             "SELECT indexname AS name FROM pg_indexes WHERE tablename = 'clips'")
    assert "ix_clips_class_name" in set(cat.sql(query)["name"])
