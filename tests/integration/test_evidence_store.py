"""Matrix row "Evidence store / Object storage outage" on the embedded lab, and its negative:
a Control Plane that publishes without checking the evidence store must fail the row's gate."""

from __future__ import annotations

from harness.lab.embedded import EmbeddedLab
from tests.integration.conftest import gates_of, not_passed, run_plan


def drill(lab, tmp_path):
    return run_plan("quarterly-evidence-store.yaml", lab, tmp_path)


def test_an_evidence_store_outage_blocks_publish_backs_off_and_fails_over_only_with_a_validated_copy(
        lab, tmp_path):
    code, results = drill(lab, tmp_path)
    scenario = results["scenarios"][0]
    g = gates_of(scenario)
    assert code == 0, not_passed(results)
    # the backoff as the store's gateway received the attempts: about 0.2, 0.4, 0.8 s
    gaps = g["retry_backoff_exponential_answering_503"]["measured"]["gaps_ms"]
    assert len(gaps) == 3 and gaps[0] >= 150 and all(1.5 <= b / a <= 3 for a, b in zip(gaps, gaps[1:]))
    for condition in ("unreachable", "answering_503"):
        answer = g[f"publish_blocked_store_{condition}"]["measured"]["publish"]
        assert answer.startswith("503 cause evidence_store") and answer.endswith("Impact publish blocked")
    assert g["validated_copy_present"]["measured"]["sha256"] == g["validated_copy_present"]["measured"]["expected"]
    assert g["validated_copy_absent"]["measured"]["sha256"] is None
    assert g["failover_with_validated_copy"]["measured"]["evidence_source"] == "alternate-region"
    assert g["publishing_resumed"]["verdict"] == "pass" and g["impact_event_recorded"]["verdict"] == "pass"
    # RTO on what the outage blocks: publishing
    assert scenario["measurements"]["rto_measured_on"] == "publish" and scenario["measurements"]["rto_seconds"] > 1


def test_a_control_plane_publishing_while_the_store_is_down_fails_the_row_naming_the_gate(tmp_path):
    with EmbeddedLab(cp_flags=("--unsafe-skip-evidence-check",)) as misbehaving:
        code, results = drill(misbehaving, tmp_path)
    g = gates_of(results["scenarios"][0])
    assert code == 1 and results["verdict"] == "fail"
    assert g["publish_blocked_store_unreachable"]["verdict"] == "fail"
    assert g["publish_blocked_store_unreachable"]["measured"] == {"publish": "200"}
