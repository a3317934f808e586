"""results.json against its published JSON Schema (harness/report/schema/results.schema.json, shipped in the
package): a realistic result built by hand, the results.json every drill and chaos plan's run writes through the
runner's own code (drill_result, the CAB record, write_outputs) from recorded histories, no lab
started; and results the schema must refuse."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from harness.cab.ledger import CabKey
from harness.chaos.plan import load_chaos_plan
from harness.chaos.runner import as_plan
from harness.gates import evaluate_gate, evaluate_gates
from harness.gates.availability import AvailabilityBudget
from harness.gates.recovery import LostWrites, RtoSeconds
from harness.model import DrillResult, FaultRecord, GateResult, History, ScenarioResult, Verdict
from harness.plan import Plan, load_plan
from harness.report.record import Recording, complete, write_outputs
from harness.report.results_json import SCHEMA_VERSION, results_text
from harness.runner.results import drill_result
from harness.runner.scenario import DrillRun
from harness.workload import Recorder

from .gates.builder import H
from .gates.cases import CASES, KILL

REPO = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((REPO / "harness" / "report" / "schema" / "results.schema.json").read_text())
VALIDATOR = Draft202012Validator(SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER)
DRILL_PLANS = sorted((REPO / "drills").glob("*.yaml"))
CHAOS_PLANS = sorted((REPO / "drills" / "chaos").glob("*.yaml"))


def problems(data: Any) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in VALIDATOR.iter_errors(data)]


def test_the_schema_is_a_valid_draft_2020_12_schema_for_this_version():
    Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert SCHEMA_VERSION == DrillResult(drill="d").schema_version == 4
    assert f"schema_version {SCHEMA_VERSION}" in SCHEMA["title"]


# ---- a realistic result, by hand ----------------------------------------------------------


def realistic() -> DrillResult:
    """A failed database drill: typed and untyped gates judged by the real gate code on recorded
    histories, a fault record, the timeline, events and the CAB record."""
    recovered = (
        H()
        .op("write", 1.0, value="w1")
        .inject(KILL, 10.0)
        .op("write", 11.0, ok=False, status=503)
        .op("write", 16.0, value="w2")
        .op("final_read", 30.0, value=["w1", "w2"])
        .build()
    )
    probes = H()
    for t in range(0, 20):
        probes.op("probe", float(t), ok=not 10 <= t < 12, status=200 if not 10 <= t < 12 else 503)
    gates = evaluate_gates(
        [RtoSeconds(30.0, KILL), RtoSeconds(5.0, KILL), LostWrites(), AvailabilityBudget(0.999)], recovered
    )
    gates.append(evaluate_gate(AvailabilityBudget(0.999), probes.build()))
    scenario = ScenarioResult(
        name="Primary database killed",
        feature="database/primary_failover.feature",
        tags=["database", "row-2"],
        verdict=Verdict.worst(g.verdict for g in gates),
        description="The primary is killed under a write load.",
        matrix_row={"number": 2, "component": "Metadata DB", "failure": "Primary node fails"},
        started_at="2026-11-01T10:00:00+00:00",
        finished_at="2026-11-01T10:02:30+00:00",
        measurements={
            "rto_seconds": 6.1,
            "rpo_seconds": 0.0,
            "lost_writes": 0,
            "availability": None,
            "availability_buckets": [{"start": 0.0, "ok": 9, "total": 10, "ratio": 0.9}],
        },
        not_applicable={"availability": "no probe answered"},
        phases={"detect": 1.5, "promote": 2.9},
        lost_write_keys=[],
        observations=["Failover to pg-b."],
        error=None,
        correlation_id="run-1/1",
        correlation_ids=["run-1/1"],
        faults=[
            FaultRecord("kill-primary:pg-a", "container_kill", "pg-a", "kill the primary", 10.0, 25.0, 60.0),
            FaultRecord("partition", "network_partition", "pg-b", "cut pg-b off", 12.0, None, None, "timed out"),
        ],
        timeline={
            "probes": [[0.0, "ok"], [10.0, "fail"], [12.0, "ok"]],
            "fault_windows": [[10.0, 25.0, "kill-primary:pg-a"], [12.0, None, "partition"]],
        },
        events=[
            {
                "t": 10.0,
                "kind": "inject",
                "name": KILL,
                "source": "journal",
                "wall": 1.7e9,
                "correlation_id": "run-1/1",
                "event_id": "e-1",
            }
        ],
        operations={"write": {"ok": 2, "fail": 1}, "final_read": {"ok": 1}},
        gates=gates,
    )
    untested = ScenarioResult(
        name="A scenario that stopped early",
        feature="database/replication_cut.feature",
        error="step 'When the link is cut' failed: RuntimeError: boom",
    )
    return DrillResult(
        drill="quarterly-database",
        title="Quarterly database drill",
        ha_domain="database",
        plan="drills/quarterly-database.yaml",
        correlation_id="run-1",
        started_at="2026-11-01T10:00:00+00:00",
        finished_at="2026-11-01T10:05:00+00:00",
        verdict=Verdict.FAIL,
        targets={"rto_seconds": 30.0, "rpo_seconds": 300.0, "availability": 0.999},
        schedule="0 6 1 */3 *",
        environment={"hostname": "lab-1", "lab_provider": "embedded", "versions": {"postgresql": "16.2"}},
        scenarios=[scenario, untested],
        correlation_ids=["run-1", "run-1/1"],
        dry_run=False,
        signoff={"owner": "Platform SRE", "operator": "sre", "approver": None, "change_ticket": "CHG1"},
        environment_class="lab (embedded)",
        system_version="1.4.2",
        harness={"version": "0.9", "commit": None},
        plan_sha256="a" * 64,
        risk={"items": [], "residual": {"score": 0, "level": "none"}},
        since_last_run=[
            {"subject": "HA domain database", "matrix_row": None, "previous": None, "changed": ["first recorded run"]}
        ],
    )


def test_a_realistic_results_json_is_valid():
    data = json.loads(results_text(realistic()))
    assert problems(data) == []
    gates = data["scenarios"][0]["gates"]
    assert [(g["id"], g["verdict"], g["operator"], g["limit"], g["unit"]) for g in gates[:3]] == [
        ("rto_seconds", "pass", "<=", 30.0, "s"),
        ("rto_seconds", "fail", "<=", 5.0, "s"),
        ("lost_writes", "pass", "<=", 0, "writes"),
    ]
    # the error budget: typed, in % of the month's budget (one bad window of the requests each time)
    assert [(g["id"], g["verdict"], g["operator"], g["limit"], g["unit"], g["measured"]) for g in gates[3:]] == [
        ("availability_budget", "pass", "<=", 25.0, "%", 11.5741)
    ] * 2


def test_keys_added_at_the_top_level_are_allowed_and_the_cab_keys_typed():
    data = json.loads(results_text(realistic()))
    assert (
        problems({**data, "manifest": {"sha256": "b" * 64}, "since_last_run": {"rows": []}, "something_new": [1, 2]})
        == []
    )
    assert problems({**data, "signoff": "Platform SRE"}) != []


# ---- the results.json of every plan's run, through the runner's own code --------------------


class RecordedLab:
    """A lab that was never started: what the results ask of a lab, answered from nothing."""

    api_url = None

    def describe(self) -> dict[str, Any]:
        return {"provider": "embedded", "versions": {"postgresql": "16"}}


class Replayed(Recorder):
    """A recorder holding a history recorded earlier (the gate cases' hand-built histories)."""

    def __init__(self, history: History):
        super().__init__()
        self._history = history

    def history(self) -> History:
        return self._history


def feature_name(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(REPO / "scenarios"))
    except ValueError:
        return str(path)


def plans() -> list[tuple[str, Plan]]:
    found = [(p.name, load_plan(p, root=REPO)) for p in DRILL_PLANS]
    return found + [(f"chaos/{p.name}", as_plan(load_chaos_plan(p), "embedded")) for p in CHAOS_PLANS]


PLANS = plans()
FAMILIES = list(CASES.items())


def families_of(index: int) -> list:
    """This plan's share of the gate families: every family is judged in one plan's run."""
    return FAMILIES[index :: len(PLANS)]


def run_of(plan: Plan, families: list) -> DrillRun:
    """The plan's run as the runner leaves it: one scenario per gate family, its history a case's,
    its gates every case of the family judged by the gate code."""
    run = DrillRun(drill=plan.drill, lab=RecordedLab(), targets=dict(plan.targets))
    features = [feature_name(f) for f in plan.scenarios] or [str(plan.path)]
    for n, (cls, cases) in enumerate(families):
        scn = run.begin(f"{cls.__name__} cases", features[n % len(features)], ["unit"], cls.__doc__ or "")
        scn.recorder = Replayed(cases[0].history)
        if cls is RtoSeconds:
            scn.recover_on(KILL, "write")
        scn.gates = [evaluate_gate(c.gate, c.history) for c in cases]
        scn.steps_total = scn.steps_done = 1
        scn.finished_at = scn.started_at
    run.finished_at = run.started_at
    return run


@pytest.mark.parametrize("index", range(len(PLANS)), ids=[name for name, _ in PLANS])
def test_the_results_json_of_every_plans_run_is_valid(index, tmp_path):
    _, plan = PLANS[index]
    rec = Recording(tmp_path / "cab-log.jsonl", key=CabKey(b"k" * 32, tmp_path / "cab.key"))
    for attempt in (1, 2):  # the second run has a previous one: since_last_run compares
        result = drill_result(plan, run_of(plan, families_of(index)), RecordedLab())
        complete(result, plan, RecordedLab(), rec)
        out = tmp_path / f"out-{attempt}"
        write_outputs(result, plan, out, rec, log=lambda *a, **k: None)
        data = json.loads((out / "results.json").read_text())
        assert problems(data) == [], plan.path
        assert data["schema_version"] == SCHEMA_VERSION and data["scenarios"]
    assert any(row.get("previous") for row in data["since_last_run"])


def test_every_gate_family_is_in_some_plans_run():
    judged = [cls for i in range(len(PLANS)) for cls, _ in families_of(i)]
    assert sorted(c.__name__ for c in judged) == sorted(c.__name__ for c in CASES)


# ---- what the schema refuses ------------------------------------------------------------------


def valid() -> dict[str, Any]:
    return json.loads(results_text(realistic()))


def first_gate(data: dict[str, Any]) -> dict[str, Any]:
    return data["scenarios"][0]["gates"][0]


def test_a_typed_gate_with_a_text_measured_value_is_refused():
    data = valid()
    first_gate(data)["measured"] = "6.1 s"
    assert any("measured" in p for p in problems(data))


@pytest.mark.parametrize(
    "change",
    [
        {"operator": "=<"},
        {"limit": "30"},
        {"limit": None},
        {"operator": None},  # a limit and a unit with no comparison
        {"verdict": "passed"},
        {"id": 7},
        {"unit": ""},
        {"threshold": 30},
        {"surprise": 1},
        {"judges": "deployment"},
    ],
    ids=[
        "an unknown operator",
        "a limit as text",
        "an operator without a limit",
        "a limit without an operator",
        "a verdict outside the three",
        "an id that is a number",
        "an empty unit",
        "a threshold as a number",
        "an unknown gate key",
        "judges outside system, runbook, lab",
    ],
)
def test_a_malformed_gate_is_refused(change):
    data = valid()
    first_gate(data).update(change)
    assert problems(data) != []


@pytest.mark.parametrize(
    "path, value",
    [
        (("verdict",), "PASS"),
        (("drill",), ""),
        (("schema_version",), "3"),
        (("targets", "rto_seconds"), "30 s"),
        (("scenarios", 0, "verdict"), None),
        (("scenarios", 0, "faults", 0, "injected_s"), "10"),
        (("scenarios", 0, "operations", "write", "ok"), -1),
        (("scenarios", 0, "timeline", "probes", 0), [0.0]),
        (("scenarios", 0, "unknown_key"), 1),
    ],
    ids=lambda v: "/".join(map(str, v)) if isinstance(v, tuple) else None,
)
def test_a_malformed_drill_or_scenario_is_refused(path, value):
    data = copy.deepcopy(valid())
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    assert problems(data) != []


def test_a_missing_scenarios_list_is_refused():
    data = valid()
    del data["scenarios"]
    assert problems(data) != []


def test_every_gate_says_what_it_judges_and_a_gate_without_it_is_refused():
    data = valid()
    assert {g["judges"] for s in data["scenarios"] for g in s["gates"]} == {"system"}
    del first_gate(data)["judges"]
    assert any("judges" in p for p in problems(data))


def test_a_result_written_before_version_4_loads_with_judges_none():
    data = valid()
    for gate in data["scenarios"][0]["gates"]:
        del gate["judges"]
    data["schema_version"] = 3
    loaded = DrillResult.from_json(data)
    assert [g.judges for g in loaded.scenarios[0].gates] == [None] * len(data["scenarios"][0]["gates"])
    assert loaded.scenarios[0].gates[0].operator == "<="


def test_a_result_written_before_version_3_still_loads_with_untyped_gates():
    data = valid()
    for gate in data["scenarios"][0]["gates"]:
        for key in ("operator", "limit", "unit", "judges"):
            del gate[key]
    data["schema_version"] = 2
    loaded = DrillResult.from_json(data)
    assert all(g.operator is None and g.limit is None and g.unit is None for g in loaded.scenarios[0].gates)
    assert isinstance(loaded.scenarios[0].gates[0], GateResult) and loaded.scenarios[0].gates[0].measured is not None
