"""The read-only guard for user SQL (``vida-batch sql`` and every ``--query``).

Three layers, so that no single one has to be perfect:

1. the statement is classified by DuckDB's own parser (a Postgres-derived grammar,
   so it parses PostgreSQL queries too); only a single SELECT (or EXPLAIN without
   ANALYZE) passes;
2. functions that read or write files, or change server state, are refused by name;
3. the connection itself is read-only: DuckDB opens the file ``read_only`` with
   ``enable_external_access=false``; PostgreSQL runs the query in a
   ``READ ONLY`` transaction.
"""

from __future__ import annotations

import re
from functools import lru_cache

import duckdb

from vida.errors import VidaError

ALLOWED_STATEMENT_TYPES = {"SELECT", "EXPLAIN"}

# Table functions and server functions that touch files, the network or state.
FORBIDDEN_FUNCTIONS = (
    "read_csv", "read_csv_auto", "read_parquet", "parquet_scan", "read_json",
    "read_json_auto", "read_json_objects", "read_ndjson", "read_ndjson_auto",
    "read_ndjson_objects", "read_text", "read_blob", "glob", "sniff_csv",
    "parquet_metadata", "parquet_schema", "read_xlsx", "st_read", "iceberg_scan",
    "delta_scan", "sqlite_scan", "postgres_scan", "mysql_scan", "query_table",
    "pg_read_file", "pg_read_binary_file", "pg_ls_dir", "pg_stat_file", "lo_import",
    "lo_export", "dblink", "set_config", "pg_terminate_backend", "pg_cancel_backend",
    "pg_reload_conf", "nextval", "setval",
)
_FORBIDDEN_RE = re.compile(r"\b(" + "|".join(FORBIDDEN_FUNCTIONS) + r")\s*\(", re.IGNORECASE)
_STRING_LITERAL_RE = re.compile(r"'(?:[^']|'')*'")
_FIRST_WORD_RE = re.compile(r"^\s*(?:\(\s*)*([A-Za-z]+)")


class ReadOnlyViolation(VidaError, ValueError):
    """A user query that would write, attach, or touch files; nothing was run."""


@lru_cache(maxsize=1024)
def _statement_types(query: str) -> tuple[str, ...] | None:
    """Statement types by DuckDB's parser, or None when it cannot parse the text
    (remembered per text: a job asks the same parametrised query again and again)."""
    con = duckdb.connect(":memory:")
    try:
        return tuple(str(s.type).rsplit(".", 1)[-1].upper()
                     for s in con.extract_statements(query))
    except duckdb.Error:
        return None
    finally:
        con.close()


def check_read_only(query: str) -> None:
    """Raise :class:`ReadOnlyViolation` unless ``query`` is one read-only SELECT."""
    text = query.strip().rstrip(";").strip()
    if not text:
        raise ReadOnlyViolation("empty query: give one SELECT statement")
    types = _statement_types(text)
    if types is None:
        # Not DuckDB syntax (a PostgreSQL-only construct): fall back to the first
        # keyword and a single statement; the read-only transaction does the rest.
        match = _FIRST_WORD_RE.match(text)
        first = match.group(1).upper() if match else ""
        types = ["SELECT"] if first in {"SELECT", "WITH", "VALUES", "TABLE"} else [first or "?"]
        if ";" in _STRING_LITERAL_RE.sub("''", text):
            types.append("MULTIPLE")
    if len(types) != 1:
        raise ReadOnlyViolation(
            f"refused: {len(types)} statements given; run one read-only SELECT at a time"
        )
    if types[0] not in ALLOWED_STATEMENT_TYPES:
        raise ReadOnlyViolation(
            f"refused: {types[0]} statements are not allowed; catalog queries are read-only "
            "(use SELECT)"
        )
    bare = _STRING_LITERAL_RE.sub("''", text)
    if types[0] == "EXPLAIN" and re.match(r"^\s*EXPLAIN\s+ANALY[SZ]E\b", bare, re.IGNORECASE):
        raise ReadOnlyViolation("refused: EXPLAIN ANALYZE executes the statement; use EXPLAIN")
    found = _FORBIDDEN_RE.search(bare)
    if found:
        raise ReadOnlyViolation(
            f"refused: {found.group(1)}() reads files or changes state; "
            "catalog queries may only read catalog tables"
        )
    if re.search(r"\b(?:FROM|JOIN)\s+''", bare, re.IGNORECASE):
        raise ReadOnlyViolation(
            "refused: a quoted file name in FROM reads a file; query catalog tables only"
        )
