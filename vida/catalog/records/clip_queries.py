"""The clips a training takes: a user's read-only query, narrowed by bound values.

A user chooses clips in SQL (``--query``).  An experiment narrows that choice: to
clips that have every feature set it reads, to the train clips a filter kept, to a
few classes, to a labelled subset of the train clips.  :class:`ClipQuery` holds the
user's text and those narrowings as values; the statement is composed with
SQLAlchemy, every name and key a bound parameter, so a quote in a set's name or a
clip key can never change what the SQL says.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import pandas as pd
from sqlalchemy import Select, column, or_, select, text
from sqlalchemy.dialects import postgresql

from vida.catalog.database import Catalog
from vida.catalog.readonly import check_read_only
from vida.catalog.records.clips import resolve_sources
from vida.catalog.schema import Feature, FilterDecision
from vida.errors import UsageError
from vida.keys import SPLIT_CLIPS

CLIP_COLUMNS = ("clip_key", "class_name", "split")
# every clip; the clips a training takes unless told otherwise are SPLIT_CLIPS
ALL_CLIPS = "SELECT clip_key, class_name, split FROM clips"
# every clip a media or semantic job can work on: those whose media decoded
USABLE_CLIPS = ("SELECT clip_key, class_name, clip_id, source_uri FROM clips "
                "WHERE status <> 'failed'")


@dataclass(frozen=True)
class ClipQuery:
    """``sql`` (a SELECT returning clip_key, class_name, split) narrowed to clips that
    have each of ``feature_sets``; with ``kept_by``, train clips only where that
    filter kept them; with ``classes``, only those classes; with ``train_keys``, only
    those train clips.  Val and test clips are never narrowed by a filter or a subset."""

    sql: str
    feature_sets: tuple[str, ...] = ()
    kept_by: str | None = None
    classes: tuple[str, ...] | None = None
    train_keys: tuple[str, ...] | None = None

    def narrowed(self, **changes: object) -> ClipQuery:
        return replace(self, **changes)

    @property
    def plain(self) -> bool:
        """The user's SQL as it is, not narrowed."""
        return self == ClipQuery(self.sql)

    def statement(self) -> Select:
        """The composed SELECT of clip_key, class_name, split (parameters bound)."""
        # a ':' of the user's SQL is literal text, never a placeholder
        user = text(self.sql.strip().rstrip(";").replace(":", r"\:"))
        chosen = user.columns(*map(column, CLIP_COLUMNS)).subquery("q")
        key, split = chosen.c.clip_key, chosen.c.split
        stmt = select(key, chosen.c.class_name, split)
        for name in self.feature_sets:
            stmt = stmt.where(key.in_(select(Feature.clip_key)
                                      .where(Feature.feature_set == name)))
        if self.kept_by is not None:
            kept = select(FilterDecision.clip_key).where(
                FilterDecision.filter_name == self.kept_by, FilterDecision.keep)
            stmt = stmt.where(or_(split != "train", key.in_(kept)))
        if self.classes is not None:
            stmt = stmt.where(chosen.c.class_name.in_(self.classes))
        if self.train_keys is not None:
            stmt = stmt.where(or_(split != "train", key.in_(self.train_keys)))
        return stmt

    def __str__(self) -> str:
        """The statement as SQL a person can read, record and run again (values quoted
        by SQLAlchemy; DuckDB's SQL is PostgreSQL's here)."""
        if self.plain:
            return self.sql
        return str(self.statement().compile(dialect=postgresql.dialect(),
                                            compile_kwargs={"literal_binds": True}))


def clips_of(catalog: Catalog, query: str | ClipQuery | None = None, *,
             default: str = SPLIT_CLIPS, needs: Sequence[str] = CLIP_COLUMNS
             ) -> pd.DataFrame:
    """The clips a job is asked for: the rows of ``query`` (a user's SQL, or a
    :class:`ClipQuery` narrowing it; ``default`` when there is none), each clip once,
    in clip_key order, with ``source_uri`` (where there is one) made a path that opens
    from here.  A query without a column the job ``needs`` is refused in one line.

    SQL returns rows in whatever order the database finds them (for a catalog filled
    by parallel workers, the order they happened to commit in), and that order becomes
    the order of a training's tensors, hence of every shuffle and result.  Sorted here,
    the same on every backend (Python's order of strings, DuckDB's binary order), a run
    depends on which clips were chosen, never on how they were stored.  The database
    sorts, in code-point order on every backend (Python's order of strings); a
    result that comes back otherwise is sorted here."""
    query = query if isinstance(query, ClipQuery) else ClipQuery(query or default)
    needs = (*CLIP_COLUMNS, *needs) if not query.plain else needs
    # the user's columns first: a missing one gets this message, not the database's
    _require_columns(catalog.sql(f"SELECT * FROM ({_body(query.sql)}\n) AS q LIMIT 0"
                                 ).columns, needs)
    collate = "" if catalog.is_duckdb else ' COLLATE "C"'  # DuckDB's order is binary
    if query.plain:  # whatever columns the user's SQL gives, DuckDB making the frame
        frame = catalog.sql(f"SELECT * FROM ({_body(query.sql)}\n) AS q "
                            f"ORDER BY clip_key{collate}")
    else:
        check_read_only(query.sql)
        by_key = column("clip_key")
        frame = catalog.read(query.statement().order_by(
            by_key if catalog.is_duckdb else by_key.collate("C")))
    if not frame["clip_key"].is_monotonic_increasing:  # a collation of the server's
        frame = frame.sort_values("clip_key", kind="stable", ignore_index=True)
    keys = frame["clip_key"].to_numpy()
    if len(keys) > 1 and (keys[1:] == keys[:-1]).any():  # sorted: a repeat is adjacent
        raise UsageError("the --query returns some clips twice; add DISTINCT")
    return resolve_sources(catalog, frame)


def _body(sql: str) -> str:
    return sql.strip().rstrip(";")


def _require_columns(columns: Sequence[str], needs: Sequence[str]) -> None:
    needs = tuple(dict.fromkeys(("clip_key", *needs)))
    missing = [c for c in needs if c not in columns]
    if missing:
        raise UsageError(f"--query returns {', '.join(columns) or 'no columns'}: it lacks "
                         f"{', '.join(missing)} (this job needs {', '.join(needs)})")
