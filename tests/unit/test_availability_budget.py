"""Availability as an error budget (issue 24, section 2): what counts as served, the clock-aligned
5-minute windows, the plan's `availability:` section, and the gate every scenario of every shipped
plan is held to (the runner's own assembly of a scenario's rules)."""

from __future__ import annotations

import types
from pathlib import Path

import pytest

from harness.chaos.plan import load_chaos_plan
from harness.chaos.runner import as_plan
from harness.errors import PlanError
from harness.gates import evaluate_gate
from harness.gates.availability import AvailabilityBudget
from harness.measure.probes import error_budget, request_windows, served
from harness.model import History, Op, Outcome, Verdict
from harness.plan import AvailabilityPolicy, load_plan
from harness.runner import _drill_run
from harness.runner.api import available_while_az_lost
from harness.runner.common import standard_rules
from harness.tags import matches
from harness.workload import ApiClient, Prober, Recorder
from tests.support import JsonHandler, http_server
from tests.unit.test_plan import GOOD, write

ROOT = Path(__file__).resolve().parents[2]
EPOCH = 1_767_607_200.0  # 2026-01-05 10:00:00 UTC: a 5-minute boundary


def op(kind: str, t: float, outcome: Outcome = Outcome.OK, status: int | None = 200, **detail) -> Op:
    return Op(
        id=0,
        kind=kind,
        t_invoke=t,
        t_complete=t + 0.05,
        outcome=outcome,
        wall_invoke=EPOCH + t,
        status=status,
        detail=detail,
    )


# ---- served: the request, never the health body ------------------------------------------------


def test_a_health_answer_counts_by_the_request_never_by_what_its_body_says():
    # 503 whose body says Healthy: the request failed, not served
    assert not served(op("probe", 1, Outcome.FAIL, 503, ServiceHealth="Healthy"))
    # 200 whose body says Unhealthy (the prober records it as a failed probe): served
    assert served(op("probe", 1, Outcome.FAIL, 200, ServiceHealth="Unhealthy"))
    assert served(op("health", 1, Outcome.OK, 200, ServiceHealth="Healthy"))
    # a 2xx that is no health report (a proxy's page), or no answer at all: not served
    assert not served(op("probe", 1, Outcome.OK, 200))
    assert not served(op("probe", 1, Outcome.INFO, None))


def test_a_request_is_served_when_answered_ok_or_refused_on_its_merits():
    assert served(op("write", 1))
    assert served(op("approve", 1, Outcome.FAIL, 409, gate="EvidencePackState"))
    assert not served(op("publish", 1, Outcome.FAIL, 503, cause="database", gate="ServiceHealth"))
    assert not served(op("write", 1, Outcome.INFO, 502))
    assert not served(op("write", 1, Outcome.INFO, None))  # a timeout
    assert not served(op("write", 1, Outcome.FAIL, 429, gate="Throttle"))
    assert not served(op("write", 1, Outcome.FAIL, 400))  # a 4xx that names no rule


class HealthStub(JsonHandler):
    """GET /health answering what the test sets: (status, ServiceHealth)."""

    answer = (200, "Healthy")

    def do_GET(self):  # noqa: N802 - the http.server API
        status, said = type(self).answer
        self.send_json(status, {"ServiceHealth": said, "components": {"database": {"status": "up"}}})


@pytest.fixture
def health_server():
    handler = type("Stub", (HealthStub,), {})
    with http_server(handler) as url:
        yield handler, url


@pytest.mark.parametrize(
    "answer, counted", [((503, "Healthy"), False), ((200, "Unhealthy"), True), ((200, "Healthy"), True)]
)
def test_the_prober_over_http_is_judged_on_its_request_not_on_the_body(health_server, answer, counted):
    handler, url = health_server
    handler.answer = answer
    recorder, client = Recorder(), ApiClient(url, timeout=5)
    try:
        Prober(client, recorder).step()
    finally:
        client.close()
    (probe,) = recorder.ops("probe")
    assert probe.status == answer[0]
    assert served(probe) is counted
    budget = error_budget(recorder.history(), allowance=0.0)
    assert len(budget.bad) == (0 if counted else 1)


# ---- windows and the budget ----------------------------------------------------------------------


def test_windows_are_clock_aligned_and_a_window_without_requests_is_not_listed():
    ops = [op("write", t) for t in (10.0, 299.9, 300.0, 1000.0)]
    windows = request_windows(ops)
    assert [(w.start - EPOCH, w.requests) for w in windows] == [(0.0, 2), (300.0, 1), (900.0, 1)]


def test_one_bad_window_of_a_month_uses_11_6_percent_and_the_figures_say_so():
    ops = [op("write", i / 10) for i in range(998)] + [op("write", 99.8, Outcome.FAIL, 503, cause="database")] * 2
    budget = error_budget(History(ops=tuple(ops)))
    figures = budget.figures()
    assert figures["bad_windows"] == 1 and figures["windows_observed"] == 1
    assert figures["error_budget_windows"] == pytest.approx(8.64)
    assert figures["error_budget_used_pct"] == pytest.approx(11.5741)
    assert figures["availability"] == pytest.approx(0.998) and figures["availability_region"] == "primary"
    assert figures["availability_windows"][0]["good"] is False


