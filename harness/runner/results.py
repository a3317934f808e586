"""Typed results from what a drill recorded: the figures (measure), the verdicts (gates already
evaluated), the faults (journal) and the timeline, as the report reads them."""

from __future__ import annotations

import getpass
import os
import platform
import socket
import sys
from typing import TYPE_CHECKING, Any

from .. import __version__, measure
from ..faults.refused import worst_exit
from ..files import plain
from ..matrix import row_of
from ..measure.accounting import NoFinalRead
from ..model import DrillResult, EventKind, History, ScenarioResult, Verdict, event_detail_of
from ..plan import Plan
from ..spec_floors import floors_of, waivers_json  # the targets' floors; the waivers used
from .common import availability_gate
from .scenario import DrillRun, Scenario

if TYPE_CHECKING:
    from ..lab.base import Lab

AVAILABILITY_TARGET = 0.999  # the spec's, for the error budget every report shows
LAB_PART_EVENTS = (EventKind.PLATFORM_REQUEST, EventKind.GATEWAY_REQUEST)


def figures(scn: Scenario, history: History, target: float) -> tuple[dict[str, Any], dict[str, float], list[str]]:
    """(measurements, recovery phases, lost keys) of one scenario, from its history."""
    m: dict[str, Any] = {}
    phases: dict[str, float] = {}
    lost: list[str] = []
    if scn.recovery is not None:
        fault, on = scn.recovery
        m["rto_measured_on"] = on
        try:
            rto = measure.rto(history, fault, on)
            m["rto_seconds"] = None if rto.seconds is None else round(rto.seconds, 3)
            phases = {k: round(v, 3) for k, v in rto.phases.items()}
            if rto.seconds is None:
                scn.not_applicable.setdefault("rto_seconds", rto.verdict_reason)
        except NoFinalRead as exc:
            m["rto_seconds"] = None
            scn.not_applicable.setdefault("rto_seconds", str(exc))
        writes, read = ("publish", "final_applied") if on.startswith("apply:") else ("write", "final_read")
        try:
            accounting = measure.write_accounting(history, writes, read)
            rpo = measure.rpo(history, fault, writes, read)
            m.update(
                rpo_seconds=None if rpo.seconds is None else round(rpo.seconds, 3),
                lost_writes=accounting.lost_count,
                duplicated_writes=accounting.duplicated_count,
                acknowledged_writes=accounting.acknowledged,
                indeterminate_writes_recovered=len(accounting.recovered_indeterminate),
            )
            lost = [str(k) for k in accounting.lost]
        except NoFinalRead as exc:
            scn.not_applicable.setdefault("rpo_seconds", str(exc))
    # the error budget, from the harness's own requests (the gate's figures: the same windows it judged)
    m.update(availability_gate(scn, target).figures(history))
    m.update(scn.figures)
    return m, phases, lost


def scenario_result(scn: Scenario, target: float = AVAILABILITY_TARGET) -> ScenarioResult:
    history = scn.recorder.history()
    times = [o.t_invoke for o in history.ops] + [e.t for e in history.events]
    t0 = min(times) if times else 0.0
    measurements: dict[str, Any]
    phases: dict[str, Any]
    lost: list[str]
    if scn.not_run is not None:  # the fault never happened: nothing of it is measured
        measurements, phases, lost = {}, {}, []
        for key in ("rto_seconds", "rpo_seconds", "lost_writes"):
            scn.not_applicable[key] = f"not measured: not run ({scn.not_run.cause})"
    else:
        measurements, phases, lost = figures(scn, history, target)
    for gate in scn.gates:  # a target a checker measured (backup_rpo_seconds): shown beside its target
        if gate.id.endswith("_seconds") and gate.id not in measurements and isinstance(gate.measured, (int, float)):
            measurements[gate.id] = gate.measured
    records = scn.journal.records(t0)
    probes = [[round(o.t_invoke - t0, 3), o.outcome.value] for o in history.ops if o.kind == "probe"]
    windows = [[r.injected_s, r.healed_s, r.label] for r in records]
    own = [e for e in history.events if e.kind not in LAB_PART_EVENTS]
    cids = sorted({scn.correlation_id} | {e.correlation_id for e in own if e.correlation_id})
    found = row_of(scn.feature)
    return ScenarioResult(
        name=scn.name,
        feature=scn.feature,
        tags=list(scn.tags),
        verdict=scn.verdict,
        description=scn.description,
        matrix_row=None
        if found is None
        else {"number": found[0], "component": found[1].component, "failure": found[1].failure},
        started_at=scn.started_at,
        finished_at=scn.finished_at,
        measurements=plain(measurements),
        not_applicable=dict(scn.not_applicable),
        phases=phases,
        lost_write_keys=lost,
        observations=list(scn.observations),
        error=scn.error,
        correlation_id=scn.correlation_id,
        correlation_ids=cids,
        faults=records,
        timeline={"probes": probes, "fault_windows": windows},
        events=[
            {
                "t": round(e.t - t0, 3),
                "kind": e.kind,
                "name": e.name,
                "source": e.source,
                "wall": e.wall,
                "correlation_id": e.correlation_id,
                "event_id": e.event_id,
                "forwarded": bool(event_detail_of(e).get("forwarded")),
            }
            for e in own
        ],
        operations={kind: _counts(history, kind) for kind in sorted({o.kind for o in history.ops})},
        gates=list(scn.gates),
    )


def _counts(history: History, kind: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for op in history.ops_of(kind):
        counts[op.outcome.value] = counts.get(op.outcome.value, 0) + 1
    return counts


def environment(lab: Lab) -> dict[str, Any]:
    env = {
        "hostname": socket.gethostname(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "harness": __version__,
        "user": getpass.getuser(),
        "cpus": os.cpu_count(),
    }
    try:
        env.update(lab.describe())
    except Exception as exc:  # noqa: BLE001 - the report says so instead of failing
        env["lab"] = f"description unavailable: {exc}"
    return env


def drill_result(plan: Plan, run: DrillRun, lab: Lab, dry_run: bool = False) -> DrillResult:
    target = plan.targets.get("availability", AVAILABILITY_TARGET)
    scenarios = [scenario_result(s, target) for s in run.scenarios]
    verdict = Verdict.worst(s.verdict for s in scenarios) if scenarios else Verdict.UNKNOWN
    refused = [s for s in run.scenarios if s.not_run is not None]
    not_run = (
        None
        if not refused
        else {
            "cause": "; ".join(f"{s.name}: {s.not_run}" for s in refused),
            "exit_code": worst_exit(s.not_run.exit_code for s in refused if s.not_run is not None),
            "scenarios": [s.name for s in refused],
        }
    )
    return DrillResult(
        drill=plan.drill,
        title=plan.title,
        ha_domain=plan.ha_domain,
        plan=str(plan.path),
        correlation_id=run.correlation_id,
        started_at=run.started_at,
        finished_at=run.finished_at,
        spec_floors=floors_of(plan.targets, plan.tier),
        waivers=waivers_json(run.waivers, scenarios),
        verdict=verdict,
        targets=dict(plan.targets),
        schedule=plan.schedule,
        environment=plain(environment(lab)),
        scenarios=scenarios,
        correlation_ids=[run.correlation_id] + [c for s in scenarios for c in s.correlation_ids],
        note=None if scenarios else "no scenario matched the plan: nothing was proven",
        dry_run=dry_run,
        not_run=not_run,
    )
