"""RTO: from fault injection to the first write after it that is acknowledged and read back."""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.measure.accounting import WRITE, final_read_keys
from harness.model import Event, History, Outcome

INJECT = "inject"
HEAL = "heal"
FIRST_WRITE = "first_write"


@dataclass(frozen=True)
class RTOResult:
    """Recovery time of one fault.

    seconds: None when recovery never happened, or when there is no inject event at all
    (then fault_time is None too, which tells the two apart: the latter is a harness error).
    phases: offset in seconds from injection of the first event of every non inject/heal kind
    at or after the injection ("detect", "promote", ...), plus "first_write" = seconds.
    verdict_reason: one sentence saying why, for the report.
    """

    seconds: float | None
    phases: dict[str, float] = field(default_factory=dict)
    verdict_reason: str = ""
    fault_time: float | None = None


def fault_event(history: History, fault: str | None = None) -> Event | None:
    """The inject event named `fault` (its first one), or the first inject event if no name."""
    injects = [e for e in history.events if e.kind == INJECT and (fault is None or e.name == fault)]
    return min(injects, key=lambda e: e.t) if injects else None


def rto(history: History, fault: str | None = None) -> RTOResult:
    """RTO of `fault` (default: the first injection) measured on `history`.

    The recovering op is a write invoked at or after injection, acknowledged ok, whose key is
    in the final read; RTO is its completion minus the injection time. Writes acknowledged
    but never read back do not count. Raises NoFinalRead when there is no final read, because
    recovery can then be neither confirmed nor denied. Never raises for "never recovered".
    """
    inject = fault_event(history, fault)
    if inject is None:
        what = f"no inject event named {fault!r}" if fault else "no inject event"
        return RTOResult(None, {}, f"RTO unknown: {what} in the history")
    read = set(final_read_keys(history))
    phases = _phases(history, inject)
    confirmed = [
        op
        for op in history.ops
        if op.kind == WRITE
        and op.outcome is Outcome.OK
        and op.t_complete is not None
        and op.t_invoke >= inject.t
        and op.value in read
    ]
    if not confirmed:
        reason = f"never recovered: no write after injecting {inject.name!r} was acknowledged and read back"
        return RTOResult(None, phases, reason, inject.t)
    first = min(confirmed, key=lambda op: (op.t_complete, op.id))
    seconds = first.t_complete - inject.t
    phases[FIRST_WRITE] = seconds
    reason = (
        f"first confirmed write (op {first.id}, key {first.value!r}) completed "
        f"{seconds:.3f} s after injecting {inject.name!r}"
    )
    return RTOResult(seconds, phases, reason, inject.t)


def _phases(history: History, inject: Event) -> dict[str, float]:
    # Events before the injection belong to an earlier fault; keep the first of each kind after.
    phases: dict[str, float] = {}
    for event in sorted(history.events, key=lambda e: e.t):
        if event.kind in (INJECT, HEAL) or event.t < inject.t or event.kind in phases:
            continue
        phases[event.kind] = event.t - inject.t
    return phases
