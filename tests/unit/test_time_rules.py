"""Time-based rules without clock control (issue 24): the 15-minute CAB pause and the 24-hour
manual import. A target that grants no `clock` runs "N minutes pass" without refusing the scenario:
it holds the faults in real time when the plan says `hold_real_time: true`, else it records that the
time did not pass (the gates then answer unknown: tests/unit/gates/cases/)."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.errors import PlanError
from harness.plan import load_plan
from harness.runner.platforms import pass_time
from harness.steps.needs import step_needs
from harness.workload.recorder import Recorder

ROOT = Path(__file__).resolve().parents[2]
PLAN = """\
drill: quarterly-connectors
title: Connectors drill
ha_domain: connectors
lab: embedded
scenarios: [scenarios/connectors/intune_graph_degraded.feature]
"""


def test_hold_real_time_is_a_plan_key_true_or_false(tmp_path):
    path = tmp_path / "plan.yaml"
    path.write_text(PLAN)
    assert load_plan(path, ROOT).hold_real_time is False
    path.write_text(PLAN + "hold_real_time: true\n")
    assert load_plan(path, ROOT).hold_real_time is True
    path.write_text(PLAN + "hold_real_time: yes please\n")
    with pytest.raises(PlanError, match="key 'hold_real_time': must be true or false"):
        load_plan(path, ROOT)


def test_time_passing_needs_no_clock_capability_up_front():
    """A target without lab.clock is not refused for "16 minutes pass": the step holds or says why not."""
    assert step_needs("16 minutes pass") == ()
    assert step_needs("25 hours pass") == ()


class Scn(SimpleNamespace):
    def observe(self, text: str) -> None:
        self.observations.append(text)


def scenario(capabilities: set[str], hold: bool) -> Scn:
    return Scn(
        lab=SimpleNamespace(capabilities=lambda: frozenset(capabilities)),
        drill=SimpleNamespace(hold_real_time=hold),
        recorder=Recorder(),
        correlation_id="cid",
        observations=[],
    )


def test_without_clock_control_the_time_is_recorded_as_not_passed():
    scn = scenario(set(), hold=False)
    started = time.monotonic()
    pass_time(scn, 900)
    assert time.monotonic() - started < 5
    kinds = [e.kind for e in scn.recorder.history().events]
    assert kinds == ["clock_missing"]
    assert "hold_real_time" in scn.observations[0] and "not judged" in scn.observations[0]


def test_without_clock_control_hold_real_time_holds_the_faults_that_long():
    scn = scenario(set(), hold=True)
    started = time.monotonic()
    pass_time(scn, 1.5)
    assert time.monotonic() - started >= 1.5
    assert [e.kind for e in scn.recorder.history().events] == ["time_held"]
    assert not any(e.kind == "clock" for e in scn.recorder.history().events)
