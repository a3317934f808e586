"""The event store row's threshold (matrix row 7): EventStoreWriteSuccess >= 99.9% per hour."""

from __future__ import annotations

from typing import Any

from harness.gates.base import Context, ThresholdGate, register
from harness.model import GateResult, Verdict


@register
class EventStoreWriteSuccess(ThresholdGate):
    """Audit events persisted / acknowledged state changes needing one >= target (default 0.999)
    in every clock hour. The context value is one ratio or the per-hour ratios (or objects with
    .ratio and .hour, as harness.measure.eventstore gives them); no hour at all is UNKNOWN."""

    id = "event_store_write_success"
    key = "EventStoreWriteSuccess"
    comparator = ">="

    def __init__(self, target: float = 0.999, **kw: Any) -> None:
        super().__init__(target, **kw)

    def describe(self) -> str:
        return (f"EventStoreWriteSuccess >= {self.threshold:.1%} per hour (audit events persisted / "
                f"acknowledged state changes needing one)")

    def evaluate(self, context: Context) -> GateResult:
        raw = context.get(self.key)
        if raw is None or isinstance(raw, (int, float)):
            return super().evaluate(context)
        hours = list(raw)
        if not hours:
            return self.result(None, Verdict.UNKNOWN, "no acknowledged state change to judge")
        ratios = [getattr(h, "ratio", h) for h in hours]
        worst = min(ratios)
        where = getattr(hours[ratios.index(worst)], "hour", f"hour {ratios.index(worst)}")
        verdict = Verdict.PASS if worst >= self.threshold else Verdict.FAIL
        return self.result(worst, verdict, f"worst of {len(hours)} hour(s): {where} at {worst:.4%}")
