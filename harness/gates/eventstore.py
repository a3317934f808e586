"""The append-only event store: EventStoreWriteSuccess per hour, no change acknowledged without its
event, the hash chain verified by the harness itself (lost, altered, duplicated, broken, across a
failover), publish refused while the store is write-blocked, the failover's cause, and validation
rule 2 (every fault and recovery event in the event store and the SIEM, one by one)."""

from __future__ import annotations

from collections import Counter

from harness.gates.base import Gate, fault_span, last_op, register, seconds
from harness.gates.recovery import refused_in
from harness.measure.eventstore import _event_counts, chain_continuity, write_success
from harness.model import FAILOVER, JOURNAL, GateResult, History, Verdict

EMITTERS = (JOURNAL, FAILOVER)


def _audit_read(gate: Gate, history: History):
    read = last_op(history, "read_audit")
    if read is None or not read.ok:
        return None, gate.unknown("the scenario's audit events were not read" if read is None
                                  else f"the event store could not be read: {read.error}")
    return read, None


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
        target = round(target, 9)         # a step's "99.9%" / 100 is 0.9990000000000001
        self.target, self.fault = target, fault
        self.limit = target
        self.threshold = f">= {target:.1%} for the hour projected from the drill window"
        self.description = (f"EventStoreWriteSuccess, projected hour >= {target:.1%} (audit events persisted "
                            f"exactly once / state changes attempted; the drill window's rest of the hour at "
                            f"the pre-fault rate)")

    def _measure(self, history: History):
        read = last_op(history, "read_audit")
        if read is None or not read.ok:
            return None
        inject = history.first_event("inject", self.fault) if self.fault else history.first_event("inject")
        workload = [o for o in history.ops if o.detail.get("workload")]
        return write_success(workload, read.value, inject.t if inject else None)

    def figures(self, history: History) -> dict:
        ws = self._measure(history)
        if ws is None or not ws.hours:
            return {}
        return {"event_store_write_success_observed": round(ws.worst(False).ratio, 6),
                "event_store_write_success_projected_hour": round(ws.worst(True).projected_ratio, 6)}

    def evaluate(self, history: History) -> GateResult:
        read, unknown = _audit_read(self, history)
        if unknown:
            return unknown
        ws = self._measure(history)
        if not ws.hours:
            return self.unknown("no state change was attempted")
        observed = ws.worst(False)
        worst = ws.worst(True)
        projected = round(worst.projected_ratio, 6)
        detail = (f"projected hour {worst.hour}: {projected:.4%} (judged); observed in the drill window: "
                  f"{observed.persisted} of {observed.attempted} attempts persisted, {observed.ratio:.4%} "
                  f"over {observed.observed_s:.0f} s")
        if ws.pre_fault_rate is not None:
            detail += (f"; the rest of the hour at the pre-fault rate ({ws.pre_fault_rate:.1f}/s, "
                       f"{ws.pre_fault_ratio:.2%} persisted)")
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
        read, unknown = _audit_read(self, history)
        if unknown:
            return unknown
        ws = write_success(history.ops, read.value)
        if not ws.hours:
            return self.unknown("no state change was attempted")
        return self.judge(not ws.missing, len(ws.missing), ", ".join(ws.missing[:10]))


def _chains(gate: Gate, history: History, fault: str | None):
    reads = [o for o in history.ops_of("read_chain")]
    inject = history.first_event("inject", fault) if fault else None
    before = [o for o in reads if inject is not None and o.done <= inject.t]
    after = [o for o in reads if inject is None or o.t_invoke >= inject.t]
    if not after or not after[-1].ok:
        return None, None, gate.unknown("the event chain was not read after the fault" if not after
                                        else f"the event chain could not be read: {after[-1].error}")
    if fault is not None and (not before or not before[-1].ok):
        return None, None, gate.unknown("the event chain was not read before the fault")
    return (before[-1].value if before else []), after[-1].value, None


