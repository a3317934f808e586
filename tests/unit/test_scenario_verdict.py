"""A scenario's verdict: its worst gate, and never pass when it did not run every step."""

from harness.model import GateResult, Verdict
from harness.runner.context import ScenarioRun


def run_with(*verdicts: Verdict, steps=(3, 3), error=None) -> ScenarioRun:
    run = ScenarioRun(name="s", feature="f", tags=[], correlation_id="c")
    run.steps_total, run.steps_done = steps
    run.error = error
    for i, v in enumerate(verdicts):
        run.gate(GateResult(f"g{i}", "", None, None, v))
    return run


def test_every_gate_passing_and_every_step_run_passes():
    assert run_with(Verdict.PASS, Verdict.PASS).verdict is Verdict.PASS


def test_the_worst_gate_wins():
    assert run_with(Verdict.PASS, Verdict.UNKNOWN).verdict is Verdict.UNKNOWN
    assert run_with(Verdict.UNKNOWN, Verdict.FAIL).verdict is Verdict.FAIL


def test_a_scenario_that_stopped_early_cannot_pass():
    assert run_with(Verdict.PASS, steps=(9, 2)).verdict is Verdict.UNKNOWN
    assert run_with(Verdict.PASS, error="step failed").verdict is Verdict.UNKNOWN


def test_a_scenario_that_stopped_early_still_fails_on_a_failed_gate():
    assert run_with(Verdict.FAIL, steps=(9, 2)).verdict is Verdict.FAIL


def test_no_gate_at_all_is_unknown():
    assert run_with().verdict is Verdict.UNKNOWN
