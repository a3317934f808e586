"""Targets never looser than the spec (harness.spec_floors): a waived gate is judged against the
spec's floor and the waived target, its verdict `waived` is never a pass, and every output says
so: the drill's verdict and exit code, results.json (schema), JUnit, the CAB line, the residual
risk and page 1 of the report."""

from __future__ import annotations

import datetime as dt
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.cab.ledger import CabKey, drill_record, gates_summary
from harness.gates import evaluate_gate
from harness.gates.recovery import RpoSeconds, RtoSeconds
from harness.gates.waiver import Waived, waivable
from harness.model import DrillResult, GateResult, Verdict, WaivedGateResult
from harness.plan import load_plan
from harness.report.html import render_html
from harness.report.record import Recording, complete, write_outputs
from harness.report.risk import assess
from harness.runner import exit_code
from harness.runner.results import drill_result
from harness.runner.scenario import DrillRun

from .gates.builder import H
from .gates.cases import KILL
from .test_plan import GOOD
from .test_results_schema import RecordedLab, Replayed, problems

ROOT = Path(__file__).resolve().parents[2]
EXPIRES = dt.date.today() + dt.timedelta(days=30)
WAIVED_PLAN = (
    GOOD
    + f"""\
targets: {{rto_seconds: 43200}}
waivers:
  - gate: rto_seconds
    reason: DR site storage rebuilt this quarter (CHG0012399)
    approved_by: J. Doe (CAB)
    expires: {EXPIRES.isoformat()}
"""
)
HOUR = 3600.0


def recovered_after(seconds: float):
    """A write acknowledged before the primary is killed at t=10, the first write after it
    acknowledged `seconds` later, both read back."""
    return (
        H()
        .op("write", 1.0, value="w1")
        .inject(KILL, 10.0)
        .op("write", 10.0 + seconds - 0.1, value="w2")
        .op("final_read", 10.0 + seconds + 60.0, value=["w1", "w2"])
        .build()
    )


@pytest.fixture
def plan(tmp_path):
    path = tmp_path / "plan.yaml"
    path.write_text(WAIVED_PLAN)
    return load_plan(path, ROOT)


def run_of(plan, *rto_seconds: float) -> DrillRun:
    """The plan's run as the runner leaves it: one scenario per recovery time, its RTO gate built as
    the runner builds it (waivable), judged on the recorded history."""
    run = DrillRun(drill=plan.drill, lab=RecordedLab(), targets=dict(plan.targets))
    run.waivers = dict(plan.waivers)
    for seconds in rto_seconds:
        scn = run.begin(f"recovered in {seconds:g} s", "database/primary_failover.feature", ["unit"])
        scn.recorder = Replayed(recovered_after(seconds))
        gate = waivable(run, "rto_seconds", lambda target: RtoSeconds(target, KILL))
        scn.gates = [evaluate_gate(gate, scn.recorder.history())]
        scn.steps_total = scn.steps_done = 1
        scn.finished_at = scn.started_at
    run.finished_at = run.started_at
    return run


# ---- the verdict --------------------------------------------------------------------------------


def test_waived_ranks_between_pass_and_unknown():
    assert Verdict.worst([Verdict.PASS, Verdict.WAIVED]) is Verdict.WAIVED
    assert Verdict.worst([Verdict.WAIVED, Verdict.UNKNOWN]) is Verdict.UNKNOWN
    assert Verdict.worst([Verdict.WAIVED, Verdict.FAIL, Verdict.PASS]) is Verdict.FAIL
    assert Verdict("waived") is Verdict.WAIVED


def test_a_drill_whose_worst_gate_is_waived_exits_3_never_0():
    assert exit_code(DrillResult(drill="d", verdict=Verdict.WAIVED)) == 3


def test_a_scenario_that_stopped_early_with_a_waived_gate_is_unknown():
    scenario = DrillRun(drill="d", lab=None, targets={}).begin("s", "f", [])
    scenario.steps_total, scenario.steps_done = 3, 1
    scenario.gates = [GateResult("g", "", None, None, Verdict.WAIVED)]
    assert scenario.verdict is Verdict.UNKNOWN
    scenario.steps_done = 3
    assert scenario.verdict is Verdict.WAIVED