@register
class EventChainVerified(Gate):
    """The hash chain, recomputed by the harness from the events read, is whole: every hash is the
    hash of its event, every prev_hash the previous event's hash (and, with `fault`, across the
    boundary between the events recorded before it and the first one after); and complete: every
    state change the harness saw acknowledged before it read the chain (an intent created, evidence
    committed, an approval, a publish) has its event in it. A chain missing one fails, naming it;
    a chain read empty proves nothing: unknown."""

    judges = "system"
    EVENT_OF = {"write": "IntentCreated", "create_intent": "IntentCreated", "evidence": "EvidenceCommitted",
                "approve": "ApprovalRecorded", "publish": "Published"}

    def __init__(self, fault: str | None = None):
        self.fault = fault
        self.id = "event_chain_linked_across_failover" if fault else "event_chain_intact"
        self.threshold = "every hash recomputed and linked; every acknowledged change's event in it"
        self.description = ("Hash chain verifies end to end, links across the failover boundary and holds every "
                            "acknowledged change's event" if fault else
                            "Append-only event store: hash chain verifies after failover and holds every "
                            "acknowledged change's event")

    def missing(self, history: History, rows: list, read_at: float) -> tuple[int, list[str]]:
        """(state changes acknowledged before the chain was read, those without their event)."""
        counts, intent_of = _event_counts(rows)
        created = {r.get("intent_id") for r in rows if r.get("type") == "IntentCreated"}
        acked = [o for o in history.ops_of(*self.EVENT_OF) if o.ok and o.done <= read_at]
        gone = []
        for op in sorted(acked, key=lambda o: o.id):
            if op.kind == "write":
                found = counts[("IntentCreated", op.value)]
            elif op.kind == "create_intent":    # its value: the key sent, or the intent id answered
                found = counts[("IntentCreated", op.value)] or op.value in created
            else:
                ref = op.detail.get("intent_id", intent_of.get(op.value))
                found = counts[(self.EVENT_OF[op.kind], ref)] if ref is not None else 0
            if not found:
                what = op.value if op.value is not None else op.detail.get("intent_id")
                gone.append(f"{op.kind} {what} ({self.EVENT_OF[op.kind]})")
        return len(acked), gone

    def evaluate(self, history: History) -> GateResult:
        before, after, unknown = _chains(self, history, self.fault)
        if unknown:
            return unknown
        inject = history.first_event("inject", self.fault) if self.fault else None
        read = [o for o in history.ops_of("read_chain") if inject is None or o.t_invoke >= inject.t][-1]
        c = chain_continuity(before, after)
        acked, gone = self.missing(history, after, read.t_invoke)
        measured = {"events": c.after, "broken_links": list(c.broken_links[:10]),
                    "bad_hashes": list(c.bad_hashes[:10]), "acknowledged": acked, "missing_events": gone[:10]}
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
        before, after, unknown = _chains(self, history, self.fault)
        if unknown:
            return unknown
        c = chain_continuity(before, after)
        return self.judge(not c.lost and not c.altered, {"recorded_before": c.before, "lost": list(c.lost[:20]),
                                                         "altered": list(c.altered[:20])})


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
        before, after, unknown = _chains(self, history, self.fault)
        if unknown:
            return unknown
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
        span = fault_span(history, self.fault, ("fence", "reconnect", "heal"))
        if span is None:
            return self.unknown(f"no fault {self.fault!r} was injected")
        return refused_in(self, history, span, ("publish",), status=503, cause="event_store")


