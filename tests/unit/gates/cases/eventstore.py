"""The event store (matrix row 7; harness/gates/eventstore.py)."""

from __future__ import annotations

from typing import Any

import pytest

from harness.gates import Gate
from harness.gates.eventstore import (
    AuditEventsNotDuplicated,
    AuditEventsNotLost,
    CorrelationIdsRecorded,
    EventChainVerified,
    EventStoreWriteSuccess,
    FailoverCause,
    NoChangeWithoutEvent,
    PublishAcceptedOnlyWhenStoreHealthy,
    PublishRefusedWhileStoreBlocked,
)
from harness.model import History

from ..builder import CID, H, chain, row, wall
from .common import FAIL, PASS, UNKNOWN, Case, measured, measured_has, says
from .shared import created

CASES: dict[type[Gate], list[Case]] = {}


BLOCK = "write-block:eventstore"
ES_DOWN = {"cause": "event_store", "error": "the event store is write-blocked"}


def workload(
    h: H,
    times: list[float],
    *,
    refused: tuple[float, ...] = (),
    unrecorded: tuple[float, ...] = (),
    twice: tuple[float, ...] = (),
) -> tuple[H, list[dict]]:
    """A write per time (key w<t>); the refused ones answered 503 and have no event, the
    unrecorded ones acknowledged without their event, the twice ones with two. Returns the builder
    and the store's audit rows."""
    rows = []
    for n, t in enumerate(times, start=1):
        key = f"w{t:g}"
        h.op("write", t, ok=t not in refused, value=key, status=503 if t in refused else 201, detail={"workload": True})
        if t not in refused and t not in unrecorded:
            rows += [created(n, key)] * (2 if t in twice else 1)
    return h, rows


def audit(h: H, rows: list[dict], t: float) -> H:
    return h.op("read_audit", t, value=rows)


def seconds(start: float, stop: float) -> list[float]:
    return [float(t) for t in range(int(start), int(stop))]


def write_success_history(times: list[float], fault_at: float | None = None, **kw: Any) -> History:
    h = H() if fault_at is None else H().inject(BLOCK, fault_at)
    h, rows = workload(h, times, **kw)
    return audit(h, rows, times[-1] + 5).build()


CASES[EventStoreWriteSuccess] = [
    Case(
        "every attempt persisted exactly once",
        EventStoreWriteSuccess(0.999),
        write_success_history(seconds(0, 10)),
        PASS,
        measured(1.0),
    ),
    Case(
        "one attempt in ten without its event",
        EventStoreWriteSuccess(0.999),
        write_success_history(seconds(0, 10), unrecorded=(4.0,)),
        FAIL,
        measured(0.9),
    ),
    Case(
        "an event persisted twice is not a success",
        EventStoreWriteSuccess(0.999),
        write_success_history(seconds(0, 10), twice=(4.0,)),
        FAIL,
        measured(0.9),
    ),
    Case(
        "a short outage is judged on the hour projected at the pre-fault rate, the drill window reported apart",
        EventStoreWriteSuccess(0.999, fault=BLOCK),
        write_success_history(seconds(0, 20), 10.0, refused=(15.0,)),
        PASS,
        lambda r: (
            measured(pytest.approx(3600 / 3601, abs=1e-6))(r),
            says("observed in the drill window: 19 of 20 attempts persisted, 95.0000%")(r),
        ),
    ),
    Case(
        "a long outage fails the projected hour too",
        EventStoreWriteSuccess(0.999, fault=BLOCK),
        write_success_history(seconds(0, 30), 10.0, refused=tuple(seconds(15, 25))),
        FAIL,
        says("(judged)"),
    ),
    Case(
        "without a pre-fault sample the projection is the drill window alone",
        EventStoreWriteSuccess(0.999, fault=BLOCK),
        write_success_history(seconds(1, 21), 0.0, refused=(15.0,)),
        FAIL,
        lambda r: (measured(0.95)(r), says("the projection is the drill window alone")(r)),
    ),
    Case(
        "each clock hour is judged apart",
        EventStoreWriteSuccess(0.999),
        write_success_history(seconds(3590, 3610), unrecorded=(3605.0,)),
        FAIL,
        says("projected hour 2026-01-05T11:00Z: 90.0000% (judged); observed in the drill window: 9 of 10"),
    ),
    Case(
        "the audit events were not read",
        EventStoreWriteSuccess(0.999),
        workload(H(), seconds(0, 10))[0].build(),
        UNKNOWN,
    ),
    Case(
        "no state change attempted",
        EventStoreWriteSuccess(0.999),
        audit(H(), [created(1, "w1")], 10.0).build(),
        UNKNOWN,
    ),
    Case(
        "only the workload's attempts count: a step's refused setup call does not",
        EventStoreWriteSuccess(0.999),
        audit(
            workload(H(), seconds(0, 10))[0].op("approve", 3.5, ok=False, status=409, value="w1"),
            [created(n, f"w{n - 1}") for n in range(1, 11)],
            15.0,
        ).build(),
        PASS,
        says("10 of 10 attempts persisted"),
    ),
]

