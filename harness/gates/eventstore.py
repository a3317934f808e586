"""The append-only event store: EventStoreWriteSuccess per hour, no change acknowledged without its
event, the hash chain verified by the harness itself (lost, altered, duplicated, broken, across a
failover), publish refused while the store is write-blocked, the failover's cause, and validation
rule 2 (every fault and recovery event in the event store and the SIEM, one by one)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from harness.gates.base import Gate, fault_span, last_op, register, seconds
from harness.gates.recovery import refused_in
from harness.measure.eventstore import WriteSuccess, _event_counts, chain_continuity, write_success
from harness.model import EventKind, GateResult, History, Op, OpKind, Outcome, Verdict, detail_of, event_detail_of


def _audit_read(gate: Gate, history: History) -> Op | GateResult:
    """The scenario's audit events read, or the gate's unknown when they were not read."""
    read = last_op(history, OpKind.READ_AUDIT)
    if read is None or not read.ok:
        return gate.unknown(
            "the scenario's audit events were not read"
            if read is None
            else f"the event store could not be read: {read.error}"
        )
    return read


@register
class EventStoreWriteSuccess(Gate):
    """EventStoreWriteSuccess >= target per clock hour: of every state change the workload attempted
    (refused and timed-out ones included; the workload's ops carry detail "workload", a step's own
    calls do not count), the share whose audit event was persisted exactly once.
    A drill observes seconds of the hour, the rule is per hour: the gate judges the hour PROJECTED,
    the drill window plus the unobserved rest of the hour at the rate and success ratio seen before
    the fault (without a pre-fault sample, nothing projects the rest: the projection is the drill
    window alone, and the detail says so). Two measurements are reported apart (figures): the
    observed ratio of the drill window (event_store_write_success_observed) and the projected hour
    (event_store_write_success_projected_hour); the gate's limit is on the second."""

    judges = "system"
    id = "event_store_write_success"
    operator, unit = ">=", "ratio"

    def __init__(self, target: float = 0.999, fault: str | None = None):
        target = round(target, 9)  # a step's "99.9%" / 100 is 0.9990000000000001
        self.target, self.fault = target, fault
        self.limit = target
        self.threshold = f">= {target:.1%} for the hour projected from the drill window"
        self.description = (
            f"EventStoreWriteSuccess, projected hour >= {target:.1%} (audit events persisted "
            f"exactly once / state changes attempted; the drill window's rest of the hour at "
            f"the pre-fault rate)"
        )

    def _measure(self, history: History) -> WriteSuccess | None:
        read = last_op(history, OpKind.READ_AUDIT)
        if read is None or not read.ok:
            return None
        inject = (
            history.first_event(EventKind.INJECT, self.fault) if self.fault else history.first_event(EventKind.INJECT)
        )
        workload = [o for o in history.ops if detail_of(o).get("workload")]
        return write_success(workload, read.value, inject.t if inject else None)

    def figures(self, history: History) -> dict[str, Any]:
        ws = self._measure(history)
        observed, worst = (None, None) if ws is None else (ws.worst(False), ws.worst(True))
        if observed is None or worst is None:  # not read, or no hour (no state change attempted)
            return {}
        return {
            "event_store_write_success_observed": round(observed.ratio, 6),
            "event_store_write_success_projected_hour": round(worst.projected_ratio, 6),
        }

    def evaluate(self, history: History) -> GateResult:
        read = _audit_read(self, history)
        if isinstance(read, GateResult):
            return read
        ws = self._measure(history)
        observed, worst = (None, None) if ws is None else (ws.worst(False), ws.worst(True))
        if ws is None or observed is None or worst is None:  # no hour: nothing attempted (None: read above)
            return self.unknown("no state change was attempted")
        projected = round(worst.projected_ratio, 6)
        detail = (
            f"projected hour {worst.hour}: {projected:.4%} (judged); observed in the drill window: "
            f"{observed.persisted} of {observed.attempted} attempts persisted, {observed.ratio:.4%} "
            f"over {observed.observed_s:.0f} s"
        )
        if ws.pre_fault_rate is not None:
            detail += (
                f"; the rest of the hour at the pre-fault rate ({ws.pre_fault_rate:.1f}/s, "
                f"{ws.pre_fault_ratio:.2%} persisted)"
            )
            if ws.pre_fault_failed:
                detail += f"; failed before the fault: {'; '.join(ws.pre_fault_failed[:3])}"
        else:
            detail += "; no pre-fault sample to project the rest of the hour: the projection is the drill window alone"
        return self.judge(projected >= self.target, projected, detail)


