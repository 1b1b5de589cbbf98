"""``vida-batch tag``: AudioSet tags for clips, from real audio or a feature set."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vida.catalog.database import Catalog
from vida.jobs.runs import finish_run, start_run
from vida.media.decode import decode_audio, fit_audio
from vida.semantics.tagger import load_tagger
from vida.semantics.tags import store_tags
from vida.store.store import FeatureStore


def clip_waveform(source_uri: str, class_name: str, clip_id: str, seconds: float
                  ) -> np.ndarray | None:
    """The clip's audio window, decoded again from its source (a video file, or the
    study layout's ``Audio/<class>/<clip>.wav`` beside an ``RGB/<class>/<clip>`` folder)."""
    path = Path(source_uri)
    if path.is_dir():
        path = path.parents[2] / "Audio" / class_name / f"{clip_id}.wav"
    if not path.exists():
        return None
    wave = decode_audio(path, seconds=seconds)
    return None if wave is None or wave.size == 0 else fit_audio(wave, int(round(seconds * 16000)))


def tag_clips(catalog: Catalog, store: FeatureStore, *, model: str, on: str, top_k: int = 5,
              query: str | None = None, source: str | None = None, batch: int = 8,
              progress: bool = True) -> tuple[str, int]:
    """Tag the clips that have feature set ``on``; returns (tag source, clips tagged)."""
    from tqdm import tqdm

    info = store.info(on)
    if info.modality not in ("audio", "generated"):
        raise ValueError(f"--on {on}: a {info.modality} feature set has no sound to tag")
    seconds = float(info.params.get("n_frames", info.shape[0])) / float(
        info.params.get("fps", 6.0))
    n_samples = int(round(seconds * 16000))
    real = info.modality == "audio"
    if not real and info.encoder not in ("ast-fbank",) and not info.encoder.endswith(
            "-generator"):
        raise ValueError(f"--on {on}: features of encoder {info.encoder!r} cannot be rendered "
                         "as an AST input; tag the real audio instead")
    tagger = load_tagger(model)
    source = source or f"ast:{Path(model).name}:{on}"
    clips = catalog.sql(query or "SELECT clip_key, class_name, clip_id, source_uri FROM clips")
    have = set(store.keys(on))
    clips = clips[clips["clip_key"].isin(have)].reset_index(drop=True)
    run_id = start_run(catalog, kind="tag", params={"model": model, "on": on, "top_k": top_k,
                                                    "source": source}, query=query,
                       feature_sets=[on])
    tags: dict[str, list[tuple[str, float]]] = {}
    bar = tqdm(total=len(clips), unit="clip", desc="tag", disable=not progress)
    for start in range(0, len(clips), batch):
        part = clips.iloc[start:start + batch]
        if real:
            waves, keys = [], []
            for row in part.itertuples(index=False):
                wave = clip_waveform(row.source_uri, row.class_name, row.clip_id, seconds)
                if wave is not None:
                    waves.append(wave)
                    keys.append(row.clip_key)
            results = tagger.tag_waveforms(waves, top_k) if waves else []
        else:
            keys = part["clip_key"].tolist()
            results = tagger.tag_features(store.read(on, keys), n_samples, top_k)
        tags.update(zip(keys, results, strict=True))
        bar.update(len(part))
    bar.close()
    store_tags(catalog, source, tags)
    finish_run(catalog, run_id, metrics={"clips_tagged": len(tags)})
    return source, len(tags)
