"""Matrix row 3, "Evidence store / Object storage outage": publish blocked with an explicit error
and Impact = publish blocked, retries backing off exponentially as the store's gateway saw them,
failover only to a validated copy (read from the alternate bucket by the harness), recovery."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

from harness.gates.base import Gate, answer, fault_span, last_op, register, seconds
from harness.gates.recovery import refused_in
from harness.measure.probes import NOT_SERVED_4XX
from harness.model import EventKind, GateResult, History, Op, OpKind, Verdict, detail_of, event_detail_of
from harness.text import one_line

CAUSE, IMPACT = "evidence_store", "publish blocked"


@register
class ValidatedCopy(Gate):
    """The alternate region holds (or, for the precondition "without a copy", does not hold) a copy
    of the evidence pack whose sha256 is that of the content the harness sent."""

    judges = "system"

    def __init__(self, key: str, present: bool):
        self.key, self.present = key, present
        self.id = f"validated_copy_{'present' if present else 'absent'}"
        self.threshold = "copy with the same sha256" if present else "no copy"
        self.description = (
            f"Evidence pack committed {'with' if present else 'without'} a validated "
            f"alternate-region copy (read back from the alternate bucket)"
        )

    def evaluate(self, history: History) -> GateResult:
        read = last_op(history, OpKind.STORE_READ, key=self.key)
        if read is None or not read.ok:
            return self.unknown(
                "the alternate bucket was not read"
                if read is None
                else f"the alternate bucket could not be read: {read.error}"
            )
        expected = detail_of(read).get("expected")
        found = read.value
        measured = {"sha256": found[:12] if found else None, "expected": (expected or "")[:12]}
        if self.present:
            return self.judge(found is not None and found == expected, measured)
        return self.judge(found is None, measured)


@register
class PublishBlockedDuringOutage(Gate):
    """While the evidence store is out, publishing the pack without a validated copy is refused:
    503, cause evidence_store, Impact = publish blocked, with an explicit error."""

    judges = "system"

    def __init__(self, fault: str, key: str, condition: str):
        self.fault, self.key = fault, key
        self.id = f"publish_blocked_store_{condition.replace(' ', '_')}"
        self.threshold = f"503, cause {CAUSE}, Impact = {IMPACT}"
        self.description = f"Publish blocked with an explicit error while the evidence store is {condition}"

    def evaluate(self, history: History) -> GateResult:
        span = fault_span(history, self.fault)
        if span is None:
            return self.unknown(f"no fault {self.fault!r} was injected")
        mine = History(tuple(o for o in history.ops if o.kind != OpKind.PUBLISH or o.value == self.key), ())
        result = refused_in(self, mine, span, (OpKind.PUBLISH,), status=503, cause=CAUSE, Impact=IMPACT)
        unclear = [o for o in mine.ops_of(OpKind.PUBLISH) if span.holds(o) and not detail_of(o).get("error")]
        if result.verdict is Verdict.PASS and unclear:
            return self.result(Verdict.FAIL, result.measured, "refused without an explicit error")
        return result


@register
class RetryBackoffAtStore(Gate):
    """The store calls behind a refused publish were retried with waits growing about twofold, as
    the S3 fault gateway (a lab part in front of the store) received them: every gap longer than
    the one before, and their growth per retry (the geometric mean of the ratios: the last gap over
    the first, to the power 1/(gaps-1)) min_ratio..max_ratio. Not each ratio alone: a gap holds the
    client's own turnaround as well as its wait, and on a loaded machine that adds up to ~0.1 s to
    one gap or another (gaps 318, 462, 804 ms for waits 0.2, 0.4, 0.8 s), which a single ratio of
    short waits cannot tell from a backoff that does not double, while the growth over all gaps can."""

    judges = "system"

    def __init__(
        self,
        fault: str,
        key: str,
        object_key: str,
        condition: str,
        gateway: str = "s3",
        min_attempts: int = 3,
        min_ratio: float = 1.5,
        max_ratio: float = 3.0,
    ):
        self.fault, self.key, self.object_key, self.gateway = fault, key, object_key, gateway
        self.min_attempts, self.min_ratio, self.max_ratio = min_attempts, min_ratio, max_ratio
        self.id = f"retry_backoff_exponential_{condition.replace(' ', '_')}"
        self.threshold = (
            f">= {min_attempts} attempts, each gap longer than the previous, "
            f"growing {min_ratio:g} to {max_ratio:g} x per retry"
        )
        self.description = (
            "Retry policy with exponential backoff: each wait about twice the previous, "
            "as the store received the attempts"
        )

    def evaluate(self, history: History) -> GateResult:
        span = fault_span(history, self.fault)
        if span is None:
            return self.unknown(f"no fault {self.fault!r} was injected")
        publishes = [o for o in history.ops_of(OpKind.PUBLISH) if o.value == self.key and span.holds(o)]
        if not publishes:
            return self.unknown("no publish of the pack was attempted while the store failed")
        publish = publishes[0]
        # the reads of the pack's object that the refused publish caused
        needle = self.object_key
        hits = sorted(
            e.t
            for e in history.events_of(EventKind.GATEWAY_REQUEST, source=f"gateway:{self.gateway}")
            if publish.t_invoke <= e.t <= publish.done
            and needle in str(event_detail_of(e).get("path", ""))
            and event_detail_of(e).get("method") in ("HEAD", "GET")
        )
        gaps = [round((b - a) * 1000) for a, b in pairwise(hits)]
        ratios = [round(b / a, 2) for a, b in pairwise(gaps) if a > 0]
        measured = {"attempts": len(hits), "gaps_ms": gaps, "ratios": ratios}
        if len(hits) < self.min_attempts:
            return self.result(
                Verdict.FAIL if hits else Verdict.UNKNOWN,
                measured,
                f"the store saw {len(hits)} attempt(s) for the pack during the publish",
            )
        if not all(g > 0 for g in gaps):
            return self.result(Verdict.FAIL, measured, "an attempt followed another without a wait")
        growth = (gaps[-1] / gaps[0]) ** (1 / (len(gaps) - 1)) if len(gaps) > 1 else 0.0
        measured["growth"] = round(growth, 2)
        if not all(b > a for a, b in pairwise(gaps)):
            return self.result(Verdict.FAIL, measured, "a gap was not longer than the one before")
        return self.judge(self.min_ratio <= growth <= self.max_ratio, measured)


@register
class ImpactRecorded(Gate):
    """An event Impact = publish blocked about the refused intent reached the event store."""

    judges = "system"
    id = "impact_event_recorded"
    description = "Event Impact = publish blocked emitted to the event store"
    threshold = ">= 1 ImpactRecorded for the intent after the fault"

    def __init__(self, fault: str, intent_id: int | None):  # None: never created, matches no event
        self.fault, self.intent_id = fault, intent_id

    def evaluate(self, history: History) -> GateResult:
        inject = history.first_event(EventKind.INJECT, self.fault)
        if inject is None:
            return self.unknown(f"no fault {self.fault!r} was injected")
        read = last_op(history, OpKind.READ_EVENTS, after=inject.t, type="ImpactRecorded")
        if read is None or not read.ok:
            return self.unknown(
                "ImpactRecorded events were not read"
                if read is None
                else f"the event store could not be read: {read.error}"
            )
        mine = [
            e
            for e in read.value
            if e.get("intent_id") == self.intent_id
            and (e.get("payload") or {}).get("Impact") == IMPACT
            and _epoch(e.get("at")) >= inject.wall - 1.0
        ]
        return self.judge(bool(mine), {"ImpactRecorded": len(mine)})


def _epoch(stamp: Any) -> float:
    import datetime as dt

    try:
        return dt.datetime.fromisoformat(str(stamp)).timestamp()
    except ValueError:
        return float("-inf")


@register
class PublishedFromValidatedCopy(Gate):
    """While the primary store is out, the pack with a validated alternate-region copy is still
    published (the failover to the alternate region)."""

    judges = "system"
    id = "failover_with_validated_copy"
    description = "Failover to the alternate region bucket when ValidatedCopyExists"
    threshold = "published while the primary store was out"

    def __init__(self, fault: str, key: str):
        self.fault, self.key = fault, key

    def evaluate(self, history: History) -> GateResult:
        span = fault_span(history, self.fault)
        if span is None:
            return self.unknown(f"no fault {self.fault!r} was injected")
        ops = [o for o in history.ops_of(OpKind.PUBLISH) if o.value == self.key and span.holds(o)]
        if not ops:
            return self.unknown("the pack with a copy was not published while the store was out")
        return self.judge(
            all(o.ok for o in ops),
            {"publish": answer(ops[0]), "evidence_source": detail_of(ops[0]).get("evidence_source")},
        )


@register
class PublishingResumed(Gate):
    """Once the store is healthy again, the pack that was blocked is published."""

    judges = "system"
    id = "publishing_resumed"
    description = "Publishing resumes once the evidence store is healthy"
    threshold = "published after the heal"

    def __init__(self, fault: str, key: str):
        self.fault, self.key = fault, key

    def evaluate(self, history: History) -> GateResult:
        span = fault_span(history, self.fault)
        if span is None or span.end is None:
            return self.unknown(f"the fault {self.fault!r} was not injected and healed")
        ops = [o for o in history.ops_of(OpKind.PUBLISH) if o.value == self.key and o.t_invoke >= span.end]
        if not ops:
            return self.unknown("the blocked pack was not published again after the heal")
        first = min(ops, key=lambda o: o.t_invoke)
        return self.judge(first.ok, {"publish": answer(first), "after_heal_s": seconds(first.t_invoke - span.end)})


@register
class SmokeVerified(Gate):
    """Smoke verification after a failover (spec section 4): a test Deployment Intent is accepted,
    its evidence pack is ingested (the harness reads the object back from the evidence store with the
    sha256 of what it sent), and its correlation id is in the event store (IntentCreated and
    EvidenceCommitted) and in the SIEM."""

    judges = "system"
    id = "smoke_verification"
    description = (
        "Smoke verification after the failover: test intent accepted, evidence pack ingested, "
        "correlation id captured in the event store and the SIEM"
    )
    threshold = "accepted, ingested, captured"

    def __init__(self, key: str, correlation_id: str):
        self.key, self.correlation_id = key, correlation_id

    def evaluate(self, history: History) -> GateResult:
        created = [o for o in history.ops_of(OpKind.CREATE_INTENT) if detail_of(o).get("smoke") == self.key]
        evidence = [o for o in history.ops_of(OpKind.EVIDENCE) if detail_of(o).get("smoke") == self.key]
        read = last_op(history, OpKind.STORE_READ, key=self.key)
        events = last_op(history, OpKind.READ_EVENTS, correlation_id=self.correlation_id)
        siem = last_op(history, OpKind.READ_SIEM_SMOKE)
        if not created or not evidence:
            return self.unknown("the smoke intent was not submitted")
        if read is None or events is None or siem is None or not (read.ok and events.ok and siem.ok):
            return self.unknown("the evidence store, the event store or the SIEM was not read back")
        types = sorted({e["type"] for e in events.value})
        in_siem = sorted({r.get("type") for r in siem.value})
        ingested = read.value is not None and read.value == detail_of(read).get("expected")
        measured = {
            "intent": answer(created[-1]),
            "evidence": answer(evidence[-1]),
            "ingested": ingested,
            "event_store": types,
            "siem": in_siem,
        }
        ok = (
            created[-1].ok
            and evidence[-1].ok
            and ingested
            and {"IntentCreated", "EvidenceCommitted"} <= set(types)
            and {"IntentCreated", "EvidenceCommitted"} <= set(in_siem)
        )
        return self.judge(ok, measured)


EVIDENCE_RULE = "EvidencePackState"


@register
class ApprovalRefusedWithoutCommittedEvidence(Gate):
    """Spec section 5, validation rule 1: the Control Plane records an approval only once the
    intent's evidence pack is Committed (EvidencePackState = Committed). Judged on the harness's own
    operations for one intent whose evidence upload could not commit (the store unreachable or
    answering 5xx): every approval the harness asked for before it saw the pack Committed (an
    acknowledged evidence upload) must be refused with a 4xx naming EvidencePackState. One
    acknowledged (2xx) fails, naming the intent; so does a refusal that does not name the rule (a 5xx
    or another gate). An approval with no answer (timeout, dropped connection, 502/504) is unknown,
    unless the harness's reads afterwards settle it: an ApprovalRecorded event for the intent in the
    event store, or the intent read back in state Approved, fails the gate even when the approval
    was answered refused."""

    judges = "system"
    id = "approval_refused_without_committed_evidence"
    description = (
        "Validation rule 1: an approval is refused (4xx naming EvidencePackState) while the "
        "intent's evidence pack is not Committed (its upload in flight or blocked)"
    )
    threshold = f"every approval refused 4xx, gate {EVIDENCE_RULE}; no ApprovalRecorded, intent not Approved"

    def __init__(self, key: str):
        self.key = key  # the intent's idempotency key: the ops' value

    def evaluate(self, history: History) -> GateResult:
        created = [
            o
            for o in history.ops_of(OpKind.CREATE_INTENT)
            if o.value is not None and detail_of(o).get("uncommitted") == self.key
        ]
        intent = next((o.value for o in created if o.ok), None)
        if intent is None:
            return self.unknown("the intent was not created: no approval could be judged")
        uploads = [o for o in history.ops_of(OpKind.EVIDENCE) if detail_of(o).get("intent_id") == intent]
        committed_at = min((o.done for o in uploads if o.ok), default=None)
        approves = [o for o in history.ops_of(OpKind.APPROVE) if detail_of(o).get("intent_id") == intent]
        judged = [o for o in approves if committed_at is None or o.t_invoke < committed_at]
        if not judged:
            return self.unknown(
                "no approval was asked for before the evidence pack was committed"
                if approves
                else "no approval of the intent was asked for"
            )
        measured: dict[str, Any] = {
            "intent_id": intent,
            "approvals": [f"{answer(o)} (upload {_upload_state(o, uploads)})" for o in judged],
        }
        acknowledged = [o for o in judged if o.ok]
        if acknowledged:
            return self.result(
                Verdict.FAIL,
                measured,
                f"intent {intent}: approval acknowledged "
                f"({answer(acknowledged[0])}) although the harness never saw its evidence "
                "pack Committed",
            )
        window = (max(o.done for o in judged), committed_at)
        recorded = _approval_recorded(history, intent, window)
        if recorded:
            measured["after"] = recorded
            return self.result(Verdict.FAIL, measured, f"intent {intent}: approval answered refused, yet {recorded}")
        other = [o for o in judged if o.status is not None and not _refused_by_rule(o)]
        if other:
            return self.result(
                Verdict.FAIL,
                measured,
                f"intent {intent}: approval answered {answer(other[0])}, not a refusal naming {EVIDENCE_RULE} (4xx)",
            )
        unanswered = [o for o in judged if o.status is None]
        if unanswered:
            return self.unknown(
                f"intent {intent}: {len(unanswered)} approval(s) got no answer ({one_line(unanswered[0].error, 120)})",
                measured,
            )
        checks = _reads_after(history, intent, window)
        if checks:
            return self.unknown(f"intent {intent}: {checks}", measured)
        measured["after"] = "no ApprovalRecorded; intent not Approved"
        return self.result(Verdict.PASS, measured)


def _refused_by_rule(op: Op) -> bool:
    """A definite 4xx refusal whose answer names the evidence rule (gate EvidencePackState)."""
    return (
        op.status is not None
        and 400 <= op.status < 500
        and op.status not in NOT_SERVED_4XX
        and detail_of(op).get("gate") == EVIDENCE_RULE
    )


def _upload_state(approve: Op, uploads: list[Op]) -> str:
    """What the intent's evidence upload was doing when the approval was asked for."""
    started = [o for o in uploads if o.t_invoke <= approve.t_invoke]
    if not started:
        return "not started"
    last = max(started, key=lambda o: o.t_invoke)
    if last.t_complete is None or last.t_complete > approve.t_invoke:
        return "in flight"
    return "committed" if last.ok else f"refused {answer(last)}"


