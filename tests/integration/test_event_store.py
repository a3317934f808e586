"""Matrix row "Event store write blocked" on the embedded lab, and its negative: a Control Plane that
acknowledges changes without their audit event (and ignores the store for publish) must fail the row."""

from __future__ import annotations

from harness.lab.embedded import EmbeddedLab
from tests.integration.conftest import run_plan


def drill(lab, tmp_path):
    return run_plan("quarterly-event-store.yaml", lab, tmp_path)


def gates(results) -> dict:
    return {g["id"]: g for g in results["scenarios"][0]["gates"]}


def test_a_write_blocked_event_store_refuses_publish_fails_over_and_loses_no_audit_event(lab, tmp_path):
    code, results = drill(lab, tmp_path)
    scenario = results["scenarios"][0]
    g = gates(results)
    assert code == 0, [x for x in g.values() if x["verdict"] != "pass"]
    refused = g["publish_refused_event_store_blocked"]["measured"]
    assert refused["status"] == 503 and refused["cause"] == "event_store"
    assert "event_store: write blocked" in refused["error"]
    assert g["failover_cause_event_store_write_blocked"]["measured"] == {
        "detect_cause": "event_store_write_blocked", "fenced": "pg-a"}
    chain = g["event_chain_linked_across_failover"]["measured"]
    assert chain["verify"]["ok"] is True and chain["boundary_linked"] is True and chain["broken_links"] == []
    assert g["audit_events_not_lost"]["measured"]["recorded_before"] > 0
    m = scenario["measurements"]
    assert m["audit_events_lost"] == 0 and m["audit_events_duplicated"] == 0
    assert m["EventStoreWriteSuccess"] == 1.0 and m["event_store_acknowledged_changes"] > 25
    assert m["lost_writes"] == 0 and m["rpo_seconds"] == 0 and 0 < m["rto_seconds"] < 60
    phases = scenario["phases"]
    assert phases["detect"] <= phases["fence"] <= phases["promote"] <= phases["reconnect"] <= phases["first_write"]
    assert g["transaction_lag_seconds"]["measured"] <= 5
    # the lab is left in steady state, primary back on pg-a, the fault lifted
    assert lab.database_primary() == "pg-a" and lab.failover.state == "watching"
    assert all(ok for ok, _ in lab.steady_state_checks().values())


def test_a_control_plane_acknowledging_changes_without_their_event_fails_the_row_naming_the_gates(tmp_path):
    with EmbeddedLab(cp_flags=("--unsafe-ignore-event-store",)) as misbehaving:
        code, results = drill(misbehaving, tmp_path)
    g = gates(results)
    assert code == 1 and results["verdict"] == "fail"
    assert g["publish_refused_event_store_blocked"]["verdict"] == "fail"
    assert g["publish_refused_event_store_blocked"]["measured"]["status"] == 200
    assert g["event_store_write_success"]["verdict"] == "fail"
    assert g["event_store_write_success"]["measured"] < 0.999
    assert "missing" in g["event_store_write_success"]["detail"]
