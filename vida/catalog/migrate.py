"""Alembic, driven from code: upgrade, current and head revisions.

The migration scripts live in the repository's top-level ``migrations/`` folder and
are installed as the package ``vida.migrations``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.ddl.impl import DefaultImpl
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection


class AlembicDuckDBImpl(DefaultImpl):
    """Tells Alembic that the ``duckdb`` dialect behaves like a default one.

    Defining the class registers it (Alembic keys impls by ``__dialect__``); it is
    here rather than only in ``env.py`` because reading the current revision
    builds a MigrationContext outside ``env.py`` too.
    """

    __dialect__ = "duckdb"
    transactional_ddl = True


def migrations_dir() -> Path:
    """Folder holding ``env.py`` and ``versions/``."""
    return Path(str(resources.files("vida.migrations")))


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "no migrations found"
    return head


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(connection: Connection, revision: str = "head") -> None:
    """Apply migrations up to ``revision`` on an open connection (one transaction)."""
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, revision)


def pending_revisions(current: str | None) -> list[str]:
    """Revisions between ``current`` and head, oldest first."""
    script = ScriptDirectory.from_config(alembic_config())
    revs = [r.revision for r in script.iterate_revisions("head", current or "base")]
    return list(reversed(revs))
