"""VIDA: Vision-Informed Deep Audio feature generation for action recognition.

Notebook entry point::

    import vida
    cat = vida.open_catalog("catalog.db")
    cat.sql("SELECT class_name, count(*) FROM clips GROUP BY 1")
"""

from vida.catalog import open_catalog

__version__ = "0.1.0"
__all__ = ["__version__", "open_catalog"]
