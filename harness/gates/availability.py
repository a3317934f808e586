"""Availability gates: the spec's 99.9% as an error budget at 5-minute granularity, measured on the
harness's own requests (never on the health the Control Plane reports), and the load balancer
routing around a lost instance."""

from __future__ import annotations

from typing import Any

from harness.gates.base import Gate, fault_span, register
from harness.measure.probes import (
    DRILL_ALLOWANCE,
    PERIOD_DAYS,
    REGION,
    TARGET,
    WINDOW_S,
    ErrorBudget,
    error_budget,
    period_words,
)
from harness.model import EventKind, GateResult, History, OpKind, Outcome, Verdict

CLIENT_REQUESTS = (OpKind.WRITE, OpKind.PROBE, OpKind.APPROVE, OpKind.PUBLISH, OpKind.EVIDENCE)


@register
class AvailabilityBudget(Gate):
    """The share of the SLO period's error budget the scenario used, at most the plan's drill
    allowance. Every request the harness made to the system (writes, reads, approvals, publishes,
    evidence uploads, probes: measure.probes.REQUEST_KINDS) is served or not, judged on the request
    itself; they are grouped in clock-aligned 5-minute windows of the region, a window is bad when
    less than `target` of its requests were served, and each bad window uses 1 / ((1 - target) x
    the period's windows) of the budget (1 / 8.64 = 11.6% for 99.9% of 30 days). A window with no
    request is not counted; one the drill observed in part counts with the requests it had. No
    request at all: unknown."""

    judges = "system"
    id = "availability_budget"
    operator = "<="
    unit = "%"

    def __init__(
        self,
        target: float = TARGET,
        period_days: float = PERIOD_DAYS,
        allowance: float = DRILL_ALLOWANCE,
        region: str = REGION,
        window_s: float = WINDOW_S,
    ):
        self.target, self.period_days, self.allowance = target, period_days, allowance
        self.region, self.window_s = region, window_s
        self.limit: float = round(allowance * 100.0, 4)
        minutes = f"{window_s / 60:g}-minute"
        budget = (1.0 - target) * period_days * 86400.0 / window_s
        self.threshold = (
            f"<= {self.limit:g}% of {period_words(period_days)} error budget ({budget:.3g} bad "
            f"{minutes} windows at {target:.1%})"
        )
        self.description = (
            f"Error budget used by the drill, on the harness's own requests in region {region}: "
            f"a {minutes} window is bad below {target:.1%} served"
        )

    def budget(self, history: History) -> ErrorBudget:
        return error_budget(history, self.target, self.period_days, self.allowance, self.region, self.window_s)

    def figures(self, history: History) -> dict[str, Any]:
        return self.budget(history).figures()

    def evaluate(self, history: History) -> GateResult:
        budget = self.budget(history)
        worst = budget.worst  # None exactly when there is no window
        if not budget.windows or worst is None:
            return self.unknown("the scenario made no request to the system: availability not observed")
        bad, share = budget.bad, budget.share
        served = ", ".join(f"{w.ratio:.2%}" for w in bad[:5]) + (", ..." if len(bad) > 5 else "")
        detail = (
            f"{len(bad)} bad of {len(budget.windows)} {self.window_s / 60:g}-minute windows "
            + (f"({served} served)" if bad else f"(lowest {worst.ratio:.2%} served)")
            + f"; {budget.budget_windows:.3g} bad windows allowed in {period_words(self.period_days)} budget"
        )
        if share is None:
            return self.result(Verdict.FAIL, None, detail + "; a 100% target leaves no error budget")
        measured = round(share * 100.0, 4)
        return self.judge(measured <= self.limit, measured, detail)


@register
class NoFailedRequestsBeyondProbeWindow(Gate):
    """After an instance is lost, no client request fails later than the load balancer's probe
    window (its failed checks take the instance out of rotation), until the next fault."""

    judges = "system"
    id = "no_failed_requests_beyond_probe_interval"
    description = "LB health probes route around the lost instance: no failed client request beyond the probe interval"

    def __init__(self, fault: str, window_s: float, minimum: int = 10):
        self.fault, self.window_s, self.minimum = fault, window_s, minimum
        self.threshold = f"0 failed later than {window_s:.1f} s after the kill"

    def evaluate(self, history: History) -> GateResult:
        span = fault_span(history, self.fault, (EventKind.INJECT,))
        if span is None:
            return self.unknown(f"no fault {self.fault!r} was injected")
        after = span.start + self.window_s
        ops = [
            o
            for o in history.ops
            if o.kind in CLIENT_REQUESTS and o.t_invoke >= span.start and (span.end is None or o.t_invoke < span.end)
        ]
        late = [o for o in ops if o.outcome is not Outcome.OK and o.t_invoke > after]
        early = [o for o in ops if o.outcome is not Outcome.OK and o.t_invoke <= after]
        beyond = [o for o in ops if o.t_invoke > after]
        measured = {
            "failed_after_window": len(late),
            "failed_within_window": len(early),
            "requests_after_kill": len(ops),
        }
        if len(beyond) < self.minimum:
            return self.unknown(
                f"only {len(beyond)} client requests after the probe window: too few to judge", measured
            )
        return self.judge(not late, measured, "; ".join(sorted({o.error for o in late}))[:300])
