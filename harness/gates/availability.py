"""Availability gates: the spec's 99.9% per 5-minute window as an error budget (0.3 s of
unavailability per window), and the load balancer routing around a lost instance."""

from __future__ import annotations

from harness.gates.base import Gate, Span, fault_span, register, seconds
from harness.measure.probes import downtime
from harness.model import GateResult, History, Outcome

PROBES = ("probe",)
CLIENT_REQUESTS = ("write", "probe", "approve", "publish", "evidence")


def error_budget(target: float, window_s: float) -> float:
    """Seconds of unavailability a window may have: (1 - target) x window (0.3 s for 99.9% of 5 min)."""
    return (1.0 - target) * window_s


@register
class AvailabilityBudget(Gate):
    """API availability >= target in every clock-aligned window (5 minutes): the probes' time-
    weighted downtime in each window (inside `during`: a fault's span until the next injection,
    or the whole scenario) must stay within the error budget. Time the drill did not observe is
    not counted as down; the observed-only ratio is reported beside it."""

    judges = "system"
    id = "availability"

    def __init__(self, target: float = 0.999, window_s: float = 300.0, during: str | None = None):
        self.target, self.window_s, self.during = target, window_s, during
        budget = error_budget(target, window_s)
        self.threshold = f">= {target:.1%} per {window_s / 60:g}-minute window (downtime <= {budget:.2g} s)"
        where = f" while {during} lasts" if during else ""
        self.description = (f"API availability >= {target:.1%} per {window_s / 60:g}-minute window{where} "
                            f"(error budget {budget:.2g} s per window)")

    def span(self, history: History) -> Span | None:
        if self.during is None:
            return Span(float("-inf"), None)
        start = history.first_event("inject", self.during)
        if start is None:
            return None
        later = [e.t for e in history.events_of("inject") if e.t > start.t]
        return Span(start.t, min(later) if later else None)

    def evaluate(self, history: History) -> GateResult:
        span = self.span(history)
        if span is None:
            return self.unknown(f"no fault {self.during!r} was injected")
        start = None if span.start == float("-inf") else span.start
        windows = downtime(history, self.window_s, PROBES, start, span.end)
        if not windows:
            return self.unknown("no probe answered inside the span: availability not observed")
        budget = error_budget(self.target, self.window_s)
        worst = max(windows, key=lambda w: w.downtime_s)
        observed = sum(w.observed_s for w in windows)
        measured = {"downtime_s": seconds(worst.downtime_s), "budget_s": round(budget, 3),
                    "window_ratio": round(worst.window_ratio, 6),
                    "observed_ratio": None if worst.observed_ratio is None else round(worst.observed_ratio, 6),
                    "observed_s": seconds(observed), "probes": sum(w.probes for w in windows),
                    "failed_probes": sum(w.failed for w in windows)}
        detail = (f"worst window: {worst.downtime_s:.3f} s down of {worst.observed_s:.1f} s observed; "
                  f"the gate judges the downtime against the window's budget")
        return self.judge(worst.downtime_s <= budget + 1e-9, measured, detail)


@register
class NoFailedRequestsBeyondProbeWindow(Gate):
    """After an instance is lost, no client request fails later than the load balancer's probe
    window (its failed checks take the instance out of rotation), until the next fault."""

    judges = "system"
    id = "no_failed_requests_beyond_probe_interval"
    description = ("LB health probes route around the lost instance: no failed client request beyond "
                   "the probe interval")

    def __init__(self, fault: str, window_s: float, minimum: int = 10):
        self.fault, self.window_s, self.minimum = fault, window_s, minimum
        self.threshold = f"0 failed later than {window_s:.1f} s after the kill"

    def evaluate(self, history: History) -> GateResult:
        span = fault_span(history, self.fault, ("inject",))
        if span is None:
            return self.unknown(f"no fault {self.fault!r} was injected")
        after = span.start + self.window_s
        ops = [o for o in history.ops if o.kind in CLIENT_REQUESTS and o.t_invoke >= span.start
               and (span.end is None or o.t_invoke < span.end)]
        late = [o for o in ops if o.outcome is not Outcome.OK and o.t_invoke > after]
        early = [o for o in ops if o.outcome is not Outcome.OK and o.t_invoke <= after]
        beyond = [o for o in ops if o.t_invoke > after]
        measured = {"failed_after_window": len(late), "failed_within_window": len(early),
                    "requests_after_kill": len(ops)}
        if len(beyond) < self.minimum:
            return self.unknown(f"only {len(beyond)} client requests after the probe window: too few to judge",
                                measured)
        return self.judge(not late, measured, "; ".join(sorted({o.error for o in late}))[:300])
