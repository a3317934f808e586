"""The plan's numbers reach the checkers through the runner (no constant of the runner stands in
for them), and a checker's figures reach the scenario's measurements: pure logic, with a stand-in
scenario and the runner's own step functions."""

from __future__ import annotations

import time
from types import SimpleNamespace

from harness.gates.connectors import PromotionRefused
from harness.runner import platforms


class Scenario:
    """What the connector steps ask of a scenario: its drill's targets (and waivers) and the rules it states."""

    def __init__(self, targets: dict, waivers: dict | None = None):
        self.drill = SimpleNamespace(targets=targets, waivers=waivers or {})
        self.checks: list = []

    def expect(self, gate):
        self.checks.append(gate)
        return gate


def test_the_plans_detection_allowance_reaches_promotion_refused_and_a_silent_control_plane_is_judged_after_it(
    monkeypatch,
):
    injected = time.time()
    promoted: list[float] = []
    monkeypatch.setattr(platforms, "_fault_wall", lambda scn, platform: injected)
    monkeypatch.setattr(platforms, "events_about", lambda *a, **k: [])  # never recorded degraded
    monkeypatch.setattr(platforms, "promote", lambda scn, platform: promoted.append(time.time()))
    scn = Scenario({"detection_seconds": 1.5})
    platforms.promotion_refused(scn, "intune", "PromotionsPaused")
    (gate,) = scn.checks
    assert isinstance(gate, PromotionRefused) and gate.detection_s == 1.5 and "1.5 s" in gate.threshold
    assert promoted and promoted[0] >= injected + 1.5  # attempted once the allowance had passed


def test_a_promotion_is_attempted_as_soon_as_the_control_plane_recorded_the_platform_degraded(monkeypatch):
    promoted: list[float] = []
    monkeypatch.setattr(platforms, "_fault_wall", lambda scn, platform: time.time())
    monkeypatch.setattr(platforms, "events_about", lambda *a, **k: [{"type": "PlatformDegraded"}])
    monkeypatch.setattr(platforms, "promote", lambda scn, platform: promoted.append(time.monotonic()))
    scn = Scenario({})  # the plan's default: 60 s
    started = time.monotonic()
    platforms.promotions_paused(scn, "jamf")
    (gate,) = scn.checks
    assert gate.detection_s == 60.0 and gate.id == "promotions_paused_jamf"
    assert promoted[0] - started < 10.0  # not held for the allowance


def test_the_detection_latency_is_a_figure_of_the_scenario():
    from harness.gates.base import gate_figures

    from .cases import degraded_known, intune_failing, promote

    history = promote(degraded_known(intune_failing()), 14.0, "intune", ok=False, gate="PromotionsPaused").build()
    assert gate_figures([PromotionRefused("intune", "PromotionsPaused")], history) == {"detection_seconds": 2.0}
    never = promote(intune_failing(), 75.0, "intune").build()  # never recorded degraded: no latency
    assert gate_figures([PromotionRefused("intune", "PromotionsPaused")], never) == {"detection_seconds": None}


def test_the_plan_knows_detection_seconds_and_refuses_one_looser_than_the_spec_allows():
    from harness.errors import PlanError
    from harness.plan import _parse_targets

    def fail(key, message):
        return PlanError(f"{key}: {message}")

    assert _parse_targets({"detection_seconds": 30}, None, fail)["detection_seconds"] == 30.0
    for bad, said in ((-1, "between 0 and"), (901, "at most 900 s (15 min)")):
        errors: list = []
        _parse_targets({"detection_seconds": bad}, None, fail, errors.append)
        assert len(errors) == 1 and str(errors[0]).startswith("targets.detection_seconds") and said in str(errors[0])


def test_a_waived_detection_allowance_is_judged_against_the_spec_floor_too(monkeypatch):
    import datetime as dt

    from harness.gates.waiver import Waived
    from harness.spec_floors import SPEC_FLOORS, Waiver

    monkeypatch.setattr(platforms, "_fault_wall", lambda scn, platform: time.time())
    monkeypatch.setattr(platforms, "events_about", lambda *a, **k: [{"type": "PlatformDegraded"}])
    monkeypatch.setattr(platforms, "promote", lambda scn, platform: None)
    waiver = Waiver(
        "detection_seconds",
        "slow SIEM hop this quarter",
        "J. Doe",
        dt.date.today(),
        1200.0,
        SPEC_FLOORS["detection_seconds"],
    )
    scn = Scenario({"detection_seconds": 1200.0}, {"detection_seconds": waiver})
    platforms.promotion_refused(scn, "sccm", "SCCM.SiteHealth")
    (gate,) = scn.checks
    assert isinstance(gate, Waived) and (gate.waived.detection_s, gate.spec.detection_s) == (1200.0, 900.0)


# ---- ConnectorBackoff: the configured retry policy from the plan ---------------------------------

ROOT = __import__("pathlib").Path(__file__).resolve().parents[3]
CONNECTORS = {
    "drill": "connectors",
    "title": "Connectors",
    "ha_domain": "connectors",
    "lab": "embedded",
    "scenarios": ["scenarios/connectors/jamf_outage.feature"],
}


