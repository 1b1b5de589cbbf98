"""AudioSet tags of clips: imported from the study's JSON, or produced by a tagger."""

from __future__ import annotations

import json
from pathlib import Path

from vida.catalog.database import Catalog
from vida.catalog.schema import AudioTag, clip_key
from vida.catalog.writes import replace_group


def read_tag_json(path: Path) -> dict[str, list[tuple[str, float | None]]]:
    """``{"<class>|<clip_id>": {"topk_labels": [...], "topk_scores": [...]}}`` ->
    clip_key -> [(label, score)] best first."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not readable JSON ({exc})") from None
    out: dict[str, list[tuple[str, float | None]]] = {}
    for key, value in data.items():
        if "|" not in key or not isinstance(value, dict) or "topk_labels" not in value:
            raise ValueError(f"{path}: entry {key!r} is not '<class>|<clip_id>': "
                             "{topk_labels, topk_scores}")
        cls, cid = key.split("|", 1)
        scores = value.get("topk_scores") or [None] * len(value["topk_labels"])
        out[clip_key(cls, cid)] = list(zip(value["topk_labels"], scores, strict=True))
    return out


def store_tags(catalog: Catalog, source: str, tags: dict[str, list[tuple[str, float | None]]]
               ) -> int:
    rows = [{"clip_key": key, "source": source, "rank": rank, "label": label,
             "score": None if score is None else float(score)}
            for key, items in tags.items() for rank, (label, score) in enumerate(items, 1)]
    replace_group(catalog, AudioTag, "source", source, rows, key=("clip_key", "source", "rank"))
    return len(tags)


def load_tags(catalog: Catalog, source: str) -> dict[str, set[str]]:
    frame = catalog.sql("SELECT clip_key, label FROM audio_tags WHERE source = :s", {"s": source})
    if frame.empty:
        raise ValueError(f"no tags from source {source!r}: run `vida-batch tag` first")
    out: dict[str, set[str]] = {}
    for key, label in frame.itertuples(index=False):
        out.setdefault(key, set()).add(label)
    return out