@register
class NoChangeWithoutEvent(Gate):
    """Audit completeness: no state change was acknowledged without its audit event."""

    judges = "system"
    id = "no_change_acknowledged_without_event"
    description = "No state change acknowledged without its audit event in the event store"
    threshold = "0"
    operator, limit, unit = "==", 0, "state changes"

    def evaluate(self, history: History) -> GateResult:
        read = _audit_read(self, history)
        if isinstance(read, GateResult):
            return read
        ws = write_success(history.ops, read.value)
        if not ws.hours:
            return self.unknown("no state change was attempted")
        return self.judge(not ws.missing, len(ws.missing), ", ".join(ws.missing[:10]))


Rows = list[dict[str, Any]]


def _chains(gate: Gate, history: History, fault: str | None) -> tuple[Rows, Rows] | GateResult:
    """(the chain read before the fault, the chain read after it), or the gate's unknown."""
    reads = [o for o in history.ops_of(OpKind.READ_CHAIN)]
    inject = history.first_event(EventKind.INJECT, fault) if fault else None
    before = [o for o in reads if inject is not None and o.done <= inject.t]
    after = [o for o in reads if inject is None or o.t_invoke >= inject.t]
    if not after or not after[-1].ok:
        return gate.unknown(
            "the event chain was not read after the fault"
            if not after
            else f"the event chain could not be read: {after[-1].error}"
        )
    if fault is not None and (not before or not before[-1].ok):
        return gate.unknown("the event chain was not read before the fault")
    return (before[-1].value if before else []), after[-1].value


