"""An experiment is a plan of trainings mapped over the executor: the same table from
one process, two local workers and a Dask cluster; a killed driver is resumed by the
same command, which trains only what is missing; a dry run prints the plan."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import run_cli
from vida import open_catalog
from vida.catalog.records.tags import load_tags
from vida.jobs.experiments.variants import labelled
from vida.media.decode import AUDIO_RATE
from vida.media.grid import FrameGrid
from vida.semantics.tagger import load_tagger
from vida.store import FeatureStore

SVDMAP = ["experiment", "svdmap", "--tags", "synth-ref", "--dictionary", "d", "--min-iou",
          "0", "--seeds", "1", "--epochs", "1", "--generator-epochs", "1", "--cross-fit", "2",
          "--no-progress"]
CAFMAP = ["experiment", "cafmap", "--condition", "condition/c", "--seeds", "1", "--epochs",
          "1", "--generator-epochs", "1", "--cross-fit", "2", "--no-progress"]


def prepare(workdir, arch: str, env: dict[str, str] | None = None) -> list[str]:
    steps = ([["dictionary", "build", "--name", "d", "--top-n", "3"]] if arch == "svdmap" else
             [["frames"], ["caption", "--import", str(workdir / "data" / "captions")],
              ["prototypes", "--from-catalog", "--tags", "synth-ref", "--name", "p"],
              ["condition", "--prototypes", "prototype/p", "--name", "c"]])
    for args in steps:
        done = run_cli(*args, cwd=workdir, env=env)
        assert done.returncode == 0, (args, done.stderr)
    return SVDMAP if arch == "svdmap" else CAFMAP


def results_csv(stdout: str, name: str = "results.csv") -> str:
    """The results table an experiment printed the path of (or another CSV of its)."""
    path = Path(stdout.split("\ntable ", 1)[1].split()[0])
    return (path.parent / name).read_text()


@pytest.mark.parametrize("arch", ["svdmap", "cafmap"])
def test_the_same_table_in_one_process_two_workers_and_on_dask(synthetic, arch):
    """... and, with audio missing at training, the same missing-rate grid."""
    grid = ["--train-missing", "0.6"] if arch == "cafmap" else []
    args = [*prepare(synthetic, arch), *grid]
    tables, grids = {}, {}
    for how in (["--workers", "1"], ["--workers", "2"]):
        done = run_cli(*args, *how, cwd=synthetic, timeout=900)
        assert done.returncode == 0, done.stderr
        tables[how[1]] = results_csv(done.stdout)
        grids[how[1]] = grid and results_csv(done.stdout, "missing_grid.csv")
    on_dask = run_cli("--executor", "dask-local:2", *args, cwd=synthetic, timeout=900)
    assert on_dask.returncode == 0, on_dask.stderr
    tables["dask"] = results_csv(on_dask.stdout)
    grids["dask"] = grid and results_csv(on_dask.stdout, "missing_grid.csv")
    assert tables["1"] == tables["2"] == tables["dask"]
    assert grids["1"] == grids["2"] == grids["dask"]
    ran_on = open_catalog(synthetic / "catalog.db").sql(
        "SELECT params FROM runs WHERE kind = 'experiment' ORDER BY started_at DESC LIMIT 3")
    executors = [json.loads(p)["executor"] for p in ran_on["params"]][::-1]
    assert executors == ["this process", "2 local processes", "dask LocalCluster(2)"]
    variants = {line.split(",")[0] for line in tables["1"].splitlines()[1:]}
    assert {"vision only", "+ generated audio"} <= variants


def test_a_dry_run_prints_the_plan_and_trains_nothing(synthetic):
    args = prepare(synthetic, "svdmap")
    planned = run_cli(*args, "--seeds", "2", "--labels-per-class", "2", "--dry-run",
                      cwd=synthetic)
    assert planned.returncode == 0, planned.stderr
    # per seed: 2 generators + 2 x 2 folds; 11 main classifiers, 4 of which only test
    # the "+ real audio" model under other test-time audio; 6 at 2 labels/class (with
    # the PCA control and the distilled student); TENT does not run on the LSTM
    assert "12 generator, 4 generate, 26 classifier, 8 test-only" in planned.stdout
    assert "tent: not run" in planned.stdout
    chosen = run_cli(*args, "--seeds", "2", "--labels-per-class", "2", "--variants",
                     "zeros,mean", "--dry-run", cwd=synthetic)
    assert chosen.returncode == 0, chosen.stderr
    # vision only and + real audio always; zeros and the mean test the real model
    assert "12 generator, 4 generate, 8 classifier, 4 test-only" in chosen.stdout
    wrong = run_cli(*args, "--variants", "zeros,sparkles", "--dry-run", cwd=synthetic)
    assert wrong.returncode != 0 and "no variant 'sparkles'" in wrong.stderr
    runs = open_catalog(synthetic / "catalog.db").sql("SELECT count(*) AS n FROM runs WHERE "
                                                      "kind LIKE 'train-%'")
    assert int(runs["n"][0]) == 0


def test_training_on_cuda_where_there_is_none_says_so(synthetic):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the refusal is for machines without it")
    args = prepare(synthetic, "svdmap")
    refused = run_cli(*args, "--device", "cuda", cwd=synthetic)
    assert refused.returncode == 1
    lines = [line for line in refused.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "--device cuda: no CUDA device here" in lines[0], refused.stderr
    assert "use --device cpu" in lines[0]


def test_testing_a_trained_twin_gives_what_training_again_gives(synthetic):
    """A "real-trained, zeros at test" step tests the "+ real audio" model instead of
    training the same seeded model again: the same test probabilities either way."""
    from dataclasses import replace

    import numpy as np

    from vida.jobs.training.classifier import ClassifierSpec, fit_classifier, plan_classifier
    from vida.store import FeatureStore

    catalog = open_catalog(synthetic / "catalog.db")
    store = FeatureStore(catalog, synthetic / "store")
    query = "SELECT clip_key, class_name, split FROM clips"
    real = ClassifierSpec(audio="audio/ast-fbank", epochs=3, seed=1)
    twin = fit_classifier(plan_classifier(catalog, store, query, real))
    for stand_in in ("zeros", "train-mean"):
        task = plan_classifier(catalog, store, query, replace(real, test_audio=stand_in))
        again = fit_classifier(task)
        tested = fit_classifier(replace(task, trained=(twin.checkpoint,
                                                       int(twin.metrics["best_epoch"]))))
        np.testing.assert_array_equal(tested.probs, again.probs)
        assert tested.metrics == again.metrics and tested.epochs == []
        assert not np.array_equal(tested.probs, twin.probs)  # the stand-in did change them


def test_the_pca_control_classifies_the_frames_at_the_audios_width(synthetic):
    """The control for "generated audio only": the frames, PCA-reduced (fitted on the
    train clips only) to the audio's D, then classified alone."""
    import io

    import torch

    from vida.jobs.training.classifier import ClassifierSpec, fit_classifier, plan_classifier
    from vida.store import FeatureStore

    catalog = open_catalog(synthetic / "catalog.db")
    store = FeatureStore(catalog, synthetic / "store")
    audio_d = store.info("audio/ast-fbank").shape[-1]
    vision_d = store.info("rgb/hog-color").shape[-1] + store.info("flow/flow-hist").shape[-1]
    query = "SELECT clip_key, class_name, split FROM clips"
    task = plan_classifier(catalog, store, query,
                           ClassifierSpec(epochs=1, vision_pca="audio/ast-fbank"))
    assert task.pca_width == audio_d < vision_d
    result = fit_classifier(task)
    saved = torch.load(io.BytesIO(result.checkpoint), weights_only=True)
    assert tuple(saved["input_pca"]["components"].shape) == (audio_d, vision_d)
    assert tuple(saved["input_norm"]["mean"].shape) == (audio_d,)
    with pytest.raises(ValueError, match="PCA of vision is a vision-only classifier"):
        ClassifierSpec(audio="audio/ast-fbank", vision_pca="audio/ast-fbank")


