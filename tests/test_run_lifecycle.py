"""Every job's run ends "finished" or "failed" with its error, never "abandoned" because
of an exception: "abandoned" is kept for a process that is gone."""

from __future__ import annotations

import numpy as np
import pytest

from vida.catalog.schema import Clip
from vida.catalog.writes import upsert
from vida.clock import utcnow


def _runs(catalog, kind: str) -> list[tuple[str, str | None]]:
    frame = catalog.sql("SELECT status, error FROM runs WHERE kind = :k", {"k": kind})
    return list(frame.itertuples(index=False, name=None))


def test_a_split_that_fails_midway_records_its_run_failed(catalog, monkeypatch):
    import vida.jobs.split as split

    with catalog.transaction() as session:
        upsert(session, Clip, [{"clip_key": f"a/{i}", "class_name": "a", "clip_id": str(i),
                                "status": "ok", "ingested_at": utcnow()} for i in range(6)],
               key=("clip_key",))

    def broken(*args, **kwargs):
        raise RuntimeError("the catalog went away")

    monkeypatch.setattr(split, "update", broken)
    with pytest.raises(RuntimeError, match="went away"):
        split.assign_splits(catalog, ratios=(0.5, 0.0, 0.5))
    assert _runs(catalog, "split") == [("failed", "RuntimeError: the catalog went away")]
    assert catalog.sql("SELECT count(*) AS n FROM clips WHERE split IS NOT NULL")["n"][0] == 0
    monkeypatch.undo()
    split.assign_splits(catalog, ratios=(0.5, 0.0, 0.5))  # the rerun records its own run
    assert sorted(s for s, _ in _runs(catalog, "split")) == ["failed", "finished"]


def test_a_legacy_import_that_fails_writing_records_its_run_failed(catalog, store, tmp_path,
                                                                    monkeypatch):
    from vida.jobs.legacy_import import import_legacy

    folder = tmp_path / "features"
    folder.mkdir()
    data = {("barking", f"c{i}"): np.zeros((18, 8), np.float32) for i in range(3)}
    np.save(folder / "audio_train.npy", data, allow_pickle=True)

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(type(store), "bundle_writer", full_disk)
    with pytest.raises(OSError):
        import_legacy(catalog, store, folder)
    [(status, error)] = _runs(catalog, "import-legacy")
    assert status == "failed" and "No space left" in error
