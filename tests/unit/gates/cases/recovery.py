"""Recovery: RTO, RPO, lost and duplicated writes, events and applies, the failover,
failback and the publish-approval interlock (harness/gates/recovery.py)."""

from __future__ import annotations

import pytest

from harness.gates import Gate
from harness.gates.recovery import (
    ApprovalEventCount,
    DuplicatedApplies,
    DuplicatedEvents,
    DuplicatedWrites,
    FailoverCompleted,
    LostWrites,
    PublishApprovalBlocked,
    RpoSeconds,
    RtoSeconds,
    TransactionLagBeforeFailback,
    WritesAfterFailback,
    WritesResumed,
)

from ..builder import H, row
from .common import FAIL, PASS, UNKNOWN, Case, measured, measured_has, says
from .shared import KILL, created

CASES: dict[type[Gate], list[Case]] = {}


DB_DOWN = {"cause": "database", "error": "the primary is unavailable"}


def killed() -> H:
    """A write acknowledged before the primary is killed at t=10."""
    return H().op("write", 1.0, value="w1").inject(KILL, 10.0)


CASES[RtoSeconds] = [
    Case(
        "the first write read back after the fault measures the recovery",
        RtoSeconds(5, KILL),
        killed()
        .op("write", 11.0, ok=False, status=503)
        .op("write", 12.0, value="w2")
        .op("final_read", 30.0, value=["w1", "w2"])
        .build(),
        PASS,
        measured(pytest.approx(2.1)),
    ),
    Case(
        "a recovery slower than the target fails",
        RtoSeconds(5, KILL),
        killed().op("write", 16.0, value="w2").op("final_read", 30.0, value=["w1", "w2"]).build(),
        FAIL,
        measured(pytest.approx(6.1)),
    ),
    Case(
        "never recovered fails",
        RtoSeconds(5, KILL),
        killed()
        .op("write", 11.0, ok=False, status=503)
        .op("write", 20.0, ok=None)
        .op("final_read", 30.0, value=["w1"])
        .build(),
        FAIL,
        measured(None),
    ),
    Case(
        "an acknowledged write missing from the final read is not recovery",
        RtoSeconds(5, KILL),
        killed()
        .op("write", 11.0, value="w2")
        .op("write", 17.0, value="w3")
        .op("final_read", 30.0, value=["w1", "w3"])
        .build(),
        FAIL,
        measured(pytest.approx(7.1)),
    ),
    Case(
        "a write invoked before the fault does not measure the recovery",
        RtoSeconds(5, KILL),
        killed()
        .op("write", 9.5, value="w2", done=11.0)
        .op("write", 16.0, value="w3")
        .op("final_read", 30.0, value=["w1", "w2", "w3"])
        .build(),
        FAIL,
        measured(pytest.approx(6.1)),
    ),
    Case(
        "measured on the platform's own log of an apply",
        RtoSeconds(5, "throttle:intune", on="apply:intune"),
        H()
        .inject("throttle:intune", 10.0)
        .platform_request("intune", 11.0, key="k1", status=429)
        .platform_request("intune", 13.0, key="k1", status=200)
        .build(),
        PASS,
        measured(pytest.approx(3.0)),
    ),
    Case(
        "no inject event to measure from",
        RtoSeconds(5, KILL),
        H().op("write", 1.0, value="w1").op("final_read", 30.0, value=["w1"]).build(),
        UNKNOWN,
    ),
    Case(
        "no final read to confirm a write with",
        RtoSeconds(5, KILL),
        killed().op("write", 12.0, value="w2").build(),
        UNKNOWN,
        says("final read"),
    ),
    Case(
        "a final read that failed confirms nothing",
        RtoSeconds(5, KILL),
        killed().op("write", 12.0, value="w2").op("final_read", 30.0, ok=False).build(),
        UNKNOWN,
    ),
]

