"""`drill chaos PLAN`: an ad hoc chaos run with the drills' probes, workload, checkers and outputs.

1. the plan is checked whole (harness.chaos.plan) and every fault against the lab (its proxy
   exists, the provider can do it) before anything is injected;
2. the steady state is checked, the workload (a sequenced writer and a health prober, or the
   prober only) starts;
3. the faults run one at a time through the fault journal, each with a server-side time limit
   (its duration plus a margin: a killed harness cannot leave a toxic behind); a monitor applies
   the stop conditions live;
4. a stop condition broken, `drill halt`, SIGINT or SIGTERM: the active fault is healed at once,
   the run records why (event "halt") and ends with verdict fail;
5. then as a drill's scenario: workload stopped, steady state again, final read, gates, and
   results.json, junit.xml, report.html and the CAB log line.
A dry run prints the sequence, checks the steady state and probes, and injects nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import measure
from ..faults.base import REGISTRY
from ..faults.network import ProxyDown, ToxicFault
from ..faults.refused import FaultNotInjected
from ..gates.chaos import (
    CHAOS_END,
    HALT,
    ChaosCompleted,
    ErrorBudgetNotSpent,
    ProbeOutageWithinTolerance,
    longest_probe_outage,
    total_downtime,
)
from ..gates.recovery import DuplicatedWrites, LostWrites, RtoSeconds
from ..gates.waiver import waivable
from ..inputs import printable
from ..lab import proc, reaper
from ..lab.capabilities import ApiTier, Containers
from ..model import OpKind, Verdict
from ..plan import LabSpec, Plan
from ..report.record import Recording, complete, write_outputs
from ..runner import exit_code, not_run_line
from ..runner.common import finish, start_probes, start_workload, steady_state, wait_for_count, wait_for_ok
from ..runner.forwarder import EventForwarder
from ..runner.results import drill_result
from ..runner.scenario import DrillRun, SteadyStateNotMet, utc_now
from .plan import ChaosPlan, Step

if TYPE_CHECKING:
    from ..lab.base import Lab

DRY_RUN_PROBES = 30  # probe answers a dry run collects (about 3 s)
MONITOR_INTERVAL_S = 0.1
RECOVERY_WAIT_S = 60.0  # after the last heal: how long to wait for a write to go through again


@dataclass
class Halt:
    """Stops a chaos run: set by a stop condition, `drill halt` (SIGUSR1), SIGINT or SIGTERM."""

    event: threading.Event = field(default_factory=threading.Event)
    reason: str = ""
    at: float | None = None  # time.monotonic() when it was asked for

    def trip(self, reason: str) -> None:
        if not self.event.is_set():
            self.reason, self.at = reason, time.monotonic()
            self.event.set()

    def wait(self, seconds: float) -> bool:
        """Wait up to `seconds`; True as soon as the run is halted."""
        return self.event.wait(max(0.0, seconds))

    @property
    def set(self) -> bool:
        return self.event.is_set()


def capability(step: Step, lab: Lab) -> str | None:
    """Why this lab cannot do this fault (checked before anything is injected), or None."""
    from ..lab.capabilities import CAPABILITIES

    cls = REGISTRY[step.spec.type]
    target = step.spec.target
    if issubclass(cls, (ToxicFault, ProxyDown)):
        try:
            lab.toxiproxy.proxy(target)
        except Exception as exc:  # noqa: BLE001 - the reason is the answer
            return f"fault {step.name}: {exc}"
        return None
    if step.spec.type.startswith(("container_", "network_")):
        return (
            None
            if lab.find(Containers) is not None
            else f"fault {step.name}: {step.spec.type} needs the container lab (lab provider testcontainers)"
        )
    lacking = sorted(cls.NEEDS - lab.capabilities())  # what the fault type needs (Fault.NEEDS)
    if lacking:
        needed = lacking[0]
        what = (
            "has no API instance processes the harness can kill"
            if needed == "api_instances"
            else f"cannot {CAPABILITIES[needed]}"
        )
        return f"fault {step.name}: the {lab.provider} lab {what} (capability {needed})"
    if step.spec.type == "api_instance_kill":
        names = lab.capability(ApiTier).api_instances()
        if target in (*names, "all"):
            return None
        return f"fault {step.name}: no API instance {target!r} ({', '.join(names)})"
    return None


def refused_before_start(plan: ChaosPlan, lab: Lab) -> list[str]:
    """What `drill chaos` would refuse of the plan's faults (its sequence and its game day's set)
    on this lab, known before the lab is up, for `drill validate`: a fault the provider cannot do.
    A link's proxy (asked of the fault server) and an embedded lab's API instances are only known
    once the lab is up, and `drill chaos` checks them then."""
    from ..model import FaultSpec

    steps = list(plan.steps) + [
        Step(name, FaultSpec(t.type, target, dict(t.params)), t.duration[0])
        for name, t in plan.game_day.items()
        for target in t.targets
    ]
    problems: list[str] = []
    for step in steps:
        cls = REGISTRY.get(step.spec.type)
        if (
            cls is None
            or issubclass(cls, (ToxicFault, ProxyDown))
            or (step.spec.type == "api_instance_kill" and not lab.part(ApiTier).api_instances())
        ):
            continue
        problem = capability(step, lab)
        if problem and problem not in problems:
            problems.append(problem)
    return problems


def describe_step(step: Step) -> str:
    params = ", ".join(f"{k}={v}" for k, v in step.spec.params.items())
    limit = (
        f"server-side time limit {step.spec.time_limit_s:g} s"
        if step.spec.time_limit_s
        else "no time limit (a kill cannot undo itself; healed by the run)"
    )
    return (
        f"after {step.after:g} s: {step.spec.type} on {step.spec.target}"
        + (f" ({params})" if params else "")
        + f" for {step.duration:g} s; {limit}"
    )


class StopMonitor(threading.Thread):
    """Applies the stop conditions to the scenario's history while faults run."""

    def __init__(self, scn, stop: dict[str, float], halt: Halt):
        super().__init__(name="chaos-stop-conditions", daemon=True)
        self.scn, self.stop_conditions, self.halt = scn, stop, halt
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(MONITOR_INTERVAL_S) and not self.halt.set:
            history = self.scn.recorder.history()
            longest, _ = longest_probe_outage(history)
            if longest > self.stop_conditions["probe_failing_s"]:
                self.halt.trip(
                    f"stop condition: the health probe failed for {longest:.2f} s in a row "
                    f"(tolerance {self.stop_conditions['probe_failing_s']:g} s)"
                )
            spent = total_downtime(history) or 0.0
            if spent > self.stop_conditions["error_budget_s"]:
                self.halt.trip(
                    f"stop condition: {spent:.2f} s of downtime spent the error budget of "
                    f"{self.stop_conditions['error_budget_s']:g} s"
                )