@register
class EventChainVerified(Gate):
    """The hash chain, recomputed by the harness from the events read, is whole: every hash is the
    hash of its event, every prev_hash the previous event's hash (and, with `fault`, across the
    boundary between the events recorded before it and the first one after); and complete: every
    state change the harness saw acknowledged before it read the chain (an intent created, evidence
    committed, an approval, a publish) has its event in it. A chain missing one fails, naming it;
    a chain read empty proves nothing: unknown."""

    judges = "system"
    EVENT_OF: dict[str, str] = {
        OpKind.WRITE: "IntentCreated",
        OpKind.CREATE_INTENT: "IntentCreated",
        OpKind.EVIDENCE: "EvidenceCommitted",
        OpKind.APPROVE: "ApprovalRecorded",
        OpKind.PUBLISH: "Published",
    }

    def __init__(self, fault: str | None = None):
        self.fault = fault
        self.id = "event_chain_linked_across_failover" if fault else "event_chain_intact"
        self.threshold = "every hash recomputed and linked; every acknowledged change's event in it"
        self.description = (
            "Hash chain verifies end to end, links across the failover boundary and holds every "
            "acknowledged change's event"
            if fault
            else "Append-only event store: hash chain verifies after failover and holds every "
            "acknowledged change's event"
        )

    def missing(self, history: History, rows: Rows, read_at: float) -> tuple[int, list[str]]:
        """(state changes acknowledged before the chain was read, those without their event)."""
        counts, intent_of = _event_counts(rows)
        created = {r.get("intent_id") for r in rows if r.get("type") == "IntentCreated"}
        acked = [o for o in history.ops_of(*self.EVENT_OF) if o.ok and o.done <= read_at]
        gone = []
        for op in sorted(acked, key=lambda o: o.id):
            if op.kind == OpKind.WRITE:
                found = counts[("IntentCreated", op.value)]
            elif op.kind == OpKind.CREATE_INTENT:  # its value: the key sent, or the intent id answered
                found = counts[("IntentCreated", op.value)] or op.value in created
            else:
                ref = detail_of(op).get("intent_id", intent_of.get(op.value))
                found = counts[(self.EVENT_OF[op.kind], ref)] if ref is not None else 0
            if not found:
                what = op.value if op.value is not None else detail_of(op).get("intent_id")
                gone.append(f"{op.kind} {what} ({self.EVENT_OF[op.kind]})")
        return len(acked), gone

    def evaluate(self, history: History) -> GateResult:
        chains = _chains(self, history, self.fault)
        if isinstance(chains, GateResult):
            return chains
        before, after = chains
        inject = history.first_event(EventKind.INJECT, self.fault) if self.fault else None
        read = [o for o in history.ops_of(OpKind.READ_CHAIN) if inject is None or o.t_invoke >= inject.t][-1]
        c = chain_continuity(before, after)
        acked, gone = self.missing(history, after, read.t_invoke)
        measured = {
            "events": c.after,
            "broken_links": list(c.broken_links[:10]),
            "bad_hashes": list(c.bad_hashes[:10]),
            "acknowledged": acked,
            "missing_events": gone[:10],
        }
        if self.fault:
            measured.update(last_before=c.last_before, first_after=c.first_after, boundary_linked=c.boundary_linked)
        if not after:
            return self.unknown("the chain was read empty: no event at all to verify", measured)
        if self.fault and c.first_after is None and not gone:
            return self.unknown("no event was appended after the fault", measured)
        ok = not c.broken_links and not c.bad_hashes and c.boundary_linked is not False and not gone
        detail = f"{len(gone)} acknowledged change(s) without their event: {', '.join(gone[:5])}" if gone else ""
        return self.judge(ok, measured, detail)


@register
class AuditEventsNotLost(Gate):
    """Every audit event recorded before the fault is still there after the failover, same hash."""

    judges = "system"
    id = "audit_events_not_lost"
    description = "Every audit event recorded before the fault is still there, same hash"
    threshold = "0 lost, 0 altered"

    def __init__(self, fault: str):
        self.fault = fault

    def evaluate(self, history: History) -> GateResult:
        chains = _chains(self, history, self.fault)
        if isinstance(chains, GateResult):
            return chains
        before, after = chains
        c = chain_continuity(before, after)
        return self.judge(
            not c.lost and not c.altered,
            {"recorded_before": c.before, "lost": list(c.lost[:20]), "altered": list(c.altered[:20])},
        )


@register
class AuditEventsNotDuplicated(Gate):
    """No audit event (seq or hash) appears twice in the chain after the failover."""

    judges = "system"
    id = "audit_events_not_duplicated"
    description = "No audit event (seq or hash) appears twice"
    threshold = "none"

    def __init__(self, fault: str):
        self.fault = fault

    def evaluate(self, history: History) -> GateResult:
        chains = _chains(self, history, self.fault)
        if isinstance(chains, GateResult):
            return chains
        before, after = chains
        c = chain_continuity(before, after)
        return self.judge(not c.duplicated, {"events": c.after, "duplicated": list(c.duplicated[:20])})


@register
class PublishRefusedWhileStoreBlocked(Gate):
    """While the event store is write-blocked (until the blocked primary is fenced), a publish is
    refused: 503 naming the event store. A check made only after the failover says nothing."""

    judges = "system"
    id = "publish_refused_event_store_blocked"
    description = "Publish refused while the event store is write-blocked (503, cause event_store)"
    threshold = "503 cause event_store"

    def __init__(self, fault: str):
        self.fault = fault

    def evaluate(self, history: History) -> GateResult:
        span = fault_span(history, self.fault, (EventKind.FENCE, EventKind.RECONNECT, EventKind.HEAL))
        if span is None:
            return self.unknown(f"no fault {self.fault!r} was injected")
        return refused_in(self, history, span, (OpKind.PUBLISH,), status=503, cause="event_store")