CASES[RpoSeconds] = [
    Case(
        "nothing lost is an RPO of 0",
        RpoSeconds(1, KILL),
        killed().op("final_read", 30.0, value=["w1"]).build(),
        PASS,
        measured(0.0),
    ),
    Case(
        "the earliest acknowledged of the lost writes sets the RPO",
        RpoSeconds(1, KILL),
        killed().op("write", 5.0, value="w2").op("write", 9.5, value="w3").op("final_read", 30.0, value=["w1"]).build(),
        FAIL,
        measured(pytest.approx(4.9)),
    ),
    Case(
        "a write lost within the target passes",
        RpoSeconds(1, KILL),
        killed().op("write", 9.5, value="w2").op("final_read", 30.0, value=["w1"]).build(),
        PASS,
        measured(pytest.approx(0.4)),
    ),
    Case(
        "a write lost after the fault does not widen the RPO (lost_writes catches it)",
        RpoSeconds(1, KILL),
        killed().op("write", 12.0, value="w2").op("final_read", 30.0, value=["w1"]).build(),
        PASS,
        measured(0.0),
    ),
    Case(
        "an indeterminate write absent from the read is not lost",
        RpoSeconds(1, KILL),
        killed().op("write", 5.0, ok=None, value="w2").op("final_read", 30.0, value=["w1"]).build(),
        PASS,
        measured(0.0),
    ),
    Case("no final read", RpoSeconds(1, KILL), killed().build(), UNKNOWN),
    Case(
        "writes lost but no fault to measure from",
        RpoSeconds(1, KILL),
        H().op("write", 1.0, value="w1").op("final_read", 30.0, value=[]).build(),
        UNKNOWN,
    ),
]

CASES[LostWrites] = [
    Case(
        "every acknowledged write read back (a refused and an indeterminate one absent)",
        LostWrites(),
        H()
        .op("write", 1.0, value="w1")
        .op("write", 2.0, ok=False, value="w2", status=503)
        .op("write", 3.0, ok=None, value="w3")
        .op("final_read", 30.0, value=["w1"])
        .build(),
        PASS,
        measured(0),
    ),
    Case(
        "an acknowledged write missing after recovery",
        LostWrites(),
        H().op("write", 1.0, value="w1").op("write", 2.0, value="w2").op("final_read", 30.0, value=["w1"]).build(),
        FAIL,
        says("w2"),
    ),
    Case(
        "the allowance is a maximum",
        LostWrites(allowed=1),
        H().op("write", 1.0, value="w1").op("write", 2.0, value="w2").op("final_read", 30.0, value=["w1"]).build(),
        PASS,
        measured(1),
    ),
    Case(
        "publishes are counted against what the platforms applied",
        LostWrites(writes="publish", read="final_applied"),
        H()
        .op("publish", 1.0, value="k1")
        .op("publish", 2.0, value="k2")
        .op("final_applied", 30.0, value=["k1"])
        .build(),
        FAIL,
        says("k2"),
    ),
    Case("no final read", LostWrites(), H().op("write", 1.0, value="w1").build(), UNKNOWN),
    Case(
        "the final read failed",
        LostWrites(),
        H().op("write", 1.0, value="w1").op("final_read", 30.0, ok=False, error="timeout").build(),
        UNKNOWN,
    ),
]

CASES[DuplicatedWrites] = [
    Case(
        "every key read back once",
        DuplicatedWrites(),
        H()
        .op("write", 1.0, value="w1")
        .op("write", 2.0, value="w2")
        .op("final_read", 30.0, value=["w1", "w2"])
        .build(),
        PASS,
        measured(0),
    ),
    Case(
        "a key read back twice",
        DuplicatedWrites(),
        H()
        .op("write", 1.0, value="w1")
        .op("write", 2.0, value="w2")
        .op("final_read", 30.0, value=["w1", "w2", "w1"])
        .build(),
        FAIL,
        says("w1"),
    ),
    Case("no final read", DuplicatedWrites(), H().op("write", 1.0, value="w1").build(), UNKNOWN),
]


def audited(audit: list[dict]) -> H:
    """Two intents written, the first published (its intent id in the answer), the audit read."""
    return (
        H()
        .op("write", 1.0, value="w1")
        .op("write", 2.0, value="w2")
        .op("publish", 3.0, value="w1", detail={"intent_id": 1})
        .op("read_audit", 30.0, value=audit)
    )


CASES[DuplicatedEvents] = [
    Case(
        "every change recorded once",
        DuplicatedEvents(),
        audited([created(1, "w1"), created(2, "w2"), row("Published", intent_id=1)]).build(),
        PASS,
        measured(0),
    ),
    Case(
        "an intent created twice in the store",
        DuplicatedEvents(),
        audited([created(1, "w1"), created(2, "w2"), created(1, "w1"), row("Published", intent_id=1)]).build(),
        FAIL,
        says("write w1"),
    ),
    Case(
        "a publish found through its key's intent recorded twice",
        DuplicatedEvents(),
        H()
        .op("write", 1.0, value="w1")
        .op("publish", 3.0, value="w1")
        .op("read_audit", 30.0, value=[created(1, "w1"), row("Published", intent_id=1), row("Published", intent_id=1)])
        .build(),
        FAIL,
        says("publish w1"),
    ),
    Case("the audit events were not read", DuplicatedEvents(), H().op("write", 1.0, value="w1").build(), UNKNOWN),
    Case(
        "the audit read failed",
        DuplicatedEvents(),
        H().op("write", 1.0, value="w1").op("read_audit", 30.0, ok=False, error="503").build(),
        UNKNOWN,
    ),
]

