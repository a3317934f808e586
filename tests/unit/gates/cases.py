"""Every gate's rule as named cases on hand-built histories: for each class of harness.gates.GATES
at least one history that must pass, one that must fail (the misbehaviour the rule exists to
catch) and one that must be unknown (the evidence is missing, or the scenario ended first), plus
the edges of the subtler rules, each named as the rule it pins down.

A case is (name, gate, history, expected verdict, optional check on the GateResult). A case
written from the rule that the gate's code does not meet carries ``: an expected
failure (strict), so it shows until the gate is fixed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import pytest

from harness.gates import Gate
from harness.gates.api import (
    ConnectorsServeQueuedWork,
    IntentsAndApprovalsBlocked,
    PublishAcceptedWhenHealthy,
    PublishRefusedWhileUnhealthy,
)
from harness.gates.availability import AvailabilityBudget, NoFailedRequestsBeyondProbeWindow
from harness.gates.chaos import ChaosCompleted, ErrorBudgetNotSpent, ProbeOutageWithinTolerance
from harness.gates.connectors import (
    AppliedExactlyOnce,
    AssignmentFails,
    CabManualPause,
    CabNotified,
    CabPauseHoldsUntilLifted,
    ConnectorBackoff,
    ConnectorsHealthy,
    DeadLettered,
    ManualImportOffered,
    NoCriticalBacklog,
    OtherPlatformsContinue,
    PromotionRefused,
    PromotionsResumed,
    PublishAccepted,
    QueueDepthAccurate,
    RequeueConfirmed,
    ResumeRequiresLowThrottleCount,
    RingRollbackApplied,
    SiteOutageRecorded,
    ThrottleCountAccurate,
)
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
from harness.gates.evidence import (
    ApprovalRefusedWithoutCommittedEvidence,
    ImpactRecorded,
    PublishBlockedDuringOutage,
    PublishedFromValidatedCopy,
    PublishingResumed,
    RetryBackoffAtStore,
    ValidatedCopy,
)
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
from harness.gates.steady import FaultsHealed, SteadyState
from harness.gates.worm import WormRetention
from harness.model import GateResult, History, Verdict

from .builder import CID, H, chain, row, wall

PASS, FAIL, UNKNOWN = Verdict.PASS, Verdict.FAIL, Verdict.UNKNOWN
Check = Callable[[GateResult], None]


class Case(NamedTuple):
    name: str
    gate: Gate
    history: History
    expected: Verdict
    check: Check | None = None
    marks: tuple = ()


def defect(reason: str) -> tuple:
    """The rule requires the case's verdict; the gate answers otherwise (see the reason)."""
    return (pytest.mark.xfail(strict=True, reason=f"suspected gate defect: {reason}"),)


# ---- checks on the GateResult ---------------------------------------------------------------

def measured(expected: Any) -> Check:
    def check(result: GateResult) -> None:
        assert result.measured == expected, f"measured {result.measured!r}, expected {expected!r}"
    return check


def measured_has(**items: Any) -> Check:
    def check(result: GateResult) -> None:
        for key, value in items.items():
            assert result.measured[key] == value, f"measured[{key!r}] = {result.measured[key]!r}, expected {value!r}"
    return check


def says(text: str) -> Check:
    """The result names `text` (in its detail or its measured value)."""
    def check(result: GateResult) -> None:
        assert text in f"{result.detail} {result.measured}", f"{text!r} not in {result.detail!r} / {result.measured!r}"
    return check


CASES: dict[type[Gate], list[Case]] = {}


# =============================================================================================
# recovery
# =============================================================================================

KILL = "kill-primary:pg-a"
DB_DOWN = {"cause": "database", "error": "the primary is unavailable"}


def killed() -> H:
    """A write acknowledged before the primary is killed at t=10."""
    return H().op("write", 1.0, value="w1").inject(KILL, 10.0)


CASES[RtoSeconds] = [
    Case("the first write read back after the fault measures the recovery",
         RtoSeconds(5, KILL), killed().op("write", 11.0, ok=False, status=503).op("write", 12.0, value="w2")
         .op("final_read", 30.0, value=["w1", "w2"]).build(), PASS, measured(pytest.approx(2.1))),
    Case("a recovery slower than the target fails",
         RtoSeconds(5, KILL), killed().op("write", 16.0, value="w2").op("final_read", 30.0, value=["w1", "w2"]).build(),
         FAIL, measured(pytest.approx(6.1))),
    Case("never recovered fails",
         RtoSeconds(5, KILL), killed().op("write", 11.0, ok=False, status=503).op("write", 20.0, ok=None)
         .op("final_read", 30.0, value=["w1"]).build(), FAIL, measured(None)),
    Case("an acknowledged write missing from the final read is not recovery",
         RtoSeconds(5, KILL), killed().op("write", 11.0, value="w2").op("write", 17.0, value="w3")
         .op("final_read", 30.0, value=["w1", "w3"]).build(), FAIL, measured(pytest.approx(7.1))),
    Case("a write invoked before the fault does not measure the recovery",
         RtoSeconds(5, KILL), killed().op("write", 9.5, value="w2", done=11.0).op("write", 16.0, value="w3")
         .op("final_read", 30.0, value=["w1", "w2", "w3"]).build(), FAIL, measured(pytest.approx(6.1))),
    Case("measured on the platform's own log of an apply",
         RtoSeconds(5, "throttle:intune", on="apply:intune"),
         H().inject("throttle:intune", 10.0).platform_request("intune", 11.0, key="k1", status=429)
         .platform_request("intune", 13.0, key="k1", status=200).build(), PASS, measured(pytest.approx(3.0))),
    Case("no inject event to measure from",
         RtoSeconds(5, KILL), H().op("write", 1.0, value="w1").op("final_read", 30.0, value=["w1"]).build(), UNKNOWN),
    Case("no final read to confirm a write with",
         RtoSeconds(5, KILL), killed().op("write", 12.0, value="w2").build(), UNKNOWN, says("final read")),
    Case("a final read that failed confirms nothing",
         RtoSeconds(5, KILL), killed().op("write", 12.0, value="w2").op("final_read", 30.0, ok=False).build(), UNKNOWN),
]

CASES[RpoSeconds] = [
    Case("nothing lost is an RPO of 0",
         RpoSeconds(1, KILL), killed().op("final_read", 30.0, value=["w1"]).build(), PASS, measured(0.0)),
    Case("the earliest acknowledged of the lost writes sets the RPO",
         RpoSeconds(1, KILL), killed().op("write", 5.0, value="w2").op("write", 9.5, value="w3")
         .op("final_read", 30.0, value=["w1"]).build(), FAIL, measured(pytest.approx(4.9))),
    Case("a write lost within the target passes",
         RpoSeconds(1, KILL), killed().op("write", 9.5, value="w2").op("final_read", 30.0, value=["w1"]).build(),
         PASS, measured(pytest.approx(0.4))),
    Case("a write lost after the fault does not widen the RPO (lost_writes catches it)",
         RpoSeconds(1, KILL), killed().op("write", 12.0, value="w2").op("final_read", 30.0, value=["w1"]).build(),
         PASS, measured(0.0)),
    Case("an indeterminate write absent from the read is not lost",
         RpoSeconds(1, KILL), killed().op("write", 5.0, ok=None, value="w2").op("final_read", 30.0, value=["w1"])
         .build(), PASS, measured(0.0)),
    Case("no final read",
         RpoSeconds(1, KILL), killed().build(), UNKNOWN),
    Case("writes lost but no fault to measure from",
         RpoSeconds(1, KILL), H().op("write", 1.0, value="w1").op("final_read", 30.0, value=[]).build(), UNKNOWN),
]

CASES[LostWrites] = [
    Case("every acknowledged write read back (a refused and an indeterminate one absent)",
         LostWrites(), H().op("write", 1.0, value="w1").op("write", 2.0, ok=False, value="w2", status=503)
         .op("write", 3.0, ok=None, value="w3").op("final_read", 30.0, value=["w1"]).build(), PASS, measured(0)),
    Case("an acknowledged write missing after recovery",
         LostWrites(), H().op("write", 1.0, value="w1").op("write", 2.0, value="w2")
         .op("final_read", 30.0, value=["w1"]).build(), FAIL, says("w2")),
    Case("the allowance is a maximum",
         LostWrites(allowed=1), H().op("write", 1.0, value="w1").op("write", 2.0, value="w2")
         .op("final_read", 30.0, value=["w1"]).build(), PASS, measured(1)),
    Case("publishes are counted against what the platforms applied",
         LostWrites(writes="publish", read="final_applied"), H().op("publish", 1.0, value="k1")
         .op("publish", 2.0, value="k2").op("final_applied", 30.0, value=["k1"]).build(), FAIL, says("k2")),
    Case("no final read",
         LostWrites(), H().op("write", 1.0, value="w1").build(), UNKNOWN),
    Case("the final read failed",
         LostWrites(), H().op("write", 1.0, value="w1").op("final_read", 30.0, ok=False, error="timeout").build(),
         UNKNOWN),
]

CASES[DuplicatedWrites] = [
    Case("every key read back once",
         DuplicatedWrites(), H().op("write", 1.0, value="w1").op("write", 2.0, value="w2")
         .op("final_read", 30.0, value=["w1", "w2"]).build(), PASS, measured(0)),
    Case("a key read back twice",
         DuplicatedWrites(), H().op("write", 1.0, value="w1").op("write", 2.0, value="w2")
         .op("final_read", 30.0, value=["w1", "w2", "w1"]).build(), FAIL, says("w1")),
    Case("no final read",
         DuplicatedWrites(), H().op("write", 1.0, value="w1").build(), UNKNOWN),
]


def created(intent_id: int, key: str) -> dict:
    return row("IntentCreated", intent_id=intent_id, payload={"idempotency_key": key})


def audited(audit: list[dict]) -> H:
    """Two intents written, the first published (its intent id in the answer), the audit read."""
    return (H().op("write", 1.0, value="w1").op("write", 2.0, value="w2")
            .op("publish", 3.0, value="w1", detail={"intent_id": 1}).op("read_audit", 30.0, value=audit))


CASES[DuplicatedEvents] = [
    Case("every change recorded once",
         DuplicatedEvents(), audited([created(1, "w1"), created(2, "w2"), row("Published", intent_id=1)]).build(),
         PASS, measured(0)),
    Case("an intent created twice in the store",
         DuplicatedEvents(), audited([created(1, "w1"), created(2, "w2"), created(1, "w1"),
                                      row("Published", intent_id=1)]).build(), FAIL, says("write w1")),
    Case("a publish found through its key's intent recorded twice",
         DuplicatedEvents(), H().op("write", 1.0, value="w1").op("publish", 3.0, value="w1")
         .op("read_audit", 30.0, value=[created(1, "w1"), row("Published", intent_id=1),
                                         row("Published", intent_id=1)]).build(), FAIL, says("publish w1")),
    Case("the audit events were not read",
         DuplicatedEvents(), H().op("write", 1.0, value="w1").build(), UNKNOWN),
    Case("the audit read failed",
         DuplicatedEvents(), H().op("write", 1.0, value="w1").op("read_audit", 30.0, ok=False, error="503").build(),
         UNKNOWN),
]

CASES[DuplicatedApplies] = [
    Case("a throttled request retried until applied once",
         DuplicatedApplies(("intune", "jamf")),
         H().platform_request("intune", 1.0, key="k1", status=429).platform_request("intune", 2.0, key="k1", status=429)
         .platform_request("intune", 4.0, key="k1", status=200).platform_request("jamf", 1.0, key="k2", status=200)
         .build(), PASS, measured(0)),
    Case("one intent applied twice",
         DuplicatedApplies(("intune", "jamf")),
         H().platform_request("intune", 1.0, key="k1", status=200).platform_request("jamf", 1.0, key="k2", status=200)
         .platform_request("jamf", 5.0, key="k2", status=200, outcome="duplicate").build(), FAIL, says("jamf k2 x2")),
    Case("another scenario's intent is not judged",
         DuplicatedApplies(("intune",), keys={"k1"}),
         H().platform_request("intune", 1.0, key="k1", status=200).platform_request("intune", 2.0, key="k9", status=200)
         .platform_request("intune", 3.0, key="k9", status=200).build(), PASS),
    Case("no intent reached a platform",
         DuplicatedApplies(("intune",)), H().platform_request("jamf", 1.0, key="k2", status=200).build(), UNKNOWN),
    Case("none of the scenario's intents reached a platform",
         DuplicatedApplies(("intune",), keys={"k1"}), H().platform_request("intune", 1.0, key="k9", status=200).build(),
         UNKNOWN),
]

CASES[FailoverCompleted] = [
    Case("detected, promoted and reconnected in time; each phase its first event after the fault",
         FailoverCompleted(KILL, 60), killed().failover("detect", 11.0).failover("fence", 11.5, name="pg-a")
         .failover("promote", 12.0).failover("detect", 14.0).failover("reconnect", 13.0).build(), PASS,
         measured({"detect": 1.0, "fence": 1.5, "promote": 2.0, "reconnect": 3.0})),
    Case("a failover error and no reconnect",
         FailoverCompleted(KILL, 60), killed().failover("detect", 11.0)
         .failover("failover_error", 20.0, error="no replica in sync").build(), FAIL, says("no replica in sync")),
    Case("reconnected after the timeout",
         FailoverCompleted(KILL, 60), killed().failover("reconnect", 75.0).build(), FAIL),
    Case("a reconnect from before the fault does not count",
         FailoverCompleted(KILL, 60), H().failover("reconnect", 5.0).inject(KILL, 10.0).failover("detect", 11.0)
         .build(), FAIL),
    Case("no inject event",
         FailoverCompleted(KILL, 60), H().failover("reconnect", 5.0).build(), UNKNOWN),
]

CASES[WritesResumed] = [
    Case("a write acknowledged after the reconnect",
         WritesResumed(KILL), killed().failover("reconnect", 15.0).op("write", 16.0, ok=False, status=503)
         .op("write", 17.0, value="w2").build(), PASS, measured(pytest.approx(7.1))),
    Case("every write after the reconnect refused",
         WritesResumed(KILL), killed().failover("reconnect", 15.0).op("write", 16.0, ok=False, status=503)
         .op("write", 17.0, ok=None).build(), FAIL),
    Case("a write acknowledged before the reconnect does not count",
         WritesResumed(KILL), killed().op("write", 14.0, value="w2").failover("reconnect", 15.0)
         .op("write", 16.0, ok=False, status=503).build(), FAIL),
    Case("no reconnect after the fault",
         WritesResumed(KILL), killed().op("write", 16.0, value="w2").build(), UNKNOWN),
    Case("no write attempted after the reconnect",
         WritesResumed(KILL), killed().failover("reconnect", 15.0).build(), UNKNOWN),
    Case("no inject event",
         WritesResumed(KILL), H().failover("reconnect", 15.0).op("write", 16.0, value="w2").build(), UNKNOWN),
]


def approvals() -> H:
    """Approvals of intents 1 and 2 acknowledged, of intent 3 indeterminate; the primary killed at
    10, the clients reconnected at 15."""
    return (H().op("approve", 5.0, detail={"intent_id": 1}).op("approve", 8.0, detail={"intent_id": 2})
            .op("approve", 9.9, ok=None, detail={"intent_id": 3}).inject(KILL, 10.0).failover("reconnect", 15.0))


def approval_rows(*intent_ids: int) -> dict:
    return {"value": [row("ApprovalRecorded", intent_id=i) for i in intent_ids], "detail": {"type": "ApprovalRecorded"}}


CASES[ApprovalEventCount] = [
    Case("every acknowledged approval there, the indeterminate one absent",
         ApprovalEventCount(KILL), approvals().op("read_events", 20.0, **approval_rows(1, 2)).build(), PASS,
         measured_has(ApprovalEventCount=2, acknowledged=2, indeterminate=1)),
    Case("the indeterminate approval may be there",
         ApprovalEventCount(KILL), approvals().op("read_events", 20.0, **approval_rows(1, 2, 3)).build(), PASS),
    Case("an approval made after the read is not expected in it",
         ApprovalEventCount(KILL), approvals().op("read_events", 20.0, **approval_rows(1, 2))
         .op("approve", 25.0, detail={"intent_id": 4}).build(), PASS),
    Case("an approval still in flight when the read began may be absent",
         ApprovalEventCount(KILL), approvals().op("approve", 19.95, detail={"intent_id": 5}, done=20.05)
         .op("read_events", 20.0, **approval_rows(1, 2)).build(), PASS),
    Case("or present",
         ApprovalEventCount(KILL), approvals().op("approve", 19.95, detail={"intent_id": 5}, done=20.05)
         .op("read_events", 20.0, **approval_rows(1, 2, 5)).build(), PASS),
    Case("an acknowledged approval missing after the failover",
         ApprovalEventCount(KILL), approvals().op("read_events", 20.0, **approval_rows(1)).build(), FAIL,
         measured_has(missing=[2])),
    Case("an approval the primary refused appears after the failover",
         ApprovalEventCount(KILL), approvals().op("approve", 11.0, ok=False, status=503, detail={"intent_id": 4})
         .op("read_events", 20.0, **approval_rows(1, 2, 4)).build(), FAIL, measured_has(unexpected=[4])),
    Case("an approval recorded twice",
         ApprovalEventCount(KILL), approvals().op("read_events", 20.0, **approval_rows(1, 2, 1)).build(), FAIL,
         measured_has(duplicated=[1])),
    Case("the events were read only before the reconnect",
         ApprovalEventCount(KILL), approvals().op("read_events", 12.0, **approval_rows(1, 2)).build(), UNKNOWN),
    Case("the read of the promoted node failed",
         ApprovalEventCount(KILL), approvals().op("read_events", 20.0, ok=False, detail={"type": "ApprovalRecorded"})
         .build(), UNKNOWN),
    Case("no reconnect after the fault",
         ApprovalEventCount(KILL), H().op("approve", 5.0, detail={"intent_id": 1}).inject(KILL, 10.0)
         .op("read_events", 20.0, **approval_rows(1)).build(), UNKNOWN),
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
    Case("refused while lagging, made once caught up: the harness's lag at take-effect judged",
         TransactionLagBeforeFailback(5.0),
         role(lag(lag(failback(role(lag(failback(lag(H(), 40.0, 6.2), 40.5, **REFUSED), 45.0, 3.0), 46.0, True),
                               47.0, value=0.4), 47.2, 1.0), 47.4, 0.5), 48.0, False).build(),
         PASS, measured(0.5)),
    Case("the action waited (answered once it switched) and the harness saw it switch caught up",
         TransactionLagBeforeFailback(5.0),
         role(lag(role(lag(failback(lag(H(), 40.0, 6.2), 40.5, value=0.1, done=49.5), 44.0, 3.0), 45.0, True),
                  48.5, 0.8), 49.0, False).build(), PASS, measured(0.8)),
    Case("a lag exactly at the limit at take-effect passes",
         TransactionLagBeforeFailback(5.0),
         role(failback(lag(failback(lag(H(), 40.0, 6.2), 40.5, **REFUSED), 45.0, 5.0), 46.0, value=5.0),
              47.0, False).build(), PASS),
    Case("a failback that ignored the lag: it took effect while the harness measured 6.3 s",
         TransactionLagBeforeFailback(5.0),
         role(lag(failback(lag(H(), 40.0, 6.2), 40.5, value=6.2), 40.6, 6.3), 41.5, False).build(),
         FAIL, says("6.30 s")),
    Case("the action's own lag figure is not evidence: it said 2 s, the harness measured 7 s",
         TransactionLagBeforeFailback(5.0),
         role(failback(lag(H(), 40.0, 7.0), 40.5, value=2.0), 41.5, False).build(), FAIL, measured(7.0)),
    Case("refused again and again: the node never took the primary role",
         TransactionLagBeforeFailback(5.0),
         role(failback(lag(failback(lag(H(), 40.0, 6.2), 40.5, **REFUSED), 45.0, 1.0), 46.0, ok=False, value=1.0,
                       error="failback refused"), 47.0, True).build(), UNKNOWN, says("never took the primary role")),
    Case("the refusal was not exercised: lag never over the limit when requested",
         TransactionLagBeforeFailback(5.0),
         role(failback(lag(H(), 40.0, 1.0), 40.5, value=1.0), 41.5, False).build(), UNKNOWN, says("not exercised")),
    Case("no harness lag sample shortly before the failback took effect",
         TransactionLagBeforeFailback(5.0, fresh_s=10.0),
         role(failback(lag(failback(lag(H(), 40.0, 6.2), 40.5, **REFUSED), 45.0, 1.0), 60.0, value=1.0),
              61.0, False).build(), UNKNOWN, says("no harness lag sample")),
    Case("lag samples of another node do not count",
         TransactionLagBeforeFailback(5.0),
         role(failback(lag(lag(H(), 39.0, 6.2), 40.0, 0.1, node="pg-c"), 40.5, value=0.1), 41.5, False).build(),
         FAIL, measured(6.2)),
    Case("no failback requested",
         TransactionLagBeforeFailback(5.0), lag(H(), 45.0, 2.0).build(), UNKNOWN),
    Case("requested, then never read by the harness",
         TransactionLagBeforeFailback(5.0), failback(lag(H(), 40.0, 6.2), 40.5, ok=None, error="timed out").build(),
         UNKNOWN),
]

