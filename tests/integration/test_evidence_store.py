"""Matrix row "Evidence store / Object storage outage": its negative, a Control Plane that publishes
without checking the evidence store must fail the row's gate. The row itself runs on every provider
in test_provider_contract.py."""

from __future__ import annotations

from harness.lab.embedded import EmbeddedLab
from tests.integration.conftest import gates_of, run_plan


def drill(lab, tmp_path):
    return run_plan("quarterly-evidence-store.yaml", lab, tmp_path)


def test_a_control_plane_publishing_while_the_store_is_down_fails_the_row_naming_the_gate(tmp_path):
    with EmbeddedLab(cp_flags=("--unsafe-skip-evidence-check",)) as misbehaving:
        code, results = drill(misbehaving, tmp_path)
    g = gates_of(results["scenarios"][0])
    assert code == 1 and results["verdict"] == "fail"
    assert g["publish_blocked_store_unreachable"]["verdict"] == "fail"
    assert g["publish_blocked_store_unreachable"]["measured"] == {"publish": "200"}
