"""RTO: from fault injection to the first operation after it that completed ok end to end, on the
operation the fault blocks: a write read back, a publish read back as Published, or an apply
the platform itself logged."""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.measure.accounting import WRITE, final_read_keys, final_read_op
from harness.model import Event, EventKind, History, Outcome, event_detail_of

FIRST_WRITE = "first_write"
# what a scenario's recovery is measured on: op kinds, or an apply at a platform ("apply:jamf")
RECOVERY_OPS = ("write", "publish")


@dataclass(frozen=True)
class RTOResult:
    """Recovery time of one fault.

    seconds: None when recovery never happened, or when there is no inject event at all
    (then fault_time is None too, which tells the two apart: the latter is a harness error).
    phases: offset in seconds from injection of the first event of every recovery kind
    ("detect", "promote", ...) at or after the injection, plus "first_<on>" = seconds.
    verdict_reason: one sentence saying why, for the report.
    """

    seconds: float | None
    phases: dict[str, float] = field(default_factory=dict)
    verdict_reason: str = ""
    fault_time: float | None = None


def fault_event(history: History, fault: str | None = None) -> Event | None:
    """The inject event named `fault` (its first one), or the first inject event if no name."""
    injects = [e for e in history.events if e.kind == EventKind.INJECT and (fault is None or e.name == fault)]
    return min(injects, key=lambda e: e.t) if injects else None


def confirmed(history: History, on: str = WRITE) -> list[tuple[float, float, str | None]]:
    """(invoked, completed, key) of every operation of kind `on` that completed ok end to end
    (key None: a platform's log line without an idempotency key).

    write: acknowledged and its key in the final read; publish: acknowledged and its intent read
    back as Published by the final read; apply:<platform>: the platform's own log shows it
    applied (answered 200). Raises NoFinalRead for writes and publishes without a final read."""
    if on.startswith("apply:"):
        source = f"platform:{on.split(':', 1)[1]}"
        return [
            (e.t, e.t, event_detail_of(e).get("idempotency_key"))
            for e in history.events
            if e.kind == EventKind.PLATFORM_REQUEST and e.source == source and event_detail_of(e).get("status") == 200
        ]
    if on not in RECOVERY_OPS:
        raise ValueError(f"RTO is measured on {', '.join(RECOVERY_OPS)} or apply:<platform>, not {on!r}")
    if on == WRITE:
        read = set(final_read_keys(history))
    else:
        read = set(final_read_op(history).detail.get("published") or ())
    return [
        (op.t_invoke, op.t_complete, op.value)
        for op in history.ops
        if op.kind == on and op.outcome is Outcome.OK and op.t_complete is not None and op.value in read
    ]


def rto(history: History, fault: str | None = None, on: str = WRITE) -> RTOResult:
    """RTO of `fault` (default: the first injection) measured on `on` (see confirmed()).

    The recovering operation was invoked once the fault was in place (its "in_place" marker;
    the injection when there is none: an operation that got in ahead of the harm, e.g. a write
    committed while a lock was still being taken, is no recovery) and completed ok end to end;
    RTO is its completion minus the injection time. Raises NoFinalRead when a write or publish
    cannot be confirmed for want of a final read. Never raises for "never recovered"."""
    inject = fault_event(history, fault)
    if inject is None:
        what = f"no inject event named {fault!r}" if fault else "no inject event"
        return RTOResult(None, {}, f"RTO unknown: {what} in the history")
    phases = _phases(history, inject)
    in_place = history.first_event(EventKind.IN_PLACE, inject.name, after=inject.t)
    start = in_place.t if in_place is not None else inject.t
    after = [(done, key) for invoked, done, key in confirmed(history, on) if invoked >= start]
    what = on.split(":")[0]
    if not after:
        reason = f"never recovered: no {what} after injecting {inject.name!r} completed ok end to end"
        return RTOResult(None, phases, reason, inject.t)
    done, key = min(after, key=lambda x: x[0])
    seconds = done - inject.t
    phases[f"first_{what}"] = seconds
    reason = f"first confirmed {what} (key {key!r}) completed {seconds:.3f} s after injecting {inject.name!r}"
    return RTOResult(seconds, phases, reason, inject.t)


RECOVERY_KINDS = (
    EventKind.DETECT,
    EventKind.FENCE,
    EventKind.PROMOTE,
    EventKind.RECONNECT,
    EventKind.REBUILD,
    EventKind.LAG_CHECK,
    EventKind.FAILBACK,
)


def _phases(history: History, inject: Event) -> dict[str, float]:
    # Events before the injection belong to an earlier fault; keep the first of each kind after.
    phases: dict[str, float] = {}
    for event in sorted(history.events, key=lambda e: e.t):
        if event.kind not in RECOVERY_KINDS or event.t < inject.t or event.kind in phases:
            continue
        phases[event.kind] = event.t - inject.t
    return phases
