"""The step vocabulary: every feature sentence has a documented step; `drill steps` prints them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from pytest_bdd.steps import step_function_context_registry

from harness.runner.impact import feature_steps
from harness.steps import plugin  # noqa: F401 - registers every step

ROOT = Path(__file__).resolve().parents[2]


def harness_steps():
    return [c for c in step_function_context_registry.values()
            if c.step_func.__module__.startswith("harness.steps")]


def test_every_feature_sentence_has_a_step():
    steps = harness_steps()
    for feature in sorted((ROOT / "scenarios").rglob("*.feature")):
        for sentence in feature_steps(feature):
            assert any(s.parser.is_matching(sentence) for s in steps), f"{feature.name}: {sentence!r}"


def test_every_step_is_documented():
    undocumented = [s.parser.name for s in harness_steps() if not (s.step_func.__doc__ or "").strip()]
    assert undocumented == []


def test_drill_steps_prints_the_vocabulary():
    out = subprocess.run([sys.executable, "-m", "harness.cli", "steps"], capture_output=True, text=True,
                         cwd=ROOT, timeout=60).stdout
    for step in harness_steps():
        assert step.parser.name in out
