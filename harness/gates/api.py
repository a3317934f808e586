"""Matrix row 1, "Control Plane API/Policy services / Stateless service outage": intents and
approvals blocked with a clear error while the tier is down, ServiceHealth = Healthy required
before a new publish, and the connectors serving queued work meanwhile."""

from __future__ import annotations

from harness.gates.base import Gate, Span, answer, fault_span, register, seconds
from harness.gates.recovery import refused_in
from harness.measure.platforms import applied, arrivals
from harness.model import EventKind, GateResult, History, Op, OpKind, Verdict, detail_of

HEALTH_PROBES = (OpKind.PROBE, OpKind.HEALTH)


@register
class IntentsAndApprovalsBlocked(Gate):
    """While every API instance is down, a new intent and an approval are refused with an explicit,
    machine-readable error (503 with an error and a cause)."""

    judges = "system"
    id = "intents_and_approvals_blocked"
    description = "New Deployment Intents and approvals blocked with a clear error while every API instance is down"
    threshold = "503 with error and cause"

    def __init__(self, fault: str):
        self.fault = fault

    def evaluate(self, history: History) -> GateResult:
        span = tier_down(history, self.fault)
        if span is None:
            return self.unknown(f"no fault {self.fault!r} was injected")
        result = refused_in(self, history, span, (OpKind.CREATE_INTENT, OpKind.APPROVE), status=503)
        if result.verdict is not Verdict.PASS:
            return result
        unclear = [
            o
            for o in history.ops
            if o.kind in (OpKind.CREATE_INTENT, OpKind.APPROVE)
            and span.holds(o)
            and not (detail_of(o).get("error") and detail_of(o).get("cause"))
        ]
        if unclear:
            return self.result(
                Verdict.FAIL,
                result.measured,
                "refused without an error and a cause: " + "; ".join(answer(o) for o in unclear[:3]),
            )
        return result


def tier_down(history: History, fault: str) -> Span | None:
    """From the fault that took the whole tier down until the first instance came back (any heal).
    It starts when the harness saw every instance dead (checkpoint "<fault>:down", after its kills
    returned) where it recorded that: a request made while the kills were still landing (a
    container's takes a moment) may rightly have been served."""
    inject = history.first_event(EventKind.INJECT, fault)
    if inject is None:
        return None
    seen = history.first_event(EventKind.CHECKPOINT, f"{fault}:down", after=inject.t)
    start = seen.t if seen is not None else inject.t
    back = [e.t for e in history.events_of(EventKind.HEAL) if e.t >= inject.t]
    return Span(start, min(back) if back else None)


def _said(op: Op | None) -> str | None:
    return None if op is None else detail_of(op).get("ServiceHealth")


def health_around(history: History, op: Op) -> tuple[str | None, str | None]:
    """What ServiceHealth the Control Plane answered right before and right after an op (the
    harness's own health probes that bracket it)."""
    probes = sorted(history.ops_of(*HEALTH_PROBES), key=lambda o: o.t_invoke)
    before = [p for p in probes if p.done <= op.t_invoke]
    after = [p for p in probes if p.t_invoke >= op.done]
    return _said(before[-1] if before else None), _said(after[0] if after else None)


@register
class PublishRefusedWhileUnhealthy(Gate):
    """Validation rule of row 1: a publish attempted while ServiceHealth = Unhealthy (the health
    answers right before and right after it both said so) must be refused."""

    judges = "system"
    id = "publish_refused_while_unhealthy"
    description = "A publish attempted while ServiceHealth = Unhealthy is refused"
    threshold = "refused (4xx/5xx)"

    def __init__(self, fault: str):
        self.fault = fault

    def evaluate(self, history: History) -> GateResult:
        inject = history.first_event(EventKind.INJECT, self.fault)
        if inject is None:
            return self.unknown(f"no fault {self.fault!r} was injected")
        while_unhealthy = [
            o
            for o in history.ops_of(OpKind.PUBLISH)
            if o.t_invoke >= inject.t and health_around(history, o) == ("Unhealthy", "Unhealthy")
        ]
        if not while_unhealthy:
            return self.unknown("no publish was attempted between two answers saying ServiceHealth = Unhealthy")
        accepted = [o for o in while_unhealthy if o.ok]
        measured = {
            "attempted_while_unhealthy": len(while_unhealthy),
            "accepted": len(accepted),
            "answers": sorted({answer(o) for o in while_unhealthy}),
        }
        return self.judge(not accepted, measured)


@register
class PublishAcceptedWhenHealthy(Gate):
    """Once ServiceHealth = Healthy again, a publish is accepted (the gate does not block for ever)."""

    judges = "system"
    id = "publish_accepted_when_healthy"
    description = "Once ServiceHealth = Healthy, a new publish is accepted"
    threshold = "the first publish after a Healthy answer accepted"

    def __init__(self, fault: str):
        self.fault = fault

    def evaluate(self, history: History) -> GateResult:
        span = fault_span(history, self.fault)
        if span is None or span.end is None:
            return self.unknown(f"the fault {self.fault!r} was not injected and healed")
        candidates = [
            o
            for o in sorted(history.ops_of(OpKind.PUBLISH), key=lambda o: o.t_invoke)
            if o.t_invoke >= span.end and health_around(history, o)[0] == "Healthy"
        ]
        if not candidates:
            return self.unknown("no publish was attempted after a Healthy answer")
        first = candidates[0]
        return self.judge(first.ok, {"publish": answer(first), "after_redeploy_s": seconds(first.t_invoke - span.end)})


@register
class ConnectorsServeQueuedWork(Gate):
    """Endpoints unaffected: intents queued before the API tier went down reach their platform
    exactly once while it is down (the platform's own log)."""

    judges = "system"
    id = "connectors_serve_queued_work"
    description = "Endpoints unaffected: connectors keep serving queued work while the API tier is down"
    threshold = "each applied once, while the API was down"

    def __init__(self, fault: str, platform: str, keys: list[str]):
        self.fault, self.platform, self.keys = fault, platform, list(keys)

    def evaluate(self, history: History) -> GateResult:
        span = tier_down(history, self.fault)
        if span is None:
            return self.unknown(f"no fault {self.fault!r} was injected")
        if not self.keys:
            return self.unknown(f"no intent was queued for {self.platform} before the outage")
        seen = arrivals(history, self.platform)
        served = [k for k in self.keys if len(applied(seen.get(k, []))) == 1 and span.contains(applied(seen[k])[0].t)]
        measured = {"queued": len(self.keys), "applied_once_while_down": len(served)}
        return self.judge(len(served) == len(self.keys), measured)
