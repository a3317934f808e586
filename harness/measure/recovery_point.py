"""RPO: how far before the fault the first lost acknowledged write was acknowledged."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

from harness.measure.accounting import acknowledged_ops, write_accounting
from harness.measure.recovery import fault_event
from harness.model import History


@dataclass(frozen=True)
class RPOResult:
    """RPO in seconds beside the lost-write count.

    seconds is 0.0 when nothing acknowledged was lost, None when writes were lost but the
    history has no inject event to measure from (unknown, not zero).
    """

    seconds: float | None
    lost_count: int
    first_lost_key: Hashable | None = None


def rpo(history: History, fault: str | None = None, writes: str = "write", read: str = "final_read") -> RPOResult:
    """Fault injection time minus the acknowledgement time of the earliest acknowledged lost write.

    Writes lost although acknowledged after the injection give a negative figure by that
    formula; it is clamped to 0.0 and lost_count still reports them (the lost_writes gate,
    not the RPO, catches that case). Raises NoFinalRead without a final read.
    """
    lost = write_accounting(history, writes, read).lost
    if not lost:
        return RPOResult(0.0, 0, None)
    lost_set = set(lost)
    first = next(op for op in acknowledged_ops(history, writes) if op.value in lost_set)
    inject = fault_event(history, fault)
    if inject is None:
        return RPOResult(None, len(lost), first.value)
    acked_at = first.t_complete if first.t_complete is not None else first.t_invoke
    return RPOResult(max(0.0, inject.t - acked_at), len(lost), first.value)
