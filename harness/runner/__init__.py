"""A drill run's scenarios on a lab that is up (run_plan; run_dry: probes only), the lab a plan
names (make_lab), and what a result says last (exit_code, not_run_line). The modules beside it are
each row's actions, which the steps (harness.steps) call. A plan end to end, with the checks made
before anything starts, is harness.drill (run_drill), above both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import exits
from ..model import DrillResult, OpKind, Verdict
from ..plan import Plan
from .bridge import run_features
from .forwarder import EventForwarder
from .scenario import DrillRun, utc_now

if TYPE_CHECKING:
    from ..lab.base import Lab

DRY_RUN_PROBES = 30  # probe answers a dry run collects (about 3 s)


def make_lab(plan: Plan, confirmed: bool = False) -> Lab:
    """The plan's lab, from its provider (harness.lab.providers). `confirmed`: --confirm named this drill's id."""
    from ..lab.providers import make_lab as provided

    return provided(plan.lab, confirmed)


def _drill_run(plan: Plan, lab: Lab, progress=None) -> DrillRun:
    run = DrillRun(
        drill=plan.drill,
        lab=lab,
        targets=dict(plan.targets),
        tags=plan.tags,
        replication=plan.lab.replication,
        availability=plan.availability,
    )
    if progress is not None:
        run.progress = progress
    run.waivers = dict(plan.waivers)
    run.hold_real_time = plan.hold_real_time  # "N minutes pass" without clock control: held in real time
    run.forwarder = EventForwarder(lab.api_url)
    return run


def run_dry(plan: Plan, lab: Lab, progress=None) -> DrillRun:
    """Probes only, no fault: steady state and a short workload per feature, said plainly."""
    from ..gates.steady import FaultsHealed
    from .common import SteadyStateNotMet, finish, start_workload, steady_state, wait_for_count

    run = _drill_run(plan, lab, progress)
    try:
        for feature in plan.scenarios:
            scn = run.begin(f"{feature.stem} (dry run: no fault injected)", feature.name, ["dry-run"])
            try:
                steady_state(scn, "before")
                start_workload(scn)
                wait_for_count(scn, OpKind.PROBE, DRY_RUN_PROBES, after=0.0, timeout=60)
                scn.observe("Dry run: steady state and probes only; no fault was injected.")
            except SteadyStateNotMet:
                pass
            finally:
                scn.expect(FaultsHealed(f"dry run, no fault injected: {lab.interlock()}"))
                finish(scn)
    finally:
        run.forwarder.close()
    run.finished_at = utc_now()
    return run


def run_plan(plan: Plan, lab: Lab, verbose: bool = False, progress=None) -> DrillRun:
    """Run the plan's scenarios on a lab that is up; the lab's recovery events (detect,
    promote, reconnect, ...) go into the running scenario's history."""
    run = _drill_run(plan, lab, progress)
    lab.on_event = run.lab_event
    try:
        if lab.replication != plan.lab.replication:
            lab.set_replication(plan.lab.replication)  # a reused lab takes the plan's mode
        run.started_at = utc_now()
        run_features(run, list(plan.scenarios), quiet=not verbose)
    finally:
        run.forwarder.close()
    run.finished_at = utc_now()
    return run


def exit_code(result: DrillResult) -> int:
    """0 pass, 1 a gate failed, 3 a gate unknown and none failed; a run that could not act
    (result.not_run: a fault the target or a hook refused) 2 (the plan's credentials or keys) or 4
    (unreachable), whatever its other scenarios found: it is no verdict about the deployment."""
    if result.not_run:
        return int(result.not_run.get("exit_code") or exits.UNREACHABLE)
    return {Verdict.PASS: exits.PASS, Verdict.FAIL: exits.FAIL}.get(result.verdict, exits.UNKNOWN)


NOT_RUN_FIX = {
    exits.INVALID: "fix the plan's credentials, keys or hook URLs and run it again",
    exits.UNREACHABLE: "the target or a hook could not be reached or refused the action; run it again once it answers",
}


def not_run_line(result: DrillResult) -> str:
    """What a run that could not act says last, in place of a verdict."""
    code = exit_code(result)
    return (
        f"NOT RUN: nothing was judged about the deployment (exit {code}: {NOT_RUN_FIX.get(code, '')}); "
        f"{(result.not_run or {}).get('cause')}"
    )
