"""VIDA: Vision-Informed Deep Audio feature generation for action recognition.

Notebook entry point::

    import vida
    cat = vida.open_catalog("catalog.db")
    cat.sql("SELECT class_name, count(*) FROM clips GROUP BY 1")

``open_catalog`` is imported on first use (PEP 562), so that a worker process that
only decodes and encodes (``import vida.media...``) never pays for SQLAlchemy,
DuckDB and Alembic.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "open_catalog"]


def __getattr__(name: str) -> Any:
    if name == "open_catalog":
        from vida.catalog import open_catalog

        return open_catalog
    raise AttributeError(f"module 'vida' has no attribute {name!r}")
