"""The one clock the catalog's timestamps come from (no catalog import: workers use it)."""

from __future__ import annotations

from datetime import datetime, timezone


def utcnow() -> datetime:
    """Timezone-naive UTC now: both DuckDB and PostgreSQL store it unchanged."""
    return datetime.now(timezone.utc).replace(tzinfo=None)