def test_a_distilled_student_learns_from_its_teacher_on_every_pool_clip(synthetic):
    """With 1 labelled clip per class, the student distils on every train clip of the
    pool, whose real audio the teacher hears; it is tested on vision alone."""
    from dataclasses import replace

    import torch

    from vida.jobs.training.classifier import ClassifierSpec, fit_classifier, plan_classifier
    from vida.jobs.training.distill import UNLABELLED, DistillLoss
    from vida.jobs.training.plan_reads import PlanReads
    from vida.store import FeatureStore

    catalog = open_catalog(synthetic / "catalog.db")
    store = FeatureStore(catalog, synthetic / "store")
    pool = "SELECT clip_key, class_name, split FROM clips"
    teacher_spec = ClassifierSpec(audio="audio/ast-fbank", epochs=3)
    teacher = fit_classifier(plan_classifier(catalog, store, pool, teacher_spec))
    one_each = ("SELECT clip_key, class_name, split FROM clips WHERE split <> 'train' OR "
                "clip_key IN (SELECT min(clip_key) FROM clips WHERE split = 'train' "
                "GROUP BY class_name)")
    student = ClassifierSpec(epochs=3, distill_from="t", distill_pool=pool)
    reads = PlanReads(catalog, store)
    task = plan_classifier(catalog, store, one_each, student, reads=reads)
    from vida.jobs.training.classifier import plan_teacher

    task = replace(task, teacher=plan_teacher(reads, one_each, student, teacher_spec,
                                              teacher.checkpoint))
    assert len(task.keys["train"]) == 4 < len(task.teacher.keys)
    assert set(task.keys["train"]) <= set(task.teacher.keys)
    result = fit_classifier(task)
    assert result.probs.shape == (len(task.keys["test"]), 4)
    assert task.spec.input_sets == ["rgb/hog-color", "flow/flow-hist"]  # vision at test

    # the loss: cross-entropy where a clip has a label, T^2 x KL to the soft outputs
    logits, soft = torch.randn(4, 3), torch.softmax(torch.randn(4, 3), -1)
    hard = torch.tensor([0.0, 2.0, UNLABELLED, UNLABELLED])
    target = torch.cat([hard[:, None], soft], 1)
    ce = torch.nn.functional.cross_entropy(logits[:2], hard[:2].long())
    assert torch.isclose(DistillLoss(2.0, weight=0.0)(logits, target), ce)
    kl = torch.nn.functional.kl_div(torch.log_softmax(logits / 2, -1), soft,
                                    reduction="batchmean") * 4
    assert torch.isclose(DistillLoss(2.0, weight=1.0)(logits, target), kl)
    outside = replace(task, teacher=replace(task.teacher, keys=task.teacher.keys[:2]))
    with pytest.raises(ValueError, match="labelled clips are not in the distillation pool"):
        fit_classifier(outside)


