"""Matrix row "Evidence store / Object storage outage" on the embedded lab, and its negative:
a Control Plane that publishes without checking the evidence store must fail the row's gate."""

from __future__ import annotations

from harness.lab.embedded import EmbeddedLab
from tests.integration.conftest import run_plan


def drill(lab, tmp_path):
    return run_plan("quarterly-evidence-store.yaml", lab, tmp_path)


def gates(results) -> dict:
    return {g["id"]: g for g in results["scenarios"][0]["gates"]}


def test_an_evidence_store_outage_blocks_publish_backs_off_and_fails_over_only_with_a_validated_copy(
        lab, tmp_path):
    code, results = drill(lab, tmp_path)
    g = gates(results)
    assert code == 0, [x for x in g.values() if x["verdict"] != "pass"]
    for condition in ("unreachable", "answering_503"):
        gaps = g[f"retry_backoff_exponential_{condition}"]["measured"]["gaps_ms"]
        assert len(gaps) == 3 and gaps[0] >= 150 and all(1.5 <= b / a <= 3 for a, b in zip(gaps, gaps[1:]))
        assert g[f"publish_blocked_store_{condition}"]["measured"]["Impact"] == "publish blocked"
    assert g["failover_with_validated_copy"]["measured"]["evidence_source"] == "alternate-region"
    assert g["publishing_resumed"]["measured"]["evidence_source"] == "primary"


def test_a_control_plane_publishing_while_the_store_is_down_fails_the_row_naming_the_gate(tmp_path):
    with EmbeddedLab(cp_flags=("--unsafe-skip-evidence-check",)) as misbehaving:
        code, results = drill(misbehaving, tmp_path)
    g = gates(results)
    assert code == 1 and results["verdict"] == "fail"
    assert g["publish_blocked_store_unreachable"]["verdict"] == "fail"
    assert g["publish_blocked_store_unreachable"]["measured"]["status"] == 200
