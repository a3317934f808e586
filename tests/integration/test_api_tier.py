"""Matrix row "Control Plane API/Policy services / Stateless service outage": its negatives, a load
balancer that neither probes nor retries, and a Control Plane that publishes while ServiceHealth
is Unhealthy and writes no SIEM line, must each fail the named gate; tag expressions. The row
itself runs on every provider in provider_contract.py."""

from __future__ import annotations

from pathlib import Path

from harness.plan import load_plan
from tests.integration.conftest import gates_of, not_passed, run_loaded, run_plan
from tests.integration.scenario_cut import scenario_until

ROOT = Path(__file__).resolve().parents[2]


STATELESS_OUTAGE = ROOT / "scenarios" / "api" / "stateless_outage.feature"


def drill(lab, tmp_path, feature: Path = STATELESS_OUTAGE):
    """Row 1 alone (the negatives judge its scenario; the after-failover part adds nothing)."""
    return run_plan("quarterly-api.yaml", lab, tmp_path, scenarios=(feature,))


def test_a_balancer_without_probes_or_retries_fails_the_row_naming_the_gate(lab, tmp_path):
    """The row's scenario up to one availability zone's loss: the balancer's gates are stated
    there; the rest (the whole tier down, the redeploys) would only wait, behind a balancer that
    never probes, up to 30 s more for the writes to recover. On the module's lab, its HAProxy
    restarted without probes and retries for this drill only (and back after it)."""
    one_zone_lost = scenario_until(STATELESS_OUTAGE, "while one availability zone is lost", tmp_path)
    with lab.balancer_settings(checks=False, retries=False):
        code, results = drill(lab, tmp_path, one_zone_lost)
    g = gates_of(results["scenarios"][0])
    assert code == 1 and results["verdict"] == "fail"
    assert g["no_failed_requests_beyond_probe_interval"]["verdict"] == "fail"
    assert g["no_failed_requests_beyond_probe_interval"]["measured"]["failed_after_window"] > 0
    # the same loss uses the error budget: requests not served, a bad 5-minute window
    m = results["scenarios"][0]["measurements"]
    assert g["availability_budget"]["measured"] > 0 and m["bad_windows"] >= 1 and m["requests_not_served"] > 0


def test_a_control_plane_publishing_while_unhealthy_and_silent_to_the_siem_fails_those_gates(lab, tmp_path):
    """On the module's lab, its Control Plane instances restarted with the two unsafe flags for this
    drill only (and back after it)."""
    with lab.control_plane_flags("--unsafe-publish-while-unhealthy", "--unsafe-skip-siem"):
        code, results = drill(lab, tmp_path)
    g = gates_of(results["scenarios"][0])
    assert code == 1 and results["verdict"] == "fail"
    assert g["publish_refused_while_unhealthy"]["verdict"] == "fail"
    assert g["publish_refused_while_unhealthy"]["measured"]["accepted"] >= 1
    recorded = g["correlation_ids_recorded"]
    assert recorded["verdict"] == "fail" and recorded["measured"]["missing_in_event_store"] == []
    assert len(recorded["measured"]["missing_in_siem"]) > 0


def test_a_tag_expression_runs_only_the_matching_scenarios(lab, tmp_path):
    plan_file = tmp_path / "tagged.yaml"
    plan_file.write_text(
        "drill: tagged\ntitle: t\nha_domain: api\nlab: embedded\nscenarios: '@quarterly and @ha-domain:api'\n"
    )
    code, results = run_loaded(load_plan(plan_file, ROOT), lab, tmp_path)
    assert sorted({s["feature"] for s in results["scenarios"]}) == [
        "api/after_failover.feature",
        "api/stateless_outage.feature",
    ]
    assert code == 0, not_passed(results)
