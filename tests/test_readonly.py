"""User SQL is read-only: every kind of write is refused and nothing changes."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from tests.conftest import run_cli
from vida.catalog import CatalogError, ReadOnlyViolation, open_catalog
from vida.catalog.schema import Clip

WRITES = {
    "insert": "INSERT INTO clips (clip_key, class_name, clip_id, status, ingested_at) "
              "VALUES ('x/y', 'x', 'y', 'ok', now())",
    "update": "UPDATE clips SET split = 'test'",
    "delete": "DELETE FROM clips",
    "drop": "DROP TABLE clips",
    "create": "CREATE TABLE evil (a INTEGER)",
    "create_as": "CREATE TABLE evil AS SELECT * FROM clips",
    "alter": "ALTER TABLE clips ADD COLUMN evil INTEGER",
    "truncate": "TRUNCATE clips",
    "attach": "ATTACH 'other.db' AS other",
    "copy": "COPY clips TO 'leak.csv'",
    "export": "EXPORT DATABASE 'dumpdir'",
    "pragma": "PRAGMA enable_profiling",
    "set": "SET threads = 1",
    "install": "INSTALL httpfs",
    "load": "LOAD httpfs",
    "call": "CALL pragma_version()",
    "read_csv": "SELECT * FROM read_csv('/etc/passwd')",
    "read_text": "SELECT * FROM read_text('/etc/hostname')",
    "quoted_file": "SELECT * FROM '/etc/passwd'",
    "glob": "SELECT * FROM glob('/etc/*')",
    "pg_read_file": "SELECT pg_read_file('/etc/passwd')",
    "nextval": "SELECT nextval('shards_id_seq')",
    "two_statements": "SELECT 1; DROP TABLE clips",
    "explain_analyze": "EXPLAIN ANALYZE DELETE FROM clips",
    "cte_delete": "WITH gone AS (DELETE FROM clips RETURNING *) SELECT * FROM gone",
}


def _seed(cat) -> None:
    with cat.transaction() as session:
        session.add(Clip(clip_key="barking/a", class_name="barking", clip_id="a",
                         status="ok", split="train"))


def _snapshot(cat) -> tuple:
    tables = cat.sql("SELECT table_name FROM information_schema.tables ORDER BY 1")
    clips = cat.sql("SELECT clip_key, split FROM clips ORDER BY 1")
    return tuple(tables["table_name"]), tuple(map(tuple, clips.values.tolist()))


@pytest.fixture(params=["duckdb", "postgresql"])
def cat(request, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative file names in the statements land here
    url = str(tmp_path / "c.db") if request.param == "duckdb" else request.getfixturevalue("pg_url")
    catalog = open_catalog(url, create=True)
    _seed(catalog)
    return catalog


@pytest.mark.parametrize("kind", sorted(WRITES))
def test_each_kind_of_write_is_refused_and_changes_nothing(cat, kind, tmp_path):
    before = _snapshot(cat)
    files_before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises((ReadOnlyViolation, CatalogError)) as info:
        cat.sql(WRITES[kind])
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(("refused", "query failed"))
    assert _snapshot(cat) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == files_before


def test_plain_reads_work(cat):
    frame = cat.sql(
        "WITH c AS (SELECT class_name, split FROM clips) "
        "SELECT class_name, count(*) AS n, '10:30 %' AS odd FROM c GROUP BY class_name"
    )
    assert frame.to_dict("records") == [{"class_name": "barking", "n": 1, "odd": "10:30 %"}]
    assert "clips" in cat.sql("EXPLAIN SELECT * FROM clips").to_string()


def test_the_connection_itself_is_read_only(cat):
    """Even a statement that slipped past the parser cannot write."""
    with pytest.raises(DBAPIError), cat.connect(read_only=True) as conn:
        conn.execute(text("UPDATE clips SET split = 'val'"))
    assert cat.sql("SELECT split FROM clips")["split"].tolist() == ["train"]


def test_cli_sql_formats_and_refusal(tmp_path):
    cat = open_catalog(tmp_path / "catalog.db", create=True)
    _seed(cat)
    cat.dispose()
    q = "SELECT clip_key, class_name, split FROM clips"
    csv = run_cli("sql", q, "--format", "csv", cwd=tmp_path)
    assert csv.returncode == 0, csv.stderr
    assert csv.stdout.splitlines() == ["clip_key,class_name,split", "barking/a,barking,train"]
    js = run_cli("sql", q, "--format", "json", cwd=tmp_path)
    assert json.loads(js.stdout) == [
        {"clip_key": "barking/a", "class_name": "barking", "split": "train"}
    ]
    table = run_cli("sql", q, cwd=tmp_path)
    assert "barking/a" in table.stdout and "clip_key" in table.stdout
    refused = run_cli("sql", "DELETE FROM clips", cwd=tmp_path)
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines() == [
        "Error: refused: DELETE statements are not allowed; catalog queries are read-only "
        "(use SELECT)"
    ]
    bad = run_cli("sql", "SELECT nope FROM clips", cwd=tmp_path)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert bad.stderr.startswith("Error: query failed:")
