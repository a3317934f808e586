"""The Chaos Toolkit hypothesis run twice: the steady state before the first fault and again after
every heal; and the journal's promise that every fault injected was healed."""

from __future__ import annotations

from harness.gates.base import Gate, register
from harness.model import EventKind, GateResult, History, OpKind, Verdict, detail_of


@register
class SteadyState(Gate):
    """The steady-state hypothesis (every probe green) held before the first injection, or again
    after every fault was healed."""

    judges = "system"

    def __init__(self, phase: str = "before"):
        if phase not in ("before", "after"):
            raise ValueError("phase is before or after")
        self.phase = phase
        self.id = "steady_state" if phase == "before" else "steady_state_after_heal"
        self.threshold = "all green"
        self.description = (
            "Every probe green before injection (ServiceHealth = Healthy, replicas streaming, every API instance up)"
            if phase == "before"
            else "Every probe green again after every fault was healed"
        )

    def evaluate(self, history: History) -> GateResult:
        checks = [o for o in history.ops_of(OpKind.STEADY_STATE) if detail_of(o).get("phase") == self.phase]
        injects = history.events_of(EventKind.INJECT)
        heals = history.events_of(EventKind.HEAL)
        if self.phase == "before":
            first = min((e.t for e in injects), default=None)
            checks = [o for o in checks if first is None or o.done <= first]
        else:
            if _not_healed(history):
                return self.unknown(
                    f"not every fault was healed ({', '.join(_not_healed(history))}): "
                    f"the steady state after the heal cannot be judged"
                )
            last = max((e.t for e in heals), default=None)
            checks = [o for o in checks if last is None or o.t_invoke >= last]
        if not checks:
            return self.unknown(f"the steady state was not checked {self.phase} the faults")
        final = max(checks, key=lambda o: o.done)
        failed = {k: v[1] for k, v in (final.value or {}).items() if not v[0]}
        if final.ok:
            return self.result(Verdict.PASS, "green")
        return self.result(Verdict.FAIL, failed or final.error, final.error)


@register
class FaultsHealed(Gate):
    """Every fault the journal injected was healed (nothing left behind). No fault at all proves
    nothing: unknown, with the reason (a dry run says why it injected none)."""

    judges = "runbook"
    id = "faults_healed"
    description = "Every fault injected was healed"
    threshold = "every inject healed"

    def __init__(self, no_fault_reason: str = "no fault was injected"):
        self.no_fault_reason = no_fault_reason

    def evaluate(self, history: History) -> GateResult:
        injects = history.events_of(EventKind.INJECT)
        if not injects:
            return self.unknown(self.no_fault_reason, "no fault injected")
        left = _not_healed(history)
        return self.judge(not left, {"injected": len(injects), "not_healed": left})


def _not_healed(history: History) -> list[str]:
    """Labels of injections without a heal after them (a label may be injected again later)."""
    left: list[str] = []
    for event in sorted(history.events_of(EventKind.INJECT, EventKind.HEAL), key=lambda e: e.t):
        if event.kind == EventKind.INJECT:
            left.append(event.name)
        elif event.name in left:
            left.remove(event.name)
    return left