def as_plan(plan: ChaosPlan, provider: str) -> Plan:
    """The drill plan the results and reports are written for."""
    return Plan(
        path=plan.path,
        drill=plan.chaos,
        title=f"Chaos: {plan.title}",
        ha_domain="chaos",
        availability=plan.availability,
        lab=LabSpec(provider=provider),
        scenarios=(),
        tags=None,
        targets=dict(plan.targets),
        environment=dict(plan.environment or {}),
    )


def register_run(plan: ChaosPlan, out_dir: Path) -> Path:
    """A record in the state folder so that `drill halt` finds this run (pid and start time)."""
    folder = reaper.state_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"chaos-{os.getpid()}.json"
    path.write_text(
        json.dumps(
            {
                "pid": os.getpid(),
                "start_time": proc.start_time(os.getpid()),
                "chaos": plan.chaos,
                "out_dir": str(out_dir),
                "healed_at": None,
            }
        )
    )
    return path


def mark_healed(record: Path | None, halt: Halt) -> None:
    if record is None or not record.exists():
        return
    data = json.loads(record.read_text())
    data["healed_at"] = time.time()
    data["heal_s"] = None if halt.at is None else round(time.monotonic() - halt.at, 3)
    record.write_text(json.dumps(data))


def run_chaos(
    plan: ChaosPlan,
    steps: tuple[Step, ...],
    lab: Lab,
    out_dir: Path,
    cab_log: Path | Recording,
    *,
    seed: int | None = None,
    dry_run: bool = False,
    halt: Halt | None = None,
    record: Path | None = None,
    log: Callable[..., None] = print,
) -> tuple[int, Any]:
    """Run the sequence on a lab that is up (module docstring); (exit code, DrillResult)."""
    halt = halt or Halt()
    rec = cab_log if isinstance(cab_log, Recording) else Recording(Path(cab_log))
    run = DrillRun(
        drill=plan.chaos,
        lab=lab,
        targets=dict(plan.targets),
        replication=lab.replication,
        progress=rec.progress,
        availability=plan.availability,
    )
    run.forwarder = EventForwarder(lab.api_url)
    lab.on_event = run.lab_event
    run.waivers = dict(plan.waivers)
    run.started_at = utc_now()
    faults = f"{len(steps)} fault{'' if len(steps) == 1 else 's'}"
    origin = (
        f"seed {seed}, {faults} drawn from the game day's allowed set"
        if seed is not None
        else f"{faults} from the plan"
    )
    scn = run.begin(
        f"chaos: {plan.title}" + (" (dry run: no fault injected)" if dry_run else ""),
        str(plan.path),
        ["chaos", *(["dry-run"] if dry_run else [])],
        description=f"{plan.description} ({origin})".strip(),
    )
    scn.steps_total = 1
    scn.figures = {"seed": seed, "sequence": [s.to_json() for s in steps]}
    labels: list[str] = []
    monitor = StopMonitor(scn, plan.stop, halt)
    try:
        try:
            steady_state(scn, "before")
            (start_workload if plan.workload == "writes" else start_probes)(scn)
            if dry_run:
                for step in steps:
                    scn.observe(f"Dry run, not injected: {describe_step(step)}")
                wait_for_count(scn, OpKind.PROBE, DRY_RUN_PROBES, after=0.0, timeout=60)
            else:
                monitor.start()
                for step in steps:
                    if halt.wait(step.after):
                        break
                    label = f"chaos:{step.name}"
                    try:
                        scn.inject(step.spec, label)
                    except FaultNotInjected as exc:  # could not act: the run is not run, no gate fails
                        log(printable(f"drill: not injected: {describe_step(step)}: {exc.cause}"), file=sys.stderr)
                        break
                    labels.append(label)
                    log(f"drill: injected {describe_step(step)}", file=sys.stderr)
                    halted = halt.wait(step.duration)
                    scn.heal(label)
                    if halted:
                        break
            scn.steps_done = 1
        except SteadyStateNotMet as exc:
            scn.error = str(exc)
        finally:
            monitor.done.set()
            if halt.set:
                scn.event(HALT, "chaos", reason=halt.reason)
                for problem in scn.journal.heal_all():  # at once, before anything slower
                    scn.observe(f"Heal failed at the halt: {problem}")
                mark_healed(record, halt)
                # what is said is what happened: a halt before the first fault healed nothing
                healed = "every fault healed at once" if labels else "no fault had been injected"
                scn.observe(f"Halted: {halt.reason}; {healed}.")
                log(f"drill: halted: {halt.reason}; {healed}", file=sys.stderr)
            scn.event(CHAOS_END, "chaos", faults=len(labels))
        _observe_recovery(scn)
        if not dry_run and not scn.aborted and scn.not_run is None:
            _expect(scn, plan, labels)
        finish(scn)
        if scn.workload is not None and scn.workload.writer is not None:
            _write_figures(scn, labels)
    finally:
        run.forwarder.close()
    run.finished_at = utc_now()
    as_drill = as_plan(plan, lab.provider)
    result = drill_result(as_drill, run, lab, dry_run=dry_run)
    complete(result, as_drill, lab, rec)
    paths = write_outputs(result, as_drill, out_dir, rec, log)
    for s in result.scenarios:
        for g in s.gates:
            if g.verdict is not Verdict.PASS:
                log(f"drill:   gate {g.id}: {g.verdict.value.upper()} {g.detail}".rstrip(), file=sys.stderr)
    log(
        f"drill: chaos {plan.chaos}: "
        + (not_run_line(result) if result.not_run else f"verdict {result.verdict.value.upper()}"),
        file=sys.stderr,
    )
    log(str(paths["html"]))
    return exit_code(result), result


