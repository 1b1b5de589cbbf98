"""The experiment spec: built once, checked in one place, recorded, built again."""

from __future__ import annotations

from dataclasses import fields

import pytest

from tests.conftest import run_cli
from vida.errors import UsageError
from vida.jobs.experiments.spec import CAFMapSpec, ExperimentSpec, SVDMapSpec


@pytest.mark.parametrize("command, spec", [("svdmap", SVDMapSpec), ("cafmap", CAFMapSpec)])
def test_the_cli_defaults_are_the_specs(command, spec):
    """Every option an experiment command takes without a flag is the spec's default:
    the CLI keeps no copy of its own."""
    from vida.cli.experiments import experiment

    required = {"svdmap": ["--tags", "t", "--dictionary", "d"],
                "cafmap": ["--condition", "condition/c"]}[command]
    ctx = experiment.commands[command].make_context(command, list(required))
    names = {f.name for f in fields(spec)}
    given = {k: v for k, v in ctx.params.items() if k in names}
    assert set(given) == names  # the command takes every field of its spec
    assert spec(**given) == spec(**{k: v for k, v in given.items()
                                    if k in ("tags", "dictionary", "condition")})


def test_a_recorded_spec_builds_the_same_spec_and_refuses_what_it_does_not_know():
    spec = SVDMapSpec(tags="t", dictionary="d", seeds=2, labels_per_class="2,all")
    assert SVDMapSpec.from_params(spec.params()) == spec
    assert spec.labels == [2, "all"]
    with pytest.raises(UsageError, match="has colour, which a svdmap experiment"):
        SVDMapSpec.from_params({**spec.params(), "colour": "red"})
    assert CAFMapSpec.default("arch") == "mlp" and SVDMapSpec.default("arch") == "lstm"


@pytest.mark.parametrize("change, message", [
    ({"seeds": 0}, "--seeds 0"), ({"cross_fit": 1}, "--cross-fit 1"),
    ({"min_iou": 1.5}, "--min-iou 1.5"), ({"labels_per_class": "2,x"}, "--labels-per-class"),
    ({"arch": "gru"}, "--arch gru"), ({"distill_temperature": 0.0}, "--distill-temperature"),
    ({"generator_batch_size": 0}, "--generator-batch-size 0")])
def test_a_spec_no_experiment_can_run_is_refused_in_one_line(change, message):
    with pytest.raises(UsageError, match=message):
        SVDMapSpec(**{"tags": "t", "dictionary": "d", **change})


def test_the_cli_refuses_a_bad_spec_before_it_opens_anything(tmp_path):
    result = run_cli("experiment", "svdmap", "--tags", "t", "--dictionary", "d",
                     "--cross-fit", "1", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "Error: --cross-fit 1: give 0 (one generator, in sample) or 2 folds or more"]
    assert not (tmp_path / "catalog.db").exists()


def test_both_specs_share_every_field_but_their_own():
    shared = {f.name for f in fields(ExperimentSpec)}
    assert {f.name for f in fields(SVDMapSpec)} - shared == {
        "tags", "dictionary", "min_iou", "study_variant", "top_classes", "tagger"}
    assert {f.name for f in fields(CAFMapSpec)} - shared == {"condition", "classifier_lr"}