CASES[WritesAfterFailback] = [
    Case("a write acknowledged after the failback",
         WritesAfterFailback(), H().op("failback", 50.0, value=1.0).op("write", 51.0, value="w1").build(), PASS),
    Case("every write after the failback refused",
         WritesAfterFailback(), H().op("failback", 50.0, value=1.0).op("write", 51.0, ok=False, status=503)
         .op("write", 52.0, ok=False, status=503).build(), FAIL, measured("0 of 2")),
    Case("a write invoked before the failback completed does not count",
         WritesAfterFailback(), H().op("failback", 50.0, value=1.0).op("write", 50.05, value="w1")
         .op("write", 51.0, ok=False, status=503).build(), FAIL),
    Case("no failback made (refused)",
         WritesAfterFailback(), H().op("failback", 50.0, ok=False, value=7.0).op("write", 51.0, value="w1").build(),
         UNKNOWN),
    Case("no write attempted after the failback",
         WritesAfterFailback(), H().op("write", 40.0, value="w1").op("failback", 50.0, value=1.0).build(), UNKNOWN),
]

CASES[PublishApprovalBlocked] = [
    Case("approval and publish refused with 503 naming the database",
         PublishApprovalBlocked(KILL), killed().op("approve", 11.0, ok=False, status=503, detail=DB_DOWN)
         .op("publish", 12.0, ok=False, status=503, detail=DB_DOWN).failover("reconnect", 20.0).build(), PASS),
    Case("a publish accepted while the primary is down",
         PublishApprovalBlocked(KILL), killed().op("approve", 11.0, ok=False, status=503, detail=DB_DOWN)
         .op("publish", 12.0, status=200).failover("reconnect", 20.0).build(), FAIL, says("publish 200")),
    Case("a refusal naming another cause",
         PublishApprovalBlocked(KILL), killed().op("approve", 11.0, ok=False, status=503, detail=DB_DOWN)
         .op("publish", 12.0, ok=False, status=503, detail={"cause": "evidence_store"})
         .failover("reconnect", 20.0).build(), FAIL),
    Case("a refusal with another status",
         PublishApprovalBlocked(KILL), killed().op("approve", 11.0, ok=False, status=500, detail=DB_DOWN)
         .op("publish", 12.0, ok=False, status=503, detail=DB_DOWN).failover("reconnect", 20.0).build(), FAIL),
    Case("the primary is down until the clients reconnect, whatever the heal",
         PublishApprovalBlocked(KILL), killed().op("approve", 11.0, ok=False, status=503, detail=DB_DOWN)
         .heal(KILL, 12.5).op("publish", 17.0, status=200).failover("reconnect", 20.0).build(), FAIL),
    Case("a late refusal counts, but a publish made after the failover is not judged: no publish in the outage",
         PublishApprovalBlocked(KILL), killed().op("approve", 11.0, ok=False, status=503, detail=DB_DOWN, done=13.5)
         .op("publish", 13.6, ok=False, status=503, detail=DB_DOWN, done=14.0).failover("reconnect", 12.0).build(),
         UNKNOWN),
    Case("an approval and a publish made during the outage, both refused after a fast failover",
         PublishApprovalBlocked(KILL), killed().op("approve", 11.0, ok=False, status=503, detail=DB_DOWN, done=13.5)
         .op("publish", 11.2, ok=False, status=503, detail=DB_DOWN, done=13.6).failover("reconnect", 12.0).build(),
         PASS),
    Case("a publish made during the outage and answered 500 after the failover finished says nothing",
         PublishApprovalBlocked(KILL), killed().op("approve", 11.0, ok=False, status=503, detail=DB_DOWN, done=13.5)
         .op("publish", 11.2, ok=False, status=500, done=13.6).failover("reconnect", 12.0).build(),
         UNKNOWN),
    Case("a publish answered 500 while the primary was down fails",
         PublishApprovalBlocked(KILL), killed().op("approve", 11.0, ok=False, status=503, detail=DB_DOWN, done=11.5)
         .op("publish", 11.2, ok=False, status=500, done=11.6).failover("reconnect", 12.0).build(),
         FAIL, says("publish 500")),
    Case("a publish straddling the reconnect is not judged",
         PublishApprovalBlocked(KILL), killed().op("approve", 11.0, ok=False, status=503, detail=DB_DOWN)
         .op("publish", 12.0, ok=False, status=503, detail=DB_DOWN).op("publish", 19.9, status=200, done=20.5)
         .failover("reconnect", 20.0).build(), PASS),
    Case("a publish after a write was acknowledged again, once the promotion was observed, is not judged",
         PublishApprovalBlocked(KILL), killed().op("approve", 11.0, ok=False, status=503, detail=DB_DOWN)
         .op("publish", 12.0, ok=False, status=503, detail=DB_DOWN).failover("promote", 14.5)
         .op("write", 15.0, value="k9", status=201).op("publish", 16.0, status=200).failover("reconnect", 20.0)
         .build(), PASS),
    Case("a write the dying primary still took, before it was seen down, does not end the outage",
         PublishApprovalBlocked(KILL), killed().op("write", 10.1, value="k8", status=201).failover("detect", 10.5)
         .op("approve", 11.0, ok=False, status=503, detail=DB_DOWN)
         .op("publish", 12.0, ok=False, status=503, detail=DB_DOWN).failover("reconnect", 20.0).build(), PASS),
    Case("an approval the dying primary took in before it was seen down, unconfirmed (504), says nothing",
         PublishApprovalBlocked(KILL), killed().op("approve", 10.1, ok=None, status=504, detail=DB_DOWN)
         .failover("detect", 10.5).op("approve", 11.0, ok=False, status=503, detail=DB_DOWN)
         .op("publish", 12.0, ok=False, status=503, detail=DB_DOWN).failover("reconnect", 20.0).build(), PASS),
    Case("an approval left unconfirmed (504) after the primary was seen down fails",
         PublishApprovalBlocked(KILL), killed().failover("detect", 10.5)
         .op("approve", 11.0, ok=None, status=504, detail=DB_DOWN)
         .op("publish", 12.0, ok=False, status=503, detail=DB_DOWN).failover("reconnect", 20.0).build(),
         FAIL, says("approve 504")),
    # issue 24: an acknowledgement between the kill in effect and the promotion no longer ends the outage: it fails
    Case("after the primary was seen down, an acknowledged write and approval fail, named",
         PublishApprovalBlocked(KILL), killed().failover("detect", 10.5).op("write", 10.8, value="k8", status=201)
         .op("approve", 11.0, status=200).op("publish", 12.0, status=200).failover("reconnect", 20.0).build(),
         FAIL, says("write 201 acknowledged at +0.90 s, before the promotion (k8)")),
    Case("an approval accepted once the target was promoted ends the outage for the gate",
         PublishApprovalBlocked(KILL), killed().op("approve", 11.0, ok=False, status=503, detail=DB_DOWN)
         .op("publish", 12.0, ok=False, status=503, detail=DB_DOWN).failover("promote", 14.0)
         .op("approve", 15.0, status=200).failover("reconnect", 20.0).build(), PASS),
    Case("an approval accepted after an outside observer's last poll that saw a replica is not judged",
         PublishApprovalBlocked(KILL), killed().op("approve", 11.0, ok=False, status=503, detail=DB_DOWN)
         .op("publish", 12.0, ok=False, status=503, detail=DB_DOWN).op("approve", 13.5, status=200)
         .failover("promote", 14.0, not_before_s=1.0).failover("reconnect", 20.0).build(), PASS),
    Case("an approval accepted before the outside observer's last poll that saw a replica fails",
         PublishApprovalBlocked(KILL), killed().op("approve", 11.0, ok=False, status=503, detail=DB_DOWN)
         .op("publish", 12.0, ok=False, status=503, detail=DB_DOWN).op("approve", 12.5, status=200)
         .failover("promote", 14.0, not_before_s=1.0).failover("reconnect", 20.0).build(), FAIL,
         says("approve 200")),
    Case("an approval the primary took before the kill was in place says nothing",
         PublishApprovalBlocked(KILL), killed().op("approve", 10.01, status=200, done=10.03)
         .event("in_place", KILL, 10.05).failover("detect", 10.2)
         .op("approve", 11.0, ok=False, status=503, detail=DB_DOWN)
         .op("publish", 12.0, ok=False, status=503, detail=DB_DOWN).failover("reconnect", 20.0).build(), PASS),
    Case("an approval accepted once the kill was in place, before it was seen, fails",
         PublishApprovalBlocked(KILL), killed().event("in_place", KILL, 10.05).op("approve", 10.1, status=200)
         .failover("detect", 10.3).op("publish", 12.0, ok=False, status=503, detail=DB_DOWN)
         .failover("reconnect", 20.0).build(), FAIL, says("approve 200")),
    Case("an approval that waited for the database and was answered once the target was promoted says nothing",
         PublishApprovalBlocked(KILL), killed().op("approve", 11.0, ok=False, status=503, detail=DB_DOWN)
         .op("publish", 11.5, ok=False, status=503, detail=DB_DOWN).op("approve", 12.0, status=200, done=14.2)
         .failover("promote", 14.0).failover("reconnect", 20.0).build(), PASS),
    Case("an approval that waited but was answered before any promotion fails",
         PublishApprovalBlocked(KILL), killed().op("approve", 11.0, ok=False, status=503, detail=DB_DOWN)
         .op("publish", 11.5, ok=False, status=503, detail=DB_DOWN).op("approve", 12.0, status=200, done=13.9)
         .failover("promote", 14.0).failover("reconnect", 20.0).build(), FAIL, says("approve 200")),
    Case("an approval accepted before any promotion fails",
         PublishApprovalBlocked(KILL), killed().op("approve", 11.0, status=200)
         .op("publish", 12.0, ok=False, status=503, detail=DB_DOWN).failover("promote", 14.0)
         .failover("reconnect", 20.0).build(), FAIL),
    Case("a write refused during the outage does not end it",
         PublishApprovalBlocked(KILL), killed().op("approve", 11.0, ok=False, status=503, detail=DB_DOWN)
         .op("write", 11.5, ok=False, status=503).op("publish", 16.0, status=200).failover("reconnect", 20.0)
         .build(), FAIL),
    Case("no publish attempted while the primary was down",
         PublishApprovalBlocked(KILL), killed().op("approve", 11.0, ok=False, status=503, detail=DB_DOWN)
         .failover("reconnect", 20.0).op("publish", 21.0, status=200).build(), UNKNOWN, says("publish")),
    Case("attempts made only after the failover finished",
         PublishApprovalBlocked(KILL), killed().failover("reconnect", 20.0).op("approve", 21.0, status=200)
         .op("publish", 22.0, status=200).build(), UNKNOWN, says("ended first")),
    Case("no inject event",
         PublishApprovalBlocked(KILL), H().op("publish", 12.0, status=200).build(), UNKNOWN),
    Case("a write acknowledged once the kill was in place, before the promotion, fails though both were refused",
         PublishApprovalBlocked(KILL), killed().event("in_place", KILL, 10.05)
         .op("approve", 11.0, ok=False, status=503, detail=DB_DOWN).op("write", 11.5, value="k9", status=201)
         .op("publish", 12.0, ok=False, status=503, detail=DB_DOWN).failover("promote", 14.0)
         .failover("reconnect", 20.0).build(), FAIL, measured_has(acknowledged=["write k9"], not_placed=0)),
    Case("an evidence upload acknowledged while the primary was down fails",
         PublishApprovalBlocked(KILL), killed().op("approve", 11.0, ok=False, status=503, detail=DB_DOWN)
         .op("evidence", 11.5, value="k9", status=201, detail={"intent_id": 3})
         .op("publish", 12.0, ok=False, status=503, detail=DB_DOWN).failover("promote", 14.0).build(),
         FAIL, says("evidence 201")),
    Case("operations the history cannot place are left out, and counted",
         PublishApprovalBlocked(KILL), killed().op("write", 9.95, value="k7", status=201, done=10.2)  # across the kill
         .event("in_place", KILL, 10.05).op("approve", 11.0, ok=False, status=503, detail=DB_DOWN)
         .op("publish", 12.0, ok=False, status=503, detail=DB_DOWN)
         .op("write", 13.8, value="k9", status=201, done=14.3)                                       # across the promote
         .failover("promote", 14.0).failover("reconnect", 20.0).build(), PASS,
         measured_has(not_placed=2, acknowledged=[])),
]


# =============================================================================================
# api (matrix row 1)
# =============================================================================================

ALL = "kill-api:all"
API_DOWN = {"error": "Service Unavailable", "cause": "api"}


def tier_killed() -> H:
    return H().op("health", 5.0, detail={"ServiceHealth": "Healthy"}).inject(ALL, 10.0)


def health(h: H, t: float, said: str) -> H:
    return h.op("health", t, status=200 if said == "Healthy" else 503, detail={"ServiceHealth": said})


CASES[IntentsAndApprovalsBlocked] = [
    Case("a new intent and an approval refused with an error and a cause",
         IntentsAndApprovalsBlocked(ALL), tier_killed().op("create_intent", 11.0, ok=False, status=503, detail=API_DOWN)
         .op("approve", 12.0, ok=False, status=503, detail=API_DOWN).heal(ALL, 20.0).build(), PASS),
    Case("a new intent accepted while the tier is down",
         IntentsAndApprovalsBlocked(ALL), tier_killed().op("create_intent", 11.0, status=201)
         .op("approve", 12.0, ok=False, status=503, detail=API_DOWN).heal(ALL, 20.0).build(), FAIL),
    Case("a refusal without a cause is not a clear error",
         IntentsAndApprovalsBlocked(ALL), tier_killed()
         .op("create_intent", 11.0, ok=False, status=503, detail={"error": "Service Unavailable"})
         .op("approve", 12.0, ok=False, status=503, detail=API_DOWN).heal(ALL, 20.0).build(), FAIL,
         says("without an error and a cause")),
    Case("the outage ends when the first instance comes back",
         IntentsAndApprovalsBlocked(ALL), tier_killed().op("create_intent", 11.0, ok=False, status=503, detail=API_DOWN)
         .op("approve", 12.0, ok=False, status=503, detail=API_DOWN).heal("kill-api:b", 15.0)
         .op("approve", 16.0, status=200).heal(ALL, 20.0).build(), PASS),
    Case("an approval served while the kills were still landing, before the harness saw the tier dead",
         IntentsAndApprovalsBlocked(ALL), tier_killed().op("approve", 10.1, status=200).event("checkpoint", f"{ALL}:down", 10.4)
         .op("create_intent", 11.0, ok=False, status=503, detail=API_DOWN)
         .op("approve", 12.0, ok=False, status=503, detail=API_DOWN).heal(ALL, 20.0).build(), PASS),
    Case("an approval served after the harness saw every instance dead",
         IntentsAndApprovalsBlocked(ALL), tier_killed().event("checkpoint", f"{ALL}:down", 10.4)
         .op("create_intent", 11.0, ok=False, status=503, detail=API_DOWN)
         .op("approve", 12.0, status=200).heal(ALL, 20.0).build(), FAIL),
    Case("no approval attempted while every instance was down",
         IntentsAndApprovalsBlocked(ALL), tier_killed().op("create_intent", 11.0, ok=False, status=503, detail=API_DOWN)
         .heal(ALL, 20.0).op("approve", 21.0, status=200).build(), UNKNOWN),
    Case("no inject event",
         IntentsAndApprovalsBlocked(ALL), H().op("create_intent", 11.0, ok=False, status=503, detail=API_DOWN).build(),
         UNKNOWN),
]

CASES[PublishRefusedWhileUnhealthy] = [
    Case("a publish between two Unhealthy answers refused",
         PublishRefusedWhileUnhealthy(ALL), health(health(tier_killed(), 11.0, "Unhealthy")
                                                   .op("publish", 12.0, ok=False, status=503), 13.0, "Unhealthy")
         .build(), PASS, measured_has(attempted_while_unhealthy=1, accepted=0)),
    Case("a publish accepted between two Unhealthy answers",
         PublishRefusedWhileUnhealthy(ALL), health(health(tier_killed(), 11.0, "Unhealthy")
                                                   .op("publish", 12.0, status=200), 13.0, "Unhealthy").build(),
         FAIL, measured_has(accepted=1)),
    Case("a publish between an Unhealthy and a Healthy answer is not judged",
         PublishRefusedWhileUnhealthy(ALL), health(health(tier_killed(), 11.0, "Unhealthy")
                                                   .op("publish", 12.0, status=200), 13.0, "Healthy").build(), UNKNOWN),
    Case("a health answer overlapping the publish does not bracket it",
         PublishRefusedWhileUnhealthy(ALL), health(tier_killed(), 11.0, "Unhealthy").op("publish", 12.0, status=200)
         .op("health", 12.05, status=503, detail={"ServiceHealth": "Unhealthy"}).build(), UNKNOWN),
    Case("no inject event",
         PublishRefusedWhileUnhealthy(ALL), health(health(H(), 11.0, "Unhealthy").op("publish", 12.0, status=200),
                                                   13.0, "Unhealthy").build(), UNKNOWN),
]

CASES[PublishAcceptedWhenHealthy] = [
    Case("the first publish after a Healthy answer accepted",
         PublishAcceptedWhenHealthy(ALL), health(tier_killed().heal(ALL, 20.0), 21.0, "Healthy")
         .op("publish", 22.0, status=200).build(), PASS, measured_has(after_redeploy_s=2.0)),
    Case("the first publish after a Healthy answer refused",
         PublishAcceptedWhenHealthy(ALL), health(tier_killed().heal(ALL, 20.0), 21.0, "Healthy")
         .op("publish", 22.0, ok=False, status=503).op("publish", 23.0, status=200).build(), FAIL),
    Case("a publish before the first Healthy answer is not judged",
         PublishAcceptedWhenHealthy(ALL), health(health(tier_killed().heal(ALL, 20.0), 20.5, "Unhealthy")
                                                 .op("publish", 21.0, ok=False, status=503), 22.0, "Healthy")
         .op("publish", 23.0, status=200).build(), PASS),
    Case("the fault was never healed",
         PublishAcceptedWhenHealthy(ALL), health(tier_killed(), 21.0, "Healthy").op("publish", 22.0, status=200)
         .build(), UNKNOWN),
    Case("no publish after a Healthy answer",
         PublishAcceptedWhenHealthy(ALL), health(tier_killed().heal(ALL, 20.0), 21.0, "Unhealthy")
         .op("publish", 22.0, ok=False, status=503).build(), UNKNOWN),
]

CASES[ConnectorsServeQueuedWork] = [
    Case("queued intents applied once while the tier is down",
         ConnectorsServeQueuedWork(ALL, "intune", ["k1", "k2"]),
         tier_killed().platform_request("intune", 12.0, key="k1", status=200)
         .platform_request("intune", 12.0, key="k2", status=429).platform_request("intune", 14.0, key="k2", status=200)
         .heal(ALL, 20.0).build(), PASS, measured({"queued": 2, "applied_once_while_down": 2})),
    Case("an intent applied only after the tier came back",
         ConnectorsServeQueuedWork(ALL, "intune", ["k1", "k2"]),
         tier_killed().platform_request("intune", 12.0, key="k1", status=200).heal(ALL, 20.0)
         .platform_request("intune", 25.0, key="k2", status=200).build(), FAIL),
    Case("an intent applied twice while the tier is down",
         ConnectorsServeQueuedWork(ALL, "intune", ["k1"]),
         tier_killed().platform_request("intune", 12.0, key="k1", status=200)
         .platform_request("intune", 13.0, key="k1", status=200).heal(ALL, 20.0).build(), FAIL),
    Case("no intent was queued before the outage",
         ConnectorsServeQueuedWork(ALL, "intune", []), tier_killed().heal(ALL, 20.0).build(), UNKNOWN),
    Case("no inject event",
         ConnectorsServeQueuedWork(ALL, "intune", ["k1"]), H().platform_request("intune", 12.0, key="k1", status=200)
         .build(), UNKNOWN),
]


# =============================================================================================
# availability
# =============================================================================================

def probes(h: H, start: float, stop: float, down: tuple[float, float] | None = None, kind: str = "probe") -> H:
    """A probe every 0.1 s in [start, stop); those invoked in [down) fail (503)."""
    for i in range(round((stop - start) * 10)):
        t = round(start + i / 10, 3)
        failing = down is not None and down[0] <= t < down[1]
        h.op(kind, t, ok=not failing, status=503 if failing else 200, done=round(t + 0.05, 3),
             error="503 Service Unavailable" if failing else "")
    return h


def requests(h: H, start: float, stop: float, *, kind: str = "write", failing: tuple[float, ...] = (),
             status: int | None = 503, detail: dict | None = None, every: float = 0.1) -> H:
    """A request of `kind` every `every` s in [start, stop) (0.1 s: 1000 in 100 s); those invoked at
    the times in `failing` are not served: answered `status` (503 naming its cause; None: no answer)."""
    fails = {round(t, 3) for t in failing}
    for i in range(round((stop - start) / every)):
        t = round(start + i * every, 3)
        if t in fails:
            h.op(kind, t, ok=False if status else None, status=status,
                 detail={"cause": "database"} if status == 503 else {"gate": "EvidencePackState"} if status else {},
                 error=f"{status} database unavailable" if status else "ReadTimeout: no answer within 5 s")
        else:
            h.op(kind, t, status=200, detail=detail)
    return h


