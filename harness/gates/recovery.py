"""Recovery gates of every failover row: RTO, RPO, lost and duplicated writes, events and applies,
the failover itself, writes resuming, ApprovalEventCount, TransactionLag before failback."""

from __future__ import annotations

from collections import Counter
from typing import Any

from harness import measure
from harness.gates.base import Gate, Span, answer, last_op, register, seconds
from harness.measure.accounting import NoFinalRead
from harness.measure.eventstore import _event_counts, audit_needed
from harness.model import EventKind, GateResult, History, Op, OpKind, Outcome, Verdict, detail_of, event_detail_of


@register
class RtoSeconds(Gate):
    """RTO <= target, measured on the operation the fault blocks (write, publish, apply:<platform>).
    Never recovered is FAIL; no fault to measure from, or nothing to confirm recovery with, UNKNOWN."""

    judges = "system"
    id = "rto_seconds"
    operator, unit = "<=", "s"

    def __init__(self, target: float, fault: str | None = None, on: str = OpKind.WRITE):
        self.target, self.fault, self.on = target, fault, on
        self.limit = target
        self.threshold = f"<= {target:g} s"
        self.description = (
            f"Recovery time (fault to the first {on.split(':')[0]} after it that completed "
            f"ok end to end) <= {target:g} s"
        )

    def evaluate(self, history: History) -> GateResult:
        try:
            rto = measure.rto(history, self.fault, self.on)
        except NoFinalRead as exc:
            return self.unknown(f"recovery cannot be confirmed: {exc}")
        if rto.fault_time is None:
            return self.unknown(rto.verdict_reason)
        if rto.seconds is None:
            return self.result(Verdict.FAIL, None, rto.verdict_reason)
        return self.judge(rto.seconds <= self.target, seconds(rto.seconds), rto.verdict_reason)


@register
class RpoSeconds(Gate):
    """RPO <= target: fault time minus the acknowledgement of the first lost write (0: none lost)."""

    judges = "system"
    id = "rpo_seconds"
    operator, unit = "<=", "s"

    def __init__(
        self, target: float, fault: str | None = None, writes: str = OpKind.WRITE, read: str = OpKind.FINAL_READ
    ):
        self.target, self.fault, self.writes, self.read = target, fault, writes, read
        self.limit = target
        self.threshold = f"<= {target:g} s"
        self.description = f"Recovery point (data loss window before the fault) <= {target:g} s"

    def evaluate(self, history: History) -> GateResult:
        try:
            rpo = measure.rpo(history, self.fault, writes=self.writes, read=self.read)
        except NoFinalRead as exc:
            return self.unknown(f"no final read: {exc}")
        if rpo.seconds is None:
            return self.unknown(f"{rpo.lost_count} writes lost but no fault to measure from")
        return self.judge(
            rpo.seconds <= self.target, seconds(rpo.seconds), f"{rpo.lost_count} acknowledged write(s) lost"
        )


@register
class LostWrites(Gate):
    """Acknowledged writes absent after recovery <= allowed (default 0)."""

    judges = "system"
    id = "lost_writes"
    operator, unit = "<=", "writes"

    def __init__(self, allowed: int = 0, writes: str = OpKind.WRITE, read: str = OpKind.FINAL_READ):
        self.allowed, self.writes, self.read = allowed, writes, read
        self.limit = allowed
        self.threshold = f"<= {allowed}"
        self.description = f"Acknowledged writes lost <= {allowed}"

    def evaluate(self, history: History) -> GateResult:
        try:
            accounting = measure.write_accounting(history, writes=self.writes, read=self.read)
        except NoFinalRead as exc:
            return self.unknown(f"no final read: {exc}")
        lost = list(accounting.lost)
        return self.judge(
            len(lost) <= self.allowed,
            len(lost),
            f"{accounting.acknowledged} acknowledged; lost: {', '.join(map(str, lost[:10]))}"
            if lost
            else f"{accounting.acknowledged} acknowledged, every one read back",
        )