def _observe_recovery(scn) -> None:
    """Keep the workload on until a write invoked after the last heal is acknowledged (or the
    wait runs out): each fault's RTO counts to the first write after it that completed, also when
    that is after the heal."""
    healed = [e.healed_t for e in scn.journal.entries if e.healed_t is not None]
    if healed and scn.workload is not None and scn.workload.writer is not None:
        if wait_for_ok(scn, OpKind.WRITE, after=max(healed), timeout=RECOVERY_WAIT_S) is None:
            scn.observe(f"No write was acknowledged within {RECOVERY_WAIT_S:g} s after the last heal.")


def _write_figures(scn, labels: list[str]) -> None:
    """The figures beside the targets: acknowledged, lost and duplicated writes; each fault's RTO
    and the run's (its slowest recovery)."""
    history = scn.recorder.history()
    figures = scn.figures
    try:
        accounting = measure.write_accounting(history)
        figures.update(
            acknowledged_writes=accounting.acknowledged,
            lost_writes=accounting.lost_count,
            duplicated_writes=accounting.duplicated_count,
        )
    except Exception:  # noqa: BLE001 - no final read: the lost_writes gate says why
        pass
    if not labels:
        return

    def rto_of(label: str) -> float | None:
        return _seconds(lambda: measure.rto(history, label, "write").seconds)

    per_fault = {label: rto_of(label) for label in labels}
    figures["rto_per_fault_s"] = per_fault
    measured = [s for s in per_fault.values() if s is not None]
    if len(measured) == len(per_fault):
        figures.update(rto_seconds=max(measured), rto_measured_on=f"write (slowest of {len(labels)} faults)")
        scn.not_applicable.pop("rto_seconds", None)


