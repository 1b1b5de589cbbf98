"""SVDMap: tags, dictionary, IoU filter, generator, classifiers, the experiment."""

from __future__ import annotations

import csv
import json
from collections import defaultdict

import numpy as np
import pandas as pd
import pytest
import torch

from tests.conftest import run_cli
from vida import open_catalog
from vida.jobs.training.classifier import ClassifierSpec, train_classifier
from vida.jobs.training.generated import generate
from vida.jobs.training.generator import GeneratorSpec, train_generator
from vida.store import FeatureStore

QUERY = ("SELECT clip_key, class_name, split FROM clips "
         "WHERE split IS NOT NULL AND status <> 'failed'")


def _open(work):
    catalog = open_catalog(work / "catalog.db", create=True)
    return catalog, FeatureStore(catalog, work / "store")


def test_per_class_mean_iou_on_the_study_data_matches_an_independent_computation(
        shared, tmp_path):
    data = shared / "data"
    for args in (["tag", "--import", str(data / "ast_pred_test.json")],
                 ["dictionary", "import", str(data / "svd.csv")],
                 ["filter", "--dictionary", "svd", "--tags", "ast_pred_test", "--min-iou", "0.2",
                  "--name", "per-clip"],
                 ["filter", "--dictionary", "svd", "--tags", "ast_pred_test", "--mode", "class",
                  "--top-classes", "5", "--name", "study"]):
        result = run_cli(*args, cwd=tmp_path)
        assert result.returncode == 0, result.stderr

    # independent: plain json/csv and sets
    tags = json.loads((data / "ast_pred_test.json").read_text())
    with open(data / "svd.csv", newline="") as fh:
        svd = {r["Video Label"]: {x.strip() for x in r["Audio Labels"].split(";")}
               for r in csv.DictReader(fh)}
    ious = defaultdict(list)
    for key, value in tags.items():
        cls = key.split("|")[0]
        mine, dic = set(value["topk_labels"]), svd[cls]
        ious[cls].append(len(mine & dic) / len(mine | dic))
    expected = {c: sum(v) / len(v) for c, v in ious.items()}

    cat = open_catalog(tmp_path / "catalog.db", create=True)
    got = cat.sql("SELECT split_part(clip_key, '/', 1) AS cls, avg(iou) AS mean_iou, "
                  "count(*) AS n, sum(CASE WHEN keep THEN 1 ELSE 0 END) AS kept "
                  "FROM filter_decisions WHERE filter_name = 'per-clip' GROUP BY 1")
    assert len(got) == 20 and got["n"].sum() == 1967
    for row in got.itertuples(index=False):
        assert row.mean_iou == pytest.approx(expected[row.cls], abs=1e-12)
        assert row.kept == sum(i >= 0.2 for i in ious[row.cls])
    study = cat.sql("SELECT DISTINCT split_part(clip_key, '/', 1) AS cls FROM filter_decisions "
                    "WHERE filter_name = 'study' AND keep ORDER BY 1")["cls"].tolist()
    top5 = sorted(sorted(expected, key=expected.get, reverse=True)[:5])
    assert study == top5
    # the study kept the four singing/speaking classes and applauding
    assert study == ["adult+female+singing", "adult+female+speaking", "adult+male+singing",
                     "adult+male+speaking", "applauding"]


