"""Matrix rows 4-6 (Intune Graph degraded, Jamf API outage, SCCM site server down): their negative,
a Control Plane that promotes while a platform is paused must fail each row naming the promotion
gate, and the connector workers' auto-scaling group. The rows themselves run on every provider in
provider_contract.py."""

from __future__ import annotations

from harness.lab.capabilities import ConnectorWorkers
from tests.integration.conftest import ROOT, gates_of, run_plan
from tests.integration.scenario_cut import scenario_until


def drill(lab, tmp_path):
    """Rows 4-6 alone (the negative judges their scenarios; the after-failover part adds nothing).
    Intune's throttling scenario ends at its promotion, where its gate is stated: behind a Control
    Plane that lets the promotion through (one more intune intent sharing the 6 throttled answers),
    no intent reaches the connector's 4 attempts, and the backoff step waited its whole 30 s for it."""
    folder = ROOT / "scenarios" / "connectors"
    intune = scenario_until(
        folder / "intune_graph_degraded.feature",
        "promoting one intune intent is refused by the gate PromotionsPaused",
        tmp_path,
    )
    return run_plan(
        "quarterly-connectors.yaml",
        lab,
        tmp_path,
        scenarios=(intune, folder / "jamf_outage.feature", folder / "sccm_site_down.feature"),
    )


def test_a_control_plane_promoting_while_platforms_are_paused_fails_each_row_naming_the_gate(lab, tmp_path):
    """On the module's lab, its Control Plane instances restarted with the unsafe flag for this
    drill only (and back after it)."""
    with lab.control_plane_flags("--unsafe-ignore-platform-health"):
        code, results = drill(lab, tmp_path)
    assert code == 1 and results["verdict"] == "fail"
    expected = [
        "promotion_refused_intune",
        "cab_pause_holds_until_lifted",
        "promotion_refused_jamf",
        "promotion_refused_sccm",
    ]
    for scenario, gate_id in zip(results["scenarios"], expected, strict=True):
        assert scenario["verdict"] == "fail", scenario["name"]
        assert gates_of(scenario)[gate_id]["verdict"] == "fail"
    assert gates_of(results["scenarios"][0])["promotion_refused_intune"]["measured"]["answers"] == ["200"]


def test_the_auto_scaling_group_replaces_a_killed_connector_worker(lab):
    from harness.faults import FaultContext, build
    from harness.model import FaultSpec
    from tests.support import wait_for

    before = len(lab.capability(ConnectorWorkers).connector_replacements())
    old = lab.connectors.worker_pid("jamf")
    fault = build(FaultSpec("connector_worker_kill", "jamf"))
    fault.inject(FaultContext(toxiproxy=lab.toxiproxy, lab=lab))
    try:
        replaced = wait_for(lambda: lab.capability(ConnectorWorkers).connector_replacements()[before:], timeout=30)
    finally:
        fault.heal(FaultContext(toxiproxy=lab.toxiproxy, lab=lab))
    assert [(r["platform"], r["old_pid"]) for r in replaced] == [("jamf", old)]
    assert lab.connectors.worker_pid("jamf") == replaced[0]["new_pid"] != old
