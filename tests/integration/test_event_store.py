"""Matrix row "Event store write blocked": its negative, a Control Plane that acknowledges changes
without their audit event (and ignores the store for publish) must fail the row. The row itself
runs on every provider in provider_contract.py."""

from __future__ import annotations

from harness.lab.embedded import EmbeddedLab
from tests.integration.conftest import ROOT, gates_of, run_plan
from tests.integration.scenario_cut import scenario_until

WRITE_BLOCKED = ROOT / "scenarios" / "eventstore" / "write_blocked.feature"


def drill(lab, tmp_path):
    """The row's scenario alone (the negative judges it; the after-failover part adds nothing), up
    to the old primary's rebuild: the negative's gates are stated by then, the failback and the
    post-failover validation add nothing to them. (Not before the rebuild: the lab must be green
    again by itself after the heal, or the scenario waits out the steady-state timeout.)"""
    return run_plan(
        "quarterly-event-store.yaml",
        lab,
        tmp_path,
        scenarios=(scenario_until(WRITE_BLOCKED, "the old primary is rebuilt as a replica", tmp_path),),
    )


def test_a_control_plane_acknowledging_changes_without_their_event_fails_the_row_naming_the_gates(tmp_path):
    with EmbeddedLab(cp_flags=("--unsafe-ignore-event-store",)) as misbehaving:
        code, results = drill(misbehaving, tmp_path)
    g = gates_of(results["scenarios"][0])
    assert code == 1 and results["verdict"] == "fail"
    assert g["publish_refused_event_store_blocked"]["verdict"] == "fail"
    assert "200" in g["publish_refused_event_store_blocked"]["measured"]["publish"]
    assert g["no_change_acknowledged_without_event"]["verdict"] == "fail"
    assert g["no_change_acknowledged_without_event"]["measured"] > 0