def test_audio_missing_at_training_and_test_through_the_cli_from_another_folder(
        synthetic, tmp_path):
    """--train-missing with --test-missing: the masks are recorded before training,
    stratified and nested; every variant trains once per rate at training and is
    tested at every rate at test; a clip whose audio is present gets the same model's
    prediction as with no audio missing; the grid's ends are the main table's runs; a
    rerun draws the same masks and gives the same grid."""
    args = prepare(synthetic, "cafmap")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = ["--catalog", str(synthetic / "catalog.db"), "--store", str(synthetic / "store")]
    done = run_cli(*where, *args, "--train-missing", "0.6", "--test-missing", "0.5",
                   "--runs", str(synthetic / "runs"), cwd=elsewhere, timeout=900)
    assert done.returncode == 0, done.stderr
    assert "audio missing" in done.stdout and " the best stand-in (" in done.stdout
    cat = open_catalog(synthetic / "catalog.db")
    run_id = cat.sql("SELECT run_id FROM runs WHERE kind = 'experiment'")["run_id"][0]
    masks = cat.sql(f"SELECT m.split, m.rate, m.clip_key, c.class_name FROM missing_audio m "
                    f"JOIN clips c USING (clip_key) WHERE m.experiment_id = '{run_id}'")
    clips = cat.sql("SELECT clip_key, class_name, split FROM clips")
    for split, rate in (("test", 0.5), ("train", 0.6)):
        drawn = masks[(masks["split"] == split) & (masks["rate"] == rate)]
        sizes = clips[clips["split"] == split].groupby("class_name").size()
        assert drawn.groupby("class_name").size().to_dict() == {
            c: int(n * rate + 0.5) for c, n in sizes.items()}  # stratified
    test_masks = masks[masks["split"] == "test"]
    half = set(test_masks.loc[test_masks["rate"] == 0.5, "clip_key"])
    assert half < set(test_masks.loc[test_masks["rate"] == 1.0, "clip_key"])  # nested
    kinds = cat.sql(f"SELECT kind, count(*) AS n FROM runs WHERE experiment_id = '{run_id}' "
                    "GROUP BY 1").set_index("kind")["n"].to_dict()
    # main: 6 trainings (vision, real, generated, dropout, distilled, joint) and 5
    # test-only (the real model with generated audio, zeros, the mean, the MLP's audio,
    # zeros and TENT); missing at training 0: TENT at test rate 0 and the 6 at 0.5;
    # at 0.6: 6 variants and the joint network train once, TENT tests the zeros model
    # at rate 0, and all 7 are tested again at 0.5 and 1
    assert kinds["train-classifier"] == 6 + 6 + 1
    assert kinds["test-classifier"] == 5 + 1 + 6 + 1 + 7 * 2
    predictions = cat.sql(
        "SELECT json_extract_string(r.params, '$.variant') AS variant, p.clip_key, "
        f"p.pred_class FROM runs r JOIN predictions p USING (run_id) WHERE r.experiment_id "
        f"= '{run_id}'")

    def predicted(variant: str) -> pd.Series:
        rows = predictions[predictions["variant"] == variant]
        return rows.set_index("clip_key")["pred_class"]

    token = "learned token for missing audio @ 0.6 missing at training, {} at test"
    present = [k for k in predicted(token.format(0)).index if k not in half]
    assert (predicted(token.format(0.5))[present] == predicted(token.format(0))[present]).all()
    folder = synthetic / "runs" / run_id
    grid = pd.read_csv(folder / "missing_grid.csv")
    assert set(zip(grid["train_missing"], grid["test_missing"], strict=True)) == {
        (a, b) for a in (0.0, 0.6) for b in (0.0, 0.5, 1.0)}
    main = pd.read_csv(folder / "results.csv").set_index("variant")
    ends = grid[(grid["train_missing"] == 0) & (grid["test_missing"] == 1)]
    for row in ends.itertuples():
        assert row.top1_mean == main.loc[row.variant, "top1_mean"]
    assert (grid.loc[grid["test_missing"] == 0, "robustness"] == 1).all()
    joint = grid[grid["id"] == "joint"]  # it reads no audio at test: one row at every rate
    assert len(joint) == 6 and joint.groupby("train_missing")["top1_mean"].nunique().eq(1).all()
    assert "joint" in {labelled(v).id for v in main.index if labelled(v)}
    cell = grid[(grid["train_missing"] == 0.6) & (grid["test_missing"] == 1)]
    best = cell["best_stand_in"].iloc[0]
    assert best in set(cell["variant"]) and cell.loc[cell["variant"] == best,
                                                    "top1_mean"].max() == \
        cell.loc[cell["id"].isin(["zeros", "mean", "token", "dropout"]), "top1_mean"].max()
    assert cell["p_best_adjusted"].notna().sum() == len(cell) - 1
    assert (folder / "missing_grid.png").exists() and (folder / "missing_heatmap.png").exists()
    # how close generated audio is, again on the test clips each test rate removes
    quality = pd.read_csv(folder / "generator_quality.csv").set_index("generator")
    for name in ("all", "train_missing=0.6"):
        at_half = quality.loc[f"{name} @ 0.5 missing at test"]
        assert at_half["n_test"] == len(half) and at_half["seeds"] == 1
        assert at_half["chance_recall1"] == quality.loc[name, "chance_recall1"]
        assert at_half["r2_ci_low"] <= at_half["r2"] <= at_half["r2_ci_high"]
    again = run_cli(*where, "experiment", "rerun", run_id, "--runs", str(synthetic / "runs"),
                    cwd=elsewhere, timeout=900)
    assert again.returncode == 0, again.stderr
    rerun_id = again.stdout.split("\nexperiment ")[-1].split()[0]
    pairs = cat.sql(f"SELECT a.seed, a.split, a.rate, a.clip_key FROM missing_audio a WHERE "
                    f"a.experiment_id = '{run_id}' EXCEPT SELECT b.seed, b.split, b.rate, "
                    f"b.clip_key FROM missing_audio b WHERE b.experiment_id = '{rerun_id}'")
    assert rerun_id != run_id and pairs.empty
    assert pd.read_csv(synthetic / "runs" / rerun_id / "missing_grid.csv").equals(grid)
    # the report reads the grid back from the catalog: its table, panels and heatmap
    page = tmp_path / "report.html"
    reported = run_cli(*where, "report", run_id, "--output", str(page), cwd=elsewhere)
    assert reported.returncode == 0, reported.stderr
    html = page.read_text()
    assert "Audio missing: each model trained with that share" in html
    assert 'alt="audio missing at training and at test"' in html
    assert 'alt="generated audio minus the best stand-in"' in html
    assert "learned token for missing audio @ 0.6 missing at training, 1 at test" in html