# ---- the plan's availability: section -------------------------------------------------------------


def test_the_availability_section_defaults_to_30_days_a_quarter_of_the_budget_one_region(tmp_path):
    assert load_plan(write(tmp_path, GOOD), ROOT).availability == AvailabilityPolicy(30.0, 0.25, "primary")
    plan = load_plan(
        write(tmp_path, GOOD + "availability: {period_days: 7, drill_allowance: 0.5, region: eu-west-1}\n"), ROOT
    )
    assert plan.availability == AvailabilityPolicy(7.0, 0.5, "eu-west-1")


@pytest.mark.parametrize(
    "section, key",
    [
        ("[30]", "availability"),
        ("{period_days: 0}", "availability.period_days"),
        ("{period_days: .nan}", "availability.period_days"),
        ("{period_days: true}", "availability.period_days"),
        ("{drill_allowance: 1.5}", "availability.drill_allowance"),
        ("{drill_allowance: -0.1}", "availability.drill_allowance"),
        ("{region: 'two words'}", "availability.region"),
        ("{allowance: 0.25}", "availability.allowance"),
    ],
)
def test_a_bad_availability_section_is_refused_naming_its_key(tmp_path, section, key):
    with pytest.raises(PlanError) as raised:
        load_plan(write(tmp_path, GOOD + f"availability: {section}\n"), ROOT)
    assert f"key '{key}'" in str(raised.value) and "\n" not in str(raised.value)


def test_a_chaos_plan_carries_the_section_into_its_results(tmp_path):
    path = tmp_path / "chaos.yaml"
    path.write_text(
        (ROOT / "drills" / "chaos" / "db-latency-200ms.yaml").read_text() + "availability: {drill_allowance: 0.1}\n"
    )
    plan = load_chaos_plan(path)
    assert plan.availability == AvailabilityPolicy(30.0, 0.1, "primary")
    assert as_plan(plan, "embedded").availability == plan.availability


# ---- every scenario of every shipped plan gets one typed availability_budget gate ----------------


def scenario_names(feature: Path, expression: str | None) -> list[str]:
    """The scenarios of a feature file a plan's tag expression selects (all without one)."""
    feature_tags: set[str] = set()
    pending: set[str] = set()
    names = []
    for line in feature.read_text(encoding="utf-8").splitlines():
        text = line.strip()
        if text.startswith("@"):
            pending |= set(text.split())
        elif text.startswith("Feature:"):
            feature_tags, pending = pending, set()
        elif text.startswith(("Scenario:", "Scenario Outline:")):
            if expression is None or matches(expression, feature_tags | pending):
                names.append(text.split(":", 1)[1].strip())
            pending = set()
    return names


def shipped_scenarios():
    for path in sorted((ROOT / "drills").glob("*.yaml")):
        plan = load_plan(path, ROOT)
        for feature in plan.scenarios:
            for name in scenario_names(feature, plan.tags):
                yield pytest.param(plan, feature, name, id=f"{path.stem}:{feature.stem}:{name[:40]}")


@pytest.mark.parametrize("plan, feature, name", list(shipped_scenarios()))
def test_every_scenario_of_every_shipped_plan_gets_a_typed_availability_budget_gate(plan, feature, name):
    run = _drill_run(plan, types.SimpleNamespace(api_url="http://127.0.0.1:9"))
    try:
        scn = run.begin(name, str(feature), [])
        if "stays available at" in feature.read_text(encoding="utf-8"):
            available_while_az_lost(scn, "az1", 0.999)  # the step states it: never twice
        standard_rules(scn)
    finally:
        run.forwarder.close()
    budget = [g for g in scn.checks if g.id == "availability_budget"]
    assert len(budget) == 1, [g.id for g in scn.checks]
    gate = budget[0]
    assert isinstance(gate, AvailabilityBudget) and type(gate).judges == "system"
    assert (gate.operator, gate.unit, gate.limit) == ("<=", "%", plan.availability.drill_allowance * 100)
    assert gate.target == plan.targets.get("availability", 0.999) and gate.period_days == plan.availability.period_days
    # it judges this scenario's requests: none yet, so unknown, never pass
    assert evaluate_gate(gate, scn.recorder.history()).verdict is Verdict.UNKNOWN


def test_the_shipped_chaos_plans_carry_the_default_policy_to_their_scenario():
    for path in sorted((ROOT / "drills" / "chaos").glob("*.yaml")):
        plan = as_plan(load_chaos_plan(path), "embedded")
        run = _drill_run(plan, types.SimpleNamespace(api_url="http://127.0.0.1:9"))
        try:
            scn = run.begin("chaos", str(path), [])
            standard_rules(scn)
        finally:
            run.forwarder.close()
        assert [g.id for g in scn.checks if isinstance(g, AvailabilityBudget)] == ["availability_budget"], path
