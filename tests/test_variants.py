"""The variants' registry: every variant a named object, and no code that reads a
variant's label for its meaning."""

from __future__ import annotations

import ast
from dataclasses import replace
from pathlib import Path

import pytest

import vida
from vida.jobs.experiments.spec import VARIANT_IDS
from vida.jobs.experiments.variants import (
    CHOOSABLE,
    REFERENCES,
    REGISTRY,
    Inputs,
    labelled,
    learns_from_training_audio,
    reads_generated_audio,
    variant,
)
from vida.jobs.training.classifier import ClassifierSpec

ROOT = Path(vida.__file__).parent
INPUTS = Inputs("audio/real", generated="@s0/generate/all", filtered="@s0/generate/kept",
                teacher="s0/classifier/+ real audio")


@pytest.mark.parametrize("entry", REGISTRY, ids=lambda v: v.id)
def test_each_variant_makes_a_classifier_that_can_train(entry):
    spec = replace(ClassifierSpec(arch="mlp"), **entry.fields(INPUTS))
    assert variant(entry.id) is entry and labelled(entry.label) is entry
    reads = {spec.audio, spec.test_audio, spec.audio_dropout} & {INPUTS.generated,
                                                                  INPUTS.filtered}
    assert entry.reads_generated_audio == bool(reads)
    # what a variant learns from: real audio it never hears at test, or nothing
    hears_real_at_test = (spec.audio == INPUTS.audio and spec.test_audio is None
                          and spec.joint_weight is None)  # the joint network reads none
    assert not (entry.learns_from_training_audio and hears_real_at_test)


def test_rows_of_no_registered_variant_are_neither_generated_nor_learning():
    assert not learns_from_training_audio("study 5 classes: filtered gen.")
    assert not reads_generated_audio("study 5 classes: vision")
    assert learns_from_training_audio("distilled from + real audio")


def _string_tests(tree: ast.AST) -> list[int]:
    """Lines that test a string's words: ``"x" in name`` or ``name.startswith("x")``."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and isinstance(node.left, ast.Constant) \
                and isinstance(node.left.value, str) \
                and any(isinstance(op, (ast.In, ast.NotIn)) for op in node.ops) \
                and "variant" in ast.unparse(node.comparators[0]):
            found.append(node.lineno)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr in ("startswith", "endswith") \
                and "variant" in ast.unparse(node.func.value):
            found.append(node.lineno)
    return found


def test_no_code_reads_a_variants_label_for_its_meaning():
    """Labels are for people: no module but the registry names one, and none tests the
    words of a variant's label."""
    labels = {entry.label for entry in REGISTRY}
    wrong = []
    for path in sorted(ROOT.rglob("*.py")):
        if path.name == "variants.py":
            continue
        tree = ast.parse(path.read_text())
        wrong += [f"{path.relative_to(ROOT)}:{node.lineno} names {node.value!r}"
                  for node in ast.walk(tree)
                  if isinstance(node, ast.Constant) and node.value in labels]
        wrong += [f"{path.relative_to(ROOT)}:{line} tests a variant's words"
                  for line in _string_tests(tree)]
    assert not wrong, "\n".join(wrong)


def test_the_cli_offers_every_variant_but_the_references_by_id():
    assert set(VARIANT_IDS) == {v.id for v in CHOOSABLE}
    assert not {v.id for v in REFERENCES} & set(VARIANT_IDS)
