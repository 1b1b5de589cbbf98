"""``dictionary_entries``: named semantic dictionaries, action class -> AudioSet labels."""

from __future__ import annotations

from sqlalchemy import text

from vida.catalog.database import Catalog
from vida.catalog.records import sets_by_key
from vida.catalog.schema import DictionaryEntry
from vida.catalog.writes import replace_group
from vida.errors import UsageError

Entries = dict[str, list[tuple[str, float | None]]]  # class -> [(label, similarity)]


def store_dictionary(catalog: Catalog, name: str, entries: Entries) -> int:
    """Replace dictionary ``name`` by ``entries``; returns the number of rows."""
    rows = [{"dictionary": name, "class_name": cls, "rank": rank, "audio_label": label,
             "similarity": sim}
            for cls, items in entries.items() for rank, (label, sim) in enumerate(items, 1)]
    return replace_group(catalog, DictionaryEntry, "dictionary", name, rows,
                         key=("dictionary", "class_name", "rank"))


def load_dictionary(catalog: Catalog, name: str) -> dict[str, set[str]]:
    """class -> the set of labels of dictionary ``name``."""
    frame = catalog.read(text(
        "SELECT class_name, audio_label FROM dictionary_entries WHERE dictionary = :name"),
        {"name": name},
    )
    if frame.empty:
        raise UsageError(f"no dictionary {name!r}: run `vida-batch dictionary build` or import")
    return sets_by_key(frame)
