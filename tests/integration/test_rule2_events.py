"""Validation rule 2 judged on what the deployment logs by itself: the database failover drill on a
real embedded lab passes correlation_ids_recorded on the Control Plane's own audit events and the
failover manager's own posts (the harness's forwarded journal events counted apart); a Control
Plane that writes no SIEM line fails it, naming the events."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from harness.lab.embedded import EmbeddedLab
from harness.plan import load_plan
from harness.workload import ApiClient
from tests.integration.conftest import gates_of, not_passed, run_loaded
from tests.integration.scenario_cut import scenario_until

ROOT = Path(__file__).resolve().parents[2]


def failover_scenario():
    """The quarterly database drill's failover scenario alone."""
    plan = load_plan(ROOT / "drills" / "quarterly-database.yaml", ROOT)
    return replace(plan, scenarios=plan.scenarios[:1])


def stored_drill_events(lab) -> list[dict]:
    client = ApiClient(lab.api_url, timeout=15)
    try:
        reply = client.call("GET", "/events", params={"type": "DrillEvent", "limit": 1000})
    finally:
        client.close()
    assert reply.status == 200, reply.error
    return reply.body["events"]


def test_the_failover_drill_passes_rule_2_on_events_the_deployment_logged_itself(tmp_path):
    with EmbeddedLab(replication="sync") as lab:
        code, results = run_loaded(failover_scenario(), lab, tmp_path)
        stored = stored_drill_events(lab)
    scenario = results["scenarios"][0]
    gate = gates_of(scenario)["correlation_ids_recorded"]
    assert gate["verdict"] == "pass", not_passed(results)
    m = gate["measured"]
    assert m["deployment_audit_events_checked"] > 25  # the workload's writes, at least
    assert m["deployment_failover_events_checked"] >= 3  # detect, promote, reconnect
    assert m["failovers_observed"] >= 1 and m["failovers_not_logged_by_deployment"] == []
    assert m["forwarded_events_delivered"] >= 2  # the journal's inject and heal
    figures = scenario["measurements"]
    assert figures["rule2_deployment_failover_events_checked"] == m["deployment_failover_events_checked"]
    # the harness forwarded its own acts, never the failover manager's events
    events = scenario["events"]
    assert {e["kind"] for e in events if e["forwarded"]} >= {"inject", "heal"}
    assert all(not e["forwarded"] and not e["event_id"] for e in events if e["source"] == "failover-controller")
    assert any(e["kind"] == "promote" for e in events if e["source"] == "failover-controller")
    # in the store: the manager's posts under its own correlation ids, the harness's marked forwarded
    emitters = {(r["payload"]["kind"], r["payload"].get("emitter")) for r in stored}
    assert ("promote", "failover-manager") in emitters and ("inject", "harness-forwarder") in emitters
    assert ("promote", "harness-forwarder") not in emitters
    assert all(
        r["correlation_id"].startswith("failover-manager/")
        for r in stored
        if r["payload"].get("emitter") == "failover-manager"
    )
    assert code == 0, not_passed(results)


def test_a_control_plane_writing_no_siem_line_fails_rule_2_naming_the_events(tmp_path):
    """The failover scenario up to the old primary's rebuild: rule 2 is judged at every scenario's
    end, on what it did (the failover, the workload's writes); the failback and the post-failover
    validation add nothing to the gate, only their time. (Not before the rebuild: the lab must be
    green again by itself after the heal, or the scenario waits out the steady-state timeout.)"""
    until_rebuilt = scenario_until(
        failover_scenario().scenarios[0], "the old primary is rebuilt as a replica", tmp_path
    )
    with EmbeddedLab(replication="sync", cp_flags=("--unsafe-skip-siem",)) as lab:
        code, results = run_loaded(replace(failover_scenario(), scenarios=(until_rebuilt,)), lab, tmp_path)
    gate = gates_of(results["scenarios"][0])["correlation_ids_recorded"]
    assert code == 1 and gate["verdict"] == "fail", not_passed(results)
    missing = gate["measured"]["missing_in_siem"]
    assert 0 < len(missing) <= 10
    assert any("(IntentCreated)" in name for name in missing), missing
    assert "not in the SIEM" in gate["detail"]
