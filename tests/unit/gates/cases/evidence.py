"""The evidence store (matrix row 3) and the smoke verification after a failover (harness/gates/evidence.py)."""

from __future__ import annotations

from typing import Any

from harness.gates import Gate
from harness.gates.evidence import (
    ApprovalRefusedWithoutCommittedEvidence,
    ImpactRecorded,
    PublishBlockedDuringOutage,
    PublishedFromValidatedCopy,
    PublishingResumed,
    RetryBackoffAtStore,
    SmokeVerified,
    ValidatedCopy,
)
from harness.model import History

from ..builder import CID, H, row
from .common import FAIL, PASS, UNKNOWN, Case, measured, measured_has, says
from .shared import read_events

CASES: dict[type[Gate], list[Case]] = {}


OUT = "store-out:evidence"
SHA, OTHER_SHA = "ab" * 32, "cd" * 32
BLOCKED = {"cause": "evidence_store", "Impact": "publish blocked", "error": "the evidence store is unavailable"}


def store_read(found: str | None, key: str = "pack-b", ok: bool = True) -> H:
    return H().op(
        "store_read", 5.0, ok=ok, value=found, detail={"key": key, "expected": SHA}, error="" if ok else "AccessDenied"
    )


CASES[ValidatedCopy] = [
    Case(
        "a copy with the sha256 of what was sent", ValidatedCopy("pack-b", present=True), store_read(SHA).build(), PASS
    ),
    Case("a copy whose sha256 differs", ValidatedCopy("pack-b", present=True), store_read(OTHER_SHA).build(), FAIL),
    Case("no copy where one must be", ValidatedCopy("pack-b", present=True), store_read(None).build(), FAIL),
    Case(
        "no copy where none must be",
        ValidatedCopy("pack-a", present=False),
        store_read(None, key="pack-a").build(),
        PASS,
    ),
    Case(
        "a copy where none must be", ValidatedCopy("pack-a", present=False), store_read(SHA, key="pack-a").build(), FAIL
    ),
    Case(
        "a read of another pack does not count",
        ValidatedCopy("pack-b", present=True),
        store_read(SHA, key="pack-a").build(),
        UNKNOWN,
    ),
    Case(
        "the alternate bucket could not be read",
        ValidatedCopy("pack-b", present=True),
        store_read(None, ok=False).build(),
        UNKNOWN,
    ),
]


def store_out() -> H:
    """The evidence store out from 10 to 20."""
    return H().inject(OUT, 10.0).heal(OUT, 20.0)


def publish_pack(h: H, t: float, key: str = "pack-a", ok: bool = True, detail: dict | None = None, **kw: Any) -> H:
    return h.op("publish", t, ok=ok, value=key, status=201 if ok else 503, detail=detail, **kw)