CASES[NoChangeWithoutEvent] = [
    Case(
        "every acknowledged change has its event (a refused one need not)",
        NoChangeWithoutEvent(),
        audit(*workload(H(), [1.0, 2.0, 3.0], refused=(2.0,)), 10.0).build(),
        PASS,
        measured(0),
    ),
    Case(
        "an acknowledged write without its event",
        NoChangeWithoutEvent(),
        audit(*workload(H(), [1.0, 2.0, 3.0], unrecorded=(2.0,)), 10.0).build(),
        FAIL,
        says("write w2"),
    ),
    Case(
        "an acknowledged approval without ApprovalRecorded",
        NoChangeWithoutEvent(),
        audit(
            H().op("write", 1.0, value="w1").op("approve", 2.0, value="w1", detail={"intent_id": 1}),
            [created(1, "w1")],
            10.0,
        ).build(),
        FAIL,
        says("approve w1"),
    ),
    Case("the audit events were not read", NoChangeWithoutEvent(), H().op("write", 1.0, value="w1").build(), UNKNOWN),
    Case("no state change attempted", NoChangeWithoutEvent(), audit(H(), [], 10.0).build(), UNKNOWN),
]

ROWS = [
    created(1, "w1"),
    row("EvidenceCommitted", intent_id=1),
    row("ApprovalRecorded", intent_id=1),
    row("Published", intent_id=1),
    created(2, "w2"),
]
FULL = chain(ROWS)  # the whole chain after the failover: seqs 1-5
BEFORE = FULL[:3]  # what was recorded before the fault


def altered(rows: list[dict], seq: int, **changes: Any) -> list[dict]:
    return [{**r, **changes} if r["seq"] == seq else r for r in rows]


def rewritten_from(seq: int) -> list[dict]:
    """The chain re-hashed from `seq` on after its content changed: internally valid, but not the
    chain read before the fault."""
    rows = [dict(r) for r in ROWS]
    rows[seq - 1]["payload"] = {"note": "rewritten"}
    return chain(rows)


def chain_reads(before: list[dict] | None, after: list[dict] | None, *, after_ok: bool = True) -> H:
    h = H()
    if before is not None:
        h.op("read_chain", 5.0, value=before)
    h.inject(BLOCK, 10.0)
    if after is not None:
        h.op("read_chain", 30.0, ok=after_ok, value=after if after_ok else None)
    return h


