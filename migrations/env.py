"""Alembic environment for the VIDA catalog.

Run through :mod:`vida.catalog.migrate`, which passes an open connection in
``config.attributes["connection"]``; the plain ``alembic`` CLI works too with
``-x url=...``.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

# Importing it registers AlembicDuckDBImpl, Alembic's DDL impl for DuckDB.
from vida.catalog.migrate import AlembicDuckDBImpl  # noqa: F401
from vida.catalog.schema import metadata


def run_migrations() -> None:
    config = context.config
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


def _run(connection) -> None:
    context.configure(connection=connection, target_metadata=metadata)
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
