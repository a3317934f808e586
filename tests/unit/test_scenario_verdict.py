"""A scenario's verdict: its worst gate, and never pass when it did not run every step."""

from harness.model import GateResult, Verdict
from harness.runner.scenario import DrillRun


def run_with(*verdicts: Verdict, steps=(3, 3), error=None):
    scenario = DrillRun(drill="d", lab=None, targets={}).begin("s", "f", [])
    scenario.steps_total, scenario.steps_done = steps
    scenario.error = error
    scenario.gates = [GateResult(f"g{i}", "", None, None, v) for i, v in enumerate(verdicts)]
    return scenario


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


def test_scenarios_of_a_run_get_their_own_correlation_ids_under_the_drills():
    run = DrillRun(drill="d", lab=None, targets={})
    first, second = run.begin("a", "f", []), run.begin("b", "f", [])
    assert first.correlation_id == f"{run.correlation_id}/1" and second.correlation_id == f"{run.correlation_id}/2"
    assert run.current is second


class UnreadableLab:
    """A lab whose parts' logs cannot be read (a runbook read hook refused), or are not there."""

    def part(self, proto):
        return self  # its one part: the stand-ins, the workers and the gateway

    def platform_requests(self, platform):
        raise RuntimeError("hook platform_requests: 401")

    def connector_replacements(self):
        raise NotImplementedError

    def gateway_requests(self, name):
        raise ConnectionError("gateway down")


def test_a_lab_log_that_cannot_be_read_is_observed_not_a_crash():
    from harness.runner.common import harvest

    scenario = DrillRun(drill="d", lab=UnreadableLab(), targets={}).begin("s", "f", [])
    harvest(scenario)
    said = " ".join(scenario.observations)
    assert "request log could not be read: RuntimeError: hook platform_requests: 401" in said
    assert "S3 gateway's request log could not be read: ConnectionError" in said
    assert "auto-scaling" not in said  # not there on this provider: nothing to say
    assert not scenario.recorder.history().events_of("platform_request")
