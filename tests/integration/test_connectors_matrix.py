"""Matrix rows 4-6 (Intune Graph degraded, Jamf API outage, SCCM site server down) on the
embedded lab, and their negative: a Control Plane that promotes while a platform is paused
must fail each row naming the promotion gate."""

from __future__ import annotations

from harness.lab.embedded import EmbeddedLab
from tests.integration.conftest import run_plan


def drill(lab, tmp_path):
    return run_plan("quarterly-connectors.yaml", lab, tmp_path)


def gates(scenario) -> dict:
    return {g["id"]: g for g in scenario["gates"]}


def test_rows_4_to_6_pause_promotions_back_off_requeue_and_resume_by_their_rules(lab, tmp_path):
    code, results = drill(lab, tmp_path)
    throttled, cab_pause, jamf, sccm = (gates(s) for s in results["scenarios"])
    failing = {s["name"]: [g for g in s["gates"] if g["verdict"] != "pass"] for s in results["scenarios"]}
    assert code == 0, failing
    # row 4: other platforms go on; backoff doubles; resume needs GraphThrottleCount <= 5
    assert throttled["other_platforms_continue"]["measured"] == {p: [1] for p in ("jamf", "sccm", "landscape", "ansible")}
    assert throttled["connector_backoff_2x_intune"]["measured"]["ratios"] == [2.0, 2.0]
    held = throttled["resume_requires_throttle_count_le_5"]["measured"]
    assert held["throttle_count"] >= 6 and held["promotion"] == 503
    assert throttled["promotions_resumed_intune"]["measured"]["throttle_count"] <= 5
    assert cab_pause["cab_manual_pause_intune"]["measured"]["degraded_for_s"] > 15 * 60
    assert cab_pause["cab_pause_holds_until_lifted"]["measured"]["health"] == "Healthy"
    # row 5: dead letters after the maximum attempts, requeued, applied once, depth reported
    assert jamf["dead_lettered_jamf"]["measured"]["max_attempt"] == 4
    assert jamf["requeue_confirmed_jamf"]["measured"]["requeued"] == 2
    assert jamf["applied_exactly_once_jamf"]["measured"] == {"published": 2, "missing": 0, "duplicated": 0}
    assert jamf["queue_depth_reported_jamf"]["measured"]["queue_depth"] >= 1
    # row 6: the gate is SCCM.SiteHealth; manual import offered only after 24 h
    assert sccm["promotion_refused_sccm"]["measured"]["gate"] == "SCCM.SiteHealth"
    assert sccm["site_outage_recorded_sccm"]["measured"]["fallback"] is None
    assert sccm["manual_import_fallback_sccm"]["measured"]["degraded_for_s"] > 24 * 3600


def test_a_control_plane_promoting_while_platforms_are_paused_fails_each_row_naming_the_gate(tmp_path):
    with EmbeddedLab(cp_flags=("--unsafe-ignore-platform-health",)) as misbehaving:
        code, results = drill(misbehaving, tmp_path)
    assert code == 1 and results["verdict"] == "fail"
    expected = ["promotion_refused_intune", "cab_pause_holds_until_lifted", "promotion_refused_jamf",
                "promotion_refused_sccm"]
    for scenario, gate_id in zip(results["scenarios"], expected, strict=True):
        assert scenario["verdict"] == "fail", scenario["name"]
        assert gates(scenario)[gate_id]["verdict"] == "fail"
    assert gates(results["scenarios"][0])["promotion_refused_intune"]["measured"]["status"] == 200