@register
class PublishAcceptedOnlyWhenStoreHealthy(Gate):
    """No publish is accepted from the block until the store is healthy (the blocked primary
    fenced), and publishing is accepted again afterwards."""

    judges = "system"
    id = "publish_accepted_only_when_event_store_healthy"
    description = "Publish accepted again only once the event store is healthy (after the blocked primary was fenced)"
    threshold = "none accepted while blocked; accepted after"

    def __init__(self, fault: str):
        self.fault = fault

    def evaluate(self, history: History) -> GateResult:
        span = fault_span(history, self.fault, (EventKind.FENCE, EventKind.RECONNECT))
        if span is None:
            return self.unknown(f"no fault {self.fault!r} was injected")
        publishes = [o for o in history.ops_of(OpKind.PUBLISH) if o.t_invoke >= span.start]
        early = [o for o in publishes if o.ok and (span.end is None or o.done < span.end)]
        later = [o for o in publishes if o.ok and span.end is not None and o.done >= span.end]
        measured = {
            "accepted_while_blocked": len(early),
            "first_accepted_after_s": seconds(min(o.done for o in later) - span.start) if later else None,
            "store_healthy_after_s": seconds(span.end - span.start) if span.end is not None else None,
        }
        if early:
            return self.result(Verdict.FAIL, measured, f"{len(early)} publish(es) accepted while write-blocked")
        if span.end is None:
            return self.unknown("the store never became healthy again (no fence or reconnect)", measured)
        attempted_after = [o for o in publishes if span.end is not None and o.t_invoke >= span.end]
        if not attempted_after:
            return self.unknown("no publish was attempted after the store recovered", measured)
        return self.judge(bool(later), measured, "" if later else "no publish accepted after the store recovered")


@register
class FailoverCause(Gate):
    """The failover to the redundant cluster was triggered by the write-blocked event store, and the
    old primary (still alive) was fenced before the promote."""

    judges = "system"
    id = "failover_cause_event_store_write_blocked"
    description = (
        "Failover to the redundant cluster triggered by the write-blocked event store, the old "
        "primary fenced before the promote"
    )

    def __init__(self, fault: str, cause: str = "event_store_write_blocked"):
        self.fault, self.cause = fault, cause
        self.threshold = f"cause {cause}, old primary fenced"

    def evaluate(self, history: History) -> GateResult:
        inject = history.first_event(EventKind.INJECT, self.fault)
        if inject is None:
            return self.unknown(f"no fault {self.fault!r} was injected")
        detect = history.first_event(EventKind.DETECT, after=inject.t)
        fence = history.first_event(EventKind.FENCE, after=inject.t)
        promote = history.first_event(EventKind.PROMOTE, after=inject.t)
        if detect is None:
            return self.result(Verdict.FAIL, None, "no failover was detected")
        measured = {"detect_cause": event_detail_of(detect).get("cause"), "fenced": fence.name if fence else None}
        ok = (
            event_detail_of(detect).get("cause") == self.cause
            and fence is not None
            and promote is not None
            and fence.t <= promote.t
        )
        return self.judge(ok, measured)


# Validation rule 2 ------------------------------------------------------------------------------