CASES[EventChainVerified] = [
    Case(
        "every hash recomputed and linked",
        EventChainVerified(),
        chain_reads(None, FULL).build(),
        PASS,
        measured_has(events=5),
    ),
    Case(
        "a chain with one altered hash",
        EventChainVerified(),
        chain_reads(None, altered(FULL, 2, hash="0" * 63 + "1")).build(),
        FAIL,
        measured_has(bad_hashes=[2], broken_links=[3]),
    ),
    Case(
        "an event rewritten in place (its hash no longer its content's)",
        EventChainVerified(),
        chain_reads(None, altered(FULL, 4, payload={"note": "edited"})).build(),
        FAIL,
        measured_has(bad_hashes=[4], broken_links=[]),
    ),
    Case("the chain was not read", EventChainVerified(), H().inject(BLOCK, 10.0).build(), UNKNOWN),
    Case("the read of the chain failed", EventChainVerified(), chain_reads(None, [], after_ok=False).build(), UNKNOWN),
    Case(
        "linked across the failover boundary",
        EventChainVerified(BLOCK),
        chain_reads(BEFORE, FULL).build(),
        PASS,
        measured_has(last_before=3, first_after=4, boundary_linked=True),
    ),
    Case(
        "a chain rewritten after the fault, though valid, does not link to the hash read before it",
        EventChainVerified(BLOCK),
        chain_reads(BEFORE, rewritten_from(3)).build(),
        FAIL,
        measured_has(boundary_linked=False, bad_hashes=[], broken_links=[]),
    ),
    Case(
        "the chain was not read before the fault", EventChainVerified(BLOCK), chain_reads(None, FULL).build(), UNKNOWN
    ),
    Case("no event appended after the fault", EventChainVerified(BLOCK), chain_reads(BEFORE, BEFORE).build(), UNKNOWN),
    # issue 24: an empty chain is no pass, and every change the harness saw acknowledged must be in it
    Case(
        "a chain read empty proves nothing", EventChainVerified(), chain_reads(None, []).build(), UNKNOWN, says("empty")
    ),
    Case(
        "every change acknowledged before the read has its event in the chain",
        EventChainVerified(),
        chain_reads(None, FULL)
        .op("write", 1.0, value="w1", status=201)
        .op("evidence", 2.0, value="w1", status=201, detail={"intent_id": 1})
        .op("approve", 3.0, value="w1", status=200, detail={"intent_id": 1})
        .op("publish", 4.0, value="w1")
        .op("create_intent", 5.0, value="w2", status=201)
        .op("create_intent", 6.0, value=2, status=201)
        .op("write", 31.0, value="w9", status=201)
        .build(),
        PASS,
        measured_has(acknowledged=6, missing_events=[]),
    ),
    Case(
        "an intent created (the id it answered) without its IntentCreated fails",
        EventChainVerified(),
        chain_reads(None, FULL).op("create_intent", 6.0, value=7, status=201).build(),
        FAIL,
        measured_has(missing_events=["create_intent 7 (IntentCreated)"]),
    ),
    Case(
        "a write acknowledged before the read, its IntentCreated missing from a valid chain, fails naming it",
        EventChainVerified(),
        chain_reads(None, FULL)
        .op("write", 1.0, value="w1", status=201)
        .op("write", 20.0, value="w3", status=201)
        .build(),
        FAIL,
        says("write w3 (IntentCreated)"),
    ),
    Case(
        "an approval acknowledged without its ApprovalRecorded fails",
        EventChainVerified(),
        chain_reads(None, chain([created(1, "w1"), row("EvidenceCommitted", intent_id=1)]))
        .op("approve", 20.0, status=200, detail={"intent_id": 1})
        .build(),
        FAIL,
        measured_has(missing_events=["approve 1 (ApprovalRecorded)"]),
    ),
    Case(
        "nothing appended after the fault, but an acknowledged write's event missing: fails",
        EventChainVerified(BLOCK),
        chain_reads(BEFORE, BEFORE).op("write", 20.0, value="w2", status=201).build(),
        FAIL,
        says("write w2"),
    ),
]

CASES[AuditEventsNotLost] = [
    Case(
        "every event recorded before the fault still there, same hash",
        AuditEventsNotLost(BLOCK),
        chain_reads(BEFORE, FULL).build(),
        PASS,
        measured_has(lost=[], altered=[]),
    ),
    Case(
        "an event recorded before the fault missing after it",
        AuditEventsNotLost(BLOCK),
        chain_reads(BEFORE, [r for r in FULL if r["seq"] != 2]).build(),
        FAIL,
        measured_has(lost=[2]),
    ),
    Case(
        "an event recorded before the fault with another hash after it",
        AuditEventsNotLost(BLOCK),
        chain_reads(BEFORE, rewritten_from(3)).build(),
        FAIL,
        measured_has(altered=[3]),
    ),
    Case(
        "the chain was not read before the fault", AuditEventsNotLost(BLOCK), chain_reads(None, FULL).build(), UNKNOWN
    ),
    Case(
        "the chain was not read after the fault", AuditEventsNotLost(BLOCK), chain_reads(BEFORE, None).build(), UNKNOWN
    ),
]

