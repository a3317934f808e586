"""What one step tells a later one is typed state on the Scenario (harness.runner.scenario), not a
dict of string keys: a step reading state no earlier step set stops with StateMissing naming it,
before it acts; figures land in the scenario's measurements."""

from __future__ import annotations

import dataclasses

import pytest

from harness.runner import database, evidence
from harness.runner.scenario import (
    DrillRun,
    EvidencePack,
    PrimaryFault,
    ProbeIntent,
    Scenario,
    StateMissing,
    StoreFault,
    probe_or_none,
    required,
)


def scenario() -> Scenario:
    return DrillRun(drill="d", lab=None, targets={}).begin("s", "f", [])  # type: ignore[arg-type]


def test_the_scenario_has_typed_state_and_no_string_keyed_notes():
    names = {f.name for f in dataclasses.fields(Scenario)}
    assert {"probe", "probe_approved", "primary", "lost_az", "evidence", "backup", "figures"} <= names
    assert "notes" not in names


def test_required_names_the_missing_state():
    assert required("az1", "the availability zone lost") == "az1"
    with pytest.raises(StateMissing, match="the availability zone lost: no earlier step"):
        required(None, "the availability zone lost")


def test_the_probe_intent_defaults_to_nothing_created():
    scn = scenario()
    assert probe_or_none(scn) == (0, "")
    scn.probe = ProbeIntent(7, "k-probe")
    assert probe_or_none(scn) == (7, "k-probe")


def test_a_step_that_needs_the_primary_fault_stops_before_acting_without_it():
    scn = scenario()
    with pytest.raises(StateMissing, match="the database primary's fault"):
        database.writes_resume(scn)
    assert scn.checks == [] and scn.recorder.ops() == []
    scn.primary = PrimaryFault("kill-primary:pg1", "pg1")
    assert database.primary_fault(scn).node == "pg1"


def test_an_evidence_step_without_the_store_fault_stops_before_publishing():
    scn = scenario()
    scn.evidence.without_copy = EvidencePack(3, "k-nocopy", "obj")
    with pytest.raises(StateMissing, match="the evidence store's fault"):
        evidence.publish_blocked(scn)
    assert scn.recorder.ops() == []  # nothing was published


def test_the_backoff_gate_reads_the_pack_and_the_fault():
    scn = scenario()
    scn.evidence.store_fault = StoreFault("cut:evidence-store", "unreachable")
    scn.evidence.without_copy = EvidencePack(3, "k-nocopy", None)
    evidence.backoff_exponential(scn)
    gate = scn.checks[-1]
    assert (gate.fault, gate.key, gate.object_key, gate.id) == (
        "cut:evidence-store",
        "k-nocopy",
        "k-nocopy",
        "retry_backoff_exponential_unreachable",
    )


def test_each_scenario_has_its_own_state():
    run = DrillRun(drill="d", lab=None, targets={})  # type: ignore[arg-type]
    first, second = run.begin("a", "f", []), run.begin("b", "f", [])
    first.backup.publishes.append(None)
    first.figures["x"] = 1
    assert second.backup.publishes == [] and second.figures == {}
