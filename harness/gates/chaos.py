"""The stop conditions of an ad hoc chaos run, as rules over its history: the same measures the
run's monitor applies live (it stops the run and heals every fault when one is broken), judged
again afterwards from what the harness's probes observed; and whether the run was halted."""

from __future__ import annotations

from harness.gates.base import Gate, register, seconds
from harness.measure.probes import downtime
from harness.model import EventKind, GateResult, History, OpKind, Outcome, Verdict, event_detail_of

HALT = EventKind.HALT  # event: the run was stopped early (a stop condition, `drill halt`, a signal)
CHAOS_END = EventKind.CHAOS_END  # event: the run's fault sequence ended


def longest_probe_outage(history: History) -> tuple[float, float | None]:
    """(seconds, start) of the longest stretch the health probes failed without an ok answer
    between: from the first failed probe's invoke to the next ok probe's invoke (or, when none
    came, the last failed probe's completion)."""
    probes = sorted((o for o in history.ops if o.kind == OpKind.PROBE), key=lambda o: o.t_invoke)
    longest, where, start, last_end = 0.0, None, None, None
    for op in probes:
        if op.outcome is Outcome.OK:
            if start is not None and op.t_invoke - start > longest:
                longest, where = op.t_invoke - start, start
            start = None
        else:
            start = op.t_invoke if start is None else start
            last_end = op.done
    if start is not None and last_end is not None and last_end - start > longest:
        longest, where = last_end - start, start
    return longest, where


def total_downtime(history: History) -> float | None:
    """Seconds the probes found the API unavailable over the whole run (None: no probe)."""
    windows = downtime(history, 3600.0)
    return None if not windows else sum(w.downtime_s for w in windows)


@register
class ProbeOutageWithinTolerance(Gate):
    """Stop condition: the API's health probe never failed for longer than the plan's tolerance."""

    judges = "system"
    id = "probe_outage_within_tolerance"
    operator, unit = "<=", "s"

    def __init__(self, tolerance_s: float):
        self.tolerance_s = self.limit = tolerance_s
        self.threshold = f"<= {tolerance_s:g} s"
        self.description = f"The health probe never failed for longer than {tolerance_s:g} s in a row"

    def evaluate(self, history: History) -> GateResult:
        if not history.ops_of(OpKind.PROBE):
            return self.unknown("no health probe ran")
        longest, _ = longest_probe_outage(history)
        return self.judge(
            longest <= self.tolerance_s, seconds(longest), f"longest stretch of failed probes: {longest:.2f} s"
        )


@register
class ErrorBudgetNotSpent(Gate):
    """Stop condition: the probes' total downtime over the run stayed within the plan's budget."""

    judges = "system"
    id = "error_budget_not_spent"
    operator, unit = "<=", "s"

    def __init__(self, budget_s: float):
        self.budget_s = self.limit = budget_s
        self.threshold = f"<= {budget_s:g} s"
        self.description = f"Total API downtime seen by the probes over the run <= {budget_s:g} s"

    def evaluate(self, history: History) -> GateResult:
        spent = total_downtime(history)
        if spent is None:
            return self.unknown("no health probe ran")
        return self.judge(spent <= self.budget_s, seconds(spent))


@register
class ChaosCompleted(Gate):
    """The run's fault sequence ran to its end: a halted run (stop condition, `drill halt`, SIGINT
    or SIGTERM) fails with its reason; a run that recorded neither its end nor a halt is unknown."""

    judges = "runbook"
    id = "chaos_completed"
    description = "The chaos run ran every fault of its sequence without being halted"
    threshold = "not halted"

    def evaluate(self, history: History) -> GateResult:
        halts = history.events_of(HALT)
        if halts:
            first = min(halts, key=lambda e: e.t)
            return self.result(Verdict.FAIL, "halted", event_detail_of(first).get("reason", ""))
        if history.events_of(CHAOS_END):
            return self.result(Verdict.PASS, "completed")
        return self.unknown("the run recorded neither its end nor a halt")
