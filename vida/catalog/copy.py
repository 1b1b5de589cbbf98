"""Moving a catalog between backends (a DuckDB file <-> PostgreSQL), every row.

A DuckDB file is the catalog of one machine and one writer at a time; when several
machines or people share a catalog it belongs in PostgreSQL.  ``vida-batch catalog
copy SRC DST`` moves it: DST gets the schema through the same migrations as any new
catalog, then every table is streamed across in batches, parents before children
(foreign keys hold at every commit), and the id sequences are moved past the
copied ids so that new rows never collide.  DST must be empty: a copy never merges.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import func, insert, select

from vida.catalog.database import Catalog, CatalogError
from vida.catalog.schema import Base, RunMetric, Shard, run_metric_id_seq, shard_id_seq

# sequence -> (table, id column) it numbers
_SEQUENCES = {shard_id_seq: Shard.id, run_metric_id_seq: RunMetric.id}


def table_counts(catalog: Catalog) -> dict[str, int]:
    """Rows per table of the schema."""
    with catalog.connect(read_only=True) as conn:
        return {t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
                for t in Base.metadata.sorted_tables}


def copy_catalog(source: Catalog, target: Catalog, *, batch: int = 5000,
                 log: Callable[[str], None] = lambda line: None) -> dict[str, int]:
    """Copy every row of ``source`` into the empty ``target`` (both at the schema's
    head revision); returns rows copied per table."""
    if source.url == target.url:
        raise CatalogError("catalog copy: source and target are the same catalog")
    filled = {name: n for name, n in table_counts(target).items() if n}
    if filled:
        name, n = next(iter(filled.items()))
        raise CatalogError(f"catalog copy: {target.url} already has rows ({n} in {name}); "
                           "copy into a new, empty catalog")
    copied: dict[str, int] = {}
    for table in Base.metadata.sorted_tables:
        n = 0
        with source.connect(read_only=True) as reader:
            result = reader.execution_options(stream_results=True).execute(select(table))
            columns = list(result.keys())
            while rows := result.fetchmany(batch):
                with target.transaction() as session:
                    session.execute(insert(table), [dict(zip(columns, r, strict=True))
                                                    for r in rows])
                n += len(rows)
        copied[table.name] = n
        log(f"{table.name}: {n} rows")
    _advance_sequences(target)
    return copied


def _advance_sequences(target: Catalog) -> None:
    """Move each id sequence past the largest copied id."""
    with target.transaction() as session:
        for sequence, column in _SEQUENCES.items():
            top = session.execute(select(func.max(column))).scalar()
            if not top:
                continue
            if target.url.startswith("duckdb"):  # no setval in DuckDB: draw the numbers
                session.execute(select(func.max(sequence.next_value()))
                                .select_from(func.range(top)))
            else:
                session.execute(select(func.setval(sequence.name, top)))
