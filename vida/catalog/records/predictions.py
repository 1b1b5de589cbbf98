"""``predictions``: a classifier run's class and score for each test clip."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from vida.catalog.database import Catalog
from vida.catalog.schema import Prediction

_ROWS_PER_INSERT = 500  # bound parameters per statement stay within any driver's limit


def add_predictions(session: Session, run_id: str, split: str, rows: pd.DataFrame) -> None:
    """Replace run ``run_id``'s predictions by ``rows`` (clip_key, true_class,
    pred_class, score), inside the caller's transaction.  DuckDB inserts the frame
    itself: the driver commits every training's predictions while its workers train,
    and the time it spends building a multi-row INSERT is taken from them."""
    frame = rows.assign(run_id=run_id, split=split)[
        ["run_id", "clip_key", "split", "true_class", "pred_class", "score"]]
    session.execute(delete(Prediction).where(Prediction.run_id == run_id))
    connection = session.connection()
    if connection.dialect.name == "duckdb":
        duck = connection.connection.driver_connection
        duck.register("vida_new_predictions", frame)
        try:
            duck.execute("INSERT INTO predictions BY NAME SELECT * FROM vida_new_predictions")
        finally:
            duck.unregister("vida_new_predictions")
        return
    values = frame.to_dict("records")
    for start in range(0, len(values), _ROWS_PER_INSERT):
        session.execute(insert(Prediction).values(values[start:start + _ROWS_PER_INSERT]))


def correct_on_test(catalog: Catalog, run_id: str) -> tuple[np.ndarray, np.ndarray]:
    """A classifier run's test clips, in clip_key order: 1 where it was right, and
    each clip's class."""
    stmt = (select((Prediction.pred_class == Prediction.true_class).label("ok"),
                   Prediction.true_class)
            .where(Prediction.run_id == run_id, Prediction.split == "test")
            .order_by(Prediction.clip_key))
    frame = catalog.read(stmt)
    return frame["ok"].to_numpy(dtype=float), frame["true_class"].to_numpy(dtype=object)


def test_predictions(catalog: Catalog, run_id: str) -> pd.DataFrame:
    """A classifier run's test clips, in clip_key order, with ``correct`` (1 where it
    was right)."""
    stmt = (select(Prediction.clip_key,
                   (Prediction.pred_class == Prediction.true_class).label("correct"))
            .where(Prediction.run_id == run_id, Prediction.split == "test")
            .order_by(Prediction.clip_key))
    return catalog.read(stmt)
