"""Matrix row "Evidence store / Object storage outage": its negatives, a Control Plane that publishes
without checking the evidence store, and one that approves without a Committed evidence pack (spec
validation rule 1), must fail the row's gates. The row itself runs on every provider in
provider_contract.py. Both negatives share the module's lab: its Control Plane instances are
restarted with the unsafe flag for the one drill (EmbeddedLab.control_plane_flags) and back after."""

from __future__ import annotations

from pathlib import Path

from tests.integration.conftest import ROOT, gates_of, not_passed, run_plan
from tests.integration.scenario_cut import scenario_until

OUTAGE = ROOT / "scenarios" / "evidence" / "object_storage_outage.feature"


def drill(lab, tmp_path, feature: Path = OUTAGE):
    """The row's scenario alone (the negatives judge it; the after-failover part adds nothing)."""
    return run_plan("quarterly-evidence-store.yaml", lab, tmp_path, scenarios=(feature,))


def test_a_control_plane_publishing_while_the_store_is_down_fails_the_row_naming_the_gate(lab, tmp_path):
    """The outage scenario up to the store's unreachable part, where the gate is stated (the 503
    part, the recovery and the object lock add nothing to it)."""
    unreachable = scenario_until(OUTAGE, "an event Impact = publish blocked is recorded", tmp_path)
    with lab.control_plane_flags("--unsafe-skip-evidence-check"):
        code, results = drill(lab, tmp_path, unreachable)
    g = gates_of(results["scenarios"][0])
    assert code == 1 and results["verdict"] == "fail"
    assert g["publish_blocked_store_unreachable"]["verdict"] == "fail"
    assert g["publish_blocked_store_unreachable"]["measured"] == {"publish": "200"}


def test_a_control_plane_approving_without_committed_evidence_fails_rule_1_naming_the_intent(lab, tmp_path):
    """Only the outage scenario (the rule is drilled there): the approvals asked for while the
    intent's evidence upload is in flight and after its refusal are acknowledged, so the gate fails
    naming the intent; the rest of the row still passes."""
    with lab.control_plane_flags("--unsafe-approve-without-evidence"):
        code, results = run_plan("quarterly-evidence-store.yaml", lab, tmp_path, scenarios=(OUTAGE,))
    assert len(results["scenarios"]) == 1
    g = gates_of(results["scenarios"][0])
    rule = g["approval_refused_without_committed_evidence"]
    assert code == 1 and results["verdict"] == "fail"
    assert rule["verdict"] == "fail" and rule["judges"] == "system", rule
    intent = rule["measured"]["intent_id"]
    assert rule["detail"].startswith(f"intent {intent}: approval acknowledged"), rule
    assert rule["measured"]["approvals"][0] == "200 (upload in flight)", rule
    others = {k: v["verdict"] for k, v in g.items() if k != "approval_refused_without_committed_evidence"}
    assert set(others.values()) == {"pass"}, not_passed(results)
