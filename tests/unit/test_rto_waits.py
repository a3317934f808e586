"""A scenario whose RTO is measured on the workload's publishes waits, once the fault is healed,
until one of them went through: the RTO gate counts only a workload publish invoked after the fault
and read back Published, and a scenario that ends (stopping the workload) right after the heal can
have none on a loaded machine, reading "never recovered" for a store that recovered."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.steps.impact import feature_steps

ROOT = Path(__file__).resolve().parents[2]
FEATURES = sorted((ROOT / "scenarios").rglob("*.feature"))

# a fault step whose runner measures RTO on the workload's publishes (scn.recover_on(..., "publish")),
# the step that heals it, and the step that waits for a workload publish after the heal
PUBLISH_RTO = [
    (
        "the evidence store becomes unreachable",
        "the evidence store recovers",
        "the workload's publishes go through again",
    )
]


def test_the_fault_steps_listed_here_are_the_ones_measured_on_publishes():
    measured = sorted(
        p.name
        for p in (ROOT / "harness" / "runner").glob("*.py")
        if re.search(r'recover_on\([^)]*"publish"\)', p.read_text())
    )
    assert measured == ["evidence.py"], f"publish-measured faults in {measured}: list each in PUBLISH_RTO"


@pytest.mark.parametrize("feature", FEATURES, ids=lambda p: str(p.relative_to(ROOT / "scenarios")))
def test_a_publish_measured_fault_is_followed_by_a_wait_for_the_workloads_publishes(feature):
    steps = feature_steps(feature)
    for fault, heal, wait in PUBLISH_RTO:
        if fault not in steps:
            continue
        assert heal in steps, f"{feature.name}: {fault!r} is never healed by {heal!r}"
        last_heal = len(steps) - 1 - steps[::-1].index(heal)
        assert wait in steps[last_heal:], (
            f"{feature.name}: after {heal!r} the scenario must wait until {wait!r}, what its RTO is measured on"
        )