# ---- how a waived gate is judged ------------------------------------------------------------------


@pytest.mark.parametrize(
    "rto, verdict, limit",
    [
        (2 * HOUR, Verdict.PASS, 8 * HOUR),  # meets the spec's floor: simply pass
        (10 * HOUR, Verdict.WAIVED, 12 * HOUR),  # meets only the waived 12 h target
        (13 * HOUR, Verdict.FAIL, 8 * HOUR),  # misses both: fail, judged against the floor
    ],
)
def test_a_waived_gate_is_judged_against_the_floor_and_the_waived_target(plan, rto, verdict, limit):
    run = run_of(plan, rto)
    result = run.scenarios[0].gates[0]
    assert result.verdict is verdict and result.limit == limit
    if verdict is Verdict.WAIVED:
        assert isinstance(result, WaivedGateResult)
        assert result.waiver["reason"] == "DR site storage rebuilt this quarter (CHG0012399)"
        assert result.waiver["floor"] == 8 * HOUR and result.waiver["target"] == 12 * HOUR
        assert "misses the spec's floor <= 28800 s" in result.detail and "J. Doe (CAB)" in result.detail
    else:
        assert not isinstance(result, WaivedGateResult)


def test_a_waived_gate_that_cannot_be_judged_is_unknown(plan):
    run = DrillRun(drill="d", lab=None, targets=dict(plan.targets), waivers=dict(plan.waivers))
    gate = waivable(run, "rto_seconds", lambda target: RtoSeconds(target, KILL))
    no_fault = H().op("write", 1.0, value="w1").op("final_read", 30.0, value=["w1"]).build()
    assert isinstance(gate, Waived) and evaluate_gate(gate, no_fault).verdict is Verdict.UNKNOWN


def test_a_target_not_waived_is_the_plain_gate(plan):
    run = DrillRun(drill="d", lab=None, targets=dict(plan.targets), waivers=dict(plan.waivers))
    gate = waivable(run, "rpo_seconds", lambda target: RpoSeconds(target, KILL))
    assert type(gate) is RpoSeconds and gate.limit == 300.0


# ---- every output says waived ---------------------------------------------------------------------


def test_results_json_junit_cab_line_and_risk_of_a_waived_run(plan, tmp_path):
    rec = Recording(tmp_path / "cab-log.jsonl", key=CabKey(b"k" * 32, tmp_path / "cab.key"))
    result = drill_result(plan, run_of(plan, 2 * HOUR, 10 * HOUR), RecordedLab())
    complete(result, plan, RecordedLab(), rec)
    assert result.verdict is Verdict.WAIVED and exit_code(result) == 3
    write_outputs(result, plan, tmp_path / "out", rec, log=lambda *a, **k: None)
    data = json.loads((tmp_path / "out" / "results.json").read_text())
    assert problems(data) == []
    assert data["verdict"] == "waived" and data["spec_floors"]["rto_seconds"]["floor"] == 8 * HOUR
    assert [(w["gate"], w["target"], w["floor"], w["gates"]) for w in data["waivers"]] == [
        ("rto_seconds", 12 * HOUR, 8 * HOUR, ["recovered in 36000 s/rto_seconds"])
    ]
    waived = data["scenarios"][1]["gates"][0]
    assert waived["verdict"] == "waived" and waived["waiver"]["approved_by"] == "J. Doe (CAB)"
    # the residual risk counts it: scored against the spec's floor (10 h of 8 h: 1.25 times)
    risk = data["risk"]
    assert [(i["gate"], i["verdict"]) for i in risk["items"]] == [("rto_seconds", "waived")]
    assert risk["residual"]["level"] != "none" and "1.25 times the spec's floor" in risk["items"][0]["likelihood_why"]
    assert "WAIVED" in risk["items"][0]["text"] and "at most 8 h" in risk["items"][0]["text"]
    # JUnit: a failure of type waived, never a passing testcase
    suite = ET.parse(tmp_path / "out" / "junit.xml").getroot().find("testsuite")
    failures = [
        (c.get("classname"), f.get("type"), f.get("message"))
        for c in suite.iter("testcase")
        for f in c.findall("failure")
    ]
    assert [(name, kind) for name, kind, _ in failures] == [("recovered in 36000 s", "waived")]
    assert "DR site storage rebuilt" in failures[0][2] and suite.get("failures") == "1"
    # the CAB line: verdict waived, the gates summary counts it, the waiver recorded
    line = json.loads((tmp_path / "cab-log.jsonl").read_text().splitlines()[-1])
    assert line["verdict"] == "waived"
    assert (line["gates"]["pass"], line["gates"]["waived"]) == (1, 1)
    assert line["gates"]["not_passed"] == ["recovered in 36000 s/rto_seconds"]
    assert [(w["gate"], w["approved_by"], w["expires"]) for w in line["waivers"]] == [
        ("rto_seconds", "J. Doe (CAB)", EXPIRES.isoformat())
    ]