CASES[PublishBlockedDuringOutage] = [
    Case(
        "refused with 503, cause evidence_store, Impact = publish blocked and an error",
        PublishBlockedDuringOutage(OUT, "pack-a", "unavailable"),
        publish_pack(store_out(), 11.0, ok=False, detail=BLOCKED).build(),
        PASS,
    ),
    Case(
        "a publish accepted while the store was out",
        PublishBlockedDuringOutage(OUT, "pack-a", "unavailable"),
        publish_pack(store_out(), 11.0).build(),
        FAIL,
    ),
    Case(
        "a refusal without Impact = publish blocked",
        PublishBlockedDuringOutage(OUT, "pack-a", "unavailable"),
        publish_pack(store_out(), 11.0, ok=False, detail={**BLOCKED, "Impact": None}).build(),
        FAIL,
    ),
    Case(
        "a refusal without an explicit error",
        PublishBlockedDuringOutage(OUT, "pack-a", "unavailable"),
        publish_pack(store_out(), 11.0, ok=False, detail={**BLOCKED, "error": ""}).build(),
        FAIL,
        says("without an explicit error"),
    ),
    Case(
        "a publish straddling the heal is not judged",
        PublishBlockedDuringOutage(OUT, "pack-a", "unavailable"),
        publish_pack(publish_pack(store_out(), 11.0, ok=False, detail=BLOCKED), 19.9, done=20.3).build(),
        PASS,
    ),
    Case(
        "the pack with a copy is not judged here",
        PublishBlockedDuringOutage(OUT, "pack-a", "unavailable"),
        publish_pack(publish_pack(store_out(), 11.0, ok=False, detail=BLOCKED), 12.0, key="pack-b").build(),
        PASS,
    ),
    Case(
        "the pack was published only after the heal",
        PublishBlockedDuringOutage(OUT, "pack-a", "unavailable"),
        publish_pack(store_out(), 21.0).build(),
        UNKNOWN,
    ),
    Case(
        "no inject event",
        PublishBlockedDuringOutage(OUT, "pack-a", "unavailable"),
        publish_pack(H(), 11.0, ok=False, detail=BLOCKED).build(),
        UNKNOWN,
    ),
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
    Case(
        "the store's attempts wait twice as long each time",
        BACKOFF_AT_STORE,
        retried(11.1, 11.3, 11.7, 12.5).build(),
        PASS,
        measured({"attempts": 4, "gaps_ms": [200, 400, 800], "ratios": [2.0, 2.0], "growth": 2.0}),
    ),
    Case(
        "on a loaded machine the client's turnaround stretches a short gap (waits 0.2, 0.4, 0.8 s)",
        BACKOFF_AT_STORE,
        retried(11.1, 11.418, 11.88, 12.684).build(),
        PASS,
        measured_has(gaps_ms=[318, 462, 804], growth=1.59),
    ),
    Case(
        "a backoff whose gaps do not grow",
        BACKOFF_AT_STORE,
        retried(11.1, 11.3, 11.5, 11.7).build(),
        FAIL,
        measured_has(ratios=[1.0, 1.0]),
    ),
    Case(
        "a flat wait stretched now and then by the turnaround",
        BACKOFF_AT_STORE,
        retried(11.1, 11.4, 11.6, 11.95).build(),
        FAIL,
        says("not longer than the one before"),
    ),
    Case(
        "waits growing by 1.2 x per retry are not a backoff that doubles",
        BACKOFF_AT_STORE,
        retried(11.1, 11.3, 11.54, 11.828).build(),
        FAIL,
        measured_has(growth=1.2),
    ),
    Case(
        "a gap shorter than the one before, however large the growth overall",
        BACKOFF_AT_STORE,
        retried(11.1, 11.3, 12.1, 12.6).build(),
        FAIL,
        says("not longer than the one before"),
    ),
    Case("retried too few times", BACKOFF_AT_STORE, retried(11.1, 11.3).build(), FAIL),
    Case(
        "writes and other objects are not attempts",
        BACKOFF_AT_STORE,
        retried(11.1, 11.3, 11.7, 12.5)
        .gateway_request(11.2, f"/evidence-bucket/{OBJECT}", method="PUT")
        .gateway_request(11.4, "/evidence-bucket/evidence/pack-b.tar")
        .build(),
        PASS,
    ),
    Case(
        "requests outside the publish are not its attempts",
        BACKOFF_AT_STORE,
        retried(11.1, 11.3, 11.7, 12.5).gateway_request(18.5, f"/evidence-bucket/{OBJECT}").build(),
        PASS,
    ),
    Case(
        "an immediate retry (no wait at all) is not a backoff",
        BACKOFF_AT_STORE,
        retried(11.1, 11.1, 11.5, 12.3).build(),
        FAIL,
        None,
    ),
    Case("the store saw no attempt", BACKOFF_AT_STORE, retried().build(), UNKNOWN),
    Case(
        "no publish of the pack while the store failed",
        BACKOFF_AT_STORE,
        publish_pack(store_out(), 21.0).gateway_request(21.05, f"/evidence-bucket/{OBJECT}").build(),
        UNKNOWN,
    ),
    Case("no inject event", BACKOFF_AT_STORE, publish_pack(H(), 11.0, ok=False, detail=BLOCKED).build(), UNKNOWN),
]


def impact_read(*rows: dict, t: float = 15.0) -> H:
    return read_events(store_out(), t, "ImpactRecorded", *rows)


def impact(intent_id: int, t: float, what: str = "publish blocked") -> dict:
    return row("ImpactRecorded", intent_id=intent_id, payload={"Impact": what}, t=t)


CASES[ImpactRecorded] = [
    Case(
        "Impact = publish blocked recorded for the refused intent",
        ImpactRecorded(OUT, 7),
        impact_read(impact(7, 11.0)).build(),
        PASS,
        measured({"ImpactRecorded": 1}),
    ),
    Case("no Impact event for the refused intent", ImpactRecorded(OUT, 7), impact_read(impact(8, 11.0)).build(), FAIL),
    Case("another Impact", ImpactRecorded(OUT, 7), impact_read(impact(7, 11.0, "degraded")).build(), FAIL),
    Case(
        "an Impact event from before the fault does not count",
        ImpactRecorded(OUT, 7),
        impact_read(impact(7, 5.0)).build(),
        FAIL,
    ),
    Case(
        "ImpactRecorded events read only before the fault",
        ImpactRecorded(OUT, 7),
        impact_read(impact(7, 4.0), t=5.0).build(),
        UNKNOWN,
    ),
    Case(
        "the read failed",
        ImpactRecorded(OUT, 7),
        read_events(store_out(), 15.0, "ImpactRecorded", ok=False).build(),
        UNKNOWN,
    ),
    Case(
        "no inject event",
        ImpactRecorded(OUT, 7),
        read_events(H(), 15.0, "ImpactRecorded", impact(7, 11.0)).build(),
        UNKNOWN,
    ),
]

