"""Runs a drill plan end to end (`drill run`): lab, scenarios, measurement, gates, outputs, exit code.

1. validate the plan (exit 2 before anything starts);
2. bring up the lab (exit 2 if it cannot start), heal leftovers of killed runs;
3. run the plan's scenarios (pytest-bdd features) against it;
4. assemble results: measurements and gates per scenario, the drill's verdict (its worst gate);
5. add the CAB record (sign-off, provenance, risk, since last run), write and seal the outputs
   (results.json, junit.xml, report.html, the plan as run, manifest.json), append the keyed CAB
   log line; 6. take the lab down.

Above the step vocabulary (harness.steps: what a plan's steps need of a lab and touch, read
before the lab starts) and the runner (harness.runner: the scenarios and each row's actions).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from . import exits
from .errors import LabStartError
from .lab.base import Lab
from .lab.capabilities import PlanConfigured
from .model import DrillResult, Verdict
from .plan import Plan
from .report.html import availability_words
from .report.record import Recording, complete, write_outputs
from .runner import exit_code, make_lab, not_run_line, run_dry, run_plan
from .runner.results import drill_result
from .steps.impact import feature_steps, outside_blast_radius
from .steps.needs import missing_capabilities, step_needs
from .text import show


def preflight(plan: Plan, lab: Lab, confirm: str | None) -> str | None:
    """Checks made before anything starts; an error message means exit 2."""
    if confirm is not None and confirm != plan.drill:
        return (
            f"--confirm names {confirm!r} but {plan.path} is drill {plan.drill!r}; "
            f"confirm exactly the drill you mean to run"
        )
    have = lab.capabilities()
    lacking = missing_capabilities(list(plan.scenarios), have, plan.tags)
    if lacking:
        fix = "Run them on a provider that has what they need, or leave them out of the plan's 'scenarios'"
        keys = _keys_that_give(plan, lab, have)
        if keys:
            fix = f"Set {', '.join(keys)} in the plan (docs/providers.md), or leave them out of the plan's 'scenarios'"
        rows = "this row" if len(lacking) == 1 else "these rows"
        return (
            f"{plan.path}: the {plan.lab.provider} lab cannot run {rows}, "
            f"so nothing was started: {' | '.join(lacking)}. {fix}"
        )
    configured = lab.find(PlanConfigured)
    if configured is not None:  # configured by its plan: its faults stay inside lab.blast_radius
        refused = outside_blast_radius(
            list(plan.scenarios), configured.fault_targets(), configured.blast_radius, plan.tags
        )
        if refused:
            return (
                f"{plan.path}: key 'lab.blast_radius': these faults touch what it does not list, "
                f"so the run is refused: {'; '.join(refused)}"
            )
    return None


def refused_before_start(plan: Plan, confirm: str | None = None) -> str | None:
    """What `drill run` would refuse before its lab starts (preflight: --confirm, capabilities,
    blast radius), known without starting anything: `drill validate` says it too, so that a plan
    it calls valid is never refused by run."""
    return preflight(plan, make_lab(plan, confirmed=confirm == plan.drill), confirm)


def _keys_that_give(plan: Plan, lab: Lab, have: frozenset[str]) -> list[str]:
    """The plan keys that would give the lab what the selected steps lack (a provider configured
    by its plan, the external one, says which); [] when no key can."""
    configured = lab.find(PlanConfigured)
    if configured is None:
        return []
    needed = {cap for path in plan.scenarios for step in feature_steps(path, plan.tags) for cap in step_needs(step)}
    keys: list[str] = []
    for cap in sorted(needed - set(have)):
        missing = configured.missing_keys(cap)
        if not missing:
            return []  # a capability no key gives (the backup service): another provider
        keys += [k for k in missing if k not in keys]
    return keys


def run_drill(
    plan: Plan,
    out_dir: Path,
    cab_log: Path | Recording,
    lab: Lab | None = None,
    log=print,
    verbose: bool = False,
    confirm: str | None = None,
) -> tuple[int, DrillResult | None]:
    """The whole drill (lifecycle in the module docstring). `lab` reuses a running lab. `cab_log`:
    the log's path, or a Recording (the log, its key, the sign-off, the PDF, progress lines)."""
    rec = cab_log if isinstance(cab_log, Recording) else Recording(Path(cab_log))
    own_lab = lab is None
    if lab is None:
        lab = make_lab(plan, confirmed=confirm == plan.drill)
    problem = preflight(plan, lab, confirm)
    if problem:
        log(f"drill: {problem}", file=sys.stderr)
        return exits.INVALID, None
    dry = lab.dry_run
    if dry:
        log(f"drill: DRY RUN, no fault will be injected: {lab.interlock()}", file=sys.stderr)
    if own_lab:
        started = time.monotonic()
        rec.progress("lab", f"starting the {plan.lab.provider} lab")
        try:
            lab.up()
        except LabStartError as exc:
            lab.down()
            log(f"drill: the lab could not start: {exc}", file=sys.stderr)
            return exits.UNREACHABLE, None
        rec.progress("lab", f"up in {time.monotonic() - started:.1f} s")
    try:
        run = run_dry(plan, lab, rec.progress) if dry else run_plan(plan, lab, verbose, rec.progress)
        result = drill_result(plan, run, lab, dry_run=dry)
        complete(result, plan, lab, rec)
        paths = write_outputs(result, plan, out_dir, rec, log)
    finally:
        if own_lab:
            rec.progress("lab", "taking the lab down")
            lab.down()
    not_run = set((result.not_run or {}).get("scenarios") or ())
    for s in result.scenarios:
        if s.name in not_run:  # the fault never happened: no figure, no gate, no heal to claim
            log(f"drill: scenario '{s.name}': NOT RUN (no gate judged, nothing measured)", file=sys.stderr)
            continue
        m = s.measurements
        passed = sum(g.verdict is Verdict.PASS for g in s.gates)
        figures = f"{passed} of {len(s.gates)} gates passed"
        if "rto_seconds" in m:
            figures = (
                f"RTO {show(m['rto_seconds'])} s on {m.get('rto_measured_on')}  "
                f"RPO {show(m.get('rpo_seconds'))} s  lost {show(m.get('lost_writes'))}  {figures}"
            )
        budget = availability_words(m, next((g.to_json() for g in s.gates if g.id == "availability_budget"), None))
        if budget:
            figures += f"  availability: {budget}"
        log(f"drill: scenario '{s.name}': {s.verdict.value.upper()}  {figures}", file=sys.stderr)
        for g in s.gates:
            if g.verdict is not Verdict.PASS:
                log(
                    f"drill:   gate {g.id}: {g.verdict.value.upper()} (measured {show(g.measured)}, "
                    f"threshold {show(g.threshold)}) {g.detail}".rstrip(),
                    file=sys.stderr,
                )
        if s.error:
            log(f"drill:   {s.error}", file=sys.stderr)
    log(
        f"drill: {not_run_line(result)}" if result.not_run else f"drill: verdict {result.verdict.value.upper()}",
        file=sys.stderr,
    )
    log(str(paths["html"]))
    return exit_code(result), result
