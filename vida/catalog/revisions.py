"""Which schema revision a catalog is at, and which one this VIDA expects, read
without Alembic.

Every command opens the catalog and compares the two.  Alembic (with Mako, slow to
import, and it imports every migration script to find the head) is loaded only
when they differ: to create, upgrade or explain (:mod:`migrate`).
The head is the newest ``NNNN_*.py`` under ``migrations/versions`` -- each
script's revision id is its file name, which ``tests/test_migrations.py`` checks
against Alembic's own answer.
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

_SCRIPT = re.compile(r"(\d{4}_\w+)\.py")


@lru_cache(maxsize=1)
def head_revision() -> str:
    folder = resources.files("vida.migrations") / "versions"
    found = sorted(m.group(1) for p in folder.iterdir() if (m := _SCRIPT.fullmatch(p.name)))
    if not found:
        raise RuntimeError(f"no migration scripts in {folder}: a broken VIDA install")
    return found[-1]


def current_revision(connection: Connection) -> str | None:
    """The revision recorded in ``alembic_version``; ``None`` for a new catalog."""
    if not inspect(connection).has_table("alembic_version"):
        return None
    rows = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    if len(rows) > 1:  # branches: not ours, but let Alembic say what it makes of them
        from vida.catalog import migrate

        return migrate.current_revision(connection)
    return rows[0] if rows else None