CASES[DuplicatedApplies] = [
    Case(
        "a throttled request retried until applied once",
        DuplicatedApplies(("intune", "jamf")),
        H()
        .platform_request("intune", 1.0, key="k1", status=429)
        .platform_request("intune", 2.0, key="k1", status=429)
        .platform_request("intune", 4.0, key="k1", status=200)
        .platform_request("jamf", 1.0, key="k2", status=200)
        .build(),
        PASS,
        measured(0),
    ),
    Case(
        "one intent applied twice",
        DuplicatedApplies(("intune", "jamf")),
        H()
        .platform_request("intune", 1.0, key="k1", status=200)
        .platform_request("jamf", 1.0, key="k2", status=200)
        .platform_request("jamf", 5.0, key="k2", status=200, outcome="duplicate")
        .build(),
        FAIL,
        says("jamf k2 x2"),
    ),
    Case(
        "another scenario's intent is not judged",
        DuplicatedApplies(("intune",), keys={"k1"}),
        H()
        .platform_request("intune", 1.0, key="k1", status=200)
        .platform_request("intune", 2.0, key="k9", status=200)
        .platform_request("intune", 3.0, key="k9", status=200)
        .build(),
        PASS,
    ),
    Case(
        "no intent reached a platform",
        DuplicatedApplies(("intune",)),
        H().platform_request("jamf", 1.0, key="k2", status=200).build(),
        UNKNOWN,
    ),
    Case(
        "none of the scenario's intents reached a platform",
        DuplicatedApplies(("intune",), keys={"k1"}),
        H().platform_request("intune", 1.0, key="k9", status=200).build(),
        UNKNOWN,
    ),
]

CASES[FailoverCompleted] = [
    Case(
        "detected, promoted and reconnected in time; each phase its first event after the fault",
        FailoverCompleted(KILL, 60),
        killed()
        .failover("detect", 11.0)
        .failover("fence", 11.5, name="pg-a")
        .failover("promote", 12.0)
        .failover("detect", 14.0)
        .failover("reconnect", 13.0)
        .build(),
        PASS,
        measured({"detect": 1.0, "fence": 1.5, "promote": 2.0, "reconnect": 3.0}),
    ),
    Case(
        "a failover error and no reconnect",
        FailoverCompleted(KILL, 60),
        killed().failover("detect", 11.0).failover("failover_error", 20.0, error="no replica in sync").build(),
        FAIL,
        says("no replica in sync"),
    ),
    Case(
        "reconnected after the timeout", FailoverCompleted(KILL, 60), killed().failover("reconnect", 75.0).build(), FAIL
    ),
    Case(
        "a reconnect from before the fault does not count",
        FailoverCompleted(KILL, 60),
        H().failover("reconnect", 5.0).inject(KILL, 10.0).failover("detect", 11.0).build(),
        FAIL,
    ),
    Case("no inject event", FailoverCompleted(KILL, 60), H().failover("reconnect", 5.0).build(), UNKNOWN),
]

CASES[WritesResumed] = [
    Case(
        "a write acknowledged after the reconnect",
        WritesResumed(KILL),
        killed()
        .failover("reconnect", 15.0)
        .op("write", 16.0, ok=False, status=503)
        .op("write", 17.0, value="w2")
        .build(),
        PASS,
        measured(pytest.approx(7.1)),
    ),
    Case(
        "every write after the reconnect refused",
        WritesResumed(KILL),
        killed().failover("reconnect", 15.0).op("write", 16.0, ok=False, status=503).op("write", 17.0, ok=None).build(),
        FAIL,
    ),
    Case(
        "a write acknowledged before the reconnect does not count",
        WritesResumed(KILL),
        killed()
        .op("write", 14.0, value="w2")
        .failover("reconnect", 15.0)
        .op("write", 16.0, ok=False, status=503)
        .build(),
        FAIL,
    ),
    Case("no reconnect after the fault", WritesResumed(KILL), killed().op("write", 16.0, value="w2").build(), UNKNOWN),
    Case(
        "no write attempted after the reconnect",
        WritesResumed(KILL),
        killed().failover("reconnect", 15.0).build(),
        UNKNOWN,
    ),
    Case(
        "no inject event",
        WritesResumed(KILL),
        H().failover("reconnect", 15.0).op("write", 16.0, value="w2").build(),
        UNKNOWN,
    ),
]