def _seconds(compute: Callable[[], float | None]) -> float | None:
    try:
        value = compute()
    except Exception:  # noqa: BLE001 - no final read: the gate says why
        return None
    return None if value is None else round(value, 3)


def _expect(scn, plan: ChaosPlan, labels: list[str]) -> None:
    """The chaos run's rules: completed without a halt, the stop conditions, and with writes: RTO
    per fault on the writes, no lost or duplicated write."""
    scn.expect(ChaosCompleted())
    scn.expect(ProbeOutageWithinTolerance(plan.stop["probe_failing_s"]))
    scn.expect(ErrorBudgetNotSpent(plan.stop["error_budget_s"]))
    if scn.workload is None or scn.workload.writer is None:
        scn.not_applicable["rto_seconds"] = "the plan's workload is probes only: no write to measure recovery on"
        return
    for label in labels:

        def rto(target: float, label: str = label) -> RtoSeconds:
            gate = RtoSeconds(target, label, "write")
            gate.id = f"rto_seconds:{label}"
            return gate

        scn.expect(waivable(scn.drill, "rto_seconds", rto))  # judged against the spec's floor when waived
    scn.expect(LostWrites(int(plan.targets.get("lost_writes", 0))))
    scn.expect(DuplicatedWrites())


def default_out(plan: ChaosPlan) -> Path:
    return Path("reports") / "out" / plan.chaos / dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