@register
class DuplicatedWrites(Gate):
    """No key read back twice (a write applied twice)."""

    judges = "system"
    id = "duplicated_writes"
    threshold = "0"
    operator, limit, unit = "==", 0, "writes"
    description = "No write applied twice (duplicated writes = 0)"

    def __init__(self, writes: str = OpKind.WRITE, read: str = OpKind.FINAL_READ):
        self.writes, self.read = writes, read

    def evaluate(self, history: History) -> GateResult:
        try:
            duplicated = measure.write_accounting(history, writes=self.writes, read=self.read).duplicated
        except NoFinalRead as exc:
            return self.unknown(f"no final read: {exc}")
        return self.judge(not duplicated, len(duplicated), ", ".join(map(str, duplicated[:10])))


@register
class DuplicatedEvents(Gate):
    """No state change of the workload has two audit events (from the audit read of the store)."""

    judges = "system"
    id = "duplicated_events"
    threshold = "0"
    operator, limit, unit = "==", 0, "state changes"
    description = "No state change recorded twice in the append-only event store"

    def evaluate(self, history: History) -> GateResult:
        read = last_op(history, OpKind.READ_AUDIT)
        if read is None or read.outcome is not Outcome.OK:
            return self.unknown(
                "the event store was not read after the scenario"
                if read is None
                else f"the event store could not be read: {read.error}"
            )
        counts, intent_of = _event_counts(read.value)
        twice = []
        for op in audit_needed(history.ops):
            if op.kind == OpKind.WRITE:
                n = counts[("IntentCreated", op.value)]
            else:
                ref = detail_of(op).get("intent_id", intent_of.get(op.value))
                n = counts[(measure.eventstore.EVENT_OF[op.kind], ref)] if ref is not None else 0
            if n > 1:
                twice.append(f"{op.kind} {op.value}")
        return self.judge(not twice, len(twice), ", ".join(twice[:10]))


@register
class DuplicatedApplies(Gate):
    """No intent reached a platform twice (the stand-ins' own logs; connectors' idempotency)."""

    judges = "system"
    id = "duplicated_applies"
    threshold = "0"
    operator, limit, unit = "==", 0, "intents"
    description = "No intent applied twice by a platform (Test-IdempotencyKey)"

    def __init__(self, platforms: tuple[str, ...], keys: set[str] | None = None):
        self.platforms, self.keys = tuple(platforms), keys

    def evaluate(self, history: History) -> GateResult:
        from harness.measure.platforms import applied, arrivals

        seen = False
        twice = []
        for platform in self.platforms:
            for key, events in arrivals(history, platform).items():
                if self.keys is not None and key not in self.keys:
                    continue
                seen = True
                if len(applied(events)) > 1:
                    twice.append(f"{platform} {key} x{len(applied(events))}")
        if not seen:
            return self.unknown("no intent of the scenario reached a platform")
        return self.judge(not twice, len(twice), ", ".join(twice[:10]))


@register
class FailoverCompleted(Gate):
    """The lab's failover (detect, promote, repoint the clients) completed after the fault."""

    judges = "system"
    id = "failover_completed"
    description = "Replica promoted and clients repointed (automatic failover)"

    def __init__(self, fault: str, timeout_s: float = 60.0):
        self.fault, self.timeout_s = fault, timeout_s
        self.threshold = f"reconnect within {timeout_s:g} s"

    def evaluate(self, history: History) -> GateResult:
        inject = history.first_event(EventKind.INJECT, self.fault)
        if inject is None:
            return self.unknown(f"no fault {self.fault!r} was injected")
        phases = {
            e.kind: round(e.t - inject.t, 3)
            for e in reversed(history.events)
            if e.t >= inject.t and e.kind in (EventKind.DETECT, EventKind.FENCE, EventKind.PROMOTE, EventKind.RECONNECT)
        }
        error = history.first_event(EventKind.FAILOVER_ERROR, after=inject.t)
        reconnect = history.first_event(EventKind.RECONNECT, after=inject.t)
        if reconnect is None:
            return self.result(
                Verdict.FAIL,
                phases or None,
                f"failover error: {event_detail_of(error).get('error')}" if error else "no reconnect event",
            )
        return self.judge(reconnect.t - inject.t <= self.timeout_s, phases)


