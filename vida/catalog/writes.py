"""Small write helpers shared by every job: upserts that work on DuckDB and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import DeclarativeBase, Session

from vida.catalog.database import Catalog

# Rows per INSERT statement: large enough to be fast, small enough for any driver.
_BATCH = 500


def upsert(
    session: Session,
    model: type[DeclarativeBase],
    rows: Iterable[dict[str, Any]],
    key: Sequence[str],
) -> int:
    """Insert ``rows`` into ``model``'s table, replacing rows with the same ``key``.

    ``INSERT ... ON CONFLICT (key) DO UPDATE`` is understood by both DuckDB and
    PostgreSQL (duckdb-engine builds on the PostgreSQL dialect).
    """
    rows = list(rows)
    if not rows:
        return 0
    table = model.__table__  # type: ignore[attr-defined]
    # One statement per column set: a column a row does not give is left as it is
    # (an update never blanks, say, the split of a clip that is re-ingested).
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(sorted(row)), []).append(row)
    for group in groups.values():
        _upsert_group(session, table, group, key)
    return len(rows)


def _upsert_group(session: Session, table: Any, rows: list[dict[str, Any]],
                  key: Sequence[str]) -> None:
    for start in range(0, len(rows), _BATCH):
        chunk = rows[start : start + _BATCH]
        stmt = pg_insert(table).values(chunk)
        updates = {c: stmt.excluded[c] for c in chunk[0] if c not in key}
        stmt = (
            stmt.on_conflict_do_update(index_elements=list(key), set_=updates)
            if updates
            else stmt.on_conflict_do_nothing(index_elements=list(key))
        )
        session.execute(stmt)


def replace_group(catalog: Catalog, model: type[DeclarativeBase], group_column: str,
                  group: str, rows: list[dict[str, Any]], key: Sequence[str]) -> int:
    """Replace every row whose ``group_column`` is ``group`` (a tag source, a dictionary,
    a filter...) by ``rows``, in one transaction: a rerun never leaves stale rows."""
    with catalog.transaction() as session:
        session.query(model).filter(getattr(model, group_column) == group).delete()
        upsert(session, model, rows, key=key)
    return len(rows)