@register
class PublishAcceptedOnlyWhenStoreHealthy(Gate):
    """No publish is accepted from the block until the store is healthy (the blocked primary
    fenced), and publishing is accepted again afterwards."""

    judges = "system"
    id = "publish_accepted_only_when_event_store_healthy"
    description = ("Publish accepted again only once the event store is healthy (after the blocked "
                   "primary was fenced)")
    threshold = "none accepted while blocked; accepted after"

    def __init__(self, fault: str):
        self.fault = fault

    def evaluate(self, history: History) -> GateResult:
        span = fault_span(history, self.fault, ("fence", "reconnect"))
        if span is None:
            return self.unknown(f"no fault {self.fault!r} was injected")
        publishes = [o for o in history.ops_of("publish") if o.t_invoke >= span.start]
        early = [o for o in publishes if o.ok and (span.end is None or o.done < span.end)]
        later = [o for o in publishes if o.ok and span.end is not None and o.done >= span.end]
        measured = {"accepted_while_blocked": len(early),
                    "first_accepted_after_s": seconds(min(o.done for o in later) - span.start) if later else None,
                    "store_healthy_after_s": seconds(span.end - span.start) if span.end is not None else None}
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
    description = ("Failover to the redundant cluster triggered by the write-blocked event store, the old "
                   "primary fenced before the promote")

    def __init__(self, fault: str, cause: str = "event_store_write_blocked"):
        self.fault, self.cause = fault, cause
        self.threshold = f"cause {cause}, old primary fenced"

    def evaluate(self, history: History) -> GateResult:
        inject = history.first_event("inject", self.fault)
        if inject is None:
            return self.unknown(f"no fault {self.fault!r} was injected")
        detect = history.first_event("detect", after=inject.t)
        fence = history.first_event("fence", after=inject.t)
        promote = history.first_event("promote", after=inject.t)
        if detect is None:
            return self.result(Verdict.FAIL, None, "no failover was detected")
        measured = {"detect_cause": detect.detail.get("cause"), "fenced": fence.name if fence else None}
        ok = (detect.detail.get("cause") == self.cause and fence is not None and promote is not None
              and fence.t <= promote.t)
        return self.judge(ok, measured)


@register
class CorrelationIdsRecorded(Gate):
    """Validation rule 2: every fault and recovery event the lab emitted (the fault journal, the
    failover controller) is in the event store and in the SIEM, one by one, with its correlation
    id: exactly once in the event store (the system of record), at least once in the SIEM (a
    log shipper delivers at least once; the SIEM keys on the event id)."""

    judges = "system"
    id = "correlation_ids_recorded"
    description = ("Every fault and recovery event logged with its correlation id to the event store "
                   "and the SIEM (validation rule 2)")
    threshold = "each event, same correlation id: once in the store, in the SIEM"

    def evaluate(self, history: History) -> GateResult:
        emitted = [e for e in history.events if e.source in EMITTERS and e.event_id]
        if not emitted:
            return self.unknown("the lab emitted no fault or recovery event")
        store = last_op(history, "read_drill_events")
        if store is None or not store.ok:
            return self.unknown("the event store was not read" if store is None
                                else f"the event store could not be read: {store.error}")
        siem = last_op(history, "read_siem")
        in_store = Counter(((r.get("payload") or {}).get("event_id"), r.get("correlation_id")) for r in store.value)
        problems_store = _mismatches(emitted, in_store)
        measured = {"events": len(emitted), "missing_in_event_store": problems_store[:10]}
        if siem is None or not siem.ok:
            measured["missing_in_siem"] = "SIEM not readable by this provider"
            if problems_store:
                return self.result(Verdict.FAIL, measured, f"{len(problems_store)} not in the event store")
            return self.unknown("the SIEM sink could not be read; the event store holds every event", measured)
        in_siem = Counter((r.get("event_id"), r.get("correlation_id")) for r in siem.value)
        problems_siem = _mismatches(emitted, in_siem, at_least_once=True)
        measured["missing_in_siem"] = problems_siem[:10]
        return self.judge(not problems_store and not problems_siem, measured)


def _mismatches(emitted, found: Counter, at_least_once: bool = False) -> list[str]:
    out = []
    for event in emitted:
        n = found.get((event.event_id, event.correlation_id), 0)
        if n == 0 or (n > 1 and not at_least_once):
            out.append(f"{event.kind}:{event.name} ({'missing' if n == 0 else f'{n} times'})")
    return out