@register
class WritesResumed(Gate):
    """A write through the API succeeds after the clients were repointed (after `after`)."""

    judges = "system"
    id = "writes_resumed"
    description = "Writes resume through the API after the failover"
    threshold = "a write acknowledged after the reconnect"

    def __init__(self, fault: str, after: EventKind = EventKind.RECONNECT):
        self.fault, self.after = fault, after

    def evaluate(self, history: History) -> GateResult:
        inject = history.first_event(EventKind.INJECT, self.fault)
        if inject is None:
            return self.unknown(f"no fault {self.fault!r} was injected")
        mark = history.first_event(self.after, after=inject.t)
        if mark is None:
            return self.unknown(f"no {self.after} event after the fault: nothing to resume from")
        writes = [o for o in history.ops_of(OpKind.WRITE) if o.t_invoke >= mark.t]
        ok = [o for o in writes if o.ok]
        if not writes:
            return self.unknown(f"no write attempted after the {self.after}")
        return self.judge(
            bool(ok),
            seconds(min(o.done for o in ok) - inject.t) if ok else None,
            f"{len(ok)} of {len(writes)} writes acknowledged after the {self.after}",
        )


@register
class ApprovalEventCount(Gate):
    """Validation rule 5: after the failover, the ApprovalRecorded events on the promoted node are
    exactly the approvals acknowledged before they were read (an indeterminate approval, or one
    concurrent with the read, that is still in flight when the read began or invoked before it
    ended, may or may not be there: the read's snapshot is taken somewhere in between); none
    missing, none extra, none twice."""

    judges = "system"
    id = "approval_event_count"
    description = "ApprovalEventCount after failover matches the approvals the primary acknowledged"
    threshold = "equal (indeterminate approvals either way)"

    def __init__(self, fault: str, after: EventKind = EventKind.RECONNECT):
        self.fault, self.after = fault, after

    def evaluate(self, history: History) -> GateResult:
        inject = history.first_event(EventKind.INJECT, self.fault)
        mark = history.first_event(self.after, after=inject.t) if inject else None
        if mark is None:
            return self.unknown(f"no {self.after} after the fault {self.fault!r}")
        read = last_op(history, OpKind.READ_EVENTS, after=mark.t, type="ApprovalRecorded")
        if read is None or not read.ok:
            return self.unknown(
                "ApprovalRecorded events were not read from the promoted node"
                if read is None
                else f"the event store could not be read: {read.error}"
            )
        # invoked before the read ended (one invoked later cannot be in it); acknowledged before the
        # read began: must be in it; concurrent with the read (the workload runs on), or
        # indeterminate: may be there or not
        approves = [o for o in history.ops_of(OpKind.APPROVE) if o.t_invoke < read.done]
        acked = {detail_of(o).get("intent_id") for o in approves if o.ok and o.done <= read.t_invoke}
        maybe = {
            detail_of(o).get("intent_id")
            for o in approves
            if o.outcome is Outcome.INFO or (o.ok and o.done > read.t_invoke)
        }
        counts = Counter(e["intent_id"] for e in read.value)
        found = set(counts)
        missing = sorted(acked - found, key=str)
        extra = sorted(found - acked - maybe, key=str)
        twice = sorted((i for i, n in counts.items() if n > 1), key=str)
        measured = {
            "ApprovalEventCount": sum(counts.values()),
            "acknowledged": len(acked),
            "indeterminate": len(maybe),
            "missing": missing[:10],
            "unexpected": extra[:10],
            "duplicated": twice[:10],
        }
        return self.judge(not (missing or extra or twice), measured)