def health_probes(h: H, start: float, stop: float, status: int = 200, said: str = "Healthy",
                  at: tuple[float, ...] | None = None) -> H:
    """Probes (GET /health) every 0.1 s in [start, stop); those at the times `at` (all when None)
    answered `status` with a health report saying ServiceHealth = `said`, the others 200 Healthy."""
    marked = None if at is None else {round(t, 3) for t in at}
    for i in range(round((stop - start) * 10)):
        t = round(start + i / 10, 3)
        code, body = (status, said) if marked is None or t in marked else (200, "Healthy")
        h.op("probe", t, ok=code == 200 and body == "Healthy", status=code,
             detail={"ServiceHealth": body, "components": {"database": "up" if body == "Healthy" else "down"}},
             error="" if code == 200 and body == "Healthy" else f"{code} ServiceHealth = {body}")
    return h


ONE_BAD = 11.5741          # 1 bad window of the 8.64 a month allows at 99.9% (8,640 windows)


CASES[AvailabilityBudget] = [
    Case("every request served: no bad window, 0% of the budget used",
         AvailabilityBudget(), requests(H(), 0.0, 100.0).build(), PASS, measured(0.0)),
    Case("2 of 1000 requests not served (99.8%): one bad 5-minute window uses 1/8.64 = 11.6% of the month's "
         "error budget, within the 25% allowance",
         AvailabilityBudget(), requests(H(), 0.0, 100.0, failing=(50.0, 50.1)).build(), PASS,
         measured(ONE_BAD)),
    Case("1 of 1000 not served is exactly 99.9%: a good window",
         AvailabilityBudget(), requests(H(), 0.0, 100.0, failing=(50.0,)).build(), PASS, measured(0.0)),
    Case("three bad windows use 34.7% of the month's budget: over the 25% allowance",
         AvailabilityBudget(), requests(H(), 0.0, 900.0, failing=(10.0, 10.1, 10.2, 10.3, 310.0, 310.1, 310.2,
                                                                 310.3, 610.0, 610.1, 610.2, 610.3)).build(),
         FAIL, measured(34.7222)),
    Case("a 7-day period allows 2.016 bad windows: one uses 49.6%, over the 25% allowance",
         AvailabilityBudget(period_days=7), requests(H(), 0.0, 100.0, failing=(50.0, 50.1)).build(), FAIL,
         measured(49.6032)),
    Case("a tighter target (99.99%): 1 of 1000 not served is a bad window of a 0.864-window budget",
         AvailabilityBudget(target=0.9999), requests(H(), 0.0, 100.0, failing=(50.0,)).build(), FAIL,
         measured(115.7407)),
    Case("windows are clock-aligned: 2 failures either side of 10:05:00 leave both windows at 99.9%",
         AvailabilityBudget(), requests(H(), 200.0, 400.0, failing=(299.9, 300.0)).build(), PASS, measured(0.0)),
    Case("the same 2 failures inside one window make it bad",
         AvailabilityBudget(), requests(H(), 200.0, 400.0, failing=(250.0, 250.1)).build(), PASS, measured(ONE_BAD)),
    Case("a window with no request is not counted bad",
         AvailabilityBudget(), requests(requests(H(), 0.0, 100.0), 900.0, 1000.0).build(), PASS,
         says("0 bad of 2 5-minute windows")),
    Case("a window observed in part counts with the requests it had: 1 of 50 not served is bad",
         AvailabilityBudget(), requests(H(), 280.0, 285.0, failing=(282.0,)).build(), PASS, measured(ONE_BAD)),
    Case("a probe answered 200 with ServiceHealth = Unhealthy was served: the health body does not count",
         AvailabilityBudget(allowance=0.0), health_probes(H(), 0.0, 100.0, said="Unhealthy").build(), PASS,
         measured(0.0)),
    Case("a probe answered 503 whose body says Healthy was not served",
         AvailabilityBudget(allowance=0.0), health_probes(H(), 0.0, 100.0, status=503, at=(50.0, 50.1)).build(),
         FAIL, measured(ONE_BAD)),
    Case("a write with no answer (a timeout) was not served",
         AvailabilityBudget(allowance=0.1), requests(H(), 0.0, 100.0, failing=(50.0, 50.1), status=None).build(),
         FAIL, measured(ONE_BAD)),
    Case("a refusal on the request's merits (409 naming its gate) was served",
         AvailabilityBudget(allowance=0.0), requests(H(), 0.0, 100.0, kind="approve", failing=(50.0, 50.1, 50.2),
                                                     status=409, detail={}).build(), PASS, measured(0.0)),
    Case("the harness's reads of lab internals are not requests to the system",
         AvailabilityBudget(allowance=0.0),
         requests(requests(H(), 0.0, 100.0), 0.0, 10.0, kind="queue_depth", failing=tuple(i / 10 for i in range(100)),
                  status=None).build(), PASS, measured(0.0)),
    Case("no request to the system: availability not observed",
         AvailabilityBudget(), requests(H(), 0.0, 10.0, kind="store_read").build(), UNKNOWN),
    Case("an empty history", AvailabilityBudget(), H().build(), UNKNOWN),
]

CASES[NoFailedRequestsBeyondProbeWindow] = [
    Case("failures only within the probe window",
         NoFailedRequestsBeyondProbeWindow("kill-api:a", 2.0),
         probes(H().inject("kill-api:a", 10.0), 10.0, 14.0, down=(10.0, 10.5)).build(), PASS,
         measured_has(failed_after_window=0, failed_within_window=5)),
    Case("a write failing after the probe window",
         NoFailedRequestsBeyondProbeWindow("kill-api:a", 2.0),
         probes(H().inject("kill-api:a", 10.0), 10.0, 14.0, down=(10.0, 10.5))
         .op("write", 13.0, ok=False, status=502, error="502 Bad Gateway").build(), FAIL,
         measured_has(failed_after_window=1)),
    Case("failures after the next fault belong to it",
         NoFailedRequestsBeyondProbeWindow("kill-api:a", 2.0),
         probes(H().inject("kill-api:a", 10.0).inject("kill-api:b", 20.0), 10.0, 22.0, down=(20.0, 21.0)).build(),
         PASS),
    Case("too few requests after the probe window to judge",
         NoFailedRequestsBeyondProbeWindow("kill-api:a", 2.0),
         probes(H().inject("kill-api:a", 10.0), 10.0, 12.5).build(), UNKNOWN),
    Case("no inject event",
         NoFailedRequestsBeyondProbeWindow("kill-api:a", 2.0), probes(H(), 10.0, 14.0).build(), UNKNOWN),
]


# =============================================================================================
# connectors (matrix rows 4-6)
# =============================================================================================

def platforms(**paused: list[str]) -> dict:
    """The Control Plane's view of its platforms; the named ones paused for these reasons."""
    return {p: {"platform": p, "health": "Healthy", "PromotionsPaused": bool(paused.get(p)),
                "pause_reasons": paused.get(p, [])} for p in ("intune", "jamf", "sccm", "landscape", "ansible")}


def stored(type_: str, platform: str, t: float, **payload: Any) -> dict:
    """An event row about a platform, appended at history time t."""
    return row(type_, payload={"platform": platform, **payload}, t=t)


def read_events(h: H, t: float, type_: str, *rows: dict, ok: bool = True) -> H:
    return h.op("read_events", t, ok=ok, value=list(rows) if ok else None, detail={"type": type_})


def promote(h: H, t: float, platform: str, *, ok: bool = True, gate: str | None = None, key: str = "k1",
            to_ring: str = "ring2") -> H:
    detail = {"platform": platform, "to_ring": to_ring, "intent_id": 1}
    if gate:
        detail["gate"] = gate
    return h.op("promote", t, ok=ok, value=key, status=200 if ok else 503, detail=detail)


def attempts(h: H, platform: str, key: str, *times: float, status: int = 503) -> H:
    for t in times:
        h.platform_request(platform, t, key=key, status=status)
    return h


def throttled(h: H, platform: str, *times: float) -> H:
    return attempts(h, platform, "k1", *times, status=429)


CASES[ConnectorsHealthy] = [
    Case("every platform Healthy before the fault",
         ConnectorsHealthy(), H().op("platforms_view", 1.0, value=platforms()).inject("throttle:intune", 10.0).build(),
         PASS),
    Case("a platform with its promotions paused",
         ConnectorsHealthy(), H().op("platforms_view", 1.0, value=platforms(jamf=["health"]))
         .inject("throttle:intune", 10.0).build(), FAIL, measured({"jamf": ["health"]})),
    Case("a view after the first fault is not the precondition",
         ConnectorsHealthy(), H().op("platforms_view", 1.0, value=platforms()).inject("throttle:intune", 10.0)
         .op("platforms_view", 12.0, value=platforms(intune=["health"])).build(), PASS),
    Case("a platform not Healthy fails, even with its promotions running",
         ConnectorsHealthy(), H().op("platforms_view", 1.0, value={**platforms(), "sccm": {
             "platform": "sccm", "health": "Unhealthy", "PromotionsPaused": False, "pause_reasons": []}})
         .inject("down:sccm", 10.0).build(), FAIL, None),
    Case("the platforms were checked only after the first fault",
         ConnectorsHealthy(), H().inject("throttle:intune", 10.0).op("platforms_view", 12.0, value=platforms()).build(),
         UNKNOWN),
    Case("a platform missing from the view fails",
         ConnectorsHealthy(), H().op("platforms_view", 1.0, value={p: v for p, v in platforms().items() if p != "jamf"})
         .inject("throttle:intune", 10.0).build(), FAIL, measured({"jamf": "not reported"})),
    Case("the platforms could not be read",
         ConnectorsHealthy(), H().op("platforms_view", 1.0, ok=False, status=503, error="503")
         .inject("throttle:intune", 10.0).build(), UNKNOWN),
]

CASES[PublishAccepted] = [
    Case("every intent published accepted",
         PublishAccepted(["k1", "k2"]), H().op("publish", 1.0, value="k1", status=202)
         .op("publish", 1.0, value="k2", status=202).build(), PASS),
    Case("a publish refused",
         PublishAccepted(["k1", "k2"]), H().op("publish", 1.0, value="k1", status=202)
         .op("publish", 1.0, ok=False, value="k2", status=503).build(), FAIL, says("k2: 503")),
    Case("another scenario's publish is not judged",
         PublishAccepted(["k1"]), H().op("publish", 1.0, value="k1", status=202)
         .op("publish", 1.0, ok=False, value="k9", status=503).build(), PASS),
    Case("nothing was published",
         PublishAccepted(["k1"]), H().op("publish", 1.0, value="k9", status=202).build(), UNKNOWN),
]

OTHERS = {"jamf": ["j1"], "sccm": ["s1"]}

CASES[OtherPlatformsContinue] = [
    Case("the other platforms applied theirs once by the checkpoint",
         OtherPlatformsContinue("intune", OTHERS, "assignments:intune"),
         attempts(H().inject("throttle:intune", 10.0), "jamf", "j1", 12.0, status=200)
         .platform_request("sccm", 12.0, key="s1", status=429).platform_request("sccm", 13.0, key="s1", status=200)
         .checkpoint("assignments:intune", 20.0).build(), PASS, measured({"jamf": [1], "sccm": [1]})),
    Case("an intent of another platform applied twice",
         OtherPlatformsContinue("intune", OTHERS, "assignments:intune"),
         attempts(H().inject("throttle:intune", 10.0), "jamf", "j1", 12.0, 14.0, status=200)
         .platform_request("sccm", 13.0, key="s1", status=200).checkpoint("assignments:intune", 20.0).build(), FAIL),
    Case("an apply after the harness looked does not count",
         OtherPlatformsContinue("intune", OTHERS, "assignments:intune"),
         attempts(H().inject("throttle:intune", 10.0), "jamf", "j1", 12.0, status=200)
         .checkpoint("assignments:intune", 20.0).platform_request("sccm", 25.0, key="s1", status=200).build(), FAIL,
         measured({"jamf": [1], "sccm": [0]})),
    Case("the harness did not look",
         OtherPlatformsContinue("intune", OTHERS, "assignments:intune"),
         attempts(H().inject("throttle:intune", 10.0), "jamf", "j1", 12.0, status=200).build(), UNKNOWN),
    Case("no other platform was published to",
         OtherPlatformsContinue("intune", {}, "assignments:intune"),
         H().inject("throttle:intune", 10.0).checkpoint("assignments:intune", 20.0).build(), UNKNOWN),
]


def intune_failing() -> H:
    return throttled(H().inject("throttle:intune", 10.0), "intune", 11.0, 12.0)


CASES[AssignmentFails] = [
    Case("none applied and the platform recorded degraded",
         AssignmentFails("intune", ["k1"], "assignments:intune"),
         read_events(intune_failing(), 15.0, "PlatformDegraded", stored("PlatformDegraded", "intune", 11.5))
         .checkpoint("assignments:intune", 16.0).build(), PASS,
         measured({"published": 1, "applied": 0, "recorded_unhealthy": True})),
    Case("the failing platform applied an intent",
         AssignmentFails("intune", ["k1"], "assignments:intune"),
         read_events(intune_failing().platform_request("intune", 13.0, key="k1", status=200), 15.0,
                     "PlatformDegraded", stored("PlatformDegraded", "intune", 11.5))
         .checkpoint("assignments:intune", 16.0).build(), FAIL),
    Case("the Control Plane did not record the platform degraded",
         AssignmentFails("intune", ["k1"], "assignments:intune"),
         read_events(intune_failing(), 15.0, "PlatformDegraded", stored("PlatformDegraded", "jamf", 11.5))
         .checkpoint("assignments:intune", 16.0).build(), FAIL, measured_has(recorded_unhealthy=False)),
    Case("a PlatformDegraded from before the fault does not count",
         AssignmentFails("intune", ["k1"], "assignments:intune"),
         read_events(intune_failing(), 15.0, "PlatformDegraded", stored("PlatformDegraded", "intune", 5.0))
         .checkpoint("assignments:intune", 16.0).build(), FAIL),
    Case("an apply after the checkpoint is not judged",
         AssignmentFails("intune", ["k1"], "assignments:intune"),
         read_events(intune_failing(), 15.0, "PlatformDegraded", stored("PlatformDegraded", "intune", 11.5))
         .checkpoint("assignments:intune", 16.0).heal("throttle:intune", 20.0)
         .platform_request("intune", 21.0, key="k1", status=200).build(), PASS),
    Case("PlatformDegraded events were not read",
         AssignmentFails("intune", ["k1"], "assignments:intune"),
         intune_failing().checkpoint("assignments:intune", 16.0).build(), UNKNOWN),
    Case("no fault on the platform",
         AssignmentFails("intune", ["k1"], "assignments:intune"),
         read_events(H().inject("throttle:jamf", 10.0), 15.0, "PlatformDegraded",
                     stored("PlatformDegraded", "intune", 11.5)).checkpoint("assignments:intune", 16.0).build(),
         UNKNOWN),
]


def degraded_known(h: H) -> H:
    """The Control Plane recorded intune degraded at 12 (read at 13)."""
    return read_events(h, 13.0, "PlatformDegraded", stored("PlatformDegraded", "intune", 12.0))


CASES[PromotionRefused] = [
    Case("a promotion refused by the gate while the platform fails",
         PromotionRefused("intune", "PromotionsPaused"),
         promote(degraded_known(intune_failing()), 14.0, "intune", ok=False, gate="PromotionsPaused")
         .heal("throttle:intune", 30.0).build(), PASS),
    Case("a promotion accepted while the platform fails",
         PromotionRefused("intune", "PromotionsPaused"),
         promote(degraded_known(intune_failing()), 14.0, "intune").heal("throttle:intune", 30.0).build(), FAIL),
    Case("a refusal by another gate",
         PromotionRefused("intune", "PromotionsPaused"),
         promote(degraded_known(intune_failing()), 14.0, "intune", ok=False, gate="SCCM.SiteHealth")
         .heal("throttle:intune", 30.0).build(), FAIL),
    Case("a promotion before the Control Plane knew is not judged",
         PromotionRefused("intune", "PromotionsPaused"),
         promote(promote(degraded_known(intune_failing()), 11.0, "intune"), 14.0, "intune", ok=False,
                 gate="PromotionsPaused").heal("throttle:intune", 30.0).build(), PASS),
    Case("no promotion attempted while the platform failed",
         PromotionRefused("intune", "PromotionsPaused"),
         promote(degraded_known(intune_failing()).heal("throttle:intune", 30.0), 31.0, "intune").build(), UNKNOWN),
    Case("the Control Plane's record of the platform degraded was not read",
         PromotionRefused("intune", "PromotionsPaused"),
         promote(intune_failing(), 14.0, "intune", ok=False, gate="PromotionsPaused").build(), UNKNOWN),
    Case("no fault on the platform",
         PromotionRefused("intune", "PromotionsPaused"),
         promote(H(), 14.0, "intune", ok=False, gate="PromotionsPaused").build(), UNKNOWN),
    # issue 24: the window starts at the injection plus the plan's detection allowance (60 s by default)
    Case("the Control Plane never recorded the platform degraded: a promotion accepted after the allowance fails",
         PromotionRefused("intune", "PromotionsPaused"),
         promote(read_events(intune_failing(), 74.0, "PlatformDegraded"), 75.0, "intune")
         .heal("throttle:intune", 100.0).build(), FAIL, says("the detection allowance of 60 s")),
    Case("a promotion accepted after the allowance, before the Control Plane's late record, fails",
         PromotionRefused("intune", "PromotionsPaused"),
         promote(read_events(intune_failing(), 95.0, "PlatformDegraded", stored("PlatformDegraded", "intune", 90.0)),
                 75.0, "intune").heal("throttle:intune", 100.0).build(), FAIL,
         measured_has(detection_s=80.0, judged_from_s=60.0)),
    Case("a tighter allowance from the plan (5 s): a promotion accepted 8 s after the injection fails",
         PromotionRefused("intune", "PromotionsPaused", detection_s=5.0),
         promote(intune_failing(), 18.0, "intune").heal("throttle:intune", 30.0).build(), FAIL),
    Case("never recorded degraded, but the promotion after the allowance refused by the gate",
         PromotionRefused("intune", "PromotionsPaused"),
         promote(intune_failing(), 75.0, "intune", ok=False, gate="PromotionsPaused")
         .heal("throttle:intune", 100.0).build(), PASS, measured_has(detection_s=None)),
    Case("the detection latency is measured: recorded degraded 2 s after the injection",
         PromotionRefused("intune", "PromotionsPaused"),
         promote(degraded_known(intune_failing()), 14.0, "intune", ok=False, gate="PromotionsPaused")
         .heal("throttle:intune", 30.0).build(), PASS, measured_has(detection_s=2.0, judged_from_s=2.0)),
]

BACKOFF = ConnectorBackoff("jamf", ["k1", "k2"], base_s=0.5)


def looked_up_attempts(h: H, *attempts: tuple[str, float, int]) -> H:
    """Attempts (key, lookup time, apply status) each made of a Test-IdempotencyKey lookup and,
    0.4 s later (a 200 ms link each way), the apply."""
    for key, t, status in attempts:
        h.platform_request("jamf", t, key=key, status=404, path="/applied", outcome="tested")
        h.platform_request("jamf", round(t + 0.4, 3), key=key, status=status)
    return h