def plan_errors(targets: dict, lab: object = "embedded", **more) -> list[str]:
    from harness.errors import PlanError
    from harness.plan import parse_plan

    errors: list = []
    try:
        parse_plan({**CONNECTORS, "lab": lab, "targets": targets, **more}, ROOT / "plan.yaml", ROOT, errors)
    except PlanError:
        pass
    return [str(e) for e in errors]


def test_the_plan_states_the_connectors_backoff_and_the_factor_is_the_specs_2():
    from harness.plan import parse_plan

    plan = parse_plan(
        {**CONNECTORS, "targets": {"connector_backoff": {"base_seconds": 0.5, "factor": 2, "max_attempts": 4}}},
        ROOT / "p.yaml",
        ROOT,
    )
    assert plan.targets["connector_backoff"] == {"base_seconds": 0.5, "factor": 2.0, "max_attempts": 4}
    for policy, key in (
        ({"base_seconds": 0.5, "factor": 3, "max_attempts": 4}, "factor"),
        ({"base_seconds": 0.5, "factor": 1.9, "max_attempts": 4}, "factor"),
        ({"base_seconds": 0, "max_attempts": 4}, "base_seconds"),
        ({"base_seconds": 0.5, "max_attempts": 2}, "max_attempts"),
        ({"base_seconds": 0.5, "max_attempts": 4.5}, "max_attempts"),
        ({"max_attempts": 4}, "base_seconds"),
        ({"base_seconds": 0.5, "max_attempts": 4, "jitter": 0.1}, "jitter"),
    ):
        errors = plan_errors({"connector_backoff": policy})
        assert len(errors) == 1 and f"targets.connector_backoff.{key}" in errors[0], (policy, errors)
    assert "must be a mapping" in plan_errors({"connector_backoff": 0.5})[0]


def test_a_lab_plans_backoff_must_be_what_the_lab_runs_an_external_plans_is_the_deployments():
    errors = plan_errors({"connector_backoff": {"base_seconds": 1.0, "max_attempts": 4}})
    assert len(errors) == 1 and "targets.connector_backoff.base_seconds" in errors[0] and "0.5" in errors[0]
    assert (
        "max_attempts"
        in plan_errors(
            {"connector_backoff": {"base_seconds": 0.5, "max_attempts": 5}}, lab={"provider": "testcontainers"}
        )[0]
    )


def test_the_runner_takes_the_backoff_from_the_plan_else_the_labs_else_none(monkeypatch):
    from harness.gates.connectors import ConnectorBackoff, DeadLettered

    monkeypatch.setattr(platforms, "keys_of", lambda scn, platform: ["k1"])
    monkeypatch.setattr(platforms, "platform_log", lambda lab, platform: [{"idempotency_key": "k1"}] * 9)
    monkeypatch.setattr(platforms, "_dead_letters", lambda scn, platform: SimpleNamespace(ok=True, value=["k1"]))
    stated = {"base_seconds": 2.0, "factor": 2.0, "max_attempts": 6}
    for targets, provider, expected in (
        ({"connector_backoff": stated}, "external", (2.0, 6)),
        ({}, "embedded", (0.5, 4)),
        ({}, "external", (None, None)),
    ):
        scn = Scenario(targets)
        scn.lab = SimpleNamespace(provider=provider)
        platforms.backoff_doubles(scn, "jamf")
        platforms.dead_lettered(scn, "jamf")
        backoff, dead = scn.checks
        assert isinstance(backoff, ConnectorBackoff) and isinstance(dead, DeadLettered)
        assert (backoff.base_s, backoff.max_attempts) == expected and dead.max_attempts == expected[1]


# ---- EventStoreWriteSuccess: the observed ratio and the projected hour, apart ---------------------


def test_the_observed_ratio_and_the_projected_hour_are_two_measurements():
    from harness.gates.base import gate_figures
    from harness.gates.eventstore import EventStoreWriteSuccess

    from .cases import BLOCK, seconds, write_success_history

    history = write_success_history(seconds(0, 20), 10.0, refused=(15.0,))
    figures = gate_figures([EventStoreWriteSuccess(0.999, fault=BLOCK)], history)
    assert figures == {
        "event_store_write_success_observed": 0.95,
        "event_store_write_success_projected_hour": round(3600 / 3601, 6),
    }


def test_page_one_says_projected_where_it_shows_the_projection():
    import html
    import re

    from harness.gates import evaluate_gate
    from harness.gates.eventstore import EventStoreWriteSuccess
    from harness.model import DrillResult, ScenarioResult, Verdict
    from harness.report import render_html

    from .cases import BLOCK, seconds, write_success_history

    assert EventStoreWriteSuccess(99.9 / 100).limit == 0.999  # as a step states it: a percentage
    gate = evaluate_gate(
        EventStoreWriteSuccess(0.999, fault=BLOCK),
        write_success_history(seconds(0, 30), 10.0, refused=tuple(seconds(15, 25))),
    )
    assert gate.verdict is Verdict.FAIL and (gate.operator, gate.limit, gate.unit) == (">=", 0.999, "ratio")
    result = DrillResult(
        drill="d",
        verdict=Verdict.FAIL,
        scenarios=[ScenarioResult(name="Event store write blocked", verdict=Verdict.FAIL, gates=[gate])],
    )
    page = render_html(result)
    first = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page[: page.index("Technical appendix")])).split())
    assert "EventStoreWriteSuccess, projected hour >= 99.9%" in first and f"measured {gate.measured}" in first
