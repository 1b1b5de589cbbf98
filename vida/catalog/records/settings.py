"""Reads and writes of ``catalog_settings``: values of the catalog as a whole."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from vida.catalog.database import Catalog
from vida.catalog.schema import CatalogSetting, utcnow
from vida.catalog.writes import upsert


def get_setting(catalog: Catalog, key: str) -> str | None:
    with catalog.reading() as session:
        return session.execute(select(CatalogSetting.value).where(CatalogSetting.key == key)
                               ).scalar_one_or_none()


def put_setting(session: Session, key: str, value: str | None) -> None:
    """Set ``key`` inside the caller's transaction."""
    upsert(session, CatalogSetting, [{"key": key, "value": value, "updated_at": utcnow()}],
           key=("key",))


def set_setting(catalog: Catalog, key: str, value: str | None) -> None:
    """Set ``key`` in a transaction of its own."""
    with catalog.transaction() as session:
        put_setting(session, key, value)
