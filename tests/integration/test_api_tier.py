"""Matrix row "Control Plane API/Policy services / Stateless service outage" on the embedded lab,
and its negative: a load balancer that neither probes nor retries must fail the row's gate."""

from __future__ import annotations

from pathlib import Path

from harness.lab.embedded import EmbeddedLab
from harness.plan import load_plan
from harness.runner import run_drill
from tests.integration.conftest import run_plan

ROOT = Path(__file__).resolve().parents[2]


def drill(lab, tmp_path):
    return run_plan("quarterly-api.yaml", lab, tmp_path)


def gates(results) -> dict:
    return {g["id"]: g for g in results["scenarios"][0]["gates"]}


def test_losing_an_az_then_the_tier_is_survived_as_the_matrix_says(lab, tmp_path):
    code, results = drill(lab, tmp_path)
    g = gates(results)
    assert code == 0, [x for x in g.values() if x["verdict"] != "pass"]
    assert g["no_failed_requests_beyond_probe_interval"]["measured"]["requests_after_kill"] > 20
    assert "no healthy instance" in g["intents_and_approvals_blocked"]["measured"]["intent"]
    assert g["service_health_before_publish"]["measured"] == {"ServiceHealth": "Healthy", "publish": 200}


def test_a_balancer_without_probes_or_retries_fails_the_row_naming_the_gate(tmp_path):
    with EmbeddedLab(lb_checks=False, lb_retries=False) as misbehaving:
        code, results = drill(misbehaving, tmp_path)
    g = gates(results)
    assert code == 1 and results["verdict"] == "fail"
    assert g["no_failed_requests_beyond_probe_interval"]["verdict"] == "fail"
    assert g["no_failed_requests_beyond_probe_interval"]["measured"]["failed_after_window"] > 0


def test_a_tag_expression_runs_only_the_matching_scenarios(lab, tmp_path):
    plan_file = tmp_path / "tagged.yaml"
    plan_file.write_text("drill: tagged\ntitle: t\nha_domain: api\nlab: embedded\n"
                         "scenarios: '@quarterly and @ha-domain:api'\n")
    code, results = run_drill(load_plan(plan_file, ROOT), tmp_path / "out", tmp_path / "cab.jsonl", lab=lab,
                              log=lambda *a, **k: None)
    assert [s["feature"] for s in results["scenarios"]] == ["api/stateless_outage.feature"]
    assert code == 0
