"""Frame captions: imported from the study's files, or written by BLIP.

Study format, one file per split and class: ``{split}_{class}_captions.json`` =
``{clip_id: [{"frame": i, "caption": "..."}]}``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from vida.encoders.pretrained import from_pretrained
from vida.errors import MissingInput, UsageError
from vida.keys import clip_key

DEFAULT_BLIP = "Salesforce/blip-image-captioning-base"
_FILE = re.compile(r"^(?P<split>[^_]+)_(?P<cls>.+)_captions\.json$")


def read_caption_files(path: Path) -> dict[str, list[tuple[int, str]]]:
    """clip_key -> [(frame, caption)] from one file or a folder of them."""
    files = [path] if path.is_file() else sorted(path.glob("*_captions.json"))
    if not files:
        raise MissingInput(f"{path}: no {{split}}_{{class}}_captions.json files")
    out: dict[str, list[tuple[int, str]]] = {}
    for file in files:
        match = _FILE.match(file.name)
        if not match:
            raise UsageError(f"{file.name}: expected the name {{split}}_{{class}}_captions.json")
        try:
            data = json.loads(file.read_text())
            for clip_id, items in data.items():
                out[clip_key(match["cls"], clip_id)] = [
                    (int(item["frame"]), str(item["caption"])) for item in items]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise UsageError(f"{file}: not in the caption format ({exc})") from None
    return out


@dataclass
class Captioner:
    processor: object
    model: object
    max_new_tokens: int = 20

    def caption(self, images: list[np.ndarray]) -> list[str]:
        import torch

        inputs = self.processor(images=images, return_tensors="pt")
        with torch.no_grad():
            out = self.model.generate(pixel_values=inputs["pixel_values"],
                                      max_new_tokens=self.max_new_tokens)
        return [t.strip() for t in self.processor.batch_decode(out, skip_special_tokens=True)]


@lru_cache(maxsize=2)
def load_captioner(name_or_dir: str = DEFAULT_BLIP) -> Captioner:
    """BLIP from a hub name or a local directory (offline: a directory)."""
    from transformers import BlipForConditionalGeneration, BlipProcessor

    processor, model = from_pretrained("BLIP", name_or_dir, BlipProcessor,
                                       BlipForConditionalGeneration)
    model.eval()
    return Captioner(processor, model)