@register
class TransactionLagBeforeFailback(Gate):
    """TransactionLag <= limit when the failback took effect, as the harness measured it itself:
    its lag samples of the failback target (ops "lag": replay LSN against the primary's current
    LSN, and the replay timestamp) and its own read of the target leaving recovery (ops
    "in_recovery" false), never the failback action's word.

    - took effect: the first harness read, at or after the first failback request, that found the
      target out of recovery; the lag judged is the last ok lag sample completed before that read
      began, which must be at most `fresh_s` older, else unknown;
    - that lag over the limit fails, naming it; the target never seen out of recovery after a
      request (refused every time, or never read): unknown, never pass;
    - the refusal must have been exercised: the first request made while the harness measured lag
      over the limit (its last sample before the request, within `fresh_s`); else (the lab could not
      build that lag) unknown, never pass. The action then refused (op failback not ok) or waited.
    Figures: the lag at the request, whether the action refused, the lag at take-effect."""

    judges = "runbook"
    id = "transaction_lag_seconds"
    operator, unit = "<=", "s"

    def __init__(self, limit: float = 5.0, fresh_s: float = 10.0):
        self.limit: float = limit  # also the typed result's limit
        self.fresh_s = fresh_s
        self.threshold = f"<= {limit:g} s"
        self.description = f"TransactionLag <= {limit:g} s before failback (measured by the harness)"

    def _lag_before(self, history: History, node: Any, t: float) -> Op | None:
        """The last ok lag sample of `node` completed before t, if at most fresh_s old."""
        samples = [
            o
            for o in history.ops_of(OpKind.LAG)
            if o.ok and detail_of(o).get("node") == node and o.done <= t and isinstance(o.value, (int, float))
        ]
        last = max(samples, key=lambda o: o.done, default=None)
        return last if last is not None and t - last.done <= self.fresh_s else None

    def _read(self, history: History) -> dict[str, Any]:
        requests = sorted(history.ops_of(OpKind.FAILBACK), key=lambda o: o.t_invoke)
        if not requests:
            return {}
        first, last = requests[0], requests[-1]
        node = first.detail.get("node")
        roles = sorted(
            (
                o
                for o in history.ops_of(OpKind.IN_RECOVERY)
                if o.ok and detail_of(o).get("node") == node and o.t_invoke >= first.t_invoke
            ),
            key=lambda o: o.t_invoke,
        )
        effect = next((o for o in roles if o.value is False), None)
        at_request = self._lag_before(history, node, first.t_invoke)
        return {
            "first": first,
            "last": last,
            "node": node,
            "roles": roles,
            "effect": effect,
            "at_request": at_request,
            "at_effect": self._lag_before(history, node, effect.t_invoke) if effect else None,
        }

    def figures(self, history: History) -> dict[str, Any]:
        seen = self._read(history)
        if not seen:
            return {}
        first = seen["first"]
        return {
            "failback_lag_at_request_s": seconds(seen["at_request"].value) if seen["at_request"] else None,
            "failback_refused": first.outcome is Outcome.FAIL,
            "failback_lag_at_effect_s": seconds(seen["at_effect"].value) if seen["at_effect"] else None,
        }

    def evaluate(self, history: History) -> GateResult:
        seen = self._read(history)
        if not seen:
            return self.unknown("no failback was requested")
        first, last, node, effect = seen["first"], seen["last"], seen["node"], seen["effect"]
        if effect is None:
            after_last = [o for o in seen["roles"] if o.t_invoke >= last.done]
            why = f"last request: {last.error or 'answered ok'}"
            if after_last:  # the lag rule was not broken, but the failback was never made: not a pass
                return self.unknown(
                    f"the failback never took effect: {node} never took the primary role (the "
                    f"harness read it in recovery {len(after_last)} time(s) after the last "
                    f"request); {why}"
                )
            return self.unknown(f"the harness never read {node} after the failback request; {why}")
        at_effect = seen["at_effect"]
        if at_effect is None:
            return self.unknown(
                f"no harness lag sample of {node} within {self.fresh_s:g} s before the failback took effect"
            )
        lag = float(at_effect.value)
        at_request = seen["at_request"]
        asked = f"{at_request.value:.2f} s" if at_request else "not measured"
        refused = first.outcome is Outcome.FAIL
        answer = "refused" if refused else ("waited" if first is last else f"answered {first.error or 'ok'}")
        detail = (
            f"lag at the first request {asked}, the action {answer}; lag when {node} took the primary "
            f"role {lag:.2f} s ({len(history.ops_of(OpKind.FAILBACK))} request(s))"
        )
        if lag > self.limit:
            return self.result(
                Verdict.FAIL,
                seconds(lag),
                f"failback took effect with TransactionLag {lag:.2f} s > {self.limit:g} s; {detail}",
            )
        if at_request is None or at_request.value <= self.limit:
            return self.unknown(
                f"the refusal was not exercised: the failback was not requested while the harness "
                f"measured TransactionLag > {self.limit:g} s (the lab could not build that lag); "
                f"{detail}",
                seconds(lag),
            )
        return self.result(Verdict.PASS, seconds(lag), detail)