# (every judged approval answered, the pack seen Committed or None): when an approval is legal
Window = tuple[float, float | None]


def _after_last(history: History, kind: str, window: Window, **detail: Any) -> Op | None:
    """The last read of `kind` invoked after every judged approval was answered (window[0]) and
    before the harness saw the pack Committed (window[1], None: never), when an approval is legal."""
    after, before = window
    ops = [
        o
        for o in history.ops_of(kind)
        if o.t_invoke >= after
        and (before is None or o.t_invoke < before)
        and all(o.detail.get(k) == v for k, v in detail.items())
    ]
    return max(ops, key=lambda o: o.done) if ops else None


def _approval_recorded(history: History, intent: Any, window: Window) -> str | None:
    """What the harness's reads after the approvals found against the rule, or None."""
    events = _after_last(history, OpKind.READ_EVENTS, window, type="ApprovalRecorded")
    if events is not None and events.ok:
        mine = [e for e in events.value or () if e.get("intent_id") == intent]
        if mine:
            return f"{len(mine)} ApprovalRecorded event(s) for it in the event store"
    read = _after_last(history, OpKind.READ_INTENT, window, intent_id=intent)
    if read is not None and read.ok and isinstance(read.value, dict) and read.value.get("state") == "Approved":
        return "the intent reads back Approved"
    return None


def _reads_after(history: History, intent: Any, window: Window) -> str:
    """Empty when both reads after the approvals succeeded; else what is missing."""
    missing = []
    events = _after_last(history, OpKind.READ_EVENTS, window, type="ApprovalRecorded")
    if events is None or not events.ok:
        missing.append(
            "the event store's ApprovalRecorded events were not read after the approvals"
            + (f" ({one_line(events.error, 120)})" if events is not None else "")
        )
    read = _after_last(history, OpKind.READ_INTENT, window, intent_id=intent)
    if read is None or not read.ok:
        missing.append(
            "the intent was not read back after the approvals"
            + (f" ({one_line(read.error, 120)})" if read is not None else "")
        )
    return "; ".join(missing)
