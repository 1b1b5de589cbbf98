"""AudioSet tags of clips: imported from the study's JSON, or produced by a tagger."""

from __future__ import annotations

import json
from pathlib import Path

from vida.errors import UsageError
from vida.keys import clip_key


def read_tag_json(path: Path) -> dict[str, list[tuple[str, float | None]]]:
    """``{"<class>|<clip_id>": {"topk_labels": [...], "topk_scores": [...]}}`` ->
    clip_key -> [(label, score)] best first."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise UsageError(f"{path}: not readable JSON ({exc})") from None
    out: dict[str, list[tuple[str, float | None]]] = {}
    for key, value in data.items():
        if "|" not in key or not isinstance(value, dict) or "topk_labels" not in value:
            raise UsageError(f"{path}: entry {key!r} is not '<class>|<clip_id>': "
                             "{topk_labels, topk_scores}")
        cls, cid = key.split("|", 1)
        scores = value.get("topk_scores") or [None] * len(value["topk_labels"])
        out[clip_key(cls, cid)] = list(zip(value["topk_labels"], scores, strict=True))
    return out