def test_dictionary_built_with_the_bundled_minilm(tmp_path):
    result = run_cli("dictionary", "build", "--class", "drilling", "--class", "applauding",
                     "--class", "bouncing+ball", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    cat = open_catalog(tmp_path / "catalog.db", create=True)
    top = cat.sql("SELECT class_name, audio_label, similarity FROM dictionary_entries "
                  "WHERE rank = 1 ORDER BY class_name")
    assert top["audio_label"].tolist() == ["Clapping", "Bouncing", "Drill"]
    assert (top["similarity"] > 0.6).all()
    assert cat.sql("SELECT count(*) AS n FROM dictionary_entries")["n"][0] == 15


def test_tagging_real_and_generated_audio_with_a_local_ast(synthetic, tiny_ast):
    catalog, store = _open(synthetic)
    run_id = train_generator(catalog, store, QUERY, GeneratorSpec(epochs=1, hidden=32),
                             runs=str(synthetic / "runs"), progress=False)
    generated = generate(catalog, store, run_id)
    catalog.dispose()
    for on in ("audio/ast-fbank", generated):
        result = run_cli("tag", "--model", str(tiny_ast), "--on", on, "--source", on,
                         cwd=synthetic)
        assert result.returncode == 0, result.stderr
        assert "tagged 40 clips" in result.stdout
    cat = open_catalog(synthetic / "catalog.db")
    tags = cat.sql("SELECT source, clip_key, rank, label, score FROM audio_tags "
                   "WHERE source <> 'synth-ref'")
    assert set(tags["source"]) == {"audio/ast-fbank", generated}
    assert len(tags) == 2 * 40 * 5 and set(tags["rank"]) == {1, 2, 3, 4, 5}
    from vida.semantics.audioset import load_labels

    assert set(tags["label"]) <= set(load_labels())
    ordered = tags.sort_values(["source", "clip_key", "rank"])
    for _, group in ordered.groupby(["source", "clip_key"]):
        assert list(group["score"]) == sorted(group["score"], reverse=True)
    cat.dispose()
    # again: nothing left to do; with other settings: refused until --redo
    again = run_cli("tag", "--model", str(tiny_ast), "--source", "audio/ast-fbank",
                    cwd=synthetic)
    assert again.returncode == 0 and "tagged 0 clips" in again.stdout, again.stderr
    other = ["tag", "--model", str(tiny_ast), "--source", "audio/ast-fbank", "--top-k", "3"]
    refused = run_cli(*other, cwd=synthetic)
    assert refused.returncode == 1 and "top_k=5" in refused.stderr and "--redo" in refused.stderr
    redone = run_cli(*other, "--redo", cwd=synthetic)
    assert redone.returncode == 0 and "tagged 40 clips" in redone.stdout, redone.stderr
    cat = open_catalog(synthetic / "catalog.db")
    ranks = cat.sql("SELECT max(rank) AS r, count(*) AS n FROM audio_tags "
                    "WHERE source = 'audio/ast-fbank'")
    assert ranks.to_dict("records") == [{"r": 3, "n": 40 * 3}]  # no rank 4-5 left behind


def test_rendering_features_back_into_an_ast_input(tiny_ast):
    from vida.semantics.tagger import load_tagger

    tagger = load_tagger(str(tiny_ast))
    features = np.random.default_rng(0).standard_normal((2, 18, 128)).astype(np.float32)
    rendered = tagger.render(features, n_samples=48000)
    assert rendered.shape == (2, 128, 128)
    np.testing.assert_array_equal(rendered[:, 0], features[:, 0])  # frame 0 is in segment 0
    np.testing.assert_array_equal(rendered[:, 127], features[:, 7])  # 127*160+200 -> segment 7
    # a longer model input is padded with AST's normalised silence value
    tagger.model.config.max_length = 400
    padded = tagger.render(features, n_samples=48000)
    assert padded.shape == (2, 400, 128)
    np.testing.assert_allclose(padded[:, 298:], tagger.pad_value)
    assert tagger.pad_value == pytest.approx(4.2677393 / (2 * 4.5689974), rel=1e-5)
    tagger.model.config.max_length = 128


def test_generator_is_reproducible_and_recorded(synthetic):
    catalog, store = _open(synthetic)
    spec = GeneratorSpec(epochs=3, hidden=32, seed=5)
    runs = [train_generator(catalog, store, QUERY, spec, runs=str(synthetic / "runs"),
                            progress=False) for _ in range(2)]
    curves = [catalog.sql(f"SELECT epoch, split, value FROM run_metrics WHERE run_id = '{r}' "
                          "AND name = 'loss' ORDER BY split, epoch") for r in runs]
    assert len(curves[0]) == 6 and curves[0].equals(curves[1])
    other = train_generator(catalog, store, QUERY, GeneratorSpec(epochs=3, hidden=32, seed=6),
                            runs=str(synthetic / "runs"), progress=False)
    assert not catalog.sql(f"SELECT value FROM run_metrics WHERE run_id = '{other}' AND "
                           "name = 'loss' ORDER BY split, epoch")["value"].equals(
        curves[0]["value"])
    row = catalog.sql(f"SELECT * FROM runs WHERE run_id = '{runs[0]}'").iloc[0]
    assert row["kind"] == "train-generator" and row["arch"] == "svdmap"
    assert row["status"] == "finished" and row["seed"] == 5 and row["query"] == QUERY
    assert json.loads(row["feature_sets"]) == ["rgb/hog-color", "flow/flow-hist",
                                               "audio/ast-fbank"]
    blob = torch.load(row["checkpoint"], weights_only=True)
    assert "lstm.weight_ih_l0" in blob["state_dict"]

    result = run_cli("generate", "--run", runs[0], cwd=synthetic)
    assert result.returncode == 0, result.stderr
    name = f"generated/{runs[0]}"
    values = FeatureStore(open_catalog(synthetic / "catalog.db"), synthetic / "store").read(
        name, sorted(store.keys("rgb/hog-color")))
    assert values.shape == (40, 18, 128) and np.isfinite(values).all()


def test_classifier_metrics_predictions_and_confusion_png(synthetic):
    catalog, store = _open(synthetic)
    run_id, metrics = train_classifier(
        catalog, store, QUERY, ClassifierSpec(arch="mlp", audio="audio/ast-fbank", epochs=3,
                                              lr=1e-3), runs=str(synthetic / "runs"),
        progress=False)
    n_test = catalog.sql("SELECT count(*) AS n FROM clips WHERE split = 'test'")["n"][0]
    assert metrics["n_test"] == n_test and 0 <= metrics["top1"] <= metrics["top5"] <= 1
    final = catalog.sql(f"SELECT name, value FROM run_metrics WHERE run_id = '{run_id}' AND "
                        "split = 'test'").set_index("name")["value"]
    assert {"top1", "top5", "macro_f1"} <= set(final.index)
    assert sum(n.startswith("acc/") for n in final.index) == 4
    preds = catalog.sql(f"SELECT * FROM predictions WHERE run_id = '{run_id}'")
    assert len(preds) == n_test
    assert (preds["true_class"] == preds["pred_class"]).mean() == pytest.approx(metrics["top1"])
    checkpoint = catalog.sql(f"SELECT checkpoint FROM runs WHERE run_id = '{run_id}'")
    folder = (synthetic / "runs" / run_id)
    assert checkpoint["checkpoint"][0] == str(folder / "model.pt")
    assert (folder / "confusion.png").stat().st_size > 1000


def test_experiment_svdmap_end_to_end(synthetic):
    result = run_cli("experiment", "svdmap", "--tags", "synth-ref", "--dictionary", "svd",
                     cwd=synthetic)
    assert result.returncode == 1 and "no dictionary 'svd'" in result.stderr
    assert run_cli("dictionary", "build", cwd=synthetic).returncode == 0
    result = run_cli("experiment", "svdmap", "--tags", "synth-ref", "--dictionary", "minilm",
                     "--min-iou", "0.1", "--seeds", "2", "--epochs", "2",
                     "--generator-epochs", "1", "--study-class-filter", "--top-classes", "2",
                     cwd=synthetic, timeout=900)
    assert result.returncode == 0, result.stderr
    experiment_id = result.stdout.split("experiment ")[-1].split()[0]
    cat = open_catalog(synthetic / "catalog.db")
    runs = cat.sql(f"SELECT kind, count(*) AS n FROM runs WHERE experiment_id = "
                   f"'{experiment_id}' GROUP BY 1 ORDER BY 1").set_index("kind")["n"]
    # 2 seeds x (2 generators, each with 3 cross-fitting folds, + 4 classifiers + 5 with
    # audio missing at test, 4 of which test the "+ real audio" model and train nothing,
    # + the distilled student + the joint network; TENT does not run on the LSTM)
    # + 2 seeds x (1 generator + 2 classifiers) for the study's
    # variant + 1 experiment; and the 3 generated sets of each seed (all, kept, study)
    assert runs.to_dict() == {"experiment": 1, "generate": 6, "test-classifier": 2 * 4,
                              "train-classifier": 2 * (7 + 2), "train-generator": 18}
    tests = cat.sql(f"SELECT r.params, count(p.clip_key) AS n FROM runs r JOIN predictions p "
                    f"ON p.run_id = r.run_id WHERE r.experiment_id = '{experiment_id}' "
                    "GROUP BY 1")
    main = tests[~tests["params"].str.contains("study")]
    assert set(main["n"]) == {8}  # every main variant is tested on the same 8 test clips
    summary = cat.sql(f"SELECT name FROM run_metrics WHERE run_id = '{experiment_id}'")
    assert "+ filtered generated audio/top1_mean" in set(summary["name"])
    folder = synthetic / "runs" / experiment_id
    assert (folder / "results.png").exists() and (folder / "study_class_level.png").exists()
    # statistics: a 95 % CI per variant and a paired comparison with vision only, in the
    # printed table, the CSV and the catalog, consistent with the stored predictions
    assert "top-1 95% CI" in result.stdout and "vs vision only (95% CI), p" in result.stdout
    table = pd.read_csv(folder / "results.csv").set_index("variant")
    assert {"vision only", "+ real audio", "+ generated audio",
            "+ filtered generated audio"} <= set(table.index[table["seeds"] == 2])
    study = pd.read_csv(folder / "study_class_level.csv")
    assert "study 2 classes: vision" in set(study["variant"])
    assert (table["top1_ci_low"] <= table["top1_mean"]).all()
    assert (table["top1_mean"] <= table["top1_ci_high"]).all()
    assert pd.isna(table.loc["vision only", "p_vs_vision"])
    per_run = cat.sql(
        f"SELECT r.run_id, r.params, avg(CAST(p.pred_class = p.true_class AS DOUBLE)) AS acc "
        f"FROM runs r JOIN predictions p ON p.run_id = r.run_id WHERE r.experiment_id = "
        f"'{experiment_id}' GROUP BY 1, 2")
    def accuracy(variant: str) -> float:
        rows = per_run["params"].str.contains(f'"variant": "{variant}"', regex=False)
        return per_run.loc[rows, "acc"].mean()

    real, vision = accuracy("+ real audio"), accuracy("vision only")
    assert table.loc["+ real audio", "delta_vs_vision"] == pytest.approx(real - vision)
    assert "+ real audio/p_vs_vision" in set(summary["name"])
    # the verdict printed for real audio is the one its adjusted p and sign give
    q, delta = table.loc["+ real audio", ["p_adjusted", "delta_vs_vision"]]
    verdict = ("cannot be told from vision only" if q >= 0.05 else
               "beats vision only" if delta > 0 else "is worse than vision only")
    assert f"+ real audio {verdict}: {delta:+.3f} top-1" in result.stdout
    # how close each generator's audio is to the real audio, its seeds pooled
    quality = pd.read_csv(folder / "generator_quality.csv").set_index("generator")
    assert quality.loc[["all", "kept"], "n_test"].tolist() == [8, 8]
    assert set(quality.index) == {"all", "kept", "study"} and set(quality["seeds"]) == {2}
    for measure in ("r2", "class_mean_r2", "r2_over_class_mean", "median_rank", "recall5"):
        assert (quality[f"{measure}_ci_low"] <= quality[measure]).all()
        assert (quality[measure] <= quality[f"{measure}_ci_high"]).all()
    assert quality.loc["all", "chance_recall5"] == pytest.approx(5 / 8)
    assert {"generator=all/r2", "generator=kept/recall1"} <= set(summary["name"])
    assert "how close generated audio is to the real audio" in result.stdout


def test_a_model_that_cannot_be_loaded_offline_gets_a_one_line_error(synthetic):
    result = run_cli("tag", "--model", "no-such-org/no-such-ast", cwd=synthetic,
                     env={"HF_HUB_OFFLINE": "1"})
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot load AST 'no-such-org/no-such-ast'" in lines[0]
    assert "offline: pass a local directory" in lines[0]
    cat = open_catalog(synthetic / "catalog.db")
    failed = cat.sql("SELECT count(*) AS n FROM runs WHERE kind = 'tag'")["n"][0]
    assert failed == 0  # nothing was started, nothing half-written


def test_results_do_not_depend_on_the_order_the_catalog_returns_rows(synthetic):
    """Parallel ingest commits clips in whatever order workers finish; a training run on
    the same clips must not change with it, or the demo's numbers move between runs."""
    catalog, store = _open(synthetic)
    base = QUERY.rstrip().rstrip(";")
    outcomes = []
    for order in ("ASC", "DESC"):
        query = f"SELECT * FROM ({base}) q ORDER BY clip_key {order}"
        run_id, metrics = train_classifier(
            catalog, store, query, ClassifierSpec(arch="mlp", audio="audio/ast-fbank",
                                                  epochs=3, seed=1),
            runs=str(synthetic / "runs"), progress=False)
        predictions = catalog.sql(f"SELECT clip_key, pred_class, score FROM predictions "
                                  f"WHERE run_id = '{run_id}' ORDER BY clip_key")
        outcomes.append((metrics, predictions))
    assert outcomes[0][0] == outcomes[1][0]
    assert outcomes[0][1].equals(outcomes[1][1])
    gen = [train_generator(catalog, store, f"SELECT * FROM ({base}) q ORDER BY clip_key {o}",
                           GeneratorSpec(epochs=2, hidden=16, seed=2),
                           runs=str(synthetic / "runs"), progress=False) for o in ("ASC", "DESC")]
    losses = [catalog.sql(f"SELECT value FROM run_metrics WHERE run_id = '{r}' AND "
                          "name = 'loss' ORDER BY split, epoch")["value"] for r in gen]
    assert losses[0].equals(losses[1])


def test_cross_fitted_generation_never_shows_a_train_clip_its_own_generator(synthetic):
    from vida.jobs.training.generated import cross_fit_generate

    catalog, store = _open(synthetic)
    runs = str(synthetic / "runs")
    full = train_generator(catalog, store, QUERY, GeneratorSpec(epochs=1, hidden=16, seed=3),
                           runs=runs, progress=False)
    name = cross_fit_generate(catalog, store, full, 3, runs=runs)
    assert name == f"generated/{full}-xf3"
    info = store.info(name)
    assert info.params["cross_fit"] == 3 and len(info.params["fold_runs"]) == 3
    splits = catalog.sql("SELECT clip_key, split FROM clips WHERE split IS NOT NULL")
    train = sorted(splits.loc[splits["split"] == "train", "clip_key"])
    held = sorted(splits.loc[splits["split"] != "train", "clip_key"])
    in_sample = generate(catalog, store, full)
    np.testing.assert_allclose(store.read(name, held), store.read(in_sample, held), atol=1e-6)
    assert not np.allclose(store.read(name, train), store.read(in_sample, train), atol=1e-4)
    excluded = 0
    for fold_run in info.params["fold_runs"]:
        row = catalog.sql(f"SELECT params FROM runs WHERE run_id = '{fold_run}'")["params"][0]
        excluded += json.loads(row)["excluded_clips"]
        fold_set = generate(catalog, store, fold_run)
        own = [k for k in train if np.allclose(store.read(name, [k]), store.read(fold_set, [k]),
                                               atol=1e-6)]
        assert own  # each fold generator wrote the clips it never saw
    assert excluded == len(train)  # the folds partition the train clips
    result = run_cli("generate", "--run", full, "--cross-fit", "1", cwd=synthetic)
    assert result.returncode == 1 and "2 or more folds" in result.stderr