@register
class WritesAfterFailback(Gate):
    """Writes succeed through the API after the failback."""

    judges = "runbook"
    id = "writes_after_failback"
    description = "Writes succeed after failback"
    threshold = "a write acknowledged after the failback"

    def evaluate(self, history: History) -> GateResult:
        failback = last_op(history, OpKind.FAILBACK)
        if failback is None or not failback.ok:
            return self.unknown("no failback was made")
        writes = [o for o in history.ops_of(OpKind.WRITE) if o.t_invoke >= failback.done]
        if not writes:
            return self.unknown("no write attempted after the failback")
        ok = [o for o in writes if o.ok]
        return self.judge(bool(ok), f"{len(ok)} of {len(writes)}")


@register
class PublishApprovalBlocked(Gate):
    """While the primary is down, approval and publish are refused (503 naming the cause) and no
    state change is acknowledged. The judged window runs from the moment the kill took effect (the
    harness's "in_place" marker once the kill returned; else the failover's detect; else the
    injection) until the promotion was observed (the promote event; an outside observer's says how
    much earlier, `not_before_s`, it may have been; without one, the clients' reconnect).

    - A write, evidence upload, approval or publish the Control Plane acknowledged inside it fails
      the gate, named: with no primary and no promoted replica, nothing can have been committed.
    - Every approval and publish made inside it must be refused (503, the cause); one made inside
      it and refused so only after it ended (its connect timed out later than a fast failover)
      counts as a refusal; at least one of each must have been made there, else unknown.
    - Only an operation whose timing the recorded history cannot place is left out, and counted
      (measured `not_placed`, named in the detail): one invoked before the kill took effect and
      answered after, one answered after the promotion may have happened (it may have waited for
      the database and been committed on the promoted node), one straddling the end otherwise."""

    judges = "system"
    id = "publish_approval_blocked"
    # state changes: they need the database
    KINDS = (OpKind.WRITE, OpKind.CREATE_INTENT, OpKind.EVIDENCE, OpKind.APPROVE, OpKind.PUBLISH)

    def __init__(self, fault: str, cause: str = "database", until: tuple[EventKind, ...] = (EventKind.RECONNECT,)):
        self.fault, self.cause, self.until = fault, cause, until
        self.threshold = f"503, cause {cause}; nothing acknowledged from the kill to the promotion"
        self.description = (
            f"Publish/approval APIs block while the primary is down (503, cause '{cause}'), and no "
            f"write or approval is acknowledged between the kill and the promotion"
        )

    def window(self, history: History) -> tuple[Span, float | None] | None:
        """(from the kill in effect to the promotion observed, or the reconnect; the earliest the
        promotion may have been), None: never injected."""
        inject = history.first_event(EventKind.INJECT, self.fault)
        if inject is None:
            return None
        placed = history.first_event(EventKind.IN_PLACE, self.fault, after=inject.t) or history.first_event(
            EventKind.DETECT, after=inject.t
        )
        start = placed.t if placed is not None else inject.t
        promoted = history.first_event(EventKind.PROMOTE, after=inject.t)
        if promoted is not None:
            return Span(start, promoted.t), promoted.t - float(event_detail_of(promoted).get("not_before_s") or 0.0)
        ends = [e.t for e in history.events if e.t >= inject.t and e.kind in self.until]
        end = min(ends) if ends else None
        return Span(start, end), end

    def evaluate(self, history: History) -> GateResult:
        found = self.window(history)
        inject = history.first_event(EventKind.INJECT, self.fault)  # None exactly when found is None
        if found is None or inject is None:
            return self.unknown(f"no fault {self.fault!r} was injected")
        span, earliest = found

        def at(t: float) -> str:
            return f"{t - inject.t:+.2f} s"

        def ref(o: Op) -> str:
            found = o.value if o.value is not None else detail_of(o).get("intent_id")
            return "" if found is None else f" {found}"

        def named(o: Op) -> str:
            return f"{o.kind}{ref(o)}"

        def refused(o: Op) -> bool:
            return not o.ok and o.status == 503 and detail_of(o).get("cause") == self.cause

        judged: list[Op] = []
        not_placed: list[Op] = []
        acknowledged: list[Op] = []
        for o in sorted(history.ops_of(*self.KINDS), key=lambda o: o.t_invoke):
            began_inside = span.contains(o.t_invoke)
            if o.t_complete is not None and o.done < span.start or span.end is not None and o.t_invoke > span.end:
                continue  # wholly outside the outage
            if not began_inside:  # invoked before the kill took effect
                not_placed.append(o)
            elif o.ok and earliest is not None and o.done > earliest:
                not_placed.append(o)  # may have been committed once promoted
            elif (
                span.end is not None
                and o.done > span.end
                and not (o.kind in (OpKind.APPROVE, OpKind.PUBLISH) and refused(o))
            ):
                not_placed.append(o)  # answered otherwise once it was over
            else:
                judged.append(o)
                if o.ok:
                    acknowledged.append(o)
        blocked = [o for o in judged if o.kind in (OpKind.APPROVE, OpKind.PUBLISH)]
        measured: dict[str, Any] = {o.kind: answer(o) for o in blocked}
        measured["acknowledged"] = [named(o) for o in acknowledged][:10]
        measured["not_placed"] = len(not_placed)
        left_out = (
            f"; {len(not_placed)} operation(s) whose timing the history cannot place left out: "
            + ", ".join(f"{named(o)} ({at(o.t_invoke)} to {at(o.done)})" for o in not_placed[:5])
            if not_placed
            else ""
        )
        wrong = [o for o in blocked if not refused(o)]
        if acknowledged or wrong:
            said = [
                f"{o.kind} {answer(o)} acknowledged at {at(o.done)}, before the promotion"
                + (f" ({ref(o).strip()})" if ref(o) else "")
                for o in acknowledged[:5]
            ]
            said += [f"{o.kind} {answer(o)}" for o in wrong if not o.ok][:5]
            return self.result(Verdict.FAIL, measured, "; ".join(said) + left_out)
        missing = [k for k in (OpKind.APPROVE, OpKind.PUBLISH) if not any(o.kind == k for o in blocked)]
        if missing:
            return self.unknown(
                f"no {' or '.join(missing)} attempted while the primary was down "
                f"({'it ended first' if span.end is not None else 'none recorded'})" + left_out,
                measured,
            )
        return self.result(Verdict.PASS, measured, f"{len(blocked)} attempt(s) refused, none acknowledged" + left_out)