CASES[ConnectorBackoff] = [
    Case("each wait twice the previous, from the base interval",
         BACKOFF, attempts(H(), "jamf", "k1", 10.0, 10.5, 11.5, 13.5).build(), PASS,
         measured({"gaps_s": [0.5, 1.0, 2.0], "round_trip_s": 0.0, "waits_s": [0.5, 1.0, 2.0],
                   "ratios": [2.0, 2.0], "attempts": 4, "growth": 2.0})),
    Case("two intents in lockstep over a 200 ms link: the gaps 2.6, 3.6, 5.6 s hold waits of 0.5, 1, 2 s",
         BACKOFF, looked_up_attempts(H(), ("k1", 10.0, 503), ("k2", 11.3, 503), ("k1", 12.6, 503),
                                     ("k2", 14.4, 503), ("k1", 16.2, 503), ("k2", 19.0, 503),
                                     ("k1", 21.8, 200)).build(), PASS,
         measured({"gaps_s": [2.6, 3.6, 5.6], "round_trip_s": 0.4, "waits_s": [0.5, 1.0, 2.0],
                   "ratios": [2.0, 2.0], "attempts": 4, "growth": 2.0})),
    Case("a second intent arriving late puts its wait in one gap only (gaps 0.5, 1.53, 3.0 s)",
         BACKOFF, attempts(attempts(H(), "jamf", "k1", 10.0, 10.501, 12.034, 15.03), "jamf", "k2",
                           11.508, 14.029, 15.101, 17.098).build(), PASS,
         measured_has(gaps_s=[0.501, 1.533, 2.996], waits_s=[0.501, 1.007, 1.995], ratios=[2.01, 1.98])),
    Case("a wait cut short by another intent's call is no backoff of the platform",
         BACKOFF, attempts(attempts(H(), "jamf", "k1", 10.0, 10.5, 11.5, 13.5), "jamf", "k2",
                           10.05, 10.55, 11.55).build(), FAIL, measured_has(waits_s=[0.05, 0.05, 0.05])),
    Case("the same wait every time over a 200 ms link",
         BACKOFF, looked_up_attempts(H(), ("k1", 10.0, 503), ("k1", 11.3, 503), ("k1", 12.6, 503),
                                     ("k1", 13.9, 200)).build(), FAIL,
         measured({"gaps_s": [1.3, 1.3, 1.3], "round_trip_s": 0.4, "waits_s": [0.5, 0.5, 0.5],
                   "ratios": [1.0, 1.0], "attempts": 4, "growth": 1.0})),
    Case("a backoff whose gaps do not grow",
         BACKOFF, attempts(H(), "jamf", "k1", 10.0, 10.5, 11.0, 11.5).build(), FAIL),
    Case("a first gap shorter than the base interval",
         BACKOFF, attempts(H(), "jamf", "k1", 10.0, 10.1, 10.3, 10.7).build(), FAIL),
    Case("gaps growing fourfold",
         BACKOFF, attempts(H(), "jamf", "k1", 10.0, 10.5, 12.5, 20.5).build(), FAIL),
    Case("arrivals after the runbook's requeue start a new delivery",
         BACKOFF, attempts(H(), "jamf", "k1", 10.0, 10.5, 11.5, 13.5)
         .op("requeue", 20.0, detail={"platform": "jamf"}).platform_request("jamf", 20.1, key="k1", status=503)
         .platform_request("jamf", 20.2, key="k1", status=200).build(), PASS),
    Case("the retries end at the first applied arrival",
         BACKOFF, attempts(H(), "jamf", "k1", 10.0, 10.5).platform_request("jamf", 11.5, key="k1", status=200)
         .platform_request("jamf", 11.6, key="k1", status=200, outcome="duplicate").build(), PASS),
    Case("an attempt repeated without any wait is no backoff",
         BACKOFF, attempts(H(), "jamf", "k1", 10.0, 10.5, 10.5, 11.5).build(), FAIL),
    Case("fewer than 3 attempts reached the platform",
         BACKOFF, attempts(H(), "jamf", "k1", 10.0, 10.5).build(), UNKNOWN),
    # issue 24: the spec's 2x within 1.8-2.2 (growth per retry), base and maximum attempts from the plan
    Case("waits growing 2.5x per retry are not the spec's 2x",
         BACKOFF, attempts(H(), "jamf", "k1", 10.0, 10.5, 11.75, 14.875).build(), FAIL,
         says("grew 2.50 x per retry, not 1.8-2.2")),
    Case("waits growing 1.6x per retry are not the spec's 2x",
         BACKOFF, attempts(H(), "jamf", "k1", 10.0, 10.5, 11.3, 12.58).build(), FAIL, measured_has(growth=1.6)),
    Case("a first wait twice the configured base interval (the plan says 0.5 s, the connector waits 1 s)",
         BACKOFF, attempts(H(), "jamf", "k1", 10.0, 11.0, 13.0, 17.0).build(), FAIL, says("first wait was 1.000 s")),
    Case("more attempts than the configured maximum",
         ConnectorBackoff("jamf", ["k1"], base_s=0.5, max_attempts=4),
         attempts(H(), "jamf", "k1", 10.0, 10.5, 11.5, 13.5, 17.5).build(), FAIL, says("more than the 4 configured")),
    Case("a loaded machine: the first wait 80 ms late (ratios 1.72, 2.0), the growth over all waits 1.86",
         ConnectorBackoff("jamf", ["k1"], base_s=0.5, max_attempts=4),
         attempts(H(), "jamf", "k1", 10.0, 10.58, 11.58, 13.58).build(), PASS, measured_has(growth=1.857)),
    Case("the connectors' configured backoff is not known (an external plan that does not state it)",
         ConnectorBackoff("jamf", ["k1"], base_s=None), attempts(H(), "jamf", "k1", 10.0, 10.5, 11.5).build(),
         UNKNOWN, says("targets.connector_backoff")),
]


def intune_view(h: H, t: float, count: int) -> H:
    return h.op("platform_view", t, value={"platform": "intune", "GraphThrottleCount": count},
                detail={"platform": "intune"})


SIX_429 = (10.0, 11.0, 12.0, 13.0, 14.0, 15.0)

CASES[ThrottleCountAccurate] = [
    Case("the count equals the platform's 429s and reached n",
         ThrottleCountAccurate("intune", 5), intune_view(throttled(H(), "intune", *SIX_429), 16.0, 6).build(), PASS,
         measured_has(highest_reported=6, sent_by_platform=6)),
    Case("a throttle count that disagrees with the platform's 429s",
         ThrottleCountAccurate("intune", 5), intune_view(throttled(H(), "intune", *SIX_429), 16.0, 5).build(), FAIL,
         says("reported 5, platform sent 6")),
    Case("an earlier read that over-counted fails though the last agrees",
         ThrottleCountAccurate("intune", 5), intune_view(intune_view(throttled(H(), "intune", *SIX_429), 12.5, 6),
                                                         16.0, 6).build(), FAIL),
    Case("a count that agrees but never reached n",
         ThrottleCountAccurate("intune", 5), intune_view(throttled(H(), "intune", 10.0, 11.0, 12.0), 16.0, 3).build(),
         FAIL),
    Case("a 429 sent within the report delay before the read may be uncounted",
         ThrottleCountAccurate("intune", 5),
         intune_view(throttled(H(), "intune", 10.0, 11.0, 12.0, 13.0, 14.0, 15.6), 16.0, 5).build(), PASS),
    Case("429s older than the window on the Control Plane's clock drop out",
         ThrottleCountAccurate("intune", 5),
         intune_view(throttled(throttled(H(), "intune", *SIX_429).clock(20.0, 600), "intune",
                               21.0, 22.0, 23.0, 24.0, 25.0), 26.0, 5).build(), PASS),
    Case("the Control Plane's view was not read",
         ThrottleCountAccurate("intune", 5), throttled(H(), "intune", *SIX_429).build(), UNKNOWN),
]

CASES[AppliedExactlyOnce] = [
    Case("every intent applied once (after a 429)",
         AppliedExactlyOnce("intune", ["k1", "k2"]), throttled(H(), "intune", 10.0)
         .platform_request("intune", 12.0, key="k1", status=200).platform_request("intune", 12.0, key="k2", status=200)
         .build(), PASS, measured({"published": 2, "missing": 0, "duplicated": 0})),
    Case("an intent never applied",
         AppliedExactlyOnce("intune", ["k1", "k2"]), throttled(H(), "intune", 10.0)
         .platform_request("intune", 12.0, key="k1", status=200).platform_request("intune", 12.0, key="k2", status=429)
         .build(), FAIL, measured_has(missing=1)),
    Case("an intent applied twice by a redelivery",
         AppliedExactlyOnce("intune", ["k1"]), attempts(H(), "intune", "k1", 12.0, 30.0, status=200).build(), FAIL,
         measured_has(duplicated=1)),
    Case("a connector's Test-IdempotencyKey lookup is not a second apply",
         AppliedExactlyOnce("intune", ["k1"]), H().platform_request("intune", 12.0, key="k1", status=200)
         .platform_request("intune", 30.0, key="k1", status=200, outcome="tested", path="/applied").build(), PASS),
    Case("with a ring, the ring's own key is judged",
         AppliedExactlyOnce("intune", ["k1"], ring="ring2"), H().platform_request("intune", 12.0, key="k1", status=200)
         .platform_request("intune", 30.0, key="k1@ring2", status=200).build(), PASS),
    Case("no intent was published",
         AppliedExactlyOnce("intune", []), H().platform_request("intune", 12.0, key="k1", status=200).build(), UNKNOWN),
]


def throttle_healed(*times: float) -> H:
    return throttled(H().inject("throttle:intune", 9.0), "intune", *times).heal("throttle:intune", 16.0)


CASES[ResumeRequiresLowThrottleCount] = [
    Case("a promotion refused while the throttle count was 6",
         ResumeRequiresLowThrottleCount("intune"),
         promote(throttle_healed(*SIX_429), 17.0, "intune", ok=False, gate="PromotionsPaused").build(), PASS,
         measured_has(throttle_count=6, accepted=0)),
    Case("a promotion accepted while the throttle count was 6",
         ResumeRequiresLowThrottleCount("intune"), promote(throttle_healed(*SIX_429), 17.0, "intune").build(), FAIL,
         measured_has(throttle_count=6, accepted=1)),
    Case("a promotion before the recovery is not judged",
         ResumeRequiresLowThrottleCount("intune"),
         promote(promote(throttle_healed(*SIX_429), 12.0, "intune"), 17.0, "intune", ok=False,
                 gate="PromotionsPaused").build(), PASS),
    Case("a count of exactly 5 is not above the limit",
         ResumeRequiresLowThrottleCount("intune"), promote(throttle_healed(*SIX_429[:5]), 17.0, "intune").build(),
         UNKNOWN),
    Case("429s older than 5 minutes on the Control Plane's clock do not count",
         ResumeRequiresLowThrottleCount("intune"),
         promote(throttle_healed(*SIX_429).clock(16.5, 300), 17.0, "intune").build(), UNKNOWN),
    Case("the platform was not healed",
         ResumeRequiresLowThrottleCount("intune"),
         promote(throttled(H().inject("throttle:intune", 9.0), "intune", *SIX_429), 17.0, "intune").build(), UNKNOWN),
]

CASES[PromotionsResumed] = [
    Case("the last promotion accepted and applied once",
         PromotionsResumed("intune", "ring2"), promote(promote(H(), 20.0, "intune", ok=False, gate="PromotionsPaused"),
                                                       30.0, "intune")
         .platform_request("intune", 31.0, key="k1@ring2", status=200).build(), PASS),
    Case("the last promotion refused",
         PromotionsResumed("intune", "ring2"), promote(H(), 30.0, "intune", ok=False, gate="PromotionsPaused").build(),
         FAIL),
    Case("the promoted intent applied twice",
         PromotionsResumed("intune", "ring2"), attempts(promote(H(), 30.0, "intune"), "intune", "k1@ring2",
                                                        31.0, 32.0, status=200).build(), FAIL,
         measured_has(applied=2)),
    Case("an apply before the promotion does not count",
         PromotionsResumed("intune", "ring2"), promote(H().platform_request("intune", 25.0, key="k1@ring2", status=200),
                                                       30.0, "intune").build(), FAIL, measured_has(applied=0)),
    Case("no promotion attempted",
         PromotionsResumed("intune", "ring2"), H().platform_request("intune", 31.0, key="k1@ring2", status=200).build(),
         UNKNOWN),
]


def cab_pause(clock_s: float, raised_at: tuple[float, ...] = (21.0,), notice_platform: str = "jamf",
              clock_at: float = 20.0) -> H:
    """jamf failing from 10; the Control Plane's clock moved `clock_s` at `clock_at`; the CAB pause
    rows raised at `raised_at`, a notification at 21; both read at 30."""
    h = H().inject("error:jamf", 10.0).clock(clock_at, clock_s)
    h = read_events(h, 30.0, "CabManualPauseRaised", *(stored("CabManualPauseRaised", "jamf", t) for t in raised_at))
    return read_events(h, 30.5, "CabNotification", stored("CabNotification", notice_platform, 21.0))


CASES[CabManualPause] = [
    Case("raised once after more than 15 minutes on the Control Plane's clock, with a notification",
         CabManualPause("jamf"), cab_pause(1000).build(), PASS,
         measured({"raised": 1, "degraded_for_s": [1011.0], "notifications": 1})),
    Case("raised before 15 minutes on the Control Plane's clock (14 min 51 s)",
         CabManualPause("jamf"), cab_pause(880).build(), FAIL, measured_has(degraded_for_s=[891.0])),
    Case("a clock move after the pause does not age it",
         CabManualPause("jamf"), cab_pause(1000, clock_at=25.0).build(), FAIL, measured_has(degraded_for_s=[11.0])),
    Case("raised twice",
         CabManualPause("jamf"), cab_pause(1000, raised_at=(21.0, 22.0)).build(), FAIL),
    Case("no CAB notification about the platform",
         CabManualPause("jamf"), cab_pause(1000, notice_platform="intune").build(), FAIL),
    Case("the CAB notifications were not read",
         CabManualPause("jamf"), read_events(H().inject("error:jamf", 10.0).clock(20.0, 1000), 30.0,
                                             "CabManualPauseRaised", stored("CabManualPauseRaised", "jamf", 21.0))
         .build(), UNKNOWN),
    Case("no fault on the platform",
         CabManualPause("jamf"), read_events(read_events(H().clock(20.0, 1000), 30.0, "CabManualPauseRaised",
                                                         stored("CabManualPauseRaised", "jamf", 21.0)),
                                             30.5, "CabNotification", stored("CabNotification", "jamf", 21.0)).build(),
         UNKNOWN),
    # a target without clock control (no lab.clock) that does not hold the fault in real time
    Case("no clock control, fault held 20 s, no pause yet: unknown, never a fail or a pass",
         CabManualPause("jamf"), read_events(read_events(H().inject("error:jamf", 10.0), 30.0,
                                                         "CabManualPauseRaised"), 30.5, "CabNotification").build(),
         UNKNOWN, says("needs 15 min of real time or clock control")),
    Case("no clock control: a pause raised after 11 s still fails",
         CabManualPause("jamf"), cab_pause(0, raised_at=(21.0,), clock_at=5.0).build(), FAIL),
    Case("no clock control, the fault held 16 min in real time (hold_real_time): judged",
         CabManualPause("jamf"), read_events(read_events(H().inject("error:jamf", 10.0), 1000.0, "CabManualPauseRaised",
                                                         stored("CabManualPauseRaised", "jamf", 970.0)),
                                             1000.5, "CabNotification", stored("CabNotification", "jamf", 970.0))
         .build(), PASS),
]


def recovered_jamf() -> H:
    return H().inject("error:jamf", 10.0).heal("error:jamf", 20.0)


def cab_lift(h: H, t: float, ok: bool = True) -> H:
    return h.op("cab_lift", t, ok=ok, status=200 if ok else 409, detail={"platform": "jamf"})


CASES[CabPauseHoldsUntilLifted] = [
    Case("refused after the recovery until the lift, accepted after it",
         CabPauseHoldsUntilLifted("jamf"), promote(cab_lift(promote(recovered_jamf(), 21.0, "jamf", ok=False,
                                                                    gate="CabManualPause"), 25.0), 26.0, "jamf")
         .build(), PASS),
    Case("a promotion accepted before the CAB lifted the pause",
         CabPauseHoldsUntilLifted("jamf"), cab_lift(promote(recovered_jamf(), 21.0, "jamf"), 25.0).build(), FAIL),
    Case("a promotion accepted with no lift at all",
         CabPauseHoldsUntilLifted("jamf"), promote(recovered_jamf(), 21.0, "jamf").build(), FAIL),
    Case("a lift the Control Plane refused does not end the hold",
         CabPauseHoldsUntilLifted("jamf"), promote(cab_lift(promote(recovered_jamf(), 21.0, "jamf", ok=False,
                                                                    gate="CabManualPause"), 25.0, ok=False),
                                                   26.0, "jamf").build(), FAIL, None),
    Case("no promotion between the recovery and the lift",
         CabPauseHoldsUntilLifted("jamf"), promote(cab_lift(recovered_jamf(), 25.0), 26.0, "jamf").build(), UNKNOWN),
    Case("the platform was not healed",
         CabPauseHoldsUntilLifted("jamf"), promote(H().inject("error:jamf", 10.0), 21.0, "jamf").build(), UNKNOWN),
]

CASES[CabNotified] = [
    Case("a CAB notification about the outage",
         CabNotified("jamf"), read_events(H().inject("error:jamf", 10.0), 30.0, "CabNotification",
                                          stored("CabNotification", "jamf", 21.0)).build(), PASS),
    Case("notifications about another platform only",
         CabNotified("jamf"), read_events(H().inject("error:jamf", 10.0), 30.0, "CabNotification",
                                          stored("CabNotification", "intune", 21.0)).build(), FAIL),
    Case("a notification from before the fault does not count",
         CabNotified("jamf"), read_events(H().inject("error:jamf", 10.0), 30.0, "CabNotification",
                                          stored("CabNotification", "jamf", 5.0)).build(), FAIL),
    Case("the notifications were not read",
         CabNotified("jamf"), H().inject("error:jamf", 10.0).build(), UNKNOWN),
    Case("no fault on the platform",
         CabNotified("jamf"), read_events(H(), 30.0, "CabNotification", stored("CabNotification", "jamf", 21.0))
         .build(), UNKNOWN),
]


def queue_bracket(before: int, reported: int | None, after: int | None, platform: str = "jamf") -> H:
    h = H().op("queue_depth", 10.0, value=before, detail={"platform": platform})
    h.op("queue_metrics", 10.2, value={"jamf": {"queue_depth": reported}})
    if after is not None:
        h.op("queue_depth", 10.4, value=after, detail={"platform": platform})
    return h


CASES[QueueDepthAccurate] = [
    Case("the metric equals the queue read right before and after",
         QueueDepthAccurate("jamf"), queue_bracket(3, 3, 3).build(), PASS,
         measured({"reported": 3, "queue_before": 3, "queue_after": 3})),
    Case("a figure between a falling queue's depths before and after",
         QueueDepthAccurate("jamf"), queue_bracket(4, 3, 2).build(), PASS),
    Case("the metric says 0 while 3 intents wait",
         QueueDepthAccurate("jamf"), queue_bracket(3, 0, 3).build(), FAIL),
    Case("a figure outside the bracket",
         QueueDepthAccurate("jamf"), queue_bracket(3, 5, 3).build(), FAIL),
    Case("no read of the queue after the metric",
         QueueDepthAccurate("jamf"), queue_bracket(3, 3, None).build(), UNKNOWN),
    Case("reads of another platform's queue do not bracket it",
         QueueDepthAccurate("jamf"), queue_bracket(3, 3, 3, platform="intune").build(), UNKNOWN),
]


def dead_letters(h: H, t: float, *keys: str) -> H:
    return h.op("dead_letters", t, value=list(keys), detail={"platform": "jamf"})


FOUR_ATTEMPTS = (10.0, 10.5, 11.5, 13.5)

CASES[DeadLettered] = [
    Case("dead-lettered after exactly the maximum attempts",
         DeadLettered("jamf", ["k1"], 4), dead_letters(attempts(H(), "jamf", "k1", *FOUR_ATTEMPTS), 15.0, "k1").build(),
         PASS, measured({"dead_lettered": 1, "attempts": [4]})),
    Case("an intent missing from the dead-letter queue",
         DeadLettered("jamf", ["k1"], 4), dead_letters(attempts(H(), "jamf", "k1", *FOUR_ATTEMPTS), 15.0).build(),
         FAIL),
    Case("dead-lettered after 3 attempts",
         DeadLettered("jamf", ["k1"], 4), dead_letters(attempts(H(), "jamf", "k1", *FOUR_ATTEMPTS[:3]), 15.0, "k1")
         .build(), FAIL, measured_has(attempts=[3])),
    Case("arrivals after the dead-letter read do not count",
         DeadLettered("jamf", ["k1"], 4), attempts(dead_letters(attempts(H(), "jamf", "k1", *FOUR_ATTEMPTS), 15.0, "k1")
                                                   .op("requeue", 16.0, detail={"platform": "jamf"}),
                                                   "jamf", "k1", 17.0, status=200).build(), PASS),
    Case("the dead-letter queue was read only after the requeue",
         DeadLettered("jamf", ["k1"], 4), dead_letters(attempts(H(), "jamf", "k1", *FOUR_ATTEMPTS)
                                                       .op("requeue", 14.0, detail={"platform": "jamf"}), 15.0, "k1")
         .build(), UNKNOWN),
    Case("no intent was published",
         DeadLettered("jamf", [], 4), dead_letters(H(), 15.0).build(), UNKNOWN),
    Case("the configured maximum attempts is not known (an external plan that does not state it)",
         DeadLettered("jamf", ["k1"], None), dead_letters(attempts(H(), "jamf", "k1", *FOUR_ATTEMPTS), 15.0, "k1")
         .build(), UNKNOWN, says("targets.connector_backoff")),
]


def requeued(ok: bool = True) -> H:
    return H().op("requeue", 20.0, ok=ok, status=200 if ok else 500, detail={"platform": "jamf"})


