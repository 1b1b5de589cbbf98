"""Every job's run ends "finished" or "failed" with its error, never "abandoned" because
of an exception: "abandoned" is kept for a process that is gone."""

from __future__ import annotations

import numpy as np
import pytest

from vida.catalog.schema import Clip
from vida.catalog.writes import upsert
from vida.clock import utcnow


def _disk_full(*args, **kwargs):
    raise OSError(28, "No space left on device")


def _runs(catalog, kind: str) -> list[tuple[str, str | None]]:
    frame = catalog.sql("SELECT status, error FROM runs WHERE kind = :k", {"k": kind})
    return list(frame.itertuples(index=False, name=None))


def test_a_split_that_fails_midway_records_its_run_failed(catalog, monkeypatch):
    import vida.catalog.records.clips as clip_records
    import vida.jobs.data.split as split

    with catalog.transaction() as session:
        upsert(session, Clip, [{"clip_key": f"a/{i}", "class_name": "a", "clip_id": str(i),
                                "status": "ok", "ingested_at": utcnow()} for i in range(6)],
               key=("clip_key",))

    def broken(*args, **kwargs):
        raise RuntimeError("the catalog went away")

    monkeypatch.setattr(clip_records, "update", broken)  # inside the split's transaction
    with pytest.raises(RuntimeError, match="went away"):
        split.assign_splits(catalog, ratios=(0.5, 0.0, 0.5))
    assert _runs(catalog, "split") == [("failed", "RuntimeError: the catalog went away")]
    assert catalog.sql("SELECT count(*) AS n FROM clips WHERE split IS NOT NULL")["n"][0] == 0
    monkeypatch.undo()
    split.assign_splits(catalog, ratios=(0.5, 0.0, 0.5))  # the rerun records its own run
    assert sorted(s for s, _ in _runs(catalog, "split")) == ["failed", "finished"]


def test_a_legacy_import_that_fails_writing_records_its_run_failed(catalog, store, tmp_path,
                                                                    monkeypatch):
    from vida.jobs.data.legacy_import import import_legacy

    folder = tmp_path / "features"
    folder.mkdir()
    data = {("barking", f"c{i}"): np.zeros((18, 8), np.float32) for i in range(3)}
    np.save(folder / "audio_train.npy", data, allow_pickle=True)

    monkeypatch.setattr(type(store), "bundle_writer", _disk_full)
    with pytest.raises(OSError):
        import_legacy(catalog, store, folder)
    [(status, error)] = _runs(catalog, "import-legacy")
    assert status == "failed" and "No space left" in error


def _open_synthetic(work):
    from vida import open_catalog
    from vida.store import FeatureStore

    catalog = open_catalog(work / "catalog.db")
    return catalog, FeatureStore(catalog, work / "store")


QUERY = "SELECT clip_key, class_name, split FROM clips WHERE split IS NOT NULL"


def test_a_training_that_fails_records_its_run_failed(synthetic, monkeypatch):
    import vida.jobs.training.classifier as classifier
    import vida.jobs.training.generator as generator

    catalog, store = _open_synthetic(synthetic)

    def unreadable(task):
        raise OSError("shard unreadable")

    monkeypatch.setattr(classifier, "fit_classifier", unreadable)
    monkeypatch.setattr(generator, "fit_generator", unreadable)
    with pytest.raises(OSError):
        classifier.train_classifier(catalog, store, QUERY, classifier.ClassifierSpec(
            arch="mlp", epochs=1), runs=str(synthetic / "runs"), progress=False)
    with pytest.raises(OSError):
        generator.train_generator(catalog, store, QUERY, generator.GeneratorSpec(
            epochs=1, hidden=8), runs=str(synthetic / "runs"), progress=False)
    assert _runs(catalog, "train-classifier") == [("failed", "OSError: shard unreadable")]
    assert _runs(catalog, "train-generator") == [("failed", "OSError: shard unreadable")]


def test_a_generate_that_fails_records_its_run_failed(synthetic, monkeypatch):
    import vida.jobs.training.generated as generated
    from vida.jobs.training.generator import GeneratorSpec, train_generator

    catalog, store = _open_synthetic(synthetic)
    run_id = train_generator(catalog, store, QUERY, GeneratorSpec(epochs=1, hidden=8),
                             runs=str(synthetic / "runs"), progress=False)

    monkeypatch.setattr(generated, "generate_rows", _disk_full)
    with pytest.raises(OSError):
        generated.generate(catalog, store, run_id)
    [(status, error)] = _runs(catalog, "generate")
    assert status == "failed" and "No space left" in error
    assert not store.exists(f"generated/{run_id}") or not store.keys(f"generated/{run_id}")


def _small_svdmap(catalog, store, work):
    from vida.jobs.experiments.spec import ExperimentOptions, SVDMapSpec
    from vida.jobs.experiments.svdmap import svdmap_experiment

    _dictionary_from_tags(catalog)
    return svdmap_experiment(
        catalog, store, SVDMapSpec(tags="synth-ref", dictionary="from-tags", min_iou=0.0,
                                   seeds=1, epochs=1, generator_epochs=1, cross_fit=0,
                                   generator_hidden=8, classifier_hidden=8),
        runs=str(work / "runs"), log=lambda line: None,
        options=ExperimentOptions(workers=1, progress=False))