def test_a_waived_gate_reads_back_from_results_json_with_its_waiver(plan):
    result = drill_result(plan, run_of(plan, 10 * HOUR), RecordedLab())
    again = DrillResult.from_json(json.loads(json.dumps(result.to_json())))
    gate = again.scenarios[0].gates[0]
    assert isinstance(gate, WaivedGateResult) and gate.verdict is Verdict.WAIVED
    assert gate.waiver["gate"] == "rto_seconds" and again.verdict is Verdict.WAIVED
    summary = gates_summary(again.to_json())
    assert summary["waived"] == 1 and drill_record(again, None)["verdict"] == "waived"


def test_risk_counts_a_waived_gate_even_when_every_other_gate_passed(plan):
    results = drill_result(plan, run_of(plan, 10 * HOUR), RecordedLab()).to_json()
    assert assess(results, None)["residual"]["score"] > 0


def test_page_1_shows_the_waived_gate_in_red_with_its_reason(plan):
    result = drill_result(plan, run_of(plan, 2 * HOUR, 10 * HOUR), RecordedLab())
    html = render_html(result)
    page1 = html.split("Technical appendix")[0]
    assert 'class="banner waived"' in page1 and "Verdict: WAIVED" in page1 and "Verdict: PASS" not in page1
    assert "WAIVED, not passed" in page1 and "DR site storage rebuilt this quarter (CHG0012399)" in page1
    assert "J. Doe (CAB)" in page1 and EXPIRES.isoformat() in page1
    assert ".waived { background: #cf222e; }" in html  # red, as fail
    # page 1 judges the waived RTO against the spec's 8 h, not the waived 12 h
    assert "against 8 h" in page1 and "against 12 h" not in page1
    # the appendix: each target beside the spec's floor
    appendix = html.split("Technical appendix")[1]
    assert "at most 28800" in appendix and "(target looser: waived)" in appendix


def test_a_page_without_a_waived_gate_has_no_waiver_block(tmp_path):
    path = tmp_path / "plan.yaml"
    path.write_text(GOOD)
    plan = load_plan(path, ROOT)
    html = render_html(drill_result(plan, run_of(plan, 2 * HOUR), RecordedLab()))
    assert "WAIVED, not passed" not in html and "Verdict: PASS" in html


def test_a_waived_availability_target_is_built_against_the_spec_too(tmp_path):
    path = tmp_path / "plan.yaml"
    path.write_text(
        GOOD + f"targets: {{availability: 0.99}}\nwaivers:\n  - {{gate: availability, reason: one AZ "
        f"rebuilt, approved_by: CAB, expires: {EXPIRES.isoformat()}}}\n"
    )
    plan = load_plan(path, ROOT)
    run = DrillRun(drill="d", lab=None, targets=dict(plan.targets), waivers=dict(plan.waivers))
    built: list = []
    gate = waivable(run, "availability", lambda target: built.append(target) or RtoSeconds(1.0))
    assert isinstance(gate, Waived) and built == [0.99, 0.999]
    built.clear()
    plain = DrillRun(drill="d", lab=None, targets={"rto_seconds": 28800.0})  # no availability target: the default
    assert type(waivable(plain, "availability", lambda target: built.append(target) or RtoSeconds(1.0))) is RtoSeconds
    assert built == [None]