def approvals() -> H:
    """Approvals of intents 1 and 2 acknowledged, of intent 3 indeterminate; the primary killed at
    10, the clients reconnected at 15."""
    return (
        H()
        .op("approve", 5.0, detail={"intent_id": 1})
        .op("approve", 8.0, detail={"intent_id": 2})
        .op("approve", 9.9, ok=None, detail={"intent_id": 3})
        .inject(KILL, 10.0)
        .failover("reconnect", 15.0)
    )


def approval_rows(*intent_ids: int) -> dict:
    return {"value": [row("ApprovalRecorded", intent_id=i) for i in intent_ids], "detail": {"type": "ApprovalRecorded"}}


CASES[ApprovalEventCount] = [
    Case(
        "every acknowledged approval there, the indeterminate one absent",
        ApprovalEventCount(KILL),
        approvals().op("read_events", 20.0, **approval_rows(1, 2)).build(),
        PASS,
        measured_has(ApprovalEventCount=2, acknowledged=2, indeterminate=1),
    ),
    Case(
        "the indeterminate approval may be there",
        ApprovalEventCount(KILL),
        approvals().op("read_events", 20.0, **approval_rows(1, 2, 3)).build(),
        PASS,
    ),
    Case(
        "an approval made after the read is not expected in it",
        ApprovalEventCount(KILL),
        approvals().op("read_events", 20.0, **approval_rows(1, 2)).op("approve", 25.0, detail={"intent_id": 4}).build(),
        PASS,
    ),
    Case(
        "an approval still in flight when the read began may be absent",
        ApprovalEventCount(KILL),
        approvals()
        .op("approve", 19.95, detail={"intent_id": 5}, done=20.05)
        .op("read_events", 20.0, **approval_rows(1, 2))
        .build(),
        PASS,
    ),
    Case(
        "or present",
        ApprovalEventCount(KILL),
        approvals()
        .op("approve", 19.95, detail={"intent_id": 5}, done=20.05)
        .op("read_events", 20.0, **approval_rows(1, 2, 5))
        .build(),
        PASS,
    ),
    Case(
        "an approval invoked while the read ran may be in it (the read's snapshot came later)",
        ApprovalEventCount(KILL),
        approvals()
        .op("read_events", 20.0, done=21.0, **approval_rows(1, 2, 6))
        .op("approve", 20.2, detail={"intent_id": 6}, done=20.4)
        .build(),
        PASS,
        measured_has(indeterminate=2, unexpected=[]),
    ),
    Case(
        "an approval invoked after the read ended cannot be in it",
        ApprovalEventCount(KILL),
        approvals()
        .op("read_events", 20.0, done=21.0, **approval_rows(1, 2, 6))
        .op("approve", 21.5, detail={"intent_id": 6})
        .build(),
        FAIL,
        measured_has(unexpected=[6]),
    ),
    Case(
        "an acknowledged approval missing after the failover",
        ApprovalEventCount(KILL),
        approvals().op("read_events", 20.0, **approval_rows(1)).build(),
        FAIL,
        measured_has(missing=[2]),
    ),
    Case(
        "an approval the primary refused appears after the failover",
        ApprovalEventCount(KILL),
        approvals()
        .op("approve", 11.0, ok=False, status=503, detail={"intent_id": 4})
        .op("read_events", 20.0, **approval_rows(1, 2, 4))
        .build(),
        FAIL,
        measured_has(unexpected=[4]),
    ),
    Case(
        "an approval recorded twice",
        ApprovalEventCount(KILL),
        approvals().op("read_events", 20.0, **approval_rows(1, 2, 1)).build(),
        FAIL,
        measured_has(duplicated=[1]),
    ),
    Case(
        "the events were read only before the reconnect",
        ApprovalEventCount(KILL),
        approvals().op("read_events", 12.0, **approval_rows(1, 2)).build(),
        UNKNOWN,
    ),
    Case(
        "the read of the promoted node failed",
        ApprovalEventCount(KILL),
        approvals().op("read_events", 20.0, ok=False, detail={"type": "ApprovalRecorded"}).build(),
        UNKNOWN,
    ),
    Case(
        "no reconnect after the fault",
        ApprovalEventCount(KILL),
        H()
        .op("approve", 5.0, detail={"intent_id": 1})
        .inject(KILL, 10.0)
        .op("read_events", 20.0, **approval_rows(1))
        .build(),
        UNKNOWN,
    ),
]


def lag(h: H, t: float, seconds_: float, node: str = "pg-a") -> H:
    """A harness lag sample of the failback target (op "lag")."""
    return h.op("lag", t, value=seconds_, detail={"node": node, "primary": "pg-b"})


def role(h: H, t: float, in_recovery: bool, node: str = "pg-a") -> H:
    """The harness's own read of whether the failback target is still in recovery."""
    return h.op("in_recovery", t, value=in_recovery, detail={"node": node})