CASES[AuditEventsNotDuplicated] = [
    Case(
        "no seq or hash twice",
        AuditEventsNotDuplicated(BLOCK),
        chain_reads(BEFORE, FULL).build(),
        PASS,
        measured_has(duplicated=[]),
    ),
    Case(
        "an event appears twice after the failover",
        AuditEventsNotDuplicated(BLOCK),
        chain_reads(BEFORE, FULL + [FULL[2]]).build(),
        FAIL,
        says("seq 3"),
    ),
    Case(
        "the chain was not read after the fault",
        AuditEventsNotDuplicated(BLOCK),
        chain_reads(BEFORE, None).build(),
        UNKNOWN,
    ),
    Case(
        "the read after the fault failed",
        AuditEventsNotDuplicated(BLOCK),
        chain_reads(BEFORE, [], after_ok=False).build(),
        UNKNOWN,
    ),
]


def blocked() -> H:
    """The event store write-blocked at 10; the blocked primary fenced at 15, clients reconnected at 16."""
    return H().inject(BLOCK, 10.0).failover("fence", 15.0, name="pg-a").failover("reconnect", 16.0)


CASES[PublishRefusedWhileStoreBlocked] = [
    Case(
        "a publish refused with 503 naming the event store",
        PublishRefusedWhileStoreBlocked(BLOCK),
        blocked().op("publish", 11.0, ok=False, status=503, detail=ES_DOWN).build(),
        PASS,
    ),
    Case(
        "a publish accepted while the store was blocked",
        PublishRefusedWhileStoreBlocked(BLOCK),
        blocked().op("publish", 11.0, status=201).build(),
        FAIL,
    ),
    Case(
        "a refusal naming another cause",
        PublishRefusedWhileStoreBlocked(BLOCK),
        blocked().op("publish", 11.0, ok=False, status=503, detail={"cause": "database"}).build(),
        FAIL,
    ),
    Case(
        "the block ends at the fence, before the reconnect",
        PublishRefusedWhileStoreBlocked(BLOCK),
        blocked().op("publish", 11.0, ok=False, status=503, detail=ES_DOWN).op("publish", 15.5, status=201).build(),
        PASS,
    ),
    Case(
        "a publish straddling the fence is not judged",
        PublishRefusedWhileStoreBlocked(BLOCK),
        blocked()
        .op("publish", 11.0, ok=False, status=503, detail=ES_DOWN)
        .op("publish", 14.8, status=201, done=15.3)
        .build(),
        PASS,
    ),
    Case(
        "a publish made only after the failover says nothing",
        PublishRefusedWhileStoreBlocked(BLOCK),
        blocked().op("publish", 17.0, status=201).build(),
        UNKNOWN,
    ),
    Case(
        "no inject event", PublishRefusedWhileStoreBlocked(BLOCK), H().op("publish", 11.0, status=201).build(), UNKNOWN
    ),
]

CASES[PublishAcceptedOnlyWhenStoreHealthy] = [
    Case(
        "refused while blocked, accepted after the fence",
        PublishAcceptedOnlyWhenStoreHealthy(BLOCK),
        blocked().op("publish", 11.0, ok=False, status=503, detail=ES_DOWN).op("publish", 17.0, status=201).build(),
        PASS,
        measured({"accepted_while_blocked": 0, "first_accepted_after_s": 7.1, "store_healthy_after_s": 5.0}),
    ),
    Case(
        "the store is healthy from the fence, before the reconnect",
        PublishAcceptedOnlyWhenStoreHealthy(BLOCK),
        blocked().op("publish", 15.5, status=201).build(),
        PASS,
    ),
    Case(
        "a publish accepted while the store was blocked",
        PublishAcceptedOnlyWhenStoreHealthy(BLOCK),
        blocked().op("publish", 11.0, status=201).op("publish", 17.0, status=201).build(),
        FAIL,
        measured_has(accepted_while_blocked=1),
    ),
    Case(
        "publishing refused after the store recovered",
        PublishAcceptedOnlyWhenStoreHealthy(BLOCK),
        blocked().op("publish", 17.0, ok=False, status=503, detail=ES_DOWN).build(),
        FAIL,
    ),
    Case(
        "no publish attempted after the store recovered",
        PublishAcceptedOnlyWhenStoreHealthy(BLOCK),
        blocked().op("publish", 11.0, ok=False, status=503, detail=ES_DOWN).build(),
        UNKNOWN,
        None,
    ),
    Case(
        "the store never recovered before the scenario ended",
        PublishAcceptedOnlyWhenStoreHealthy(BLOCK),
        H().inject(BLOCK, 10.0).op("publish", 11.0, ok=False, status=503, detail=ES_DOWN).build(),
        UNKNOWN,
    ),
    Case(
        "no inject event",
        PublishAcceptedOnlyWhenStoreHealthy(BLOCK),
        H().op("publish", 17.0, status=201).build(),
        UNKNOWN,
    ),
]