def _generated_by(cat, store, experiment_id: str, plan_key: str) -> np.ndarray:
    """Every clip's row of the set that the experiment's generator ``plan_key`` wrote."""
    found = cat.sql(
        "SELECT json_extract_string(g.params, '$.set') AS name FROM runs g JOIN runs t ON "
        "json_extract_string(g.params, '$.generator_run') = t.run_id WHERE g.kind = "
        f"'generate' AND t.experiment_id = '{experiment_id}' AND "
        f"json_extract_string(t.params, '$.plan_key') = '{plan_key}'")
    keys = sorted(cat.sql("SELECT clip_key FROM clips")["clip_key"])
    return store.read(found["name"][0], keys)


def test_a_generator_at_a_missing_rate_never_reads_a_missing_clips_audio(synthetic):
    """Read through the store: with every missing train clip's audio replaced by
    nonsense, the generator that learns at that missing rate writes the very same
    audio (the one that learns from every clip does not)."""
    args = [*prepare(synthetic, "cafmap"), "--train-missing", "0.6", "--variants",
            "generated-fill"]
    first = run_cli(*args, cwd=synthetic, timeout=900)
    assert first.returncode == 0, first.stderr
    cat = open_catalog(synthetic / "catalog.db")
    store = FeatureStore(cat, synthetic / "store")
    real_id = cat.sql("SELECT run_id FROM runs WHERE kind = 'experiment'")["run_id"][0]
    missing = set(cat.sql(f"SELECT clip_key FROM missing_audio WHERE experiment_id = "
                          f"'{real_id}' AND split = 'train' AND rate = 0.6")["clip_key"])
    info = store.info("audio/ast-fbank")
    store.register("audio/poisoned", modality="audio", encoder="poison", shape=info.shape,
                   dtype=info.dtype, params=info.params)
    keys = sorted(cat.sql("SELECT clip_key FROM clips")["clip_key"])
    with store.writer("audio/poisoned") as writer:
        for key, row in zip(keys, store.read("audio/ast-fbank", keys), strict=True):
            writer.add(key, np.full_like(row, 1e4) if key in missing else row)
    second = run_cli(*args, "--audio", "audio/poisoned", cwd=synthetic, timeout=900)
    assert second.returncode == 0, second.stderr
    poisoned_id = cat.sql("SELECT run_id FROM runs WHERE kind = 'experiment' AND run_id <> "
                          f"'{real_id}'")["run_id"][0]
    at_rate = "s0/generator/train_missing=0.6"
    np.testing.assert_array_equal(_generated_by(cat, store, real_id, at_rate),
                                  _generated_by(cat, store, poisoned_id, at_rate))
    assert not np.array_equal(_generated_by(cat, store, real_id, "s0/generator/all"),
                              _generated_by(cat, store, poisoned_id, "s0/generator/all"))