def failback(h: H, t: float, ok: bool | None = True, value: float | None = None, **kw) -> H:
    return h.op("failback", t, ok=ok, value=value, detail={"node": "pg-a"}, **kw)


REFUSED = {"ok": False, "value": 6.3, "error": "failback refused: TransactionLag 6.3 s > 5.0 s"}

CASES[TransactionLagBeforeFailback] = [
    Case(
        "refused while lagging, made once caught up: the harness's lag at take-effect judged",
        TransactionLagBeforeFailback(5.0),
        role(
            lag(
                lag(
                    failback(
                        role(lag(failback(lag(H(), 40.0, 6.2), 40.5, **REFUSED), 45.0, 3.0), 46.0, True),
                        47.0,
                        value=0.4,
                    ),
                    47.2,
                    1.0,
                ),
                47.4,
                0.5,
            ),
            48.0,
            False,
        ).build(),
        PASS,
        measured(0.5),
    ),
    Case(
        "the action waited (answered once it switched) and the harness saw it switch caught up",
        TransactionLagBeforeFailback(5.0),
        role(
            lag(role(lag(failback(lag(H(), 40.0, 6.2), 40.5, value=0.1, done=49.5), 44.0, 3.0), 45.0, True), 48.5, 0.8),
            49.0,
            False,
        ).build(),
        PASS,
        measured(0.8),
    ),
    Case(
        "a lag exactly at the limit at take-effect passes",
        TransactionLagBeforeFailback(5.0),
        role(
            failback(lag(failback(lag(H(), 40.0, 6.2), 40.5, **REFUSED), 45.0, 5.0), 46.0, value=5.0), 47.0, False
        ).build(),
        PASS,
    ),
    Case(
        "a failback that ignored the lag: it took effect while the harness measured 6.3 s",
        TransactionLagBeforeFailback(5.0),
        role(lag(failback(lag(H(), 40.0, 6.2), 40.5, value=6.2), 40.6, 6.3), 41.5, False).build(),
        FAIL,
        says("6.30 s"),
    ),
    Case(
        "the action's own lag figure is not evidence: it said 2 s, the harness measured 7 s",
        TransactionLagBeforeFailback(5.0),
        role(failback(lag(H(), 40.0, 7.0), 40.5, value=2.0), 41.5, False).build(),
        FAIL,
        measured(7.0),
    ),
    Case(
        "refused again and again: the node never took the primary role",
        TransactionLagBeforeFailback(5.0),
        role(
            failback(
                lag(failback(lag(H(), 40.0, 6.2), 40.5, **REFUSED), 45.0, 1.0),
                46.0,
                ok=False,
                value=1.0,
                error="failback refused",
            ),
            47.0,
            True,
        ).build(),
        UNKNOWN,
        says("never took the primary role"),
    ),
    Case(
        "the refusal was not exercised: lag never over the limit when requested",
        TransactionLagBeforeFailback(5.0),
        role(failback(lag(H(), 40.0, 1.0), 40.5, value=1.0), 41.5, False).build(),
        UNKNOWN,
        says("not exercised"),
    ),
    Case(
        "no harness lag sample shortly before the failback took effect",
        TransactionLagBeforeFailback(5.0, fresh_s=10.0),
        role(
            failback(lag(failback(lag(H(), 40.0, 6.2), 40.5, **REFUSED), 45.0, 1.0), 60.0, value=1.0), 61.0, False
        ).build(),
        UNKNOWN,
        says("no harness lag sample"),
    ),
    Case(
        "lag samples of another node do not count",
        TransactionLagBeforeFailback(5.0),
        role(failback(lag(lag(H(), 39.0, 6.2), 40.0, 0.1, node="pg-c"), 40.5, value=0.1), 41.5, False).build(),
        FAIL,
        measured(6.2),
    ),
    Case("no failback requested", TransactionLagBeforeFailback(5.0), lag(H(), 45.0, 2.0).build(), UNKNOWN),
    Case(
        "requested, then never read by the harness",
        TransactionLagBeforeFailback(5.0),
        failback(lag(H(), 40.0, 6.2), 40.5, ok=None, error="timed out").build(),
        UNKNOWN,
    ),
]

