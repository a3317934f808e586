"""The database drills on a real embedded lab: lost writes counted after a replication cut, its
determinism, an impossible target, a failback ignoring the lag, a Control Plane silent to the SIEM
(validation rule 2). The quarterly failover drill runs on every provider in provider_contract.py."""

from __future__ import annotations

import threading
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pytest

from harness.plan import load_plan
from tests.integration.conftest import gates_of, not_passed, run_plan

ROOT = Path(__file__).resolve().parents[2]


def test_writes_acknowledged_after_a_replication_cut_are_each_counted_lost(lab, tmp_path):
    code, results = run_plan("adhoc-replication-cut-async.yaml", lab, tmp_path)
    scenario = results["scenarios"][0]
    m = scenario["measurements"]
    assert m["acknowledged_after_cut"] == 5
    assert m["lost_writes"] == 5, scenario["lost_write_keys"]
    assert 0 < m["rpo_seconds"] < 30
    assert code == 1 and gates_of(scenario)["lost_writes"]["verdict"] == "fail"
    assert gates_of(scenario)["lost_writes"]["measured"] == 5


def test_with_synchronous_replication_a_replication_cut_loses_nothing_run_twice_from_a_thread(lab, tmp_path):
    """Also: one process runs drills one after another from a worker thread (as a scheduler
    would), with no state left from one run to the next."""
    plan = load_plan(ROOT / "drills" / "adhoc-replication-cut-async.yaml", ROOT)
    runs: list = []

    def worker():
        for n in (1, 2):
            runs.append(
                run_plan(
                    "adhoc-replication-cut-async.yaml",
                    lab,
                    tmp_path / str(n),
                    lab=replace(plan.lab, replication="sync"),
                )
            )

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join(300)
    assert not thread.is_alive() and len(runs) == 2
    assert runs[0][1]["correlation_id"] != runs[1][1]["correlation_id"]
    for code, results in runs:
        scenario = results["scenarios"][0]
        m = scenario["measurements"]
        assert m["acknowledged_after_cut"] == 0  # commits never confirmed: never acknowledged
        assert m["lost_writes"] == 0 and m["rpo_seconds"] == 0
        assert gates_of(scenario)["lost_writes"]["verdict"] == "pass"
        assert code == 0, not_passed(results)


@pytest.fixture(scope="module")
def failover_negative(lab, tmp_path_factory):
    """One run of the failover scenario alone (its RTO, failback and events are the ones judged;
    the after-failover part adds nothing) serves the three negatives below, each asserting its own
    gate: an impossible RTO target; the lab's failover controller set (here only) to fail back
    without checking TransactionLag; and its Control Plane instances restarted (here only) with
    --unsafe-skip-siem, writing no SIEM line. None changes what another measures: the target only
    judges, the failback comes after the RTO's recovery, and the SIEM is read by rule 2 alone."""
    plan = load_plan(ROOT / "drills" / "quarterly-database.yaml", ROOT)
    tmp_path = tmp_path_factory.mktemp("failover-negative")
    lab.failover.check_lag = False
    try:
        with lab.control_plane_flags("--unsafe-skip-siem"):
            code, results = run_plan(
                "quarterly-database.yaml",
                lab,
                tmp_path,
                targets={**plan.targets, "rto_seconds": 0.001},
                scenarios=(ROOT / "scenarios" / "database" / "primary_failover.feature",),
            )
    finally:
        lab.failover.check_lag = True
    return code, results, tmp_path / "out"


def test_an_impossible_rto_target_fails_the_drill_and_the_report_says_so(failover_negative):
    code, results, out = failover_negative
    assert code == 1 and results["verdict"] == "fail"
    rto = gates_of(results["scenarios"][0])["rto_seconds"]
    assert rto["verdict"] == "fail" and rto["measured"] > 0.001
    html = (out / "report.html").read_text()
    assert "FAIL" in html and "rto_seconds" in html
    failed = [
        case.get("name")
        for case in ET.parse(out / "junit.xml").getroot().iter("testcase")
        if case.find("failure") is not None
    ]
    assert any("rto_seconds" in name for name in failed), failed


def test_a_failback_action_that_ignores_the_lag_fails_the_lag_gate(failover_negative):
    """The negative drill of row 2's failback rule: the lab's failover controller is set (here
    only) to fail back without checking TransactionLag. The drill slows the rebuilt node's
    replication link, requests the failback while the harness measures lag > 5 s, and the action
    switches at once: the gate judges the harness's own lag samples, not the action's word, and
    fails naming the lag."""
    code, results, _ = failover_negative
    scenario = results["scenarios"][0]
    gate = gates_of(scenario)["transaction_lag_seconds"]
    assert code == 1 and gate["verdict"] == "fail", not_passed(results)
    assert gate["judges"] == "runbook"
    assert gate["measured"] > 5 and "took effect with TransactionLag" in gate["detail"], gate
    m = scenario["measurements"]
    assert m["failback_lag_at_request_s"] > 5 and m["failback_refused"] is False
    assert m["failback_lag_at_effect_s"] == gate["measured"]
    # the drill's other gates still judge the deployment: nothing lost, the latency healed
    gates = gates_of(scenario)
    assert gates["lost_writes"]["verdict"] == "pass", not_passed(results)
    assert gates["faults_healed"]["verdict"] == "pass", not_passed(results)


def test_a_control_plane_writing_no_siem_line_fails_rule_2_naming_the_events(failover_negative):
    """Rule 2 is judged at every scenario's end, on what it did (the failover, the workload's
    writes): a Control Plane that writes no SIEM line fails it, naming the events (the event store
    still has them). Its positive, on the deployment's own events, is the provider contract's
    database row."""
    code, results, _ = failover_negative
    gate = gates_of(results["scenarios"][0])["correlation_ids_recorded"]
    assert code == 1 and gate["verdict"] == "fail", not_passed(results)
    assert gate["measured"]["missing_in_event_store"] == []
    missing = gate["measured"]["missing_in_siem"]
    assert 0 < len(missing) <= 10
    assert any("(IntentCreated)" in name for name in missing), missing
    assert "not in the SIEM" in gate["detail"]
