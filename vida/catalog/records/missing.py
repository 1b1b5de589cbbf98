"""Reads and writes of ``missing_audio``: the clips whose audio an experiment treated
as missing, per seed, split and rate (drawn by :mod:`vida.models.missing`)."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import delete, select

from vida.catalog.database import Catalog
from vida.catalog.schema import MissingAudio


def record_missing(catalog: Catalog, experiment_id: str, seed: int,
                   missing: pd.DataFrame) -> int:
    """Record the (split, rate, clip_key) rows of ``missing`` for one experiment and
    seed, replacing what was recorded for them before; returns the rows written."""
    rows = [{"experiment_id": experiment_id, "seed": int(seed), "split": str(split),
             "rate": float(rate), "clip_key": str(key)}
            for split, rate, key in missing[["split", "rate", "clip_key"]].itertuples(
                index=False)]
    with catalog.transaction() as session:
        session.execute(delete(MissingAudio).where(MissingAudio.experiment_id == experiment_id,
                                                   MissingAudio.seed == int(seed)))
        if rows:
            session.execute(MissingAudio.__table__.insert(), rows)
    return len(rows)


def recorded_missing(catalog: Catalog, experiment_id: str, seed: int) -> pd.DataFrame:
    """The (split, rate, clip_key) rows recorded for one experiment and seed, sorted
    (here, in code-point order, as :func:`vida.models.missing.missing_clips` sorts:
    the server's collation may differ)."""
    query = (select(MissingAudio.split, MissingAudio.rate, MissingAudio.clip_key)
             .where(MissingAudio.experiment_id == experiment_id,
                    MissingAudio.seed == int(seed)))
    with catalog.reading() as session:
        found = pd.DataFrame(session.execute(query).all(),
                             columns=["split", "rate", "clip_key"])
    return found.sort_values(["split", "rate", "clip_key"], kind="stable", ignore_index=True)
