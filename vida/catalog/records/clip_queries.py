"""The clips a training takes: a user's read-only query, narrowed by bound values.

A user chooses clips in SQL (``--query``).  An experiment narrows that choice: to
clips that have every feature set it reads, to the train clips a filter kept, to a
few classes, to a labelled subset of the train clips.  :class:`ClipQuery` holds the
user's text and those narrowings as values; the statement is composed with
SQLAlchemy, every name and key a bound parameter, so a quote in a set's name or a
clip key can never change what the SQL says.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import pandas as pd
from sqlalchemy import Select, column, or_, select, text
from sqlalchemy.dialects import postgresql

from vida.catalog.database import Catalog
from vida.catalog.readonly import check_read_only
from vida.catalog.schema import Feature, FilterDecision

CLIP_COLUMNS = ("clip_key", "class_name", "split")
ALL_CLIPS = "SELECT clip_key, class_name, split FROM clips"


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


def query_clips(catalog: Catalog, query: str | ClipQuery, *, by_key: bool = False
                ) -> pd.DataFrame:
    """The query's rows; ``by_key``: sorted by clip_key in the database.  A user's
    plain query, unsorted, runs as it is (any columns); otherwise its clip_key,
    class_name and split are taken."""
    query = query if isinstance(query, ClipQuery) else ClipQuery(query)
    if query.plain and not by_key:
        return catalog.sql(query.sql)
    check_read_only(query.sql)
    stmt = query.statement()
    if by_key:
        stmt = stmt.order_by(stmt.selected_columns.clip_key)
    return catalog.read(stmt)
