"""``feature_failures``: clips whose features of a set could not be made, and why."""

from __future__ import annotations

from sqlalchemy import delete

from vida.catalog.database import Catalog
from vida.catalog.schema import FeatureFailure, utcnow
from vida.catalog.writes import upsert


def record_failures(catalog: Catalog, run_id: str, failures: dict[tuple[str, str], str]
                    ) -> int:
    """``{(feature_set, clip_key): error}`` -> rows (replacing older ones)."""
    rows = [{"feature_set": s, "clip_key": k, "run_id": run_id, "error": e,
             "failed_at": utcnow()} for (s, k), e in failures.items()]
    with catalog.transaction() as session:
        upsert(session, FeatureFailure, rows, key=("feature_set", "clip_key"))
    return len(rows)


def failed_keys(catalog: Catalog, feature_set: str) -> set[str]:
    """Clips whose features of ``feature_set`` failed before."""
    frame = catalog.sql("SELECT clip_key FROM feature_failures WHERE feature_set = :s",
                        {"s": feature_set})
    return set(frame["clip_key"])


def clear_failures(catalog: Catalog, feature_set: str, keys: list[str]) -> None:
    """Forget old failures of clips that have now been encoded."""
    with catalog.transaction() as session:
        for start in range(0, len(keys), 1000):
            session.execute(delete(FeatureFailure).where(
                FeatureFailure.feature_set == feature_set,
                FeatureFailure.clip_key.in_(keys[start:start + 1000])))