def refused_in(
    gate: Gate,
    history: History,
    span: Span,
    kinds: tuple[str, ...],
    status: int | None = 503,
    each_kind: bool = True,
    late_refusals: bool = False,
    **fields: Any,
) -> GateResult:
    """Every op of `kinds` that ran inside `span` was refused (status, and these answer fields);
    at least one of each kind (or of any, each_kind False) must have run there, else unknown.
    `late_refusals`: an op invoked inside the span and refused as required after it ended counts
    too; any other answer after the end (ok, or an error the recovery may have caused) says
    nothing and is left out."""

    def refused(o: Op) -> bool:
        return (
            not o.ok and (status is None or o.status == status) and all(o.detail.get(k) == v for k, v in fields.items())
        )

    ops = [
        o
        for o in history.ops
        if o.kind in kinds and (span.holds(o) or (late_refusals and span.contains(o.t_invoke) and refused(o)))
    ]
    missing = [k for k in kinds if not any(o.kind == k for o in ops)] if each_kind else ([] if ops else list(kinds))
    if missing:
        return gate.unknown(
            f"no {' or '.join(missing)} attempted while the fault lasted "
            f"({'it ended first' if span.end is not None else 'none recorded'})"
        )
    wrong = [o for o in ops if not refused(o)]
    measured = {o.kind: answer(o) for o in ops}
    if wrong:
        return gate.result(
            Verdict.FAIL,
            measured,
            f"{len(wrong)} of {len(ops)} answered otherwise: " + "; ".join(f"{o.kind} {answer(o)}" for o in wrong[:5]),
        )
    return gate.result(Verdict.PASS, measured, f"{len(ops)} attempt(s) refused")