def failover_after_block(
    cause: str = "event_store_write_blocked", fence_at: float | None = 12.0, promote_at: float = 13.0
) -> H:
    h = H().inject(BLOCK, 10.0).failover("detect", 11.0, name="pg-a", cause=cause)
    if fence_at is not None:
        h.failover("fence", fence_at, name="pg-a")
    return h.failover("promote", promote_at).failover("reconnect", promote_at + 1)


CASES[FailoverCause] = [
    Case(
        "triggered by the write-blocked store, the old primary fenced before the promote",
        FailoverCause(BLOCK),
        failover_after_block().build(),
        PASS,
        measured({"detect_cause": "event_store_write_blocked", "fenced": "pg-a"}),
    ),
    Case(
        "triggered by another cause",
        FailoverCause(BLOCK),
        failover_after_block(cause="primary_unreachable").build(),
        FAIL,
    ),
    Case(
        "promoted before the old primary was fenced",
        FailoverCause(BLOCK),
        failover_after_block(fence_at=14.0).build(),
        FAIL,
    ),
    Case("the old primary never fenced", FailoverCause(BLOCK), failover_after_block(fence_at=None).build(), FAIL),
    Case("no failover detected", FailoverCause(BLOCK), H().inject(BLOCK, 10.0).build(), FAIL, says("no failover")),
    Case(
        "no inject event",
        FailoverCause(BLOCK),
        H().failover("detect", 11.0, cause="event_store_write_blocked").build(),
        UNKNOWN,
    ),
]


def lab_events() -> H:
    """The fault journal's inject and heal (forwarded by the harness, each with its event id), and
    the failover the harness observed (the failover manager's promote, recorded only: no event id)."""
    return (
        H()
        .inject(BLOCK, 10.0, event_id="ev-1", forwarded=True)
        .failover("promote", 15.0)
        .heal(BLOCK, 20.0, event_id="ev-3", forwarded=True)
    )


FORWARDED_IDS = ("ev-1", "ev-3")
MANAGER_CID = "failover-manager/drilllab-1/1"


def drill_rows(*event_ids: str, cid: str = CID) -> list[dict]:
    return [row("DrillEvent", payload={"event_id": e}, correlation_id=cid) for e in event_ids]


def siem_rows(*event_ids: str, cid: str = CID) -> list[dict]:
    return [{"type": "DrillEvent", "event_id": e, "correlation_id": cid} for e in event_ids]


def audit_ops(h: H, key: str = "k1", intent: int = 1) -> H:
    """An intent written, its evidence committed, approved and published: all acknowledged."""
    h.op("write", 2.0, value=key, status=201)
    for n, kind in enumerate(("evidence", "approve", "publish")):
        h.op(kind, 3.0 + n, value=key, status=200, detail={"intent_id": intent})
    return h


def audit_rows(key: str = "k1", intent: int = 1) -> list[dict]:
    """The Control Plane's own audit events of audit_ops, hash-chained."""
    return chain(
        [
            row("IntentCreated", intent_id=intent, payload={"idempotency_key": key}),
            *(row(t, intent_id=intent) for t in ("EvidenceCommitted", "ApprovalRecorded", "Published")),
        ]
    )