def test_svdmap_measures_the_ast_label_iou_of_generated_against_real_audio(synthetic,
                                                                          tiny_ast):
    """--tagger: the IoU of AST's top-5 labels on each test clip's generated and real
    audio is what tagging both sets with `vida-batch tag` gives."""
    args = [*prepare(synthetic, "svdmap"), "--tagger", str(tiny_ast), "--variants", ""]
    done = run_cli(*args, cwd=synthetic, timeout=900)
    assert done.returncode == 0, done.stderr
    assert "AST top-5 IoU" in done.stdout
    cat = open_catalog(synthetic / "catalog.db")
    run_id = cat.sql("SELECT run_id FROM runs WHERE kind = 'experiment'")["run_id"][0]
    quality = pd.read_csv(io.StringIO(results_csv(done.stdout, "generator_quality.csv")))
    found = cat.sql(
        "SELECT json_extract_string(g.params, '$.set') AS name FROM runs g JOIN runs t ON "
        "json_extract_string(g.params, '$.generator_run') = t.run_id WHERE g.kind = "
        f"'generate' AND t.experiment_id = '{run_id}' AND "
        "json_extract_string(t.params, '$.plan_key') = 's0/generator/all'")["name"][0]
    tagged = run_cli("tag", "--model", str(tiny_ast), "--on", found, "--source", found,
                     cwd=synthetic)
    assert tagged.returncode == 0, tagged.stderr
    made = load_tags(cat, found)
    # the real audio's features rendered for AST as the generated ones are (tagging the
    # real audio decodes its waveform instead: another input than the generator's)
    test = sorted(cat.sql("SELECT clip_key FROM clips WHERE split = 'test'")["clip_key"])
    store = FeatureStore(cat, synthetic / "store")
    info = store.info("audio/ast-fbank")
    seconds = FrameGrid.of(info.params, steps=info.shape[0]).seconds
    real = load_tagger(str(tiny_ast)).tag_features(store.read("audio/ast-fbank", test),
                                                   round(seconds * AUDIO_RATE), 5)
    ious = [len({t for t, _ in r} & made[k]) / len({t for t, _ in r} | made[k])
            for k, r in zip(test, real, strict=True)]
    row = quality.set_index("generator").loc["all"]
    assert row["tag_iou"] == pytest.approx(np.mean(ious))
    assert row["tag_iou_ci_low"] <= row["tag_iou"] <= row["tag_iou_ci_high"]
    assert 0 <= row["train_mean_tag_iou"] <= 1
