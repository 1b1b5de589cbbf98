"""The SQL catalog: what clips, features, tags, captions and runs exist."""

from vida.catalog.database import (
    Catalog,
    CatalogError,
    CatalogLocked,
    CatalogOutdated,
    open_catalog,
    resolve_url,
)
from vida.catalog.readonly import ReadOnlyViolation, check_read_only

__all__ = [
    "Catalog",
    "CatalogError",
    "CatalogLocked",
    "CatalogOutdated",
    "ReadOnlyViolation",
    "check_read_only",
    "open_catalog",
    "resolve_url",
]
