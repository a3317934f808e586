"""tests/integration/scenario_cut.py: a negative's shortened scenario is the shipped one's first
steps, as pytest-bdd reads them, and an ambiguous cut is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.steps.impact import feature_lines
from tests.integration.scenario_cut import scenario_until

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "feature, last_step",
    [
        ("api/stateless_outage.feature", "while one availability zone is lost"),
        ("evidence/object_storage_outage.feature", "an event Impact = publish blocked is recorded"),
        ("database/primary_failover.feature", "the old primary is rebuilt as a replica"),
        ("eventstore/write_blocked.feature", "the old primary is rebuilt as a replica"),
    ],
)
def test_a_cut_scenario_is_the_shipped_scenarios_steps_up_to_the_named_one(tmp_path, feature, last_step):
    shipped = ROOT / "scenarios" / feature
    cut = scenario_until(shipped, last_step, tmp_path)
    steps, whole = feature_lines(cut), feature_lines(shipped)
    assert last_step in steps[-1][1] and 2 < len(steps) < len(whole)
    assert steps == whole[: len(steps)]
    assert cut.read_text().splitlines()[:2] == shipped.read_text().splitlines()[:2]  # its tags and Feature


def test_a_step_said_twice_or_never_is_refused(tmp_path):
    shipped = ROOT / "scenarios" / "evidence" / "object_storage_outage.feature"
    for step in ("publishing a pack without a validated copy is blocked", "no such step"):
        with pytest.raises(AssertionError, match="not one"):
            scenario_until(shipped, step, tmp_path)


def test_a_cut_keeps_the_files_later_scenarios_whole(tmp_path):
    """Intune's first scenario cut at its promotion, its second (the CAB pause) kept as shipped."""
    shipped = ROOT / "scenarios" / "connectors" / "intune_graph_degraded.feature"
    last_step = "promoting one intune intent is refused by the gate PromotionsPaused"
    steps, whole = feature_lines(scenario_until(shipped, last_step, tmp_path)), feature_lines(shipped)
    end = next(i for i, (_, sentence) in enumerate(whole) if last_step in sentence) + 1
    second = next(i for i, (kind, _) in enumerate(whole) if i > end and kind == "given")
    assert 0 < end < second < len(whole) and steps == whole[:end] + whole[second:]
