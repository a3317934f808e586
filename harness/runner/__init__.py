"""Runs a drill plan end to end: lab, scenarios, measurement, gates, outputs, exit code.

1. validate the plan (exit 2 before anything starts);
2. bring up the lab (exit 2 if it cannot start), heal leftovers of killed runs;
3. run the plan's scenarios (pytest-bdd features) against it;
4. assemble results: measurements and gates per scenario, the drill's verdict (its worst gate);
5. write results.json, junit.xml, report.html, append the CAB log; 6. take the lab down.
"""

from __future__ import annotations

import getpass
import os
import platform
import socket
import sys
import time
from pathlib import Path
from typing import Any

from .. import __version__
from ..matrix import row_of
from ..model import Verdict
from ..plan import Plan
from ..report import append_cab_log, write_all
from ..report.files import plain
from .bridge import run_features
from .context import DrillContext, ScenarioRun, utc_now

EXIT_PASS, EXIT_FAIL, EXIT_INVALID = 0, 1, 2


DRY_RUN_PROBES = 30        # probe answers a dry run collects (about 3 s)


def make_lab(plan: Plan, confirmed: bool = False) -> Any:
    """The plan's lab provider. `confirmed`: --confirm named this drill's id."""
    if plan.lab.provider == "embedded":
        from ..lab.embedded import EmbeddedLab
        return EmbeddedLab(replication=plan.lab.replication)
    if plan.lab.provider == "testcontainers":
        from ..lab.containers import ContainerLab
        return ContainerLab(replication=plan.lab.replication, images=plan.lab.images)
    if plan.lab.provider == "external":
        from ..lab.external import ExternalLab
        return ExternalLab(plan.lab.external, confirmed, replication=plan.lab.replication)
    raise ValueError(f"unknown lab provider {plan.lab.provider!r}")


def preflight(plan: Plan, lab: Any, confirm: str | None) -> str | None:
    """Checks made before anything starts; an error message means exit 2."""
    from .impact import outside_blast_radius

    if confirm is not None and confirm != plan.drill:
        return (f"--confirm names {confirm!r} but {plan.path} is drill {plan.drill!r}; "
                f"confirm exactly the drill you mean to run")
    radius = getattr(getattr(lab, "config", None), "blast_radius", None)
    if radius is not None:
        refused = outside_blast_radius(list(plan.scenarios), lab.fault_targets(), radius)
        if refused:
            return (f"{plan.path}: key 'lab.blast_radius': these faults touch what it does not list, "
                    f"so the run is refused: {'; '.join(refused)}")
    return None


def run_dry(plan: Plan, lab: Any) -> DrillContext:
    """Probes only, no fault: steady state and a short workload per feature, said plainly."""
    from .common import SteadyStateNotMet, finish, gate, start_workload, steady_state, wait_for_count

    ctx = DrillContext(drill=plan.drill, lab=lab, targets=dict(plan.targets), tags=plan.tags,
                       replication=plan.lab.replication)
    for feature in plan.scenarios:
        run = ctx.begin(f"{feature.stem} (dry run: no fault injected)", feature.name, ["dry-run"])
        try:
            steady_state(ctx, run)
            start_workload(ctx, run)
            wait_for_count(run, "probe", DRY_RUN_PROBES, after=0.0, timeout=60)
            run.observe("Dry run: steady state and probes only; no fault was injected.")
        except SteadyStateNotMet:
            pass
        finally:
            finish(ctx, run)
        gate(run, "dry_run", "Faults injected and recovery proven", "dry run: no fault injected",
             "allow_destructive: true and --confirm <drill id>", None, lab.interlock())
        run.finished_at = utc_now()
    ctx.finished_at = utc_now()
    return ctx


def run_plan(plan: Plan, lab: Any, verbose: bool = False) -> DrillContext:
    """Run the plan's scenarios on a lab that is up; the lab's recovery events (detect,
    promote, reconnect, ...) go into the running scenario's history."""
    ctx = DrillContext(drill=plan.drill, lab=lab, targets=dict(plan.targets), tags=plan.tags,
                       replication=plan.lab.replication)

    def on_event(kind: str, name: str, detail: dict) -> None:
        if ctx.scenarios:
            ctx.current.event(kind, name, **detail)

    lab.on_event = on_event
    if getattr(lab, "replication", plan.lab.replication) != plan.lab.replication:
        lab.set_replication(plan.lab.replication)   # a reused lab takes the plan's mode
    ctx.started_at = utc_now()
    run_features(ctx, list(plan.scenarios), quiet=not verbose)
    ctx.finished_at = utc_now()
    return ctx


