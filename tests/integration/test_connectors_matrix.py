"""Matrix rows 4-6 (Intune Graph degraded, Jamf API outage, SCCM site server down) on the
embedded lab, judged from what the platform stand-ins logged, and their negative: a Control Plane
that promotes while a platform is paused must fail each row naming the promotion gate."""

from __future__ import annotations

from harness.lab.embedded import EmbeddedLab
from tests.integration.conftest import gates_of, not_passed, run_plan


def drill(lab, tmp_path):
    return run_plan("quarterly-connectors.yaml", lab, tmp_path)


def test_rows_4_to_6_pause_promotions_back_off_requeue_and_resume_by_their_rules(lab, tmp_path):
    code, results = drill(lab, tmp_path)
    throttled, cab_pause, jamf, sccm, failover = (gates_of(s) for s in results["scenarios"])
    assert code == 0, not_passed(results)
    # row 4: other platforms go on; the backoff doubles as Intune saw it; resume needs GraphThrottleCount <= 5
    assert throttled["other_platforms_continue"]["measured"] == {p: [1] for p in ("jamf", "sccm", "landscape", "ansible")}
    ratios = throttled["connector_backoff_2x_intune"]["measured"]["ratios"]
    assert len(ratios) >= 2 and all(1.5 <= r <= 3.0 for r in ratios)
    assert throttled["throttles_counted_intune"]["measured"]["sent_by_platform"] >= 6
    held = throttled["resume_requires_throttle_count_le_5"]["measured"]
    assert held["throttle_count"] >= 6 and held["accepted"] == 0
    assert throttled["promotions_resumed_intune"]["measured"] == {"promotion": "200", "applied": 1}
    assert cab_pause["cab_manual_pause_intune"]["measured"]["degraded_for_s"][0] > 15 * 60
    assert cab_pause["cab_pause_holds_until_lifted"]["verdict"] == "pass"
    # row 5: dead letters after the maximum attempts (as Jamf saw them), requeued, applied once
    assert jamf["dead_lettered_jamf"]["measured"] == {"dead_lettered": 2, "attempts": [4]}
    assert jamf["requeue_confirmed_jamf"]["measured"]["still_dead_lettered"] == 0
    assert jamf["applied_exactly_once_jamf"]["measured"] == {"published": 2, "missing": 0, "duplicated": 0}
    assert jamf["queue_depth_reported_jamf"]["measured"]["reported"] >= 1
    # row 6: the gate is SCCM.SiteHealth; manual import offered only after 24 h
    assert sccm["promotion_refused_sccm"]["measured"]["answers"] == ["503 cause platform:sccm gate SCCM.SiteHealth"]
    assert sccm["site_outage_recorded_sccm"]["measured"]["fallback_offered"] is False
    assert sccm["manual_import_fallback_sccm"]["measured"]["down_for_s"][0] > 24 * 3600
    # RTO of each row on what it blocks: an apply at the platform
    assert [s["measurements"]["rto_measured_on"] for s in results["scenarios"][:4]] == \
        ["apply:intune", "apply:intune", "apply:jamf", "apply:sccm"]
    # the domain's failover drill: every worker replaced, a test intent, a Ring 0 rollback on all five
    assert failover["smoke_verification"]["verdict"] == "pass"
    assert failover["rollback_applied_ring0"]["measured"]["platforms"] == 5


def test_a_control_plane_promoting_while_platforms_are_paused_fails_each_row_naming_the_gate(tmp_path):
    with EmbeddedLab(cp_flags=("--unsafe-ignore-platform-health",)) as misbehaving:
        code, results = drill(misbehaving, tmp_path)
    assert code == 1 and results["verdict"] == "fail"
    expected = ["promotion_refused_intune", "cab_pause_holds_until_lifted", "promotion_refused_jamf",
                "promotion_refused_sccm"]
    for scenario, gate_id in zip(results["scenarios"][:4], expected, strict=True):
        assert scenario["verdict"] == "fail", scenario["name"]
        assert gates_of(scenario)[gate_id]["verdict"] == "fail"
    assert gates_of(results["scenarios"][0])["promotion_refused_intune"]["measured"]["answers"] == ["200"]


def test_the_auto_scaling_group_replaces_a_killed_connector_worker(lab):
    from harness.faults import FaultContext, build
    from harness.model import FaultSpec
    from tests.support import wait_for

    before = len(lab.connector_replacements())
    old = lab.connectors.worker_pid("jamf")
    fault = build(FaultSpec("connector_worker_kill", "jamf"))
    fault.inject(FaultContext(toxiproxy=lab.toxiproxy, lab=lab))
    try:
        replaced = wait_for(lambda: lab.connector_replacements()[before:], timeout=30)
    finally:
        fault.heal(FaultContext(toxiproxy=lab.toxiproxy, lab=lab))
    assert [(r["platform"], r["old_pid"]) for r in replaced] == [("jamf", old)]
    assert lab.connectors.worker_pid("jamf") == replaced[0]["new_pid"] != old
