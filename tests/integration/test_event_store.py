"""Matrix row "Event store write blocked" on the embedded lab, and its negative: a Control Plane that
acknowledges changes without their audit event (and ignores the store for publish) must fail the row."""

from __future__ import annotations

from harness.lab.embedded import EmbeddedLab
from tests.integration.conftest import gates_of, not_passed, run_plan


def drill(lab, tmp_path):
    return run_plan("quarterly-event-store.yaml", lab, tmp_path)


def test_a_write_blocked_event_store_refuses_publish_fails_over_and_loses_no_audit_event(lab, tmp_path):
    code, results = drill(lab, tmp_path)
    scenario = results["scenarios"][0]
    g = gates_of(scenario)
    assert code == 0, not_passed(results)
    assert "503 cause event_store" in g["publish_refused_event_store_blocked"]["measured"]["publish"]
    assert g["publish_accepted_only_when_event_store_healthy"]["measured"]["accepted_while_blocked"] == 0
    assert g["failover_cause_event_store_write_blocked"]["measured"] == {
        "detect_cause": "event_store_write_blocked", "fenced": "pg-a"}
    chain = g["event_chain_linked_across_failover"]["measured"]
    assert chain["boundary_linked"] is True and chain["broken_links"] == [] and chain["bad_hashes"] == []
    assert g["audit_events_not_lost"]["measured"]["recorded_before"] > 0
    # EventStoreWriteSuccess counts the refused appends: the drill window shows them, the hour is projected
    ws = g["event_store_write_success"]["measured"]
    assert ws["used"] == "hour projected" and ws["drill_window_rate"] < 1.0 and ws["attempted"] > ws["persisted"]
    assert ws["projected_hour_rate"] >= 0.999
    assert g["no_change_acknowledged_without_event"]["measured"] == 0
    m = scenario["measurements"]
    assert m["lost_writes"] == 0 and m["rpo_seconds"] == 0 and 0 < m["rto_seconds"] < 60
    phases = scenario["phases"]
    assert phases["detect"] <= phases["fence"] <= phases["promote"] <= phases["reconnect"] <= phases["first_write"]
    assert g["transaction_lag_seconds"]["measured"] <= 5
    # the lab is left in steady state, failed back after the lag check, the fault lifted
    assert g["steady_state_after_heal"]["verdict"] == "pass" and phases["failback"] >= phases["lag_check"]
    # parts 2 and 3 on the redundant cluster; the failover controller watches again after them
    after = gates_of(results["scenarios"][1])
    assert after["smoke_verification"]["verdict"] == "pass" and after["rollback_applied_ring0"]["verdict"] == "pass"
    assert lab.failover.state == "watching"


def test_a_control_plane_acknowledging_changes_without_their_event_fails_the_row_naming_the_gates(tmp_path):
    with EmbeddedLab(cp_flags=("--unsafe-ignore-event-store",)) as misbehaving:
        code, results = drill(misbehaving, tmp_path)
    g = gates_of(results["scenarios"][0])
    assert code == 1 and results["verdict"] == "fail"
    assert g["publish_refused_event_store_blocked"]["verdict"] == "fail"
    assert "200" in g["publish_refused_event_store_blocked"]["measured"]["publish"]
    assert g["no_change_acknowledged_without_event"]["verdict"] == "fail"
    assert g["no_change_acknowledged_without_event"]["measured"] > 0