def siem_of(rows: list[dict], skip: str = "") -> list[dict]:
    """The SIEM lines of stored audit events (by hash), less those of type `skip`."""
    return [
        {"type": r["type"], "intent_id": r["intent_id"], "correlation_id": r["correlation_id"], "hash": r["hash"]}
        for r in rows
        if r["type"] != skip
    ]


def manager_rows(*kinds_at: tuple[str, float], cid: str = MANAGER_CID) -> list[dict]:
    """DrillEvents the lab's failover manager posted itself (not the harness), at history times."""
    return [
        row(
            "DrillEvent",
            correlation_id=cid,
            payload={
                "event_id": f"fm-{kind}",
                "kind": kind,
                "name": "pg-b",
                "at": wall(t),
                "emitter": "failover-manager",
            },
        )
        for kind, t in kinds_at
    ]


def delivered(h: H, store: list[dict] | None, siem: list[dict] | None, deployment: list[dict] | None = None) -> H:
    """The reads at the scenario's end: this scenario's rows, the deployment's DrillEvents, the SIEM."""
    if store is not None:
        h.op("read_drill_events", 30.0, value=store, detail={"correlation_id": CID})
    if deployment is not None:
        h.op("read_deployment_events", 30.5, value=deployment, detail={"type": "DrillEvent"})
    if siem is not None:
        h.op("read_siem", 31.0, value=siem)
    else:
        h.op("read_siem", 31.0, ok=None, done=31.1, error="the SIEM sink is not readable by this provider")
    return h


def rule2(
    *,
    ops: bool = True,
    store_skip: str = "",
    siem_skip: str = "",
    manager: bool = True,
    manager_siem: bool = True,
    forwarded_store: tuple = FORWARDED_IDS,
    siem: bool = True,
    history: H | None = None,
) -> History:
    """A database failover scenario: the drill's operations, the lab's events, the reads."""
    h = audit_ops(history or lab_events()) if ops else (history or lab_events())
    audit = [r for r in audit_rows() if r["type"] != store_skip] if ops else []
    deployment = manager_rows(("detect", 14.0), ("promote", 15.0), ("reconnect", 15.5)) if manager else []
    manager_lines = siem_rows(*(r["payload"]["event_id"] for r in deployment), cid=MANAGER_CID)
    siem_lines = siem_of(audit, siem_skip) + siem_rows(*FORWARDED_IDS) + (manager_lines if manager_siem else [])
    return delivered(
        h, audit + drill_rows(*forwarded_store), siem_lines if siem else None, deployment + drill_rows(*FORWARDED_IDS)
    ).build()