# The audit event the Control Plane appends for each operation the harness saw acknowledged.
AUDIT_OF: dict[str, str] = {
    OpKind.WRITE: "IntentCreated",
    OpKind.CREATE_INTENT: "IntentCreated",
    OpKind.EVIDENCE: "EvidenceCommitted",
    OpKind.APPROVE: "ApprovalRecorded",
    OpKind.PUBLISH: "Published",
    OpKind.PROMOTE: "RingPromoted",
}
# A failover the harness observed (its history): the new primary promoted, or the role switched back.
OBSERVED_FAILOVER = (EventKind.PROMOTE, EventKind.FAILBACK)
# The deployment's events that log a failover or recovery (the failover manager's role changes): the kinds
# of its stored payloads, its own words (not the harness's EventKind).
RECOVERY_KINDS = ("detect", "fence", "promote", "reconnect", "failback", "role_change", "on_role_change")
FAILOVER_WINDOW_S = (10.0, 120.0)  # a logged event counts from 10 s before an observed failover to 120 s after


def _wall(value: Any) -> float | None:
    try:
        return None if isinstance(value, bool) else float(value)
    except (TypeError, ValueError):
        return None


@register
class CorrelationIdsRecorded(Gate):
    """Validation rule 2, judged on what the deployment logged by itself (never on what the harness
    posted): every failover and recovery event, and every operation of the drill, logged with its
    correlation id in the event store and the SIEM.

    1. The drill's own operations: every one the harness saw acknowledged (intent created, evidence
       committed, approval, publish, ring promotion; matched by key or intent id: the operations
       that name no intent, a ring rollback, a requeue, a CAB lift, are not judged here) has the
       Control Plane's own audit event in the event store
       (read_drill_events: this scenario's correlation id) with the SAME correlation id, and that
       event (its hash) in the SIEM at least once (read_siem). An operation whose outcome was
       indefinite (timed out, lost mid-flight) is excluded and counted; so is one whose state change
       the store itself lost (its key missing from the final read, or its event missing and the
       operation acknowledged before a restore from backup rewound the store: data loss, judged by
       lost_writes, the RPO and the backup gates, not a logging failure).
    2. The deployment's failover events: every DrillEvent of the scenario's time in the store that
       the harness did not post (read_deployment_events, less the event ids the harness forwarded:
       in the lab, the failover manager's own role-change posts) carries a correlation id and is in
       the SIEM with it.
    3. A failover the harness observed (a "promote" or "failback" in its history: in the lab the
       failover manager's in-process report to the harness, which FailoverCompleted also judges; on
       an external target, the harness's own observation of the endpoint moving) has a failover or
       recovery event the deployment logged itself (RECOVERY_KINDS, happened from 10 s before to
       120 s after it); none: fail, naming it.
    4. The events the harness forwarded (the fault journal's inject and heal, the restore runbook's
       log, an external target's failover as the harness observed it; marked forwarded) must still
       be delivered, once in the store and in the SIEM, and are counted apart: they never satisfy
       rule 2 alone. A scenario whose only evidence is forwarded events is unknown."""

    judges = "system"
    id = "correlation_ids_recorded"
    description = (
        "Every acknowledged operation's audit event and every failover event the deployment logged "
        "itself in the event store and the SIEM with its correlation id (validation rule 2; events "
        "the harness forwarded counted apart, never enough alone)"
    )
    threshold = "each, same correlation id: in the store, in the SIEM; every observed failover logged by the deployment"

    @staticmethod
    def _audit(
        history: History, rows: list[dict[str, Any]], cid: str
    ) -> tuple[list[tuple[str, dict[str, Any] | None]], int, int]:
        """([(operation named, its audit row or None)], indefinite operations excluded, operations
        whose state change itself was lost excluded: a key the final read no longer finds is data
        loss, judged by lost_writes and the RPO; a lost intent takes its events with it; an event
        missing of an operation acknowledged before a restore from backup (restore_done) was rewound
        with the store, judged by the backup RPO and the replay's gates)."""
        _, intent_of = _event_counts(rows)
        final = last_op(history, OpKind.FINAL_READ)
        kept = set(final.value or ()) if final is not None and final.ok else None
        restored = [e.t for e in history.events_of(EventKind.RESTORE_DONE, source="restore")]
        rewound = max(restored) if restored else None  # a restore from backup rewinds the store
        by_key: dict[tuple[Any, Any], dict[str, Any]] = {}
        for r in rows:
            if r.get("type") == "IntentCreated":
                by_key.setdefault(("IntentCreated", (r.get("payload") or {}).get("idempotency_key")), r)
                by_key.setdefault(("IntentCreated#", r.get("intent_id")), r)
            else:
                by_key.setdefault((r.get("type"), r.get("intent_id")), r)
        ops = [o for o in history.ops_of(*AUDIT_OF) if o.correlation_id == cid]
        indefinite = sum(1 for o in ops if o.outcome is Outcome.INFO)
        out, lost = [], 0
        for op in sorted((o for o in ops if o.ok), key=lambda o: o.id):
            type_ = AUDIT_OF[op.kind]
            if op.kind == OpKind.WRITE:
                found = by_key.get(("IntentCreated", op.value))
            elif op.kind == OpKind.CREATE_INTENT:  # its value: the key sent, or the intent id answered
                found = by_key.get(("IntentCreated", op.value)) or by_key.get(("IntentCreated#", op.value))
            else:  # its intent, or the one its key names now (a replay)
                found = by_key.get((type_, detail_of(op).get("intent_id", intent_of.get(op.value)))) or by_key.get(
                    (type_, intent_of.get(op.value))
                )
            if found is None and (
                (kept is not None and op.kind != OpKind.CREATE_INTENT and op.value not in kept)
                or (rewound is not None and op.done <= rewound)
            ):
                lost += 1
                continue
            what = op.value if op.value is not None else detail_of(op).get("intent_id")
            out.append((f"{op.kind} {what} ({type_})", found))
        return out, indefinite, lost

    def _judge(self, history: History) -> tuple[Verdict | None, dict[str, Any], str]:
        store = last_op(history, OpKind.READ_DRILL_EVENTS)
        if store is None or not store.ok:
            return (
                None,
                {},
                (
                    "the event store was not read"
                    if store is None
                    else f"the event store could not be read: {store.error}"
                ),
            )
        cid = store.detail.get("correlation_id") or store.correlation_id
        rows = store.value or []
        forwarded = [e for e in history.events if e.event_id and event_detail_of(e).get("forwarded")]
        forwarded_ids = {e.event_id for e in forwarded}
        deployed_read = last_op(history, OpKind.READ_DEPLOYMENT_EVENTS)
        deployed = (
            [r for r in (deployed_read.value or []) if (r.get("payload") or {}).get("event_id") not in forwarded_ids]
            if deployed_read is not None and deployed_read.ok
            else []
        )
        audit, indefinite, lost = self._audit(history, rows, cid)
        siem = last_op(history, OpKind.READ_SIEM)
        siem_ok = siem is not None and siem.ok
        lines = siem.value if siem is not None and siem.ok else []
        siem_hashes = Counter((r.get("hash"), r.get("correlation_id")) for r in lines)
        siem_events = Counter((r.get("event_id"), r.get("correlation_id")) for r in lines)

        missing_store, missing_siem, not_logged = [], [], []
        for named, found in audit:
            if found is None:
                missing_store.append(named)
            elif siem_ok and not siem_hashes.get((found.get("hash"), found.get("correlation_id"))):
                missing_siem.append(named)
        for r in deployed:
            p = r.get("payload") or {}
            named = f"{p.get('kind')}:{p.get('name')} (the deployment's {p.get('emitter') or 'event'})"
            if not r.get("correlation_id"):
                missing_store.append(f"{named}: no correlation id")
            elif siem_ok and not siem_events.get((p.get("event_id"), r.get("correlation_id"))):
                missing_siem.append(named)
        in_store = Counter(
            ((r.get("payload") or {}).get("event_id"), r.get("correlation_id"))
            for r in rows
            if r.get("type") == "DrillEvent"
        )
        delivered = 0
        for e in forwarded:
            n = in_store.get((e.event_id, e.correlation_id), 0)
            named = f"{e.kind}:{e.name} (forwarded)"
            if n != 1:
                missing_store.append(f"{named} ({'missing' if n == 0 else f'{n} times'})")
                continue
            delivered += 1
            if siem_ok and not siem_events.get((e.event_id, e.correlation_id)):
                missing_siem.append(named)
        logged = [
            (_wall((r.get("payload") or {}).get("at")), r)
            for r in deployed
            if (r.get("payload") or {}).get("kind") in RECOVERY_KINDS
        ]
        observed = [e for e in history.events if e.kind in OBSERVED_FAILOVER]
        for e in observed:
            before, after = FAILOVER_WINDOW_S
            if not any(at is not None and e.wall - before <= at <= e.wall + after for at, _ in logged):
                not_logged.append(f"{e.kind} {e.name} at {e.wall:.0f}")
        measured = {
            "deployment_audit_events_checked": len(audit),
            "deployment_failover_events_checked": len(deployed),
            "forwarded_events_delivered": delivered,
            "forwarded_events": len(forwarded),
            "indefinite_operations_excluded": indefinite,
            "lost_operations_excluded": lost,
            "failovers_observed": len(observed),
            "failovers_not_logged_by_deployment": not_logged[:10],
            "missing_in_event_store": missing_store[:10],
            "missing_in_siem": missing_siem[:10] if siem_ok else "SIEM not readable by this provider",
        }
        if missing_store or not_logged or (siem_ok and missing_siem):
            parts = [
                f"{len(not_logged)} failover(s) the deployment logged no event for: {', '.join(not_logged[:3])}"
                if not_logged
                else "",
                f"{len(missing_store)} not in the event store: {', '.join(missing_store[:3])}" if missing_store else "",
                f"{len(missing_siem)} not in the SIEM: {', '.join(missing_siem[:3])}" if missing_siem else "",
            ]
            return Verdict.FAIL, measured, "; ".join(p for p in parts if p)
        if not siem_ok:
            return None, measured, "the SIEM sink could not be read; the event store holds every event"
        if not audit and not deployed:
            if forwarded:
                return None, measured, "only events the harness forwarded; the deployment logged none"
            return None, measured, "no acknowledged operation and no event the deployment logged: nothing to judge"
        return Verdict.PASS, measured, ""

    def nothing_to_judge(self, history: History) -> str | None:
        """Why rule 2 does not apply to this history, or None when it does: the event store was
        read, and the harness saw no operation acknowledged, observed no failover and found no event
        the deployment logged itself (e.g. probes only, and a fault that failed nothing over). The
        events the harness forwarded are no reason to judge it: they never satisfy it alone."""
        verdict, measured, _ = self._judge(history)
        if (
            verdict is not None
            or not measured
            or any(
                measured.get(k)
                for k in ("deployment_audit_events_checked", "deployment_failover_events_checked", "failovers_observed")
            )
        ):
            return None
        return (
            f"no operation of the harness was acknowledged and no failover happened: nothing the "
            f"deployment had to log ({measured.get('forwarded_events_delivered', 0)} event(s) the harness "
            f"forwarded delivered, not counted)"
        )

    def figures(self, history: History) -> dict[str, Any]:
        _, measured, _ = self._judge(history)
        return {
            f"rule2_{k}": measured[k]
            for k in (
                "deployment_audit_events_checked",
                "deployment_failover_events_checked",
                "forwarded_events_delivered",
            )
            if k in measured
        }

    def evaluate(self, history: History) -> GateResult:
        verdict, measured, detail = self._judge(history)
        if verdict is None:
            return self.unknown(detail, measured or None)
        return self.result(verdict, measured, detail)
