"""The step vocabulary: every feature sentence has a documented, registered step; `drill steps` prints them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from pytest_bdd.steps import step_function_context_registry

from harness.steps import plugin  # noqa: F401 - registers every step
from harness.steps.impact import feature_lines
from harness.steps.registry import STEPS

ROOT = Path(__file__).resolve().parents[2]


def bdd_steps():
    """What pytest-bdd itself holds for harness.steps (what a drill runs)."""
    return [c for c in step_function_context_registry.values() if c.step_func.__module__.startswith("harness.steps")]


def test_every_feature_sentence_has_a_step():
    for feature in sorted((ROOT / "scenarios").rglob("*.feature")):
        for kind, sentence in feature_lines(feature):
            assert any(s.type == kind and s.parser.is_matching(sentence) for s in bdd_steps()), (
                f"{feature.name}: {sentence!r}"
            )


def test_every_step_pytest_bdd_runs_is_declared_once_in_the_registry():
    """A step written with a bare @given/@when/@then (no needs, no touches declared) is caught here."""
    declared = [(s.kind, s.sentence, s.func) for s in STEPS]
    assert len(declared) == len(set(declared))
    bdd = sorted((c.type or "", c.parser.name, c.step_func.__qualname__) for c in bdd_steps())
    assert bdd == sorted((kind, sentence, func.__qualname__) for kind, sentence, func in declared)


def test_every_step_is_documented():
    undocumented = [s.sentence for s in STEPS if not s.doc]
    assert undocumented == []


def test_drill_steps_prints_the_vocabulary():
    out = subprocess.run(
        [sys.executable, "-m", "harness.cli", "steps"], capture_output=True, text=True, cwd=ROOT, timeout=60
    ).stdout
    for step in STEPS:
        assert step.sentence in out
        if step.needs:
            assert f"needs: {', '.join(step.needs)}" in out, step.sentence
        if step.touches:
            assert f"touches: {', '.join(step.touches)}" in out, step.sentence