CASES[CorrelationIdsRecorded] = [
    Case(
        "every acknowledged operation's audit event and the failover manager's own events in the store and "
        "the SIEM; the forwarded ones counted apart",
        CorrelationIdsRecorded(),
        rule2(),
        PASS,
        measured_has(
            deployment_audit_events_checked=4,
            deployment_failover_events_checked=3,
            forwarded_events_delivered=2,
            missing_in_event_store=[],
            missing_in_siem=[],
            failovers_observed=1,
            failovers_not_logged_by_deployment=[],
        ),
    ),
    Case(
        "only events the harness forwarded: the deployment logged none",
        CorrelationIdsRecorded(),
        rule2(
            ops=False,
            manager=False,
            history=H()
            .inject(BLOCK, 10.0, event_id="ev-1", forwarded=True)
            .heal(BLOCK, 20.0, event_id="ev-3", forwarded=True),
        ),
        UNKNOWN,
        says("only events the harness forwarded"),
    ),
    Case(
        "an acknowledged approval whose audit event is missing from the SIEM",
        CorrelationIdsRecorded(),
        rule2(siem_skip="ApprovalRecorded"),
        FAIL,
        measured_has(missing_in_siem=["approve k1 (ApprovalRecorded)"]),
    ),
    Case(
        "an acknowledged publish whose audit event is not in the store (under this correlation id)",
        CorrelationIdsRecorded(),
        rule2(store_skip="Published"),
        FAIL,
        says("publish k1 (Published)"),
    ),
    Case(
        "a failover the harness observed, and the deployment logged nothing for it",
        CorrelationIdsRecorded(),
        rule2(manager=False),
        FAIL,
        says("promote pg-b"),
    ),
    Case(
        "a failover logged only by the harness's forwarder (an external target's adapter) is not the deployment's log",
        CorrelationIdsRecorded(),
        rule2(
            manager=False,
            history=lab_events().event(
                "promote", "pg-b", 15.2, source="failover-controller", event_id="ev-2", forwarded=True
            ),
            forwarded_store=(*FORWARDED_IDS, "ev-2"),
        ),
        FAIL,
        says("logged no event"),
    ),
    Case(
        "the failover manager's event missing from the SIEM",
        CorrelationIdsRecorded(),
        rule2(manager_siem=False),
        FAIL,
        says("promote:pg-b"),
    ),
    Case(
        "the failover manager's event without a correlation id",
        CorrelationIdsRecorded(),
        delivered(
            audit_ops(lab_events()),
            audit_rows() + drill_rows(*FORWARDED_IDS),
            siem_of(audit_rows()) + siem_rows(*FORWARDED_IDS, "fm-promote", cid=""),
            manager_rows(("promote", 15.0), cid=""),
        ).build(),
        FAIL,
        says("no correlation id"),
    ),
    Case(
        "an operation whose outcome was indefinite is excluded, and counted",
        CorrelationIdsRecorded(),
        rule2(history=lab_events().op("write", 5.0, ok=None, value="k9")),
        PASS,
        measured_has(indefinite_operations_excluded=1, deployment_audit_events_checked=4),
    ),
    Case(
        "a write the store lost (the final read misses it) is data loss, judged by lost_writes, not rule 2",
        CorrelationIdsRecorded(),
        rule2(history=lab_events().op("write", 5.0, value="k8").op("final_read", 29.0, value=["k1"])),
        PASS,
        measured_has(lost_operations_excluded=1),
    ),
    Case(
        "an approval acknowledged before a restore from backup rewound the store is the backup's loss",
        CorrelationIdsRecorded(),
        rule2(
            store_skip="ApprovalRecorded", history=lab_events().event("restore_done", "snap-1", 8.0, source="restore")
        ),
        PASS,
        measured_has(lost_operations_excluded=1, deployment_audit_events_checked=3),
    ),
    Case(
        "an approval acknowledged after the restore must have its event",
        CorrelationIdsRecorded(),
        rule2(
            store_skip="ApprovalRecorded", history=lab_events().event("restore_done", "snap-1", 1.0, source="restore")
        ),
        FAIL,
        says("approve k1"),
    ),
    Case(
        "harness markers and lab logs are not required",
        CorrelationIdsRecorded(),
        rule2(
            history=lab_events()
            .event("checkpoint", "look", 12.0, event_id="ev-9")
            .platform_request("intune", 13.0, key="k1", status=200)
        ),
        PASS,
    ),
    Case(
        "a forwarded event twice in the event store",
        CorrelationIdsRecorded(),
        rule2(forwarded_store=(*FORWARDED_IDS, "ev-1")),
        FAIL,
        says("2 times"),
    ),
    Case(
        "a forwarded event recorded under another correlation id",
        CorrelationIdsRecorded(),
        delivered(
            audit_ops(lab_events()),
            audit_rows() + drill_rows("ev-1") + drill_rows("ev-3", cid="other"),
            siem_of(audit_rows()) + siem_rows(*FORWARDED_IDS) + siem_rows("fm-promote", cid=MANAGER_CID),
            manager_rows(("promote", 15.0)),
        ).build(),
        FAIL,
        says("heal"),
    ),
    Case(
        "the store misses one while the SIEM cannot be read",
        CorrelationIdsRecorded(),
        rule2(store_skip="Published", siem=False),
        FAIL,
    ),
    Case(
        "the store holds every event but the SIEM cannot be read", CorrelationIdsRecorded(), rule2(siem=False), UNKNOWN
    ),
    Case(
        "the event store was not read",
        CorrelationIdsRecorded(),
        delivered(lab_events(), None, siem_rows(*FORWARDED_IDS), []).build(),
        UNKNOWN,
    ),
    Case(
        "nothing acknowledged and nothing emitted",
        CorrelationIdsRecorded(),
        delivered(H().inject(BLOCK, 10.0), [], [], []).build(),
        UNKNOWN,
    ),
]