CASES[RequeueConfirmed] = [
    Case("the dead-letter queue emptied of them after the requeue",
         RequeueConfirmed("jamf", ["k1"]), dead_letters(requeued(), 21.0).build(), PASS),
    Case("only the read after the requeue counts",
         RequeueConfirmed("jamf", ["k1"]), dead_letters(dead_letters(H(), 19.0, "k1").op(
             "requeue", 20.0, detail={"platform": "jamf"}), 21.0).build(), PASS),
    Case("an intent still dead-lettered",
         RequeueConfirmed("jamf", ["k1"]), dead_letters(requeued(), 21.0, "k1").build(), FAIL,
         measured_has(still_dead_lettered=1)),
    Case("the requeue was refused",
         RequeueConfirmed("jamf", ["k1"]), dead_letters(requeued(ok=False), 21.0).build(), FAIL),
    Case("no requeue made",
         RequeueConfirmed("jamf", ["k1"]), dead_letters(H(), 21.0).build(), UNKNOWN),
    Case("the dead-letter queue not read after the requeue",
         RequeueConfirmed("jamf", ["k1"]), dead_letters(H(), 19.0).op("requeue", 20.0, detail={"platform": "jamf"})
         .build(), UNKNOWN),
]


def published(h: H, t: float, key: str, ring: str, platform: str = "intune") -> H:
    return h.op("publish", t, value=key, status=202, detail={"platform": platform, "ring": ring, "intent_id": 1})


CASES[NoCriticalBacklog] = [
    Case("a critical intent applied seconds after its publish",
         NoCriticalBacklog(), published(H(), 10.0, "k1", "ring1").platform_request("intune", 15.0, key="k1", status=200)
         .build(), PASS, measured({"oldest_critical_s": 4.9, "intents": 1})),
    Case("an intent waiting 15 minutes on the Control Plane's clock",
         NoCriticalBacklog(), published(H(), 10.0, "k1", "ring1").clock(12.0, 900)
         .platform_request("intune", 15.0, key="k1", status=200).build(), FAIL, measured_has(oldest_critical_s=904.9)),
    Case("an intent never applied counts its age until the end",
         NoCriticalBacklog(), published(H(), 10.0, "k1", "ring0").clock(20.0, 700).checkpoint("end", 21.0).build(),
         FAIL, measured_has(oldest_critical_s=710.9)),
    Case("a promotion to a critical ring counts from its acceptance",
         NoCriticalBacklog(), promote(H(), 10.0, "jamf", to_ring="ring1").clock(11.0, 700)
         .platform_request("jamf", 12.0, key="k1@ring1", status=200).build(), FAIL),
    Case("a non-critical ring may wait",
         NoCriticalBacklog(), published(published(H(), 10.0, "k1", "ring1"), 10.0, "k2", "ring3")
         .platform_request("intune", 15.0, key="k1", status=200).clock(16.0, 900).checkpoint("end", 17.0).build(),
         PASS),
    Case("no intent of a critical ring published",
         NoCriticalBacklog(), published(H(), 10.0, "k2", "ring3").build(), UNKNOWN),
]


def site_down() -> H:
    """sccm killed at 10; the Control Plane's SiteOutageRecorded read at 12."""
    return read_events(H().inject("down:sccm", 10.0), 12.0, "SiteOutageRecorded",
                       stored("SiteOutageRecorded", "sccm", 11.0))


CASES[SiteOutageRecorded] = [
    Case("the outage recorded and no fallback offered yet",
         SiteOutageRecorded("sccm"), read_events(site_down(), 12.5, "ManualImportOffered").clock(20.0, 86400).build(),
         PASS, measured({"events": 1, "fallback_offered": False})),
    Case("a fallback offered at once",
         SiteOutageRecorded("sccm"), read_events(site_down(), 12.5, "ManualImportOffered",
                                                 stored("ManualImportOffered", "sccm", 12.2)).build(), FAIL),
    Case("the outage not recorded",
         SiteOutageRecorded("sccm"), read_events(read_events(H().inject("down:sccm", 10.0), 12.0, "SiteOutageRecorded",
                                                             stored("SiteOutageRecorded", "jamf", 11.0)),
                                                 12.5, "ManualImportOffered").build(), FAIL),
    Case("an offer read after the clock moved on is not judged here",
         SiteOutageRecorded("sccm"), read_events(read_events(site_down(), 12.5, "ManualImportOffered")
                                                 .clock(20.0, 86400), 22.0, "ManualImportOffered",
                                                 stored("ManualImportOffered", "sccm", 21.0)).build(), PASS),
    Case("the offers were read only after the clock moved",
         SiteOutageRecorded("sccm"), read_events(site_down().clock(20.0, 86400), 22.0, "ManualImportOffered",
                                                 stored("ManualImportOffered", "sccm", 21.0)).build(), UNKNOWN),
    Case("SiteOutageRecorded events were not read",
         SiteOutageRecorded("sccm"), read_events(H().inject("down:sccm", 10.0), 12.5, "ManualImportOffered").build(),
         UNKNOWN),
    Case("no fault on the platform",
         SiteOutageRecorded("sccm"), read_events(read_events(H(), 12.0, "SiteOutageRecorded",
                                                             stored("SiteOutageRecorded", "sccm", 11.0)),
                                                 12.5, "ManualImportOffered").build(), UNKNOWN),
]


def offered(clock_s: float, *at: float) -> H:
    h = H().inject("down:sccm", 10.0).clock(20.0, clock_s)
    return read_events(h, 30.0, "ManualImportOffered", *(stored("ManualImportOffered", "sccm", t) for t in at))


CASES[ManualImportOffered] = [
    Case("offered once after more than 24 h on the Control Plane's clock",
         ManualImportOffered("sccm"), offered(86400, 21.0).build(), PASS,
         measured({"offers": 1, "down_for_s": [86411.0]})),
    Case("offered 5 s before 24 h on the Control Plane's clock",
         ManualImportOffered("sccm"), offered(86380, 25.0).build(), FAIL, measured_has(down_for_s=[86395.0])),
    Case("offered twice",
         ManualImportOffered("sccm"), offered(86400, 21.0, 22.0).build(), FAIL),
    Case("the offers were not read",
         ManualImportOffered("sccm"), H().inject("down:sccm", 10.0).clock(20.0, 86400).build(), UNKNOWN),
    Case("no fault on the platform",
         ManualImportOffered("sccm"), read_events(H().clock(20.0, 86400), 30.0, "ManualImportOffered",
                                                  stored("ManualImportOffered", "sccm", 21.0)).build(), UNKNOWN),
    Case("no clock control, site down 20 s, no offer yet: unknown",
         ManualImportOffered("sccm"), read_events(H().inject("down:sccm", 10.0), 30.0, "ManualImportOffered").build(),
         UNKNOWN, says("needs 24 h of real time or clock control")),
    Case("the clock moved 23 h only before the offers were read: unknown",
         ManualImportOffered("sccm"), offered(23 * 3600).build(), UNKNOWN),
]

FAILED_OVER = "connectors-failover"
RB_PLATFORMS = ("intune", "jamf")


def rollback_requested(h: H | None = None, replaced_at: float = 11.0, ok: bool = True) -> H:
    """The connector workers lost at t=10, their replacements logged, a ring0 rollback answered."""
    h = (h or H()).inject(FAILED_OVER, 10.0)
    for platform in RB_PLATFORMS:
        h.event("worker_replaced", "asg", replaced_at, source="asg", platform=platform)
    value = {"rollback_id": "r1", "dispatched": {p: f"rollback:ring0:r1:{p}" for p in RB_PLATFORMS}}
    return h.op("ring_rollback", 12.0, ok=ok, value=value if ok else None, status=200 if ok else 503)


def rolled_back(h: H, platform: str, t: float, tested: bool = True, action: str | None = "rollback") -> H:
    key = f"rollback:ring0:r1:{platform}"
    if tested:
        h.platform_request(platform, t - 0.1, key=key, status=404, outcome="tested", path="/applied")
    fields = {"action": action} if action else {}
    return h.platform_request(platform, t, key=key, status=200, ring="ring0", **fields)


CASES[RingRollbackApplied] = [
    Case("every platform applied the rollback once, key tested, after its worker was replaced",
         RingRollbackApplied("ring0", FAILED_OVER, RB_PLATFORMS),
         rolled_back(rolled_back(rollback_requested(), "intune", 13.0), "jamf", 14.0).build(), PASS,
         measured({"platforms": 2, "rollback_id": "r1"})),
    Case("a platform never got its rollback",
         RingRollbackApplied("ring0", FAILED_OVER, RB_PLATFORMS),
         rolled_back(rollback_requested(), "intune", 13.0).build(), FAIL, measured_has(missing=["jamf"])),
    Case("a platform applied the rollback twice",
         RingRollbackApplied("ring0", FAILED_OVER, RB_PLATFORMS),
         rolled_back(rolled_back(rolled_back(rollback_requested(), "intune", 13.0), "jamf", 14.0), "jamf", 15.0)
         .build(), FAIL, measured_has(twice=["jamf"])),
    Case("an apply without the connector testing its key first",
         RingRollbackApplied("ring0", FAILED_OVER, RB_PLATFORMS),
         rolled_back(rolled_back(rollback_requested(), "intune", 13.0), "jamf", 14.0, tested=False).build(), FAIL,
         measured_has(untested=["jamf"])),
    Case("the key arrived as a plain deployment, not a rollback",
         RingRollbackApplied("ring0", FAILED_OVER, RB_PLATFORMS),
         rolled_back(rolled_back(rollback_requested(), "intune", 13.0), "jamf", 14.0, action=None).build(), FAIL,
         measured_has(not_a_rollback=["jamf"])),
    Case("applied before any replacement worker ran: the connectors never failed over",
         RingRollbackApplied("ring0", FAILED_OVER, RB_PLATFORMS),
         rolled_back(rolled_back(rollback_requested(replaced_at=20.0), "intune", 13.0), "jamf", 14.0).build(), FAIL,
         measured_has(not_by_a_replacement=["intune", "jamf"])),
    Case("the Control Plane refused the rollback",
         RingRollbackApplied("ring0", FAILED_OVER, RB_PLATFORMS), rollback_requested(ok=False).build(), FAIL),
    Case("the connectors were not failed over",
         RingRollbackApplied("ring0", FAILED_OVER, RB_PLATFORMS),
         rolled_back(H().op("ring_rollback", 12.0, value={"dispatched": {}}), "intune", 13.0).build(), UNKNOWN),
    Case("no rollback was requested",
         RingRollbackApplied("ring0", FAILED_OVER, RB_PLATFORMS),
         H().inject(FAILED_OVER, 10.0).build(), UNKNOWN),
]


# =============================================================================================
# evidence (matrix row 3)
# =============================================================================================

OUT = "store-out:evidence"
SHA, OTHER_SHA = "ab" * 32, "cd" * 32
BLOCKED = {"cause": "evidence_store", "Impact": "publish blocked", "error": "the evidence store is unavailable"}


def store_read(found: str | None, key: str = "pack-b", ok: bool = True) -> H:
    return H().op("store_read", 5.0, ok=ok, value=found, detail={"key": key, "expected": SHA},
                  error="" if ok else "AccessDenied")


CASES[ValidatedCopy] = [
    Case("a copy with the sha256 of what was sent",
         ValidatedCopy("pack-b", present=True), store_read(SHA).build(), PASS),
    Case("a copy whose sha256 differs",
         ValidatedCopy("pack-b", present=True), store_read(OTHER_SHA).build(), FAIL),
    Case("no copy where one must be",
         ValidatedCopy("pack-b", present=True), store_read(None).build(), FAIL),
    Case("no copy where none must be",
         ValidatedCopy("pack-a", present=False), store_read(None, key="pack-a").build(), PASS),
    Case("a copy where none must be",
         ValidatedCopy("pack-a", present=False), store_read(SHA, key="pack-a").build(), FAIL),
    Case("a read of another pack does not count",
         ValidatedCopy("pack-b", present=True), store_read(SHA, key="pack-a").build(), UNKNOWN),
    Case("the alternate bucket could not be read",
         ValidatedCopy("pack-b", present=True), store_read(None, ok=False).build(), UNKNOWN),
]


def store_out() -> H:
    """The evidence store out from 10 to 20."""
    return H().inject(OUT, 10.0).heal(OUT, 20.0)


def publish_pack(h: H, t: float, key: str = "pack-a", ok: bool = True, detail: dict | None = None, **kw: Any) -> H:
    return h.op("publish", t, ok=ok, value=key, status=201 if ok else 503, detail=detail, **kw)


CASES[PublishBlockedDuringOutage] = [
    Case("refused with 503, cause evidence_store, Impact = publish blocked and an error",
         PublishBlockedDuringOutage(OUT, "pack-a", "unavailable"),
         publish_pack(store_out(), 11.0, ok=False, detail=BLOCKED).build(), PASS),
    Case("a publish accepted while the store was out",
         PublishBlockedDuringOutage(OUT, "pack-a", "unavailable"), publish_pack(store_out(), 11.0).build(), FAIL),
    Case("a refusal without Impact = publish blocked",
         PublishBlockedDuringOutage(OUT, "pack-a", "unavailable"),
         publish_pack(store_out(), 11.0, ok=False, detail={**BLOCKED, "Impact": None}).build(), FAIL),
    Case("a refusal without an explicit error",
         PublishBlockedDuringOutage(OUT, "pack-a", "unavailable"),
         publish_pack(store_out(), 11.0, ok=False, detail={**BLOCKED, "error": ""}).build(), FAIL,
         says("without an explicit error")),
    Case("a publish straddling the heal is not judged",
         PublishBlockedDuringOutage(OUT, "pack-a", "unavailable"),
         publish_pack(publish_pack(store_out(), 11.0, ok=False, detail=BLOCKED), 19.9, done=20.3).build(), PASS),
    Case("the pack with a copy is not judged here",
         PublishBlockedDuringOutage(OUT, "pack-a", "unavailable"),
         publish_pack(publish_pack(store_out(), 11.0, ok=False, detail=BLOCKED), 12.0, key="pack-b").build(), PASS),
    Case("the pack was published only after the heal",
         PublishBlockedDuringOutage(OUT, "pack-a", "unavailable"), publish_pack(store_out(), 21.0).build(), UNKNOWN),
    Case("no inject event",
         PublishBlockedDuringOutage(OUT, "pack-a", "unavailable"),
         publish_pack(H(), 11.0, ok=False, detail=BLOCKED).build(), UNKNOWN),
]

OBJECT = "evidence/pack-a.tar"


def retried(*times: float, method: str = "HEAD", path: str = f"/evidence-bucket/{OBJECT}") -> H:
    """The publish of pack-a refused after 7 s while the store is out; the gateway saw these requests."""
    h = publish_pack(store_out(), 11.0, ok=False, detail=BLOCKED, done=18.0)
    for t in times:
        h.gateway_request(t, path, method=method)
    return h


BACKOFF_AT_STORE = RetryBackoffAtStore(OUT, "pack-a", OBJECT, "unavailable")

CASES[RetryBackoffAtStore] = [
    Case("the store's attempts wait twice as long each time",
         BACKOFF_AT_STORE, retried(11.1, 11.3, 11.7, 12.5).build(), PASS,
         measured({"attempts": 4, "gaps_ms": [200, 400, 800], "ratios": [2.0, 2.0], "growth": 2.0})),
    Case("on a loaded machine the client's turnaround stretches a short gap (waits 0.2, 0.4, 0.8 s)",
         BACKOFF_AT_STORE, retried(11.1, 11.418, 11.88, 12.684).build(), PASS,
         measured_has(gaps_ms=[318, 462, 804], growth=1.59)),
    Case("a backoff whose gaps do not grow",
         BACKOFF_AT_STORE, retried(11.1, 11.3, 11.5, 11.7).build(), FAIL, measured_has(ratios=[1.0, 1.0])),
    Case("a flat wait stretched now and then by the turnaround",
         BACKOFF_AT_STORE, retried(11.1, 11.4, 11.6, 11.95).build(), FAIL, says("not longer than the one before")),
    Case("waits growing by 1.2 x per retry are not a backoff that doubles",
         BACKOFF_AT_STORE, retried(11.1, 11.3, 11.54, 11.828).build(), FAIL, measured_has(growth=1.2)),
    Case("a gap shorter than the one before, however large the growth overall",
         BACKOFF_AT_STORE, retried(11.1, 11.3, 12.1, 12.6).build(), FAIL, says("not longer than the one before")),
    Case("retried too few times",
         BACKOFF_AT_STORE, retried(11.1, 11.3).build(), FAIL),
    Case("writes and other objects are not attempts",
         BACKOFF_AT_STORE, retried(11.1, 11.3, 11.7, 12.5).gateway_request(11.2, f"/evidence-bucket/{OBJECT}",
                                                                            method="PUT")
         .gateway_request(11.4, "/evidence-bucket/evidence/pack-b.tar").build(), PASS),
    Case("requests outside the publish are not its attempts",
         BACKOFF_AT_STORE, retried(11.1, 11.3, 11.7, 12.5).gateway_request(18.5, f"/evidence-bucket/{OBJECT}")
         .build(), PASS),
    Case("an immediate retry (no wait at all) is not a backoff",
         BACKOFF_AT_STORE, retried(11.1, 11.1, 11.5, 12.3).build(), FAIL, None),
    Case("the store saw no attempt",
         BACKOFF_AT_STORE, retried().build(), UNKNOWN),
    Case("no publish of the pack while the store failed",
         BACKOFF_AT_STORE, publish_pack(store_out(), 21.0).gateway_request(21.05, f"/evidence-bucket/{OBJECT}")
         .build(), UNKNOWN),
    Case("no inject event",
         BACKOFF_AT_STORE, publish_pack(H(), 11.0, ok=False, detail=BLOCKED).build(), UNKNOWN),
]


def impact_read(*rows: dict, t: float = 15.0) -> H:
    return read_events(store_out(), t, "ImpactRecorded", *rows)


def impact(intent_id: int, t: float, what: str = "publish blocked") -> dict:
    return row("ImpactRecorded", intent_id=intent_id, payload={"Impact": what}, t=t)


CASES[ImpactRecorded] = [
    Case("Impact = publish blocked recorded for the refused intent",
         ImpactRecorded(OUT, 7), impact_read(impact(7, 11.0)).build(), PASS, measured({"ImpactRecorded": 1})),
    Case("no Impact event for the refused intent",
         ImpactRecorded(OUT, 7), impact_read(impact(8, 11.0)).build(), FAIL),
    Case("another Impact",
         ImpactRecorded(OUT, 7), impact_read(impact(7, 11.0, "degraded")).build(), FAIL),
    Case("an Impact event from before the fault does not count",
         ImpactRecorded(OUT, 7), impact_read(impact(7, 5.0)).build(), FAIL),
    Case("ImpactRecorded events read only before the fault",
         ImpactRecorded(OUT, 7), impact_read(impact(7, 4.0), t=5.0).build(), UNKNOWN),
    Case("the read failed",
         ImpactRecorded(OUT, 7), read_events(store_out(), 15.0, "ImpactRecorded", ok=False).build(), UNKNOWN),
    Case("no inject event",
         ImpactRecorded(OUT, 7), read_events(H(), 15.0, "ImpactRecorded", impact(7, 11.0)).build(), UNKNOWN),
]

CASES[PublishedFromValidatedCopy] = [
    Case("the pack with a copy published while the store was out",
         PublishedFromValidatedCopy(OUT, "pack-b"),
         publish_pack(store_out(), 12.0, key="pack-b", detail={"evidence_source": "replica"}).build(), PASS,
         measured_has(evidence_source="replica")),
    Case("the pack with a copy refused",
         PublishedFromValidatedCopy(OUT, "pack-b"),
         publish_pack(store_out(), 12.0, key="pack-b", ok=False, detail=BLOCKED).build(), FAIL),
    Case("the pack with a copy published only after the heal",
         PublishedFromValidatedCopy(OUT, "pack-b"), publish_pack(store_out(), 21.0, key="pack-b").build(), UNKNOWN),
    Case("no inject event",
         PublishedFromValidatedCopy(OUT, "pack-b"), publish_pack(H(), 12.0, key="pack-b").build(), UNKNOWN),
]

CASES[PublishingResumed] = [
    Case("the blocked pack published after the heal",
         PublishingResumed(OUT, "pack-a"), publish_pack(publish_pack(store_out(), 11.0, ok=False, detail=BLOCKED),
                                                        22.0).build(), PASS, measured_has(after_heal_s=2.0)),
    Case("the blocked pack refused again after the heal",
         PublishingResumed(OUT, "pack-a"), publish_pack(store_out(), 22.0, ok=False, detail=BLOCKED).build(), FAIL),
    Case("not published again after the heal",
         PublishingResumed(OUT, "pack-a"), publish_pack(store_out(), 11.0, ok=False, detail=BLOCKED).build(), UNKNOWN),
    Case("the store was never healed",
         PublishingResumed(OUT, "pack-a"), publish_pack(H().inject(OUT, 10.0), 22.0).build(), UNKNOWN),
]


def locks(*objects: tuple, scope: str = "evidence", ok: bool = True) -> H:
    """The harness's HEAD of the objects the drill wrote: (mode, days held after the write) each."""
    value = [{"object_key": f"evidence/{i}/x.json", "region": "primary", "mode": mode,
              "retain_until": None if days is None else wall(5.0) + days * 86400.0, "written_at": wall(5.0)}
             for i, (mode, days) in enumerate(objects)]
    return H().op("store_lock", 30.0, ok=ok, value=value if ok else None, detail={"scope": scope},
                  error="" if ok else "connection refused")