CASES[PublishedFromValidatedCopy] = [
    Case(
        "the pack with a copy published while the store was out",
        PublishedFromValidatedCopy(OUT, "pack-b"),
        publish_pack(store_out(), 12.0, key="pack-b", detail={"evidence_source": "replica"}).build(),
        PASS,
        measured_has(evidence_source="replica"),
    ),
    Case(
        "the pack with a copy refused",
        PublishedFromValidatedCopy(OUT, "pack-b"),
        publish_pack(store_out(), 12.0, key="pack-b", ok=False, detail=BLOCKED).build(),
        FAIL,
    ),
    Case(
        "the pack with a copy published only after the heal",
        PublishedFromValidatedCopy(OUT, "pack-b"),
        publish_pack(store_out(), 21.0, key="pack-b").build(),
        UNKNOWN,
    ),
    Case(
        "no inject event",
        PublishedFromValidatedCopy(OUT, "pack-b"),
        publish_pack(H(), 12.0, key="pack-b").build(),
        UNKNOWN,
    ),
]

CASES[PublishingResumed] = [
    Case(
        "the blocked pack published after the heal",
        PublishingResumed(OUT, "pack-a"),
        publish_pack(publish_pack(store_out(), 11.0, ok=False, detail=BLOCKED), 22.0).build(),
        PASS,
        measured_has(after_heal_s=2.0),
    ),
    Case(
        "the blocked pack refused again after the heal",
        PublishingResumed(OUT, "pack-a"),
        publish_pack(store_out(), 22.0, ok=False, detail=BLOCKED).build(),
        FAIL,
    ),
    Case(
        "not published again after the heal",
        PublishingResumed(OUT, "pack-a"),
        publish_pack(store_out(), 11.0, ok=False, detail=BLOCKED).build(),
        UNKNOWN,
    ),
    Case(
        "the store was never healed",
        PublishingResumed(OUT, "pack-a"),
        publish_pack(H().inject(OUT, 10.0), 22.0).build(),
        UNKNOWN,
    ),
]

RULE1 = ApprovalRefusedWithoutCommittedEvidence("pack-u")
PENDING = {"gate": "EvidencePackState", "error": "approval refused: EvidencePackState = Pending"}


def uncommitted(
    *,
    upload_ok: bool = False,
    approvals: tuple = ((11.5, 409, PENDING), (14.0, 409, PENDING)),
    approved: list[dict] | None = None,
    state: str = "Draft",
    reads: bool = True,
) -> H:
    """While the store is out: intent 9 (key pack-u) created at 11.0, its evidence upload invoked at
    11.2 and answered at 13.0 (refused 503 unless upload_ok), approvals (t, status, detail) (status
    None: no answer), then the harness's reads at 15.0: the scenario's ApprovalRecorded events (rows
    `approved`) and the intent read back (`state`)."""
    h = store_out().op("create_intent", 11.0, value=9, status=201, detail={"uncommitted": "pack-u"})
    h.op(
        "evidence",
        11.2,
        ok=upload_ok,
        value="pack-u",
        status=201 if upload_ok else 503,
        done=13.0,
        detail={"intent_id": 9, **({} if upload_ok else BLOCKED)},
    )
    for t, status, detail in approvals:
        ok = None if status is None else 200 <= status < 300
        h.op(
            "approve",
            t,
            ok=ok,
            value="pack-u",
            status=status,
            detail={"intent_id": 9, **(detail or {})},
            error="" if ok else ("ReadTimeout: no answer within 30 s" if status is None else f"{status} refused"),
        )
    if reads:
        read_events(h, 15.0, "ApprovalRecorded", *(approved or []))
        h.op(
            "read_intent",
            15.5,
            value={"state": state, "EvidencePackState": "Pending"},
            status=200,
            detail={"intent_id": 9},
        )
    return h