def scenario_results(run: ScenarioRun) -> dict[str, Any]:
    history = run.recorder.history()
    times = [o.t_invoke for o in history.ops] + [e.t for e in history.events]
    t0 = min(times) if times else 0.0
    probes = [[round(o.t_invoke - t0, 3), o.outcome.value] for o in history.ops if o.kind == "probe"]
    windows = []
    for event in history.events:
        if event.kind == "inject":
            ends = [e.t for e in history.events if e.t >= event.t and e.kind in ("heal", "reconnect")]
            windows.append([round(event.t - t0, 3), round(min(ends) - t0, 3) if ends else None, event.name])
    cids = sorted({run.correlation_id} | {e.correlation_id for e in history.events if e.correlation_id})
    # RTO, RPO and write counts come from a write workload; a scenario without one (e.g. the
    # connector rows) has none of them, which is not the same as "unknown"
    standard = ("rto_seconds", "rpo_seconds", "lost_writes", "duplicated_writes", "availability") \
        if run.state.get("writer") is not None else ("availability",)
    measurements = {k: run.measurements.get(k) for k in standard}
    measurements.update({k: v for k, v in run.measurements.items() if k not in measurements})
    return {
        "name": run.name, "feature": run.feature, "tags": run.tags, "verdict": run.verdict.value,
        "description": run.description, "matrix_row": _matrix_row(run.feature),
        "started_at": run.started_at, "finished_at": run.finished_at,
        "measurements": measurements, "phases": run.phases, "lost_write_keys": run.lost_write_keys,
        "observations": run.observations, "error": run.error, "correlation_ids": cids,
        "timeline": {"probes": probes, "fault_windows": windows},
        "events": [{"t": round(e.t - t0, 3), "kind": e.kind, "name": e.name, "wall": e.wall,
                    "correlation_id": e.correlation_id} for e in history.events],
        "operations": {kind: _op_counts(history, kind) for kind in sorted({o.kind for o in history.ops})},
        "gates": [{"id": g.id, "description": g.description, "measured": g.measured,
                   "threshold": g.threshold, "verdict": g.verdict.value, "detail": g.detail}
                  for g in run.gates],
    }


def _op_counts(history, kind: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for op in history.ops:
        if op.kind == kind:
            counts[op.outcome.value] = counts.get(op.outcome.value, 0) + 1
    return counts


def environment(lab: Any) -> dict[str, Any]:
    env = {"hostname": socket.gethostname(), "python": sys.version.split()[0],
           "platform": platform.platform(), "harness": __version__, "user": getpass.getuser(),
           "cpus": os.cpu_count()}
    try:
        env.update(lab.describe())
    except Exception as exc:
        env["lab"] = f"description unavailable: {exc}"
    return env


def _matrix_row(feature: str) -> dict | None:
    found = row_of(feature)
    if found is None:
        return None
    number, row = found
    return {"number": number, "component": row.component, "failure": row.failure}


def results_of(plan: Plan, ctx: DrillContext, lab: Any) -> dict[str, Any]:
    scenarios = [scenario_results(run) for run in ctx.scenarios]
    verdict = Verdict.worst(run.verdict for run in ctx.scenarios) if ctx.scenarios else Verdict.UNKNOWN
    return plain({
        "schema_version": 1, "drill": plan.drill, "title": plan.title, "ha_domain": plan.ha_domain,
        "plan": str(plan.path), "correlation_id": ctx.correlation_id,
        "started_at": ctx.started_at, "finished_at": ctx.finished_at, "verdict": verdict.value,
        "targets": plan.targets, "schedule": plan.schedule, "environment": environment(lab),
        "scenarios": scenarios, "gates": [],
        "correlation_ids": [ctx.correlation_id] + [c for s in scenarios for c in s["correlation_ids"]],
        "note": None if ctx.scenarios else "no scenario matched the plan: nothing was proven",
    })


def write_outputs(results: dict[str, Any], out_dir: Path, cab_log: Path) -> dict[str, Path]:
    paths = write_all(results, out_dir)
    append_cab_log(cab_log, results, report_path=paths["html"])
    return paths


def exit_code(results: dict[str, Any]) -> int:
    return EXIT_PASS if results["verdict"] == Verdict.PASS.value else EXIT_FAIL


def run_drill(plan: Plan, out_dir: Path, cab_log: Path, lab: Any | None = None,
              log=print, verbose: bool = False, confirm: str | None = None) -> tuple[int, dict[str, Any] | None]:
    """The whole drill (lifecycle in the module docstring). `lab` reuses a running lab."""
    from ..lab.base import LabStartError

    own_lab = lab is None
    if own_lab:
        lab = make_lab(plan, confirmed=confirm == plan.drill)
    problem = preflight(plan, lab, confirm)
    if problem:
        log(f"drill: {problem}", file=sys.stderr)
        return EXIT_INVALID, None
    dry = getattr(lab, "dry_run", False)
    if dry:
        log(f"drill: DRY RUN, no fault will be injected: {lab.interlock()}", file=sys.stderr)
    if own_lab:
        started = time.monotonic()
        try:
            lab.up()
        except LabStartError as exc:
            lab.down()
            log(f"drill: the lab could not start: {exc}", file=sys.stderr)
            return EXIT_INVALID, None
        log(f"drill: lab up in {time.monotonic() - started:.1f} s ({plan.lab.provider})", file=sys.stderr)
    try:
        ctx = run_dry(plan, lab) if dry else run_plan(plan, lab, verbose)
        results = results_of(plan, ctx, lab)
        results["dry_run"] = dry
        paths = write_outputs(results, out_dir, cab_log)
    finally:
        if own_lab:
            lab.down()
    for s in results["scenarios"]:
        m = s["measurements"]
        if "rto_seconds" in m:
            figures = f"RTO {m['rto_seconds']} s  RPO {m.get('rpo_seconds')} s  lost writes {m.get('lost_writes')}"
        else:   # no write workload: no RTO or RPO to speak of
            figures = f"{sum(g['verdict'] == 'pass' for g in s['gates'])} of {len(s['gates'])} gates passed"
        log(f"drill: scenario '{s['name']}': {s['verdict'].upper()}  {figures}", file=sys.stderr)
        for g in s["gates"]:
            if g["verdict"] != "pass":
                log(f"drill:   gate {g['id']}: {g['verdict'].upper()} (measured {g['measured']}, "
                    f"threshold {g['threshold']}) {g['detail']}".rstrip(), file=sys.stderr)
        if s["error"]:
            log(f"drill:   {s['error']}", file=sys.stderr)
    log(f"drill: verdict {results['verdict'].upper()}", file=sys.stderr)
    log(str(paths["html"]))
    return exit_code(results), results