CASES[WormRetention] = [
    Case("every object COMPLIANCE until 2557 days after its write",
         WormRetention(), locks(("COMPLIANCE", 2557), ("COMPLIANCE", 2557.5)).build(), PASS,
         measured_has(objects=2, modes=["COMPLIANCE"], min_retain_days=2557.0)),
    Case("GOVERNANCE for 1 day (the reference Control Plane before issue 24)",
         WormRetention(), locks(("GOVERNANCE", 1)).build(), FAIL, measured_has(not_locked=["evidence/0/x.json"])),
    Case("COMPLIANCE but 90 days only",
         WormRetention(), locks(("COMPLIANCE", 2557), ("COMPLIANCE", 90)).build(), FAIL),
    Case("GOVERNANCE for 7 years (can be lifted by a privileged caller)",
         WormRetention(), locks(("GOVERNANCE", 2557)).build(), FAIL),
    Case("an object with no lock at all",
         WormRetention(), locks(("COMPLIANCE", 2557), (None, None)).build(), FAIL),
    Case("the locks were not read", WormRetention(), H().build(), UNKNOWN),
    Case("the store could not be read", WormRetention(), locks(ok=False).build(), UNKNOWN),
    Case("the drill wrote no object", WormRetention(), locks().build(), UNKNOWN),
    Case("a read of the event-store exports does not judge the evidence objects",
         WormRetention(), locks(("COMPLIANCE", 2557), scope="eventstore").build(), UNKNOWN),
]

RULE1 = ApprovalRefusedWithoutCommittedEvidence("pack-u")
PENDING = {"gate": "EvidencePackState", "error": "approval refused: EvidencePackState = Pending"}


def uncommitted(*, upload_ok: bool = False, approvals: tuple = ((11.5, 409, PENDING), (14.0, 409, PENDING)),
                approved: list[dict] | None = None, state: str = "Draft", reads: bool = True) -> H:
    """While the store is out: intent 9 (key pack-u) created at 11.0, its evidence upload invoked at
    11.2 and answered at 13.0 (refused 503 unless upload_ok), approvals (t, status, detail) (status
    None: no answer), then the harness's reads at 15.0: the scenario's ApprovalRecorded events (rows
    `approved`) and the intent read back (`state`)."""
    h = store_out().op("create_intent", 11.0, value=9, status=201, detail={"uncommitted": "pack-u"})
    h.op("evidence", 11.2, ok=upload_ok, value="pack-u", status=201 if upload_ok else 503, done=13.0,
         detail={"intent_id": 9, **({} if upload_ok else BLOCKED)})
    for t, status, detail in approvals:
        ok = None if status is None else 200 <= status < 300
        h.op("approve", t, ok=ok, value="pack-u", status=status, detail={"intent_id": 9, **(detail or {})},
             error="" if ok else ("ReadTimeout: no answer within 30 s" if status is None else f"{status} refused"))
    if reads:
        read_events(h, 15.0, "ApprovalRecorded", *(approved or []))
        h.op("read_intent", 15.5, value={"state": state, "EvidencePackState": "Pending"}, status=200,
             detail={"intent_id": 9})
    return h


CASES[ApprovalRefusedWithoutCommittedEvidence] = [
    Case("every approval refused 409 naming EvidencePackState, during the upload and after its refusal",
         RULE1, uncommitted().build(), PASS,
         measured_has(approvals=["409 gate EvidencePackState (upload in flight)",
                                 "409 gate EvidencePackState (upload refused 503 cause evidence_store Impact "
                                 "publish blocked)"])),
    Case("an approval acknowledged while the upload was in flight fails, naming the intent",
         RULE1, uncommitted(approvals=((11.5, 200, {"state": "Approved"}), (14.0, 409, PENDING))).build(), FAIL,
         says("intent 9: approval acknowledged")),
    Case("an approval acknowledged after the upload was refused fails",
         RULE1, uncommitted(approvals=((11.5, 409, PENDING), (14.0, 200, {}))).build(), FAIL,
         says("never saw its evidence pack Committed")),
    Case("answered refused, yet an ApprovalRecorded event for the intent is in the event store",
         RULE1, uncommitted(approved=[row("ApprovalRecorded", intent_id=9, t=11.55)]).build(), FAIL,
         says("ApprovalRecorded event(s) for it")),
    Case("answered refused, yet the intent reads back Approved",
         RULE1, uncommitted(state="Approved").build(), FAIL, says("reads back Approved")),
    Case("another intent's ApprovalRecorded does not count against this one",
         RULE1, uncommitted(approved=[row("ApprovalRecorded", intent_id=8, t=5.0)]).build(), PASS),
    Case("a 5xx is not the explicit refusal the rule asks for",
         RULE1, uncommitted(approvals=((11.5, 503, {"cause": "database", "error": "database unavailable"}),)).build(),
         FAIL, says("not a refusal naming EvidencePackState")),
    Case("a 4xx from another gate does not name the rule",
         RULE1, uncommitted(approvals=((11.5, 409, {"gate": "Approval", "error": "refused"}),)).build(), FAIL),
    Case("an approval with no answer is unknown",
         RULE1, uncommitted(approvals=((11.5, 409, PENDING), (14.0, None, {}))).build(), UNKNOWN,
         says("got no answer")),
    Case("an approval with no answer, found recorded afterwards, fails",
         RULE1, uncommitted(approvals=((11.5, None, {}),), approved=[row("ApprovalRecorded", intent_id=9)]).build(),
         FAIL),
    Case("refused, but the event store and the intent were not read afterwards",
         RULE1, uncommitted(reads=False).build(), UNKNOWN, says("not read")),
    Case("the pack was committed before the approval: the rule was not exercised",
         RULE1, uncommitted(upload_ok=True, approvals=((14.0, 200, {}),)).build(), UNKNOWN,
         says("before the evidence pack was committed")),
    Case("no approval asked for", RULE1, uncommitted(approvals=()).build(), UNKNOWN),
    Case("the intent was not created", RULE1, H().op("create_intent", 11.0, ok=False, status=503,
                                                  detail={"uncommitted": "pack-u"}).build(), UNKNOWN),
]


# =============================================================================================
# event store (matrix row 7)
# =============================================================================================

BLOCK = "write-block:eventstore"
ES_DOWN = {"cause": "event_store", "error": "the event store is write-blocked"}


def workload(h: H, times: list[float], *, refused: tuple[float, ...] = (), unrecorded: tuple[float, ...] = (),
             twice: tuple[float, ...] = ()) -> tuple[H, list[dict]]:
    """A write per time (key w<t>); the refused ones answered 503 and have no event, the
    unrecorded ones acknowledged without their event, the twice ones with two. Returns the builder
    and the store's audit rows."""
    rows = []
    for n, t in enumerate(times, start=1):
        key = f"w{t:g}"
        h.op("write", t, ok=t not in refused, value=key, status=503 if t in refused else 201,
             detail={"workload": True})
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
    Case("every attempt persisted exactly once",
         EventStoreWriteSuccess(0.999), write_success_history(seconds(0, 10)), PASS,
         measured(1.0)),
    Case("one attempt in ten without its event",
         EventStoreWriteSuccess(0.999), write_success_history(seconds(0, 10), unrecorded=(4.0,)), FAIL,
         measured(0.9)),
    Case("an event persisted twice is not a success",
         EventStoreWriteSuccess(0.999), write_success_history(seconds(0, 10), twice=(4.0,)), FAIL,
         measured(0.9)),
    Case("a short outage is judged on the hour projected at the pre-fault rate, the drill window reported apart",
         EventStoreWriteSuccess(0.999, fault=BLOCK), write_success_history(seconds(0, 20), 10.0, refused=(15.0,)),
         PASS, lambda r: (measured(pytest.approx(3600 / 3601, abs=1e-6))(r),
                          says("observed in the drill window: 19 of 20 attempts persisted, 95.0000%")(r))),
    Case("a long outage fails the projected hour too",
         EventStoreWriteSuccess(0.999, fault=BLOCK), write_success_history(seconds(0, 30), 10.0,
                                                                           refused=tuple(seconds(15, 25))),
         FAIL, says("(judged)")),
    Case("without a pre-fault sample the projection is the drill window alone",
         EventStoreWriteSuccess(0.999, fault=BLOCK), write_success_history(seconds(1, 21), 0.0, refused=(15.0,)),
         FAIL, lambda r: (measured(0.95)(r), says("the projection is the drill window alone")(r))),
    Case("each clock hour is judged apart",
         EventStoreWriteSuccess(0.999), write_success_history(seconds(3590, 3610), unrecorded=(3605.0,)), FAIL,
         says("projected hour 2026-01-05T11:00Z: 90.0000% (judged); observed in the drill window: 9 of 10")),
    Case("the audit events were not read",
         EventStoreWriteSuccess(0.999), workload(H(), seconds(0, 10))[0].build(), UNKNOWN),
    Case("no state change attempted",
         EventStoreWriteSuccess(0.999), audit(H(), [created(1, "w1")], 10.0).build(), UNKNOWN),
    Case("only the workload's attempts count: a step's refused setup call does not",
         EventStoreWriteSuccess(0.999), audit(workload(H(), seconds(0, 10))[0]
                                              .op("approve", 3.5, ok=False, status=409, value="w1"),
                                              [created(n, f"w{n - 1}") for n in range(1, 11)], 15.0).build(),
         PASS, says("10 of 10 attempts persisted")),
]

CASES[NoChangeWithoutEvent] = [
    Case("every acknowledged change has its event (a refused one need not)",
         NoChangeWithoutEvent(), audit(*workload(H(), [1.0, 2.0, 3.0], refused=(2.0,)), 10.0).build(), PASS,
         measured(0)),
    Case("an acknowledged write without its event",
         NoChangeWithoutEvent(), audit(*workload(H(), [1.0, 2.0, 3.0], unrecorded=(2.0,)), 10.0).build(), FAIL,
         says("write w2")),
    Case("an acknowledged approval without ApprovalRecorded",
         NoChangeWithoutEvent(), audit(H().op("write", 1.0, value="w1").op("approve", 2.0, value="w1",
                                                                            detail={"intent_id": 1}),
                                       [created(1, "w1")], 10.0).build(), FAIL, says("approve w1")),
    Case("the audit events were not read",
         NoChangeWithoutEvent(), H().op("write", 1.0, value="w1").build(), UNKNOWN),
    Case("no state change attempted",
         NoChangeWithoutEvent(), audit(H(), [], 10.0).build(), UNKNOWN),
]

ROWS = [created(1, "w1"), row("EvidenceCommitted", intent_id=1), row("ApprovalRecorded", intent_id=1),
        row("Published", intent_id=1), created(2, "w2")]
FULL = chain(ROWS)               # the whole chain after the failover: seqs 1-5
BEFORE = FULL[:3]                # what was recorded before the fault


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
    Case("every hash recomputed and linked",
         EventChainVerified(), chain_reads(None, FULL).build(), PASS, measured_has(events=5)),
    Case("a chain with one altered hash",
         EventChainVerified(), chain_reads(None, altered(FULL, 2, hash="0" * 63 + "1")).build(), FAIL,
         measured_has(bad_hashes=[2], broken_links=[3])),
    Case("an event rewritten in place (its hash no longer its content's)",
         EventChainVerified(), chain_reads(None, altered(FULL, 4, payload={"note": "edited"})).build(), FAIL,
         measured_has(bad_hashes=[4], broken_links=[])),
    Case("the chain was not read",
         EventChainVerified(), H().inject(BLOCK, 10.0).build(), UNKNOWN),
    Case("the read of the chain failed",
         EventChainVerified(), chain_reads(None, [], after_ok=False).build(), UNKNOWN),
    Case("linked across the failover boundary",
         EventChainVerified(BLOCK), chain_reads(BEFORE, FULL).build(), PASS,
         measured_has(last_before=3, first_after=4, boundary_linked=True)),
    Case("a chain rewritten after the fault, though valid, does not link to the hash read before it",
         EventChainVerified(BLOCK), chain_reads(BEFORE, rewritten_from(3)).build(), FAIL,
         measured_has(boundary_linked=False, bad_hashes=[], broken_links=[])),
    Case("the chain was not read before the fault",
         EventChainVerified(BLOCK), chain_reads(None, FULL).build(), UNKNOWN),
    Case("no event appended after the fault",
         EventChainVerified(BLOCK), chain_reads(BEFORE, BEFORE).build(), UNKNOWN),
    # issue 24: an empty chain is no pass, and every change the harness saw acknowledged must be in it
    Case("a chain read empty proves nothing",
         EventChainVerified(), chain_reads(None, []).build(), UNKNOWN, says("empty")),
    Case("every change acknowledged before the read has its event in the chain",
         EventChainVerified(), chain_reads(None, FULL).op("write", 1.0, value="w1", status=201)
         .op("evidence", 2.0, value="w1", status=201, detail={"intent_id": 1})
         .op("approve", 3.0, value="w1", status=200, detail={"intent_id": 1}).op("publish", 4.0, value="w1")
         .op("create_intent", 5.0, value="w2", status=201).op("create_intent", 6.0, value=2, status=201)
         .op("write", 31.0, value="w9", status=201).build(), PASS, measured_has(acknowledged=6, missing_events=[])),
    Case("an intent created (the id it answered) without its IntentCreated fails",
         EventChainVerified(), chain_reads(None, FULL).op("create_intent", 6.0, value=7, status=201).build(), FAIL,
         measured_has(missing_events=["create_intent 7 (IntentCreated)"])),
    Case("a write acknowledged before the read, its IntentCreated missing from a valid chain, fails naming it",
         EventChainVerified(), chain_reads(None, FULL).op("write", 1.0, value="w1", status=201)
         .op("write", 20.0, value="w3", status=201).build(), FAIL, says("write w3 (IntentCreated)")),
    Case("an approval acknowledged without its ApprovalRecorded fails",
         EventChainVerified(), chain_reads(None, chain([created(1, "w1"), row("EvidenceCommitted", intent_id=1)]))
         .op("approve", 20.0, status=200, detail={"intent_id": 1}).build(), FAIL,
         measured_has(missing_events=["approve 1 (ApprovalRecorded)"])),
    Case("nothing appended after the fault, but an acknowledged write's event missing: fails",
         EventChainVerified(BLOCK), chain_reads(BEFORE, BEFORE).op("write", 20.0, value="w2", status=201).build(),
         FAIL, says("write w2")),
]

CASES[AuditEventsNotLost] = [
    Case("every event recorded before the fault still there, same hash",
         AuditEventsNotLost(BLOCK), chain_reads(BEFORE, FULL).build(), PASS, measured_has(lost=[], altered=[])),
    Case("an event recorded before the fault missing after it",
         AuditEventsNotLost(BLOCK), chain_reads(BEFORE, [r for r in FULL if r["seq"] != 2]).build(), FAIL,
         measured_has(lost=[2])),
    Case("an event recorded before the fault with another hash after it",
         AuditEventsNotLost(BLOCK), chain_reads(BEFORE, rewritten_from(3)).build(), FAIL, measured_has(altered=[3])),
    Case("the chain was not read before the fault",
         AuditEventsNotLost(BLOCK), chain_reads(None, FULL).build(), UNKNOWN),
    Case("the chain was not read after the fault",
         AuditEventsNotLost(BLOCK), chain_reads(BEFORE, None).build(), UNKNOWN),
]

CASES[AuditEventsNotDuplicated] = [
    Case("no seq or hash twice",
         AuditEventsNotDuplicated(BLOCK), chain_reads(BEFORE, FULL).build(), PASS, measured_has(duplicated=[])),
    Case("an event appears twice after the failover",
         AuditEventsNotDuplicated(BLOCK), chain_reads(BEFORE, FULL + [FULL[2]]).build(), FAIL, says("seq 3")),
    Case("the chain was not read after the fault",
         AuditEventsNotDuplicated(BLOCK), chain_reads(BEFORE, None).build(), UNKNOWN),
    Case("the read after the fault failed",
         AuditEventsNotDuplicated(BLOCK), chain_reads(BEFORE, [], after_ok=False).build(), UNKNOWN),
]


def blocked() -> H:
    """The event store write-blocked at 10; the blocked primary fenced at 15, clients reconnected at 16."""
    return H().inject(BLOCK, 10.0).failover("fence", 15.0, name="pg-a").failover("reconnect", 16.0)


CASES[PublishRefusedWhileStoreBlocked] = [
    Case("a publish refused with 503 naming the event store",
         PublishRefusedWhileStoreBlocked(BLOCK), blocked().op("publish", 11.0, ok=False, status=503, detail=ES_DOWN)
         .build(), PASS),
    Case("a publish accepted while the store was blocked",
         PublishRefusedWhileStoreBlocked(BLOCK), blocked().op("publish", 11.0, status=201).build(), FAIL),
    Case("a refusal naming another cause",
         PublishRefusedWhileStoreBlocked(BLOCK), blocked().op("publish", 11.0, ok=False, status=503,
                                                              detail={"cause": "database"}).build(), FAIL),
    Case("the block ends at the fence, before the reconnect",
         PublishRefusedWhileStoreBlocked(BLOCK), blocked().op("publish", 11.0, ok=False, status=503, detail=ES_DOWN)
         .op("publish", 15.5, status=201).build(), PASS),
    Case("a publish straddling the fence is not judged",
         PublishRefusedWhileStoreBlocked(BLOCK), blocked().op("publish", 11.0, ok=False, status=503, detail=ES_DOWN)
         .op("publish", 14.8, status=201, done=15.3).build(), PASS),
    Case("a publish made only after the failover says nothing",
         PublishRefusedWhileStoreBlocked(BLOCK), blocked().op("publish", 17.0, status=201).build(), UNKNOWN),
    Case("no inject event",
         PublishRefusedWhileStoreBlocked(BLOCK), H().op("publish", 11.0, status=201).build(), UNKNOWN),
]

CASES[PublishAcceptedOnlyWhenStoreHealthy] = [
    Case("refused while blocked, accepted after the fence",
         PublishAcceptedOnlyWhenStoreHealthy(BLOCK), blocked().op("publish", 11.0, ok=False, status=503, detail=ES_DOWN)
         .op("publish", 17.0, status=201).build(), PASS,
         measured({"accepted_while_blocked": 0, "first_accepted_after_s": 7.1, "store_healthy_after_s": 5.0})),
    Case("the store is healthy from the fence, before the reconnect",
         PublishAcceptedOnlyWhenStoreHealthy(BLOCK), blocked().op("publish", 15.5, status=201).build(), PASS),
    Case("a publish accepted while the store was blocked",
         PublishAcceptedOnlyWhenStoreHealthy(BLOCK), blocked().op("publish", 11.0, status=201)
         .op("publish", 17.0, status=201).build(), FAIL, measured_has(accepted_while_blocked=1)),
    Case("publishing refused after the store recovered",
         PublishAcceptedOnlyWhenStoreHealthy(BLOCK), blocked().op("publish", 17.0, ok=False, status=503, detail=ES_DOWN)
         .build(), FAIL),
    Case("no publish attempted after the store recovered",
         PublishAcceptedOnlyWhenStoreHealthy(BLOCK), blocked().op("publish", 11.0, ok=False, status=503, detail=ES_DOWN)
         .build(), UNKNOWN, None),
    Case("the store never recovered before the scenario ended",
         PublishAcceptedOnlyWhenStoreHealthy(BLOCK), H().inject(BLOCK, 10.0)
         .op("publish", 11.0, ok=False, status=503, detail=ES_DOWN).build(), UNKNOWN),
    Case("no inject event",
         PublishAcceptedOnlyWhenStoreHealthy(BLOCK), H().op("publish", 17.0, status=201).build(), UNKNOWN),
]


def failover_after_block(cause: str = "event_store_write_blocked", fence_at: float | None = 12.0,
                         promote_at: float = 13.0) -> H:
    h = H().inject(BLOCK, 10.0).failover("detect", 11.0, name="pg-a", cause=cause)
    if fence_at is not None:
        h.failover("fence", fence_at, name="pg-a")
    return h.failover("promote", promote_at).failover("reconnect", promote_at + 1)


CASES[FailoverCause] = [
    Case("triggered by the write-blocked store, the old primary fenced before the promote",
         FailoverCause(BLOCK), failover_after_block().build(), PASS,
         measured({"detect_cause": "event_store_write_blocked", "fenced": "pg-a"})),
    Case("triggered by another cause",
         FailoverCause(BLOCK), failover_after_block(cause="primary_unreachable").build(), FAIL),
    Case("promoted before the old primary was fenced",
         FailoverCause(BLOCK), failover_after_block(fence_at=14.0).build(), FAIL),
    Case("the old primary never fenced",
         FailoverCause(BLOCK), failover_after_block(fence_at=None).build(), FAIL),
    Case("no failover detected",
         FailoverCause(BLOCK), H().inject(BLOCK, 10.0).build(), FAIL, says("no failover")),
    Case("no inject event",
         FailoverCause(BLOCK), H().failover("detect", 11.0, cause="event_store_write_blocked").build(), UNKNOWN),
]