def _child_statuses(catalog) -> dict[str, int]:
    """Trainings by status (a generate step is redone on a rerun: it finds its set
    whole and records that)."""
    frame = catalog.sql("SELECT status, count(*) AS n FROM runs WHERE kind LIKE '%-%' "
                        "GROUP BY 1")
    return dict(frame.itertuples(index=False, name=None))


def test_an_experiment_whose_summary_fails_is_failed_and_its_rerun_trains_nothing(
        synthetic, monkeypatch):
    import vida.jobs.experiments.svdmap as svdmap

    catalog, store = _open_synthetic(synthetic)

    monkeypatch.setattr(svdmap, "record_results", _disk_full)
    with pytest.raises(OSError):
        _small_svdmap(catalog, store, synthetic)
    [(status, error)] = _runs(catalog, "experiment")
    assert status == "failed" and "No space left" in error
    trained = _child_statuses(catalog)
    assert set(trained) == {"finished"}
    monkeypatch.undo()
    result = _small_svdmap(catalog, store, synthetic)  # resumed under the same id
    assert _runs(catalog, "experiment") == [("finished", None)]
    assert _child_statuses(catalog) == trained  # every training reused, none redone
    assert result.csv.is_file()


def test_a_training_whose_commit_fails_is_failed_not_abandoned(synthetic, monkeypatch):
    import vida.jobs.experiments.driver as driver

    catalog, store = _open_synthetic(synthetic)

    monkeypatch.setattr(driver, "record_classifier", _disk_full)
    with pytest.raises(OSError):
        _small_svdmap(catalog, store, synthetic)
    failed = catalog.sql("SELECT kind, error FROM runs WHERE status = 'failed'")
    assert "train-classifier" in set(failed["kind"]) and "experiment" in set(failed["kind"])
    assert failed["error"].str.contains("No space left").all()
    assert "running" not in _child_statuses(catalog)


def test_a_run_closed_by_its_commit_is_not_finished_twice(catalog):
    from vida.catalog.records.runs import close_run, start_run
    from vida.jobs.core.batch_job import run_lifecycle

    with run_lifecycle(catalog, lambda: start_run(catalog, kind="probe", params={})) as run:
        with catalog.transaction() as session:
            close_run(session, run.run_id, checkpoint="here")
        run.closed = True
        run.metrics["ignored"] = 1.0
    rows = catalog.sql("SELECT status, checkpoint FROM runs WHERE kind = 'probe'")
    assert rows.to_dict("records") == [{"status": "finished", "checkpoint": "here"}]
    assert catalog.sql("SELECT count(*) AS n FROM run_metrics")["n"][0] == 0


def _dictionary_from_tags(catalog, name: str = "from-tags") -> None:
    from vida.catalog.records.dictionaries import store_dictionary
    from vida.catalog.records.tags import load_tags
    from vida.keys import class_of

    labels: dict[str, set[str]] = {}
    for key, tags in load_tags(catalog, "synth-ref").items():
        labels.setdefault(class_of(key), set()).update(tags)
    store_dictionary(catalog, name, {c: [(t, None) for t in sorted(ts)]
                                     for c, ts in labels.items()})


@pytest.mark.parametrize("job", ["dictionary", "filter", "dictionary-import", "frames"])
def test_the_semantic_jobs_that_fail_record_their_runs_failed(synthetic, tmp_path,
                                                              monkeypatch, job):
    """Each fails inside its run (its computation or its commit): the run is failed
    with the error, never left running."""
    import vida.jobs.semantics.conditions as cafmap
    import vida.jobs.semantics.dictionary as dictionary

    catalog, store = _open_synthetic(synthetic)
    if job == "dictionary":
        monkeypatch.setattr(dictionary, "build_dictionary", _disk_full)
        run = lambda: dictionary.build_dictionary_job(catalog, "d")  # noqa: E731
    elif job == "filter":
        _dictionary_from_tags(catalog)
        monkeypatch.setattr(dictionary, "store_decisions", _disk_full)
        run = lambda: dictionary.filter_job(catalog, dictionary="from-tags",  # noqa: E731
                                            tags="synth-ref")
    elif job == "dictionary-import":
        (tmp_path / "svd.csv").write_text("class,labels\nbarking,Dog\n")
        monkeypatch.setattr(dictionary, "read_svd_csv", lambda path: {"barking": []})
        monkeypatch.setattr(dictionary, "store_dictionary", _disk_full)
        run = lambda: dictionary.import_dictionary(catalog, tmp_path / "svd.csv")  # noqa: E731
    else:
        monkeypatch.setattr(cafmap, "replace_representative_frames", _disk_full)
        run = lambda: cafmap.find_representative_frames(catalog, store,  # noqa: E731
                                                        progress=False)
    with pytest.raises(OSError):
        run()
    [(status, error)] = _runs(catalog, job)
    assert status == "failed" and "No space left" in error