CASES[ApprovalRefusedWithoutCommittedEvidence] = [
    Case(
        "every approval refused 409 naming EvidencePackState, during the upload and after its refusal",
        RULE1,
        uncommitted().build(),
        PASS,
        measured_has(
            approvals=[
                "409 gate EvidencePackState (upload in flight)",
                "409 gate EvidencePackState (upload refused 503 cause evidence_store Impact publish blocked)",
            ]
        ),
    ),
    Case(
        "an approval acknowledged while the upload was in flight fails, naming the intent",
        RULE1,
        uncommitted(approvals=((11.5, 200, {"state": "Approved"}), (14.0, 409, PENDING))).build(),
        FAIL,
        says("intent 9: approval acknowledged"),
    ),
    Case(
        "an approval acknowledged after the upload was refused fails",
        RULE1,
        uncommitted(approvals=((11.5, 409, PENDING), (14.0, 200, {}))).build(),
        FAIL,
        says("never saw its evidence pack Committed"),
    ),
    Case(
        "answered refused, yet an ApprovalRecorded event for the intent is in the event store",
        RULE1,
        uncommitted(approved=[row("ApprovalRecorded", intent_id=9, t=11.55)]).build(),
        FAIL,
        says("ApprovalRecorded event(s) for it"),
    ),
    Case(
        "answered refused, yet the intent reads back Approved",
        RULE1,
        uncommitted(state="Approved").build(),
        FAIL,
        says("reads back Approved"),
    ),
    Case(
        "another intent's ApprovalRecorded does not count against this one",
        RULE1,
        uncommitted(approved=[row("ApprovalRecorded", intent_id=8, t=5.0)]).build(),
        PASS,
    ),
    Case(
        "a 5xx is not the explicit refusal the rule asks for",
        RULE1,
        uncommitted(approvals=((11.5, 503, {"cause": "database", "error": "database unavailable"}),)).build(),
        FAIL,
        says("not a refusal naming EvidencePackState"),
    ),
    Case(
        "a 4xx from another gate does not name the rule",
        RULE1,
        uncommitted(approvals=((11.5, 409, {"gate": "Approval", "error": "refused"}),)).build(),
        FAIL,
    ),
    Case(
        "an approval with no answer is unknown",
        RULE1,
        uncommitted(approvals=((11.5, 409, PENDING), (14.0, None, {}))).build(),
        UNKNOWN,
        says("got no answer"),
    ),
    Case(
        "an approval with no answer, found recorded afterwards, fails",
        RULE1,
        uncommitted(approvals=((11.5, None, {}),), approved=[row("ApprovalRecorded", intent_id=9)]).build(),
        FAIL,
    ),
    Case(
        "refused, but the event store and the intent were not read afterwards",
        RULE1,
        uncommitted(reads=False).build(),
        UNKNOWN,
        says("not read"),
    ),
    Case(
        "the pack was committed before the approval: the rule was not exercised",
        RULE1,
        uncommitted(upload_ok=True, approvals=((14.0, 200, {}),)).build(),
        UNKNOWN,
        says("before the evidence pack was committed"),
    ),
    Case("no approval asked for", RULE1, uncommitted(approvals=()).build(), UNKNOWN),
    Case(
        "the intent was not created",
        RULE1,
        H().op("create_intent", 11.0, ok=False, status=503, detail={"uncommitted": "pack-u"}).build(),
        UNKNOWN,
    ),
]


SMOKE_CID = f"{CID}/smoke"


def smoke(
    *,
    evidence_ok: bool = True,
    ingested: bool = True,
    events=("IntentCreated", "EvidenceCommitted"),
    siem=("IntentCreated", "EvidenceCommitted"),
    read_back: bool = True,
) -> History:
    h = H().op("create_intent", 1.0, value=7, status=201, correlation_id=SMOKE_CID, detail={"smoke": "smoke-1"})
    h.op(
        "evidence",
        2.0,
        ok=evidence_ok,
        value="smoke-1",
        status=201 if evidence_ok else 503,
        correlation_id=SMOKE_CID,
        detail={"smoke": "smoke-1", "intent_id": 7},
    )
    if read_back:
        h.op("store_read", 3.0, value="abc" if ingested else None, detail={"key": "smoke-1", "expected": "abc"})
        h.op(
            "read_events",
            4.0,
            value=[{"type": t, "correlation_id": SMOKE_CID} for t in events],
            detail={"correlation_id": SMOKE_CID},
        )
        h.op("read_siem_smoke", 5.0, value=[{"type": t, "correlation_id": SMOKE_CID} for t in siem])
    return h.build()


CASES[SmokeVerified] = [
    Case(
        "accepted, ingested, captured in the store and the SIEM",
        SmokeVerified("smoke-1", SMOKE_CID),
        smoke(),
        PASS,
        measured_has(ingested=True),
    ),
    Case("the evidence pack was not ingested", SmokeVerified("smoke-1", SMOKE_CID), smoke(ingested=False), FAIL),
    Case("the evidence commit was refused", SmokeVerified("smoke-1", SMOKE_CID), smoke(evidence_ok=False), FAIL),
    Case(
        "the correlation id never reached the SIEM",
        SmokeVerified("smoke-1", SMOKE_CID),
        smoke(siem=("IntentCreated",)),
        FAIL,
    ),
    Case(
        "the event store lacks the evidence event",
        SmokeVerified("smoke-1", SMOKE_CID),
        smoke(events=("IntentCreated",)),
        FAIL,
    ),
    Case("nothing was read back", SmokeVerified("smoke-1", SMOKE_CID), smoke(read_back=False), UNKNOWN),
]