def lab_events() -> H:
    """The fault journal's inject and heal (forwarded by the harness, each with its event id), and
    the failover the harness observed (the failover manager's promote, recorded only: no event id)."""
    return (H().inject(BLOCK, 10.0, event_id="ev-1", forwarded=True).failover("promote", 15.0)
            .heal(BLOCK, 20.0, event_id="ev-3", forwarded=True))


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
    return chain([row("IntentCreated", intent_id=intent, payload={"idempotency_key": key}),
                  *(row(t, intent_id=intent) for t in ("EvidenceCommitted", "ApprovalRecorded", "Published"))])


def siem_of(rows: list[dict], skip: str = "") -> list[dict]:
    """The SIEM lines of stored audit events (by hash), less those of type `skip`."""
    return [{"type": r["type"], "intent_id": r["intent_id"], "correlation_id": r["correlation_id"],
             "hash": r["hash"]} for r in rows if r["type"] != skip]


def manager_rows(*kinds_at: tuple[str, float], cid: str = MANAGER_CID) -> list[dict]:
    """DrillEvents the lab's failover manager posted itself (not the harness), at history times."""
    return [row("DrillEvent", correlation_id=cid, payload={"event_id": f"fm-{kind}", "kind": kind, "name": "pg-b",
                                                            "at": wall(t), "emitter": "failover-manager"})
            for kind, t in kinds_at]


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


def rule2(*, ops: bool = True, store_skip: str = "", siem_skip: str = "", manager: bool = True,
          manager_siem: bool = True, forwarded_store: tuple = FORWARDED_IDS, siem: bool = True,
          history: H | None = None) -> History:
    """A database failover scenario: the drill's operations, the lab's events, the reads."""
    h = audit_ops(history or lab_events()) if ops else (history or lab_events())
    audit = [r for r in audit_rows() if r["type"] != store_skip] if ops else []
    deployment = manager_rows(("detect", 14.0), ("promote", 15.0), ("reconnect", 15.5)) if manager else []
    manager_lines = siem_rows(*(r["payload"]["event_id"] for r in deployment), cid=MANAGER_CID)
    siem_lines = siem_of(audit, siem_skip) + siem_rows(*FORWARDED_IDS) + (manager_lines if manager_siem else [])
    return delivered(h, audit + drill_rows(*forwarded_store), siem_lines if siem else None,
                     deployment + drill_rows(*FORWARDED_IDS)).build()


CASES[CorrelationIdsRecorded] = [
    Case("every acknowledged operation's audit event and the failover manager's own events in the store and "
         "the SIEM; the forwarded ones counted apart",
         CorrelationIdsRecorded(), rule2(), PASS,
         measured_has(deployment_audit_events_checked=4, deployment_failover_events_checked=3,
                      forwarded_events_delivered=2, missing_in_event_store=[], missing_in_siem=[],
                      failovers_observed=1, failovers_not_logged_by_deployment=[])),
    Case("only events the harness forwarded: the deployment logged none",
         CorrelationIdsRecorded(), rule2(ops=False, manager=False, history=H().inject(BLOCK, 10.0, event_id="ev-1",
                                                                                       forwarded=True)
                                         .heal(BLOCK, 20.0, event_id="ev-3", forwarded=True)),
         UNKNOWN, says("only events the harness forwarded")),
    Case("an acknowledged approval whose audit event is missing from the SIEM",
         CorrelationIdsRecorded(), rule2(siem_skip="ApprovalRecorded"), FAIL,
         measured_has(missing_in_siem=["approve k1 (ApprovalRecorded)"])),
    Case("an acknowledged publish whose audit event is not in the store (under this correlation id)",
         CorrelationIdsRecorded(), rule2(store_skip="Published"), FAIL, says("publish k1 (Published)")),
    Case("a failover the harness observed, and the deployment logged nothing for it",
         CorrelationIdsRecorded(), rule2(manager=False), FAIL, says("promote pg-b")),
    Case("a failover logged only by the harness's forwarder (an external target's adapter) is not the "
         "deployment's log",
         CorrelationIdsRecorded(),
         rule2(manager=False, history=lab_events().event("promote", "pg-b", 15.2, source="failover-controller",
                                                         event_id="ev-2", forwarded=True),
               forwarded_store=(*FORWARDED_IDS, "ev-2")), FAIL, says("logged no event")),
    Case("the failover manager's event missing from the SIEM",
         CorrelationIdsRecorded(), rule2(manager_siem=False), FAIL, says("promote:pg-b")),
    Case("the failover manager's event without a correlation id",
         CorrelationIdsRecorded(),
         delivered(audit_ops(lab_events()), audit_rows() + drill_rows(*FORWARDED_IDS),
                   siem_of(audit_rows()) + siem_rows(*FORWARDED_IDS, "fm-promote", cid=""),
                   manager_rows(("promote", 15.0), cid="")).build(), FAIL, says("no correlation id")),
    Case("an operation whose outcome was indefinite is excluded, and counted",
         CorrelationIdsRecorded(), rule2(history=lab_events().op("write", 5.0, ok=None, value="k9")), PASS,
         measured_has(indefinite_operations_excluded=1, deployment_audit_events_checked=4)),
    Case("a write the store lost (the final read misses it) is data loss, judged by lost_writes, not rule 2",
         CorrelationIdsRecorded(), rule2(history=lab_events().op("write", 5.0, value="k8")
                                         .op("final_read", 29.0, value=["k1"])), PASS,
         measured_has(lost_operations_excluded=1)),
    Case("an approval acknowledged before a restore from backup rewound the store is the backup's loss",
         CorrelationIdsRecorded(), rule2(store_skip="ApprovalRecorded",
                                         history=lab_events().event("restore_done", "snap-1", 8.0, source="restore")),
         PASS, measured_has(lost_operations_excluded=1, deployment_audit_events_checked=3)),
    Case("an approval acknowledged after the restore must have its event",
         CorrelationIdsRecorded(), rule2(store_skip="ApprovalRecorded",
                                         history=lab_events().event("restore_done", "snap-1", 1.0, source="restore")),
         FAIL, says("approve k1")),
    Case("harness markers and lab logs are not required",
         CorrelationIdsRecorded(), rule2(history=lab_events().event("checkpoint", "look", 12.0, event_id="ev-9")
                                         .platform_request("intune", 13.0, key="k1", status=200)), PASS),
    Case("a forwarded event twice in the event store",
         CorrelationIdsRecorded(), rule2(forwarded_store=(*FORWARDED_IDS, "ev-1")), FAIL, says("2 times")),
    Case("a forwarded event recorded under another correlation id",
         CorrelationIdsRecorded(),
         delivered(audit_ops(lab_events()), audit_rows() + drill_rows("ev-1") + drill_rows("ev-3", cid="other"),
                   siem_of(audit_rows()) + siem_rows(*FORWARDED_IDS) + siem_rows("fm-promote", cid=MANAGER_CID),
                   manager_rows(("promote", 15.0))).build(), FAIL, says("heal")),
    Case("the store misses one while the SIEM cannot be read",
         CorrelationIdsRecorded(), rule2(store_skip="Published", siem=False), FAIL),
    Case("the store holds every event but the SIEM cannot be read",
         CorrelationIdsRecorded(), rule2(siem=False), UNKNOWN),
    Case("the event store was not read",
         CorrelationIdsRecorded(), delivered(lab_events(), None, siem_rows(*FORWARDED_IDS), []).build(), UNKNOWN),
    Case("nothing acknowledged and nothing emitted",
         CorrelationIdsRecorded(), delivered(H().inject(BLOCK, 10.0), [], [], []).build(), UNKNOWN),
]


# =============================================================================================
# steady state and the journal
# =============================================================================================

CASES[SteadyState] = [
    Case("every probe green before the first injection",
         SteadyState("before"), H().steady_state("before", 1.0, replicas=True, ServiceHealth=True)
         .inject(KILL, 10.0).build(), PASS, measured("green")),
    Case("a probe red before the first injection",
         SteadyState("before"), H().steady_state("before", 1.0, replicas=False, ServiceHealth=True)
         .inject(KILL, 10.0).build(), FAIL, measured({"replicas": "red"})),
    Case("the latest check before the fault is the one judged",
         SteadyState("before"), H().steady_state("before", 1.0, replicas=False)
         .steady_state("before", 3.0, replicas=True).inject(KILL, 10.0).build(), PASS),
    Case("a check after the first injection is not the hypothesis before it",
         SteadyState("before"), H().inject(KILL, 10.0).steady_state("before", 12.0, replicas=True).build(), UNKNOWN),
    Case("every probe green again after every heal",
         SteadyState("after"), H().inject(KILL, 10.0).heal(KILL, 20.0).steady_state("after", 25.0, replicas=True)
         .build(), PASS),
    Case("a probe still red after every heal",
         SteadyState("after"), H().inject(KILL, 10.0).heal(KILL, 20.0).steady_state("after", 25.0, replicas=False)
         .build(), FAIL, measured({"replicas": "red"})),
    Case("a check before the last heal is not after every heal",
         SteadyState("after"), H().inject("a", 10.0).inject("b", 12.0).heal("a", 20.0)
         .steady_state("after", 22.0, replicas=True).heal("b", 30.0).build(), UNKNOWN),
    Case("a check while a fault is still active is not after every heal",
         SteadyState("after"), H().inject("a", 10.0).inject("b", 12.0).heal("a", 20.0)
         .steady_state("after", 22.0, replicas=True).build(), UNKNOWN, None),
    Case("the steady state was not checked before the faults",
         SteadyState("before"), H().inject(KILL, 10.0).build(), UNKNOWN),
]

CASES[FaultsHealed] = [
    Case("every fault injected was healed",
         FaultsHealed(), H().inject("a", 10.0).inject("b", 12.0).heal("b", 20.0).heal("a", 21.0).build(), PASS,
         measured({"injected": 2, "not_healed": []})),
    Case("a fault left behind",
         FaultsHealed(), H().inject("a", 10.0).inject("b", 12.0).heal("a", 21.0).build(), FAIL,
         measured_has(not_healed=["b"])),
    Case("a failed heal is not a heal",
         FaultsHealed(), H().inject("a", 10.0).event("heal_failed", "a", 20.0, source="journal").build(), FAIL),
    Case("a label injected twice and healed once leaves one fault behind",
         FaultsHealed(), H().inject("a", 10.0).heal("a", 20.0).inject("a", 30.0).build(), FAIL, None),
    Case("no fault injected proves nothing (the dry run says why)",
         FaultsHealed("dry run, no fault injected: lab interlock"), H().steady_state("before", 1.0, replicas=True)
         .build(), UNKNOWN, says("dry run")),
]


# ---- post-failover validation ---------------------------------------------------------------

from harness.gates.validation import (  # noqa: E402
    ApprovalCountOnDr,
    EventCountGrowth,
    FailoverEventsInSiem,
    MetadataTablesInSync,
    ServicesReady,
)

UP = {"database": "up", "event_store": "up", "evidence_store": "up", "api_tier": "up"}


def services(t: float, said: str = "Healthy", parts: dict | None = None, checks: dict | None = None,
             ok: bool = True) -> H:
    return H().op("services", t, ok=ok, value={"ServiceHealth": said, "components": parts or UP,
                                              "lab_checks": checks or {"replication": [True, "streaming"]}})


TABLES = {"intents": [10, "a1"], "events": [40, "b2"]}

CASES[ServicesReady] = [
    Case("Healthy, every part up, the lab's checks green",
         ServicesReady(), services(1.0).build(), PASS),
    Case("an evidence store answering from the alternate region only still serves",
         ServicesReady(), services(1.0, parts={**UP, "evidence_store": "degraded"}).build(), PASS),
    Case("ServiceHealth Unhealthy after the failover",
         ServicesReady(), services(1.0, "Unhealthy", {**UP, "database": "down"}).build(), FAIL,
         measured_has(parts_down={"database": "down"})),
    Case("the replica not streaming again",
         ServicesReady(), services(1.0, checks={"replication": [False, "pg-b: not connected"]}).build(), FAIL),
    Case("the services were not read",
         ServicesReady(), H().build(), UNKNOWN),
]

CASES[MetadataTablesInSync] = [
    Case("every table equal on both copies",
         MetadataTablesInSync(), H().op("table_checksums", 1.0, value={"primary": TABLES, "dr": dict(TABLES)},
                                        detail={"primary_node": "pg-a", "dr_node": "pg-b"}).build(), PASS),
    Case("one table differs on the DR copy",
         MetadataTablesInSync(), H().op("table_checksums", 1.0, value={"primary": TABLES,
                                                                       "dr": {**TABLES, "events": [39, "ff"]}})
         .build(), FAIL, measured_has(differ=["events"])),
    Case("a table missing on the DR copy",
         MetadataTablesInSync(), H().op("table_checksums", 1.0, value={"primary": TABLES, "dr": {"intents": [10, "a1"]}})
         .build(), FAIL),
    Case("the DR copy could not be read",
         MetadataTablesInSync(), H().op("table_checksums", 1.0, ok=None, error="pg-b: connection refused").build(),
         UNKNOWN),
]

CASES[EventCountGrowth] = [
    Case("the probe writes' events appended",
         EventCountGrowth(5), H().op("event_growth", 1.0, value={"before": 100, "after": 105, "window_s": 3.0}).build(),
         PASS, measured({"appended": 5, "window_s": 3.0})),
    Case("fewer events than the threshold after the failover",
         EventCountGrowth(5), H().op("event_growth", 1.0, value={"before": 100, "after": 102, "window_s": 3.0}).build(),
         FAIL),
    Case("the event store was not read",
         EventCountGrowth(5), H().build(), UNKNOWN),
]

CASES[ApprovalCountOnDr] = [
    Case("equal on both copies",
         ApprovalCountOnDr(), H().op("approval_counts", 1.0, value={"primary": 12, "dr": 12}).build(), PASS),
    Case("the DR copy misses an approval",
         ApprovalCountOnDr(), H().op("approval_counts", 1.0, value={"primary": 12, "dr": 11}).build(), FAIL),
    Case("not read",
         ApprovalCountOnDr(), H().op("approval_counts", 1.0, ok=None, error="timeout").build(), UNKNOWN),
]


def drill_event_rows(*ids: str) -> list[dict]:
    return [{"seq": n, "correlation_id": CID, "payload": {"event_id": i, "kind": "inject", "name": f"f{n}"}}
            for n, i in enumerate(ids, start=1)]


CASES[FailoverEventsInSiem] = [
    Case("every failover event of the store in the SIEM",
         FailoverEventsInSiem(), H().op("validate_drill_events", 1.0, value=drill_event_rows("e1", "e2"))
         .op("validate_siem", 2.0, value=[{"event_id": "e1", "correlation_id": CID},
                                          {"event_id": "e2", "correlation_id": CID}]).build(), PASS),
    Case("one missing in the SIEM",
         FailoverEventsInSiem(), H().op("validate_drill_events", 1.0, value=drill_event_rows("e1", "e2"))
         .op("validate_siem", 2.0, value=[{"event_id": "e1", "correlation_id": CID}]).build(), FAIL,
         measured_has(missing_in_siem=["inject:f2"])),
    Case("the SIEM not readable",
         FailoverEventsInSiem(), H().op("validate_drill_events", 1.0, value=drill_event_rows("e1"))
         .op("validate_siem", 2.0, ok=None, error="no SIEM").build(), UNKNOWN),
    Case("no failover event in the store proves nothing",
         FailoverEventsInSiem(), H().op("validate_drill_events", 1.0, value=[]).op("validate_siem", 2.0, value=[])
         .build(), UNKNOWN),
]


# ---- smoke verification after a failover ----------------------------------------------------

from harness.gates.evidence import SmokeVerified  # noqa: E402

SMOKE_CID = f"{CID}/smoke"


def smoke(*, evidence_ok: bool = True, ingested: bool = True, events=("IntentCreated", "EvidenceCommitted"),
          siem=("IntentCreated", "EvidenceCommitted"), read_back: bool = True) -> History:
    h = H().op("create_intent", 1.0, value=7, status=201, correlation_id=SMOKE_CID, detail={"smoke": "smoke-1"})
    h.op("evidence", 2.0, ok=evidence_ok, value="smoke-1", status=201 if evidence_ok else 503,
         correlation_id=SMOKE_CID, detail={"smoke": "smoke-1", "intent_id": 7})
    if read_back:
        h.op("store_read", 3.0, value="abc" if ingested else None, detail={"key": "smoke-1", "expected": "abc"})
        h.op("read_events", 4.0, value=[{"type": t, "correlation_id": SMOKE_CID} for t in events],
             detail={"correlation_id": SMOKE_CID})
        h.op("read_siem_smoke", 5.0, value=[{"type": t, "correlation_id": SMOKE_CID} for t in siem])
    return h.build()


CASES[SmokeVerified] = [
    Case("accepted, ingested, captured in the store and the SIEM",
         SmokeVerified("smoke-1", SMOKE_CID), smoke(), PASS, measured_has(ingested=True)),
    Case("the evidence pack was not ingested",
         SmokeVerified("smoke-1", SMOKE_CID), smoke(ingested=False), FAIL),
    Case("the evidence commit was refused",
         SmokeVerified("smoke-1", SMOKE_CID), smoke(evidence_ok=False), FAIL),
    Case("the correlation id never reached the SIEM",
         SmokeVerified("smoke-1", SMOKE_CID), smoke(siem=("IntentCreated",)), FAIL),
    Case("the event store lacks the evidence event",
         SmokeVerified("smoke-1", SMOKE_CID), smoke(events=("IntentCreated",)), FAIL),
    Case("nothing was read back",
         SmokeVerified("smoke-1", SMOKE_CID), smoke(read_back=False), UNKNOWN),
]


# =============================================================================================
# backup and restore
# =============================================================================================

from harness.gates.backup import (  # noqa: E402
    BackupRpo,
    CorruptSnapshotRefused,
    CrossRegionExportsTaken,
    DailyInventory,
    HourlySnapshotsTaken,
    KeyRecoveredFromSoftDelete,
    PublishAcceptedAfterFreshSnapshot,
    PublishRefusedWhileBackupStale,
    ReplayedExactlyOnce,
    RestoredDataValid,
    RetentionApplied,
    SnapshotVerifiedBeforeRestore,
)

HOUR, DAY = 3600.0, 86400.0
T0 = 1_800_000_000.0 - 1_800_000_000.0 % HOUR      # a clock hour on the Control Plane's clock
TABLES = {"intents": 40, "approvals": 10, "events": 90}
HEAD = {"last_seq": 90, "last_hash": "h90"}


def snap(sid: str, taken_at: float, kind: str = "hourly", *, intact: bool = True, retain_until=None,
         bucket: str | None = None) -> dict:
    bucket = bucket or ("backups-dr" if kind == "export" else "backups")
    if kind == "export" and retain_until is None:
        retain_until = taken_at + 90 * DAY
    return {"snapshot_id": sid, "kind": kind, "bucket": bucket, "taken_at": taken_at, "intact": intact,
            "mismatches": [] if intact else [f"snapshots/{sid}/dump.enc: size 10 != manifest 99 (truncated)"],
            "retain_until": retain_until, "tables": dict(TABLES), "chain": dict(HEAD), "approvals": 10}


def catalogue(h: H, t: float, phase: str, cp_now: float, snaps: list[dict], ok: bool = True) -> H:
    return h.op("backup_catalogue", t, ok=ok, value=snaps if ok else None, detail={"phase": phase, "cp_now": cp_now},
                error="" if ok else "the backup store did not answer")


def hourly_run(hours: int = 26, skip: int | None = None, corrupt: int | None = None) -> list[dict]:
    return [snap(f"h{i}", T0 + i * HOUR + 5, intact=i != corrupt) for i in range(hours) if i != skip]


def exports(*days: int, lock_days: float = 90) -> list[dict]:
    return [snap(f"x{d}", T0 + d * DAY + 6, "export", retain_until=T0 + d * DAY + 6 + lock_days * DAY) for d in days]


WINDOW = (T0 + 30, T0 + 25 * HOUR + 30)

CASES[HourlySnapshotsTaken] = [
    Case("a snapshot in every clock hour of the window, all intact",
         HourlySnapshotsTaken(*WINDOW), catalogue(H(), 1.0, "schedule", WINDOW[1], hourly_run()).build(), PASS,
         measured_has(hours=26, snapshots=26, missing_hours=[])),
    Case("an hour without a snapshot",
         HourlySnapshotsTaken(*WINDOW), catalogue(H(), 1.0, "schedule", WINDOW[1], hourly_run(skip=7)).build(), FAIL,
         says("T15:00Z")),
    Case("a snapshot whose object does not match its manifest",
         HourlySnapshotsTaken(*WINDOW), catalogue(H(), 1.0, "schedule", WINDOW[1], hourly_run(corrupt=3)).build(),
         FAIL, measured_has(not_intact=["h3"])),
    Case("the store was not read",
         HourlySnapshotsTaken(*WINDOW), H().build(), UNKNOWN),
    Case("the store could not be read",
         HourlySnapshotsTaken(*WINDOW), catalogue(H(), 1.0, "schedule", WINDOW[1], [], ok=False).build(), UNKNOWN),
]