CASES[WritesAfterFailback] = [
    Case(
        "a write acknowledged after the failback",
        WritesAfterFailback(),
        H().op("failback", 50.0, value=1.0).op("write", 51.0, value="w1").build(),
        PASS,
    ),
    Case(
        "every write after the failback refused",
        WritesAfterFailback(),
        H()
        .op("failback", 50.0, value=1.0)
        .op("write", 51.0, ok=False, status=503)
        .op("write", 52.0, ok=False, status=503)
        .build(),
        FAIL,
        measured("0 of 2"),
    ),
    Case(
        "a write invoked before the failback completed does not count",
        WritesAfterFailback(),
        H()
        .op("failback", 50.0, value=1.0)
        .op("write", 50.05, value="w1")
        .op("write", 51.0, ok=False, status=503)
        .build(),
        FAIL,
    ),
    Case(
        "no failback made (refused)",
        WritesAfterFailback(),
        H().op("failback", 50.0, ok=False, value=7.0).op("write", 51.0, value="w1").build(),
        UNKNOWN,
    ),
    Case(
        "no write attempted after the failback",
        WritesAfterFailback(),
        H().op("write", 40.0, value="w1").op("failback", 50.0, value=1.0).build(),
        UNKNOWN,
    ),
]

CASES[PublishApprovalBlocked] = [
    Case(
        "approval and publish refused with 503 naming the database",
        PublishApprovalBlocked(KILL),
        killed()
        .op("approve", 11.0, ok=False, status=503, detail=DB_DOWN)
        .op("publish", 12.0, ok=False, status=503, detail=DB_DOWN)
        .failover("reconnect", 20.0)
        .build(),
        PASS,
    ),
    Case(
        "a publish accepted while the primary is down",
        PublishApprovalBlocked(KILL),
        killed()
        .op("approve", 11.0, ok=False, status=503, detail=DB_DOWN)
        .op("publish", 12.0, status=200)
        .failover("reconnect", 20.0)
        .build(),
        FAIL,
        says("publish 200"),
    ),
    Case(
        "a refusal naming another cause",
        PublishApprovalBlocked(KILL),
        killed()
        .op("approve", 11.0, ok=False, status=503, detail=DB_DOWN)
        .op("publish", 12.0, ok=False, status=503, detail={"cause": "evidence_store"})
        .failover("reconnect", 20.0)
        .build(),
        FAIL,
    ),
    Case(
        "a refusal with another status",
        PublishApprovalBlocked(KILL),
        killed()
        .op("approve", 11.0, ok=False, status=500, detail=DB_DOWN)
        .op("publish", 12.0, ok=False, status=503, detail=DB_DOWN)
        .failover("reconnect", 20.0)
        .build(),
        FAIL,
    ),
    Case(
        "the primary is down until the clients reconnect, whatever the heal",
        PublishApprovalBlocked(KILL),
        killed()
        .op("approve", 11.0, ok=False, status=503, detail=DB_DOWN)
        .heal(KILL, 12.5)
        .op("publish", 17.0, status=200)
        .failover("reconnect", 20.0)
        .build(),
        FAIL,
    ),
    Case(
        "a late refusal counts, but a publish made after the failover is not judged: no publish in the outage",
        PublishApprovalBlocked(KILL),
        killed()
        .op("approve", 11.0, ok=False, status=503, detail=DB_DOWN, done=13.5)
        .op("publish", 13.6, ok=False, status=503, detail=DB_DOWN, done=14.0)
        .failover("reconnect", 12.0)
        .build(),
        UNKNOWN,
    ),
    Case(
        "an approval and a publish made during the outage, both refused after a fast failover",
        PublishApprovalBlocked(KILL),
        killed()
        .op("approve", 11.0, ok=False, status=503, detail=DB_DOWN, done=13.5)
        .op("publish", 11.2, ok=False, status=503, detail=DB_DOWN, done=13.6)
        .failover("reconnect", 12.0)
        .build(),
        PASS,
    ),
    Case(
        "a publish made during the outage and answered 500 after the failover finished says nothing",
        PublishApprovalBlocked(KILL),
        killed()
        .op("approve", 11.0, ok=False, status=503, detail=DB_DOWN, done=13.5)
        .op("publish", 11.2, ok=False, status=500, done=13.6)
        .failover("reconnect", 12.0)
        .build(),
        UNKNOWN,
    ),
    Case(
        "a publish answered 500 while the primary was down fails",
        PublishApprovalBlocked(KILL),
        killed()
        .op("approve", 11.0, ok=False, status=503, detail=DB_DOWN, done=11.5)
        .op("publish", 11.2, ok=False, status=500, done=11.6)
        .failover("reconnect", 12.0)
        .build(),
        FAIL,
        says("publish 500"),
    ),
    Case(
        "a publish straddling the reconnect is not judged",
        PublishApprovalBlocked(KILL),
        killed()
        .op("approve", 11.0, ok=False, status=503, detail=DB_DOWN)
        .op("publish", 12.0, ok=False, status=503, detail=DB_DOWN)
        .op("publish", 19.9, status=200, done=20.5)
        .failover("reconnect", 20.0)
        .build(),
        PASS,
    ),
    Case(
        "a publish after a write was acknowledged again, once the promotion was observed, is not judged",
        PublishApprovalBlocked(KILL),
        killed()
        .op("approve", 11.0, ok=False, status=503, detail=DB_DOWN)
        .op("publish", 12.0, ok=False, status=503, detail=DB_DOWN)
        .failover("promote", 14.5)
        .op("write", 15.0, value="k9", status=201)
        .op("publish", 16.0, status=200)
        .failover("reconnect", 20.0)
        .build(),
        PASS,
    ),
    Case(
        "a write the dying primary still took, before it was seen down, does not end the outage",
        PublishApprovalBlocked(KILL),
        killed()
        .op("write", 10.1, value="k8", status=201)
        .failover("detect", 10.5)
        .op("approve", 11.0, ok=False, status=503, detail=DB_DOWN)
        .op("publish", 12.0, ok=False, status=503, detail=DB_DOWN)
        .failover("reconnect", 20.0)
        .build(),
        PASS,
    ),
    Case(
        "an approval the dying primary took in before it was seen down, unconfirmed (504), says nothing",
        PublishApprovalBlocked(KILL),
        killed()
        .op("approve", 10.1, ok=None, status=504, detail=DB_DOWN)
        .failover("detect", 10.5)
        .op("approve", 11.0, ok=False, status=503, detail=DB_DOWN)
        .op("publish", 12.0, ok=False, status=503, detail=DB_DOWN)
        .failover("reconnect", 20.0)
        .build(),
        PASS,
    ),
    Case(
        "an approval left unconfirmed (504) after the primary was seen down fails",
        PublishApprovalBlocked(KILL),
        killed()
        .failover("detect", 10.5)
        .op("approve", 11.0, ok=None, status=504, detail=DB_DOWN)
        .op("publish", 12.0, ok=False, status=503, detail=DB_DOWN)
        .failover("reconnect", 20.0)
        .build(),
        FAIL,
        says("approve 504"),
    ),
    # issue 24: an acknowledgement between the kill in effect and the promotion no longer ends the outage: it fails
    Case(
        "after the primary was seen down, an acknowledged write and approval fail, named",
        PublishApprovalBlocked(KILL),
        killed()
        .failover("detect", 10.5)
        .op("write", 10.8, value="k8", status=201)
        .op("approve", 11.0, status=200)
        .op("publish", 12.0, status=200)
        .failover("reconnect", 20.0)
        .build(),
        FAIL,
        says("write 201 acknowledged at +0.90 s, before the promotion (k8)"),
    ),
    Case(
        "an approval accepted once the target was promoted ends the outage for the gate",
        PublishApprovalBlocked(KILL),
        killed()
        .op("approve", 11.0, ok=False, status=503, detail=DB_DOWN)
        .op("publish", 12.0, ok=False, status=503, detail=DB_DOWN)
        .failover("promote", 14.0)
        .op("approve", 15.0, status=200)
        .failover("reconnect", 20.0)
        .build(),
        PASS,
    ),
    Case(
        "an approval accepted after an outside observer's last poll that saw a replica is not judged",
        PublishApprovalBlocked(KILL),
        killed()
        .op("approve", 11.0, ok=False, status=503, detail=DB_DOWN)
        .op("publish", 12.0, ok=False, status=503, detail=DB_DOWN)
        .op("approve", 13.5, status=200)
        .failover("promote", 14.0, not_before_s=1.0)
        .failover("reconnect", 20.0)
        .build(),
        PASS,
    ),
    Case(
        "an approval accepted before the outside observer's last poll that saw a replica fails",
        PublishApprovalBlocked(KILL),
        killed()
        .op("approve", 11.0, ok=False, status=503, detail=DB_DOWN)
        .op("publish", 12.0, ok=False, status=503, detail=DB_DOWN)
        .op("approve", 12.5, status=200)
        .failover("promote", 14.0, not_before_s=1.0)
        .failover("reconnect", 20.0)
        .build(),
        FAIL,
        says("approve 200"),
    ),
    Case(
        "an approval the primary took before the kill was in place says nothing",
        PublishApprovalBlocked(KILL),
        killed()
        .op("approve", 10.01, status=200, done=10.03)
        .event("in_place", KILL, 10.05)
        .failover("detect", 10.2)
        .op("approve", 11.0, ok=False, status=503, detail=DB_DOWN)
        .op("publish", 12.0, ok=False, status=503, detail=DB_DOWN)
        .failover("reconnect", 20.0)
        .build(),
        PASS,
    ),
    Case(
        "an approval accepted once the kill was in place, before it was seen, fails",
        PublishApprovalBlocked(KILL),
        killed()
        .event("in_place", KILL, 10.05)
        .op("approve", 10.1, status=200)
        .failover("detect", 10.3)
        .op("publish", 12.0, ok=False, status=503, detail=DB_DOWN)
        .failover("reconnect", 20.0)
        .build(),
        FAIL,
        says("approve 200"),
    ),
    Case(
        "an approval that waited for the database and was answered once the target was promoted says nothing",
        PublishApprovalBlocked(KILL),
        killed()
        .op("approve", 11.0, ok=False, status=503, detail=DB_DOWN)
        .op("publish", 11.5, ok=False, status=503, detail=DB_DOWN)
        .op("approve", 12.0, status=200, done=14.2)
        .failover("promote", 14.0)
        .failover("reconnect", 20.0)
        .build(),
        PASS,
    ),
    Case(
        "an approval that waited but was answered before any promotion fails",
        PublishApprovalBlocked(KILL),
        killed()
        .op("approve", 11.0, ok=False, status=503, detail=DB_DOWN)
        .op("publish", 11.5, ok=False, status=503, detail=DB_DOWN)
        .op("approve", 12.0, status=200, done=13.9)
        .failover("promote", 14.0)
        .failover("reconnect", 20.0)
        .build(),
        FAIL,
        says("approve 200"),
    ),
    Case(
        "an approval accepted before any promotion fails",
        PublishApprovalBlocked(KILL),
        killed()
        .op("approve", 11.0, status=200)
        .op("publish", 12.0, ok=False, status=503, detail=DB_DOWN)
        .failover("promote", 14.0)
        .failover("reconnect", 20.0)
        .build(),
        FAIL,
    ),
    Case(
        "a write refused during the outage does not end it",
        PublishApprovalBlocked(KILL),
        killed()
        .op("approve", 11.0, ok=False, status=503, detail=DB_DOWN)
        .op("write", 11.5, ok=False, status=503)
        .op("publish", 16.0, status=200)
        .failover("reconnect", 20.0)
        .build(),
        FAIL,
    ),
    Case(
        "no publish attempted while the primary was down",
        PublishApprovalBlocked(KILL),
        killed()
        .op("approve", 11.0, ok=False, status=503, detail=DB_DOWN)
        .failover("reconnect", 20.0)
        .op("publish", 21.0, status=200)
        .build(),
        UNKNOWN,
        says("publish"),
    ),
    Case(
        "attempts made only after the failover finished",
        PublishApprovalBlocked(KILL),
        killed().failover("reconnect", 20.0).op("approve", 21.0, status=200).op("publish", 22.0, status=200).build(),
        UNKNOWN,
        says("ended first"),
    ),
    Case("no inject event", PublishApprovalBlocked(KILL), H().op("publish", 12.0, status=200).build(), UNKNOWN),
    Case(
        "a write acknowledged once the kill was in place, before the promotion, fails though both were refused",
        PublishApprovalBlocked(KILL),
        killed()
        .event("in_place", KILL, 10.05)
        .op("approve", 11.0, ok=False, status=503, detail=DB_DOWN)
        .op("write", 11.5, value="k9", status=201)
        .op("publish", 12.0, ok=False, status=503, detail=DB_DOWN)
        .failover("promote", 14.0)
        .failover("reconnect", 20.0)
        .build(),
        FAIL,
        measured_has(acknowledged=["write k9"], not_placed=0),
    ),
    Case(
        "an evidence upload acknowledged while the primary was down fails",
        PublishApprovalBlocked(KILL),
        killed()
        .op("approve", 11.0, ok=False, status=503, detail=DB_DOWN)
        .op("evidence", 11.5, value="k9", status=201, detail={"intent_id": 3})
        .op("publish", 12.0, ok=False, status=503, detail=DB_DOWN)
        .failover("promote", 14.0)
        .build(),
        FAIL,
        says("evidence 201"),
    ),
    Case(
        "operations the history cannot place are left out, and counted",
        PublishApprovalBlocked(KILL),
        killed()
        .op("write", 9.95, value="k7", status=201, done=10.2)  # across the kill
        .event("in_place", KILL, 10.05)
        .op("approve", 11.0, ok=False, status=503, detail=DB_DOWN)
        .op("publish", 12.0, ok=False, status=503, detail=DB_DOWN)
        .op("write", 13.8, value="k9", status=201, done=14.3)  # across the promote
        .failover("promote", 14.0)
        .failover("reconnect", 20.0)
        .build(),
        PASS,
        measured_has(not_placed=2, acknowledged=[]),
    ),
]
