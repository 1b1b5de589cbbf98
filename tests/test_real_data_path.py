"""The path a researcher with real data takes, driven through the CLI as they would:
MiT's layout and CSVs as shipped, tiny pretrained ViT, AST and BLIP saved to folders,
ingest in one folder, every later command from another."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import run_cli
from tests.helpers.cli_path import ok, sql
from tests.helpers.mit_tree import mit_tree

pytestmark = pytest.mark.slow  # a whole pipeline through the CLI


@pytest.fixture(scope="module")
def mit(tmp_path_factory) -> Path:
    from vida.synth import synthesize

    root = tmp_path_factory.mktemp("mit")
    synthesize(root / "synth", n_classes=3, clips_per_class=8, seed=5)
    return mit_tree(root / "synth", root / "MiT", val_per_class=2)


def test_mit_with_pretrained_models_from_another_folder(mit, tmp_path, tiny_vit, tiny_ast,
                                                        tiny_blip):
    data = tmp_path / "MiT"
    shutil.copytree(mit, data)
    lab = tmp_path / "lab"
    lab.mkdir()
    # 1. ingest MiT's own CSVs, with paths relative to the folder ingest runs in
    for name in ("trainingSet.csv", "validationSet.csv"):
        ok(run_cli("ingest", f"../MiT/{name}", "--workers", "1", "--no-progress", cwd=lab))
    ok(run_cli("split", "--mit", "--val-fraction", "0.34", "--seed", "1", cwd=lab))

    def cli(*args: str):  # every later step from the parent folder
        return run_cli("--catalog", "lab/catalog.db", "--store", "lab/store", *args,
                       cwd=tmp_path, timeout=600)

    db = lab / "catalog.db"
    clips = sql(db, "SELECT source_split, split, source_uri, status FROM clips")
    assert len(clips) == 24 and set(clips["status"]) == {"ok"}
    assert clips["source_split"].value_counts().to_dict() == {"training": 18, "validation": 6}
    # MiT's protocol: its validation set is the test set, val comes out of training
    assert clips.groupby(["source_split", "split"]).size().to_dict() == {
        ("training", "train"): 12, ("training", "val"): 6, ("validation", "test"): 6}
    assert not any(uri.startswith("/") or ".." in uri for uri in clips["source_uri"])

    # 2. pretrained encoders, from another working directory
    ok(cli("encode", "--encoder", f"rgb=hf-image:{tiny_vit}",
           "--encoder", f"flow=hf-flow:{tiny_vit}", "--encoder", f"audio=ast:{tiny_ast}",
           "--no-progress"))
    sets = sql(db, "SELECT name, modality, shape FROM feature_sets "
                    "WHERE encoder NOT IN ('hog-color', 'flow-hist', 'ast-fbank')")
    named = dict(zip(sets["modality"], sets["name"], strict=True))
    assert named["audio"].endswith("-pooled")  # AST's pooled output: its head can tag it
    audio_dim = json.loads(sets.set_index("name")["shape"][named["audio"]])[-1]
    assert named["rgb"].startswith("rgb/") and named["flow"].startswith("flow/")
    pretrained = ["--rgb", named["rgb"], "--flow", named["flow"], "--audio", named["audio"]]
    tiny = ["--seeds", "1", "--epochs", "1", "--generator-epochs", "1", "--cross-fit", "2",
            "--runs", "lab/runs"]

    # 3. SVDMap on the pretrained sets
    ok(cli("tag", "--model", str(tiny_ast), "--on", named["audio"], "--source", "real"))
    ok(cli("dictionary", "build"))
    ok(cli("filter", "--dictionary", "minilm", "--tags", "real", "--min-iou", "0"))
    (lab / "svdmap.toml").write_text(  # an experiment as a file; flags override it
        f'rgb = "{named["rgb"]}"\nflow = "{named["flow"]}"\naudio = "{named["audio"]}"\n'
        'tags = "real"\ndictionary = "minilm"\nmin-iou = 0.0\nseeds = 1\nepochs = 3\n'
        'generator_epochs = 1\ncross-fit = 2\n')
    first = ok(cli("experiment", "svdmap", "--config", "lab/svdmap.toml", "--epochs", "1",
                   "--runs", "lab/runs"))

    spec = sql(db, "SELECT run_id, params FROM runs WHERE kind = 'experiment'")
    run_id, params = spec["run_id"][0], json.loads(spec["params"][0])["spec"]
    assert params["epochs"] == 1 and params["seeds"] == 1 and params["audio"] == named["audio"]
    second = ok(cli("experiment", "rerun", run_id, "--runs", "lab/runs"))
    tables = [pd.read_csv(next(line.split()[-1] for line in done.stdout.splitlines()
                               if line.startswith("table")))
              for done in (first, second)]
    assert len(tables[0]) >= 4  # the same numbers, run again from the recorded spec
    pd.testing.assert_frame_equal(tables[0], tables[1])

    # 4. CAFMap on the pretrained sets
    ok(cli("frames", "--rgb", named["rgb"]))
    ok(cli("caption", "--model", str(tiny_blip[0]), "--rgb", named["rgb"]))
    ok(cli("prototypes", "--audio", named["audio"], "--tags", "real", "--name", "real"))
    ok(cli("condition", "--prototypes", "prototype/real", "--name", "real"))
    ok(cli("experiment", "cafmap", "--condition", "condition/real", *pretrained, *tiny))

    # the classifiers read the pretrained sets; the generated audio is in the AST space
    runs = sql(db, "SELECT r.feature_sets, e.arch FROM runs r JOIN runs e "
                    "ON e.run_id = r.experiment_id WHERE r.kind = 'train-classifier'")
    assert set(runs["arch"]) == {"svdmap", "cafmap"}
    for used in map(json.loads, runs["feature_sets"]):
        assert named["rgb"] in used and named["flow"] in used
        assert "rgb/hog-color" not in used and "audio/ast-fbank" not in used
    generated = sql(db, "SELECT name, encoder, shape FROM feature_sets "
                         "WHERE modality = 'generated'")
    assert {json.loads(s)[-1] for s in generated["shape"]} == {audio_dim}

    # 5. the generated audio is tagged by AST's own head
    cafmap_set = generated[generated["encoder"] == "cafmap-generator"]["name"].iloc[0]
    ok(cli("tag", "--on", cafmap_set))
    tags = sql(db, "SELECT count(DISTINCT clip_key) AS n FROM audio_tags "
                    f"WHERE source LIKE '%{cafmap_set}'")
    assert tags["n"][0] == 24
    params = sql(db, "SELECT params FROM runs WHERE kind = 'tag' ORDER BY started_at DESC")
    assert json.loads(params["params"][0])["model"] == str(tiny_ast)

    # 6. media moved away: a job that decodes again refuses, non-zero, in one line,
    # before trying any clip (its media root is gone)
    data.rename(tmp_path / "MiT-moved")
    gone = cli("encode", "--encoder", f"rgb=hf-image:{tiny_vit}?pooling=mean", "--no-progress")
    assert gone.returncode != 0
    assert f"media root {data} does not exist" in gone.stderr and "relocate" in gone.stderr
    assert "24 clips' media are under it" in gone.stderr
    # ... until the catalog is told where the media went, without ingesting again
    ok(cli("catalog", "relocate", str(data), str(tmp_path / "MiT-moved")))
    again = ok(cli("encode", "--encoder", f"rgb=hf-image:{tiny_vit}?pooling=mean",
                   "--no-progress", "--retry-failed"))
    assert "24 clips encoded, 0 failed" in again.stdout


def test_an_experiment_refuses_bad_feature_sets_and_config_keys_before_training(synthetic):
    from vida import open_catalog
    from vida.store import FeatureStore

    catalog = open_catalog(synthetic / "catalog.db")
    FeatureStore(catalog, synthetic / "store").register(
        "audio/other-grid", modality="audio", encoder="x", shape=(9, 128))
    catalog.dispose()
    common = ["experiment", "svdmap", "--tags", "synth-ref", "--dictionary", "d"]
    missing = run_cli(*common, "--audio", "audio/nope", cwd=synthetic)
    assert missing.returncode == 1 and "--audio audio/nope: no such feature set" in \
        missing.stderr
    other_t = run_cli(*common, "--audio", "audio/other-grid", cwd=synthetic)
    assert other_t.returncode == 1 and "different time grids" in other_t.stderr
    assert "--audio audio/other-grid has T=9" in other_t.stderr
    (synthetic / "typo.toml").write_text('seedz = 3\n')
    typo = run_cli(*common, "--config", "typo.toml", cwd=synthetic)
    assert typo.returncode == 2 and "'seedz' is no option" in typo.stderr
    runs = open_catalog(synthetic / "catalog.db").sql(
        "SELECT count(*) AS n FROM runs WHERE kind IN ('experiment', 'train-classifier')")
    assert runs["n"][0] == 0  # nothing was trained