CASES[CrossRegionExportsTaken] = [
    Case("an export at the start and 24 h later, each locked 90 days",
         CrossRegionExportsTaken(*WINDOW), catalogue(H(), 1.0, "schedule", WINDOW[1], hourly_run() + exports(0, 1))
         .build(), PASS, measured_has(exports=2, min_lock_days=90.0)),
    Case("no export after the first day: a gap longer than 24 h",
         CrossRegionExportsTaken(T0 + 30, T0 + 50 * HOUR), catalogue(H(), 1.0, "schedule", T0 + 50 * HOUR,
                                                                     exports(0)).build(), FAIL),
    Case("an export locked for less than 90 days",
         CrossRegionExportsTaken(*WINDOW), catalogue(H(), 1.0, "schedule", WINDOW[1], exports(0, lock_days=30) +
                                                     exports(1)).build(), FAIL, measured_has(short_locks=["x0"])),
    Case("an export never locked",
         CrossRegionExportsTaken(*WINDOW), catalogue(H(), 1.0, "schedule", WINDOW[1],
                                                     [dict(exports(0)[0], retain_until=None)] + exports(1)).build(),
         FAIL),
    Case("no export at all",
         CrossRegionExportsTaken(*WINDOW), catalogue(H(), 1.0, "schedule", WINDOW[1], hourly_run()).build(), FAIL),
    Case("the store was not read",
         CrossRegionExportsTaken(*WINDOW), H().build(), UNKNOWN),
]

JUMP_NOW = T0 + 7 * DAY + 12.5 * HOUR     # h0..h12 are older than 7 days, h13..h25 younger


def retention(after: list[dict], *, attempt: dict | None = None) -> History:
    h = catalogue(H(), 1.0, "schedule", WINDOW[1], hourly_run() + exports(0, 1))
    catalogue(h, 5.0, "retention", JUMP_NOW, after)
    if attempt is not None:
        h.op("export_delete_attempt", 6.0, value=attempt)
    return h.build()


KEPT = [s for s in hourly_run() if JUMP_NOW - s["taken_at"] < 7 * DAY] + exports(0, 1)
REFUSED = {"snapshot_id": "x0", "deleted": False, "error": "AccessDenied"}

CASES[RetentionApplied] = [
    Case("hourly snapshots past 7 days deleted, younger kept, exports kept, their deletion refused",
         RetentionApplied(), retention(KEPT, attempt=REFUSED), PASS, measured_has(expired_kept=[], young_deleted=[])),
    Case("an hourly snapshot past 7 days is still there",
         RetentionApplied(), retention(KEPT + hourly_run()[:1], attempt=REFUSED), FAIL, measured_has(expired_kept=["h0"])),
    Case("a snapshot younger than 7 days was deleted",
         RetentionApplied(), retention([s for s in KEPT if s["snapshot_id"] != "h20"], attempt=REFUSED), FAIL,
         measured_has(young_deleted=["h20"])),
    Case("a cross-region export younger than 90 days was deleted",
         RetentionApplied(), retention([s for s in KEPT if s["snapshot_id"] != "x0"], attempt=REFUSED), FAIL),
    Case("the store let the harness delete a locked export",
         RetentionApplied(), retention(KEPT, attempt={"snapshot_id": "x0", "deleted": True, "error": None}), FAIL),
    Case("no deletion was attempted",
         RetentionApplied(), retention(KEPT), UNKNOWN),
    Case("the store was not read after the clock moved",
         RetentionApplied(), catalogue(H(), 1.0, "schedule", WINDOW[1], hourly_run()).build(), UNKNOWN),
]


def inventory(*, versions=(("evidence", "a", "v1"), ("evidence", "b", "v2")), listed=None, versioning="Enabled",
              export_sha="s1", written: bool = True) -> History:
    listed = listed if listed is not None else [("evidence", "a", "v1"), ("evidence", "b", "v2")]
    by_bucket: dict = {}
    for bucket, key, version in listed:
        by_bucket.setdefault(bucket, []).append([key, version])
    h = H().op("evidence_versions", 1.0, value={"versioning": {"evidence": versioning, "evidence-replica": "Enabled"},
                                                "versions": by_bucket})
    inv_buckets: dict = {}
    for bucket, key, version in versions:
        inv_buckets.setdefault(bucket, []).append({"key": key, "version_id": version})
    value = {"day": "2027-01-16", "buckets": inv_buckets,
             "eventstore": {"sha256": "s1", "count": 90, "to_seq": 90}} if written else None
    return h.op("inventory_read", 3.0, value=value, detail={"eventstore_sha256": export_sha}).build()


CASES[DailyInventory] = [
    Case("every listed version in the day's inventory, buckets versioned, export intact",
         DailyInventory(), inventory(), PASS, measured_has(missing=[], unversioned=[])),
    Case("a version the harness listed is missing from the inventory",
         DailyInventory(), inventory(versions=(("evidence", "a", "v1"),)), FAIL, measured_has(missing=["evidence/b@v2"])),
    Case("an evidence bucket without versioning",
         DailyInventory(), inventory(versioning="Suspended"), FAIL),
    Case("the event-store export does not match the SHA-256 the inventory records",
         DailyInventory(), inventory(export_sha="other"), FAIL),
    Case("no inventory was written for the day",
         DailyInventory(), inventory(written=False), FAIL),
    Case("nothing was read",
         DailyInventory(), H().build(), UNKNOWN),
]

STALE_NOW = T0 + 30 * HOUR


def backup_publish(phase: str, age_h: float, status: int, cause: str | None = None) -> History:
    h = catalogue(H(), 1.0, phase, STALE_NOW, [snap("h0", STALE_NOW - age_h * HOUR)])
    detail = {"phase": phase, **({"cause": cause} if cause else {})}
    return h.op("publish", 2.0, ok=status < 300, status=status, value="k1", detail=detail).build()


CASES[PublishRefusedWhileBackupStale] = [
    Case("a 25 h old backup: the publish is refused naming the cause backup",
         PublishRefusedWhileBackupStale(), backup_publish("stale", 25, 503, "backup"), PASS),
    Case("a 25 h old backup and the publish was accepted",
         PublishRefusedWhileBackupStale(), backup_publish("stale", 25, 200), FAIL),
    Case("refused, but for another cause",
         PublishRefusedWhileBackupStale(), backup_publish("stale", 25, 503, "database"), FAIL),
    Case("the backup was not stale when the publish was tried",
         PublishRefusedWhileBackupStale(), backup_publish("stale", 2, 503, "backup"), UNKNOWN),
    Case("no publish during the stale backup",
         PublishRefusedWhileBackupStale(), catalogue(H(), 1.0, "stale", STALE_NOW, [snap("h0", T0)]).build(), UNKNOWN),
]

CASES[PublishAcceptedAfterFreshSnapshot] = [
    Case("a fresh snapshot, then the publish is accepted",
         PublishAcceptedAfterFreshSnapshot(), backup_publish("fresh", 0.1, 200), PASS),
    Case("a fresh snapshot and the publish is still refused",
         PublishAcceptedAfterFreshSnapshot(), backup_publish("fresh", 0.1, 503, "backup"), FAIL),
    Case("no fresh snapshot was seen before the publish",
         PublishAcceptedAfterFreshSnapshot(), backup_publish("fresh", 30, 200), UNKNOWN),
]

# ---- restore ---------------------------------------------------------------------------------

LOSS = "database-loss:all"
AT_FAULT = [snap("h1", T0 + 5), snap("h2", T0 + HOUR + 5), snap("h3", T0 + 2 * HOUR + 5)]


def restore(*, verified: list[str] = ("h3",), refused: dict | None = None, rehydrated: str | None = "h3",
            catalogue_snaps: list[dict] = AT_FAULT, cp_now: float = T0 + 2 * HOUR + 600, fault_t: float = 2.0,
            verify_after: bool = False) -> H:
    h = catalogue(H(), 1.0, "at_fault", cp_now, catalogue_snaps).inject(LOSS, fault_t)
    t = 3.0
    for sid, reason in (refused or {}).items():
        h.event("restore_download", "restore", t, source="restore", snapshot_id=sid)
        h.event("restore_refused", "restore", t + 0.1, source="restore", snapshot_id=sid, reason=reason)
        t += 1
    for sid in verified:
        h.event("restore_download", "restore", t, source="restore", snapshot_id=sid)
        if not verify_after:
            h.event("restore_verify", "restore", t + 0.1, source="restore", snapshot_id=sid, ok=True)
        t += 1
    if rehydrated:
        h.event("restore_rehydrate", "restore", t, source="restore", snapshot_id=rehydrated)
        if verify_after:
            h.event("restore_verify", "restore", t + 0.1, source="restore", snapshot_id=rehydrated, ok=True)
        h.event("restore_done", "restore", t + 1, source="restore", snapshot_id=rehydrated)
    return h


CASES[SnapshotVerifiedBeforeRestore] = [
    Case("the newest snapshot verified, then rehydrated",
         SnapshotVerifiedBeforeRestore(), restore().build(), PASS, measured_has(harness_check="intact")),
    Case("rehydrated without a verification (hash check skipped)",
         SnapshotVerifiedBeforeRestore(), restore(verified=[]).build(), FAIL),
    Case("verified only after the rehydrate had begun",
         SnapshotVerifiedBeforeRestore(), restore(verify_after=True).build(), FAIL),
    Case("the restore says it verified a snapshot the harness found corrupted",
         SnapshotVerifiedBeforeRestore(), restore(catalogue_snaps=AT_FAULT[:2] + [snap("h3", T0 + 2 * HOUR + 5,
                                                                                     intact=False)]).build(), FAIL,
         says("truncated")),
    Case("nothing was rehydrated",
         SnapshotVerifiedBeforeRestore(), restore(rehydrated=None).build(), UNKNOWN),
]

CORRUPT_AT_FAULT = AT_FAULT[:2] + [snap("h3", T0 + 2 * HOUR + 5, intact=False)]

CASES[CorruptSnapshotRefused] = [
    Case("the corrupted newest snapshot refused with its reason, the next older restored",
         CorruptSnapshotRefused("h3"), restore(catalogue_snaps=CORRUPT_AT_FAULT, refused={"h3": "sha256 differs"},
                                               verified=["h2"], rehydrated="h2").build(), PASS),
    Case("the corrupted snapshot was restored",
         CorruptSnapshotRefused("h3"), restore(catalogue_snaps=CORRUPT_AT_FAULT).build(), FAIL),
    Case("refused, but an older snapshot than the next intact one was restored",
         CorruptSnapshotRefused("h3"), restore(catalogue_snaps=CORRUPT_AT_FAULT, refused={"h3": "sha256 differs"},
                                               verified=["h1"], rehydrated="h1").build(), FAIL,
         measured_has(expected="h2")),
    Case("nothing restored at all",
         CorruptSnapshotRefused("h3"), restore(catalogue_snaps=CORRUPT_AT_FAULT, refused={"h3": "sha256 differs"},
                                               verified=[], rehydrated=None).build(), FAIL),
    Case("the corrupted snapshot is not in the store",
         CorruptSnapshotRefused("h9"), restore().build(), UNKNOWN),
]


def restored(*, tables=TABLES, verified=True, head=HEAD, approvals=10, missing=(), checked=5) -> History:
    h = restore()
    h.op("restored_data", 9.0, value={"tables": dict(tables), "approvals": approvals,
                                      "chain": {"verified": verified, "events": 90, **head}})
    return h.op("restored_sample", 9.5, value={"checked": checked, "missing": list(missing)}).build()


CASES[RestoredDataValid] = [
    Case("counts, chain head, approvals equal and every sampled intent readable",
         RestoredDataValid(), restored(), PASS),
    Case("a table has fewer rows than at snapshot time",
         RestoredDataValid(), restored(tables={**TABLES, "approvals": 9}), FAIL, measured_has(counts_differ=["approvals"])),
    Case("the hash chain does not verify",
         RestoredDataValid(), restored(verified=False), FAIL),
    Case("the chain ends before the snapshot's head",
         RestoredDataValid(), restored(head={"last_seq": 80, "last_hash": "h80"}), FAIL),
    Case("ApprovalEventCount differs",
         RestoredDataValid(), restored(approvals=9), FAIL),
    Case("an intent written before the snapshot cannot be read through the Control Plane",
         RestoredDataValid(), restored(missing=("k7",)), FAIL),
    Case("no intent was sampled",
         RestoredDataValid(), restored(checked=0), UNKNOWN),
    Case("the restored database was not read",
         RestoredDataValid(), restore().build(), UNKNOWN),
]

CASES[BackupRpo] = [
    Case("the restored snapshot was 10 minutes old at the fault",
         BackupRpo(3600, LOSS), restore(cp_now=T0 + 2 * HOUR + 600, fault_t=1.0 + 5).build(), PASS,
         measured(pytest.approx(600 - 5 + 5))),
    Case("the restored snapshot was older than the target at the fault",
         BackupRpo(300, LOSS), restore().build(), FAIL),
    Case("a corrupted newest snapshot makes the restored one an hour older",
         BackupRpo(3600, LOSS), restore(catalogue_snaps=CORRUPT_AT_FAULT, refused={"h3": "x"}, verified=["h2"],
                                        rehydrated="h2").build(), FAIL),
    Case("no restore after the fault",
         BackupRpo(3600, LOSS), restore(rehydrated=None).build(), UNKNOWN),
]


def key_drill(*, readable_deleted=False, same=True, purged=False) -> History:
    h = H().op("key_read", 1.0, value="fp1", detail={"phase": "before"})
    h.op("key_read", 2.0, ok=readable_deleted, value="fp1" if readable_deleted else None, detail={"phase": "deleted"},
         error="" if readable_deleted else "KeyDeleted")
    h.op("key_read", 3.0, value="fp1" if same else "fp2", detail={"phase": "recovered"})
    return h.op("key_purge", 4.0, ok=purged, error="" if purged else "AccessDenied").build()


CASES[KeyRecoveredFromSoftDelete] = [
    Case("unreadable while deleted, recovered with the same material, purge refused",
         KeyRecoveredFromSoftDelete(), key_drill(), PASS),
    Case("recovered as different key material",
         KeyRecoveredFromSoftDelete(), key_drill(same=False), FAIL),
    Case("the purge of a soft-deleted key succeeded",
         KeyRecoveredFromSoftDelete(), key_drill(purged=True), FAIL),
    Case("the key was still readable after its deletion",
         KeyRecoveredFromSoftDelete(), key_drill(readable_deleted=True), FAIL),
    Case("the key was never read",
         KeyRecoveredFromSoftDelete(), H().build(), UNKNOWN),
]


def replayed(*, applies: dict | None = None, tested=("k1", "k2"), read_back=("k1", "k2"),
             created: dict | None = None, before_replay=(), as_recorded=False) -> History:
    """Restored at 5; replayed (create 9.0, publish 9.5); tested 10.0. before_replay: keys looked
    up at 7.0 only, after the restore but before their replay was published (an original message
    dispatched late), the replay's own dispatch never tested. as_recorded: the creates as the
    runner records them (value: the intent id the answer gave, the key in the detail)."""
    h = restore()
    for n, (key, status) in enumerate((created or {}).items()):  # the replay's create: 201 made again, 200 still there
        if as_recorded:
            h.op("replay_create", 9.0, value=400 + n, status=status, detail={"idempotency_key": key})
        else:
            h.op("replay_create", 9.0, value=key, status=status)
    for key in ("k1", "k2"):
        h.op("replay_publish", 9.5, value=key, status=200)
    for key, n in (applies or {"k1": 1, "k2": 1}).items():
        for i in range(n):
            h.platform_request("landscape", 1.5 + i * 0.01, key=key, status=200)
    for key in tested:
        h.platform_request("landscape", 10.0, key=key, status=200, outcome="tested", path="/applied")
    for key in before_replay:
        h.platform_request("landscape", 7.0, key=key, status=200, outcome="tested", path="/applied")
    return h.op("replay_read", 11.0, value=list(read_back)).build()


CASES[ReplayedExactlyOnce] = [
    Case("each replayed intent back in the store, its key tested, applied once",
         ReplayedExactlyOnce("landscape", ("k1", "k2")), replayed(), PASS),
    Case("a replayed intent applied a second time",
         ReplayedExactlyOnce("landscape", ("k1", "k2")), replayed(applies={"k1": 2, "k2": 1}), FAIL,
         measured_has(applied_twice=["k1"])),
    Case("a replayed intent never applied",
         ReplayedExactlyOnce("landscape", ("k1", "k2")), replayed(applies={"k1": 1}), FAIL),
    Case("a replayed intent missing from the store",
         ReplayedExactlyOnce("landscape", ("k1", "k2")), replayed(read_back=("k1",)), FAIL),
    Case("the connector never tested a key after the restore",
         ReplayedExactlyOnce("landscape", ("k1", "k2")), replayed(tested=("k1",)), FAIL),
    Case("an intent the restored store still had (replay answered 200) is not sent again: no test needed",
         ReplayedExactlyOnce("landscape", ("k1", "k2")), replayed(tested=("k1",), created={"k1": 201, "k2": 200}),
         PASS, measured_has(key_tested=1, still_in_restored_store=1)),
    Case("an intent made again (replay answered 201) whose key was never tested",
         ReplayedExactlyOnce("landscape", ("k1", "k2")), replayed(tested=("k1",), created={"k1": 201, "k2": 201}),
         FAIL),
    Case("a replay the restored store answered 200, as the runner records it (value the intent id): no test needed",
         ReplayedExactlyOnce("landscape", ("k1", "k2")),
         replayed(tested=("k1",), created={"k1": 201, "k2": 200}, as_recorded=True), PASS,
         measured_has(key_tested=1, still_in_restored_store=1)),
    Case("a key looked up after the restore only before its replay was published (the original message): "
         "the replay's own dispatch was never tested",
         ReplayedExactlyOnce("landscape", ("k1", "k2")), replayed(tested=("k1",), before_replay=("k2",)), FAIL,
         measured_has(key_tested=1)),
    Case("nothing was written after the snapshot",
         ReplayedExactlyOnce("landscape", ()), replayed(), UNKNOWN),
]


# =============================================================================================
# ad hoc chaos runs: the stop conditions, judged again from the probes
# =============================================================================================
CASES[ProbeOutageWithinTolerance] = [
    Case("every probe answered",
         ProbeOutageWithinTolerance(2.0), probes(H(), 0.0, 10.0).build(), PASS, measured(0.0)),
    Case("probes failed for 1.5 s in a row, within a 2 s tolerance",
         ProbeOutageWithinTolerance(2.0), probes(H(), 0.0, 10.0, down=(3.0, 4.5)).build(), PASS,
         measured(pytest.approx(1.5))),
    Case("probes failed for 3 s in a row: longer than the tolerance",
         ProbeOutageWithinTolerance(2.0), probes(H(), 0.0, 10.0, down=(3.0, 6.0)).build(), FAIL,
         measured(pytest.approx(3.0))),
    Case("two short outages are not added up: each is within the tolerance",
         ProbeOutageWithinTolerance(2.0), probes(probes(H(), 0.0, 5.0, down=(1.0, 2.5)), 5.0, 10.0,
                                                 down=(6.0, 7.5)).build(), PASS),
    Case("the probes failed until the run ended: the outage runs to the last probe's answer",
         ProbeOutageWithinTolerance(2.0), probes(H(), 0.0, 10.0, down=(7.0, 10.0)).build(), FAIL,
         measured(pytest.approx(2.95))),
    Case("no probe ran",
         ProbeOutageWithinTolerance(2.0), H().build(), UNKNOWN),
]

CASES[ErrorBudgetNotSpent] = [
    Case("1 s of downtime within a 5 s budget",
         ErrorBudgetNotSpent(5.0), probes(H(), 0.0, 10.0, down=(3.0, 4.0)).build(), PASS,
         measured(pytest.approx(1.0))),
    Case("two outages of 3 s add up to more than the 5 s budget",
         ErrorBudgetNotSpent(5.0), probes(probes(H(), 0.0, 5.0, down=(1.0, 4.0)), 5.0, 10.0,
                                          down=(6.0, 9.0)).build(), FAIL, measured(pytest.approx(6.0))),
    Case("no probe ran",
         ErrorBudgetNotSpent(5.0), H().build(), UNKNOWN),
]

CASES[ChaosCompleted] = [
    Case("the fault sequence ran to its end",
         ChaosCompleted(), H().inject("chaos1", 1.0).heal("chaos1", 2.0).event("chaos_end", "seq", 3.0).build(),
         PASS),
    Case("halted by a stop condition: fails with the reason",
         ChaosCompleted(), H().inject("chaos1", 1.0).event("halt", "stop", 2.0, reason="probe failing 11 s")
         .heal("chaos1", 2.1).event("chaos_end", "seq", 3.0).build(), FAIL,
         lambda r: "probe failing 11 s" in r.detail or pytest.fail(r.detail)),
    Case("the run recorded neither its end nor a halt",
         ChaosCompleted(), H().inject("chaos1", 1.0).build(), UNKNOWN),
]
