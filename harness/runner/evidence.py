"""Harness calls of the evidence store drill (matrix row 3, "Evidence store / Object storage
outage"): act and record; the rules are checkers in harness.gates.evidence."""

from __future__ import annotations

import hashlib
import threading
import uuid

from ..gates.evidence import (
    ApprovalRefusedWithoutCommittedEvidence,
    ImpactRecorded,
    PublishBlockedDuringOutage,
    PublishedFromValidatedCopy,
    PublishingResumed,
    RetryBackoffAtStore,
    SmokeVerified,
    ValidatedCopy,
)
from ..gates.worm import WormRetention
from ..lab.capabilities import Backups, EvidenceStore, Siem
from ..matrix import links
from ..model import EventKind, FaultSpec, OpDetail, OpKind
from ..wait import poll
from ..workload import ApiClient, ControlPlane
from .common import read_events
from .scenario import EvidencePack, Scenario, StoreFault, required

PRIMARY_LINK, ALTERNATE_LINK = links()["evidence store"], links()["alternate region"]  # the row's links
GATEWAY = "s3"


def cut_alternate_region(scn: Scenario) -> None:
    scn.inject(FaultSpec("proxy_down", ALTERNATE_LINK), "cut:alternate-region")
    scn.observe("Link to the alternate region's bucket cut.")


def commit_evidence(scn: Scenario, with_copy: bool) -> None:
    """An approved intent whose evidence pack has (or has not) a copy in the alternate region; the
    harness then reads the alternate bucket itself for that copy."""
    key = f"{scn.correlation_id}-{'copy' if with_copy else 'nocopy'}"
    content = f"evidence pack {key}"
    created = scn.call(
        OpKind.CREATE_INTENT, ControlPlane.create_intent(key), value=key, read=lambda body: body["id"], timeout=30
    )
    intent = created.value if created.ok else None
    evidence = scn.call(
        OpKind.EVIDENCE, ControlPlane.evidence(intent, content), value=key, detail={"intent_id": intent}, timeout=30
    )
    scn.call(OpKind.APPROVE, ControlPlane.approve(intent), value=key, detail={"intent_id": intent}, timeout=30)
    object_key = evidence.detail.get("object_key")
    scn.read(
        OpKind.STORE_READ,
        lambda: _sha256(_read_object(scn, "alternate", object_key)),
        detail={"key": key, "object_key": object_key, "expected": hashlib.sha256(content.encode()).hexdigest()},
    )
    scn.expect(ValidatedCopy(key, with_copy))
    pack = EvidencePack(intent, key, object_key)
    if with_copy:
        scn.evidence.with_copy = pack
    else:
        scn.evidence.without_copy = pack


def _store_fault(scn: Scenario) -> StoreFault:
    return required(scn.evidence.store_fault, "the evidence store's fault")


def _without_copy(scn: Scenario) -> EvidencePack:
    return required(scn.evidence.without_copy, "the pack without a copy")


def _read_object(scn: Scenario, region: str, object_key: str | None) -> bytes | None:
    """The object the evidence answer named, read from the region's bucket by the harness itself; an
    answer that named none is an indeterminate read (recorded as such by Scenario.read)."""
    if object_key is None:
        raise LookupError("the evidence answer named no object_key")
    return scn.lab.capability(EvidenceStore).read_object(region, object_key)


def _sha256(body: bytes | None) -> str | None:
    return None if body is None else hashlib.sha256(body).hexdigest()


def cut_evidence_store(scn: Scenario) -> None:
    label = "cut:evidence-store"
    scn.recover_on(label, "publish")
    scn.evidence.store_fault = StoreFault(label, "unreachable")
    scn.inject(FaultSpec("proxy_down", PRIMARY_LINK), label)
    scn.observe("Primary evidence store unreachable (its link cut).")


def store_answers(scn: Scenario, status: int) -> None:
    label = f"http-{status}:evidence-store"
    scn.evidence.store_fault = StoreFault(label, f"answering {status}")
    scn.inject(FaultSpec("http_error", GATEWAY, {"status": status}), label)
    scn.observe(f"Primary evidence store answering HTTP {status} to every request.")


def _publish(scn: Scenario, pack: EvidencePack | None) -> None:
    intent, key = (pack.intent_id, pack.key) if pack is not None else (None, "")
    scn.call(OpKind.PUBLISH, ControlPlane.publish(intent), value=key, detail={"intent_id": intent}, timeout=30)


def publish_blocked(scn: Scenario) -> None:
    """Publish the pack that has no validated copy while the store is out."""
    fault = _store_fault(scn)
    _publish(scn, scn.evidence.without_copy)
    scn.expect(PublishBlockedDuringOutage(fault.label, _without_copy(scn).key, fault.condition))


def backoff_exponential(scn: Scenario) -> None:
    """The store calls behind that refusal, as the store's gateway received them."""
    fault, pack = _store_fault(scn), _without_copy(scn)
    scn.expect(RetryBackoffAtStore(fault.label, pack.key, pack.object_key or pack.key, fault.condition))


def impact_recorded(scn: Scenario) -> None:
    read_events(scn, type_="ImpactRecorded")
    scn.expect(ImpactRecorded(_store_fault(scn).label, _without_copy(scn).intent_id))


def publish_fails_over(scn: Scenario) -> None:
    """Publish the pack whose copy in the alternate region was validated, while the store is out."""
    _publish(scn, scn.evidence.with_copy)
    scn.expect(
        PublishedFromValidatedCopy(
            _store_fault(scn).label, required(scn.evidence.with_copy, "the pack with a copy").key
        )
    )


def approve_uncommitted(scn: Scenario) -> None:
    """Spec rule 1 (EvidencePackState = Committed before approval), while the store cannot take a
    pack: create an intent, start its evidence upload (it retries, then is refused), ask to approve
    the intent while the upload is in flight and again once the upload was answered; then read the
    intent back and the event store's ApprovalRecorded events of the scenario."""
    key = f"{scn.correlation_id}-uncommitted"
    created = scn.call(
        OpKind.CREATE_INTENT,
        ControlPlane.create_intent(key),
        value=key,
        detail={"uncommitted": key},
        read=lambda body: body["id"],
        timeout=30,
    )
    intent = created.value if created.ok else None
    scn.expect(ApprovalRefusedWithoutCommittedEvidence(key))
    if intent is None:
        scn.observe(f"Intent {key} could not be created ({created.error}): rule 1 not exercised.")
        return
    detail: OpDetail = {"intent_id": intent}
    in_flight = threading.Event()
    client = ApiClient(scn.lab.api_url, timeout=30)

    def upload():
        def call():
            in_flight.set()  # after the recorder took the op's invoke time: the upload has begun
            return client.send(ControlPlane.evidence(intent, f"evidence pack {key}"), scn.correlation_id)

        scn.recorder.invoke(OpKind.EVIDENCE, call, value=key, correlation_id=scn.correlation_id, detail=detail)

    uploader = threading.Thread(target=upload, name=f"upload-{intent}", daemon=True)
    uploader.start()
    try:
        if not in_flight.wait(30):
            raise RuntimeError("the evidence upload thread did not start within 30 s")
        first = scn.call(OpKind.APPROVE, ControlPlane.approve(intent), value=key, detail=detail, timeout=30)
    finally:
        uploader.join(60)  # the upload's own timeout is 30 s
        client.close()
    second = scn.call(OpKind.APPROVE, ControlPlane.approve(intent), value=key, detail=detail, timeout=30)
    scn.call(
        OpKind.READ_INTENT,
        ControlPlane.read_intent(intent),
        value=key,
        detail=detail,
        timeout=30,
        read=lambda body: {k: body.get(k) for k in ("state", "EvidencePackState")},
    )
    read_events(scn, type_="ApprovalRecorded", own=True)
    upload_op = next((o for o in scn.recorder.ops(OpKind.EVIDENCE) if o.detail.get("intent_id") == intent), None)
    scn.observe(
        f"Intent {intent}: evidence upload {_said(upload_op)}; approval asked while the upload was in "
        f"flight: {_said(first)}; asked again after it: {_said(second)}."
    )


def _said(op) -> str:
    if op is None:
        return "not recorded"
    return "acknowledged" if op.ok else (op.error or op.outcome.value)


def publishing_resumes(scn: Scenario) -> None:
    _publish(scn, scn.evidence.without_copy)
    scn.expect(PublishingResumed(_store_fault(scn).label, _without_copy(scn).key))


def smoke_verification(scn: Scenario) -> None:
    """Submit a test Deployment Intent under its own correlation id, commit its evidence pack, then
    read back the pack from the evidence store, its events from the event store and its SIEM lines."""
    cid = f"{scn.correlation_id}/smoke"
    key = f"smoke-{uuid.uuid4().hex[:12]}"
    content = f"smoke evidence {key}"
    created = scn.call(
        OpKind.CREATE_INTENT,
        ControlPlane.create_intent(key),
        value=key,
        detail={"smoke": key},
        read=lambda body: body["id"],
        timeout=30,
        correlation_id=cid,
    )
    evidence = scn.call(
        OpKind.EVIDENCE,
        ControlPlane.evidence(created.value, content),
        value=key,
        timeout=30,
        detail={"intent_id": created.value, "smoke": key},
        correlation_id=cid,
    )
    object_key = evidence.detail.get("object_key")
    scn.read(
        OpKind.STORE_READ,
        lambda: _sha256(_read_object(scn, "primary", object_key)),
        detail={"key": key, "object_key": object_key, "expected": hashlib.sha256(content.encode()).hexdigest()},
    )
    read_events(scn, correlation_id=cid)

    def siem():
        records = scn.lab.part(Siem).siem_records()
        if records is None:
            raise RuntimeError("the SIEM sink is not readable by this provider")
        return [r for r in records if r.get("correlation_id") == cid]

    scn.read(OpKind.READ_SIEM_SMOKE, siem)
    scn.expect(SmokeVerified(key, cid))
    scn.observe(
        f"Smoke intent {key} (correlation id {cid}): {created.error or 'accepted'}, evidence "
        f"{evidence.error or 'committed'}."
    )


def workload_publishes_resume(scn: Scenario) -> None:
    """Wait until a publish of the workload, invoked after the store's last heal, was accepted: the
    operation the row's RTO is measured on (judged by the recovery checkers, not here)."""
    heals = [e.t for e in scn.recorder.history().events_of(EventKind.HEAL)]
    after = max(heals) if heals else 0.0
    poll(
        lambda: any(
            o.ok and o.detail.get("workload") and o.t_invoke >= after for o in scn.recorder.ops(OpKind.PUBLISH)
        ),
        timeout=60,
        interval=0.1,
    )


def evidence_locked(scn: Scenario) -> None:
    """Read, straight from the object store (HEAD), the Object Lock of every evidence object the
    drill's acknowledged evidence commits wrote, in the primary region and, where a copy exists, in
    the alternate one, and judge it against spec 1.3 and 3: COMPLIANCE for at least 7 years."""
    written: dict[str, float] = {}
    for op in scn.recorder.ops(OpKind.EVIDENCE):
        if op.ok and op.detail.get("object_key"):
            written.setdefault(op.detail["object_key"], op.wall_invoke)

    def locks() -> list[dict]:
        found = []
        for key, at in written.items():
            for region in ("primary", "alternate"):
                lock = scn.lab.capability(EvidenceStore).object_lock(region, key)
                if lock is None and region == "alternate":
                    continue  # no copy in the alternate region: nothing there to judge
                found.append(
                    {
                        "object_key": key,
                        "region": region,
                        "written_at": at,
                        **(lock or {"mode": None, "retain_until": None}),
                    }
                )
        return found

    read = scn.read(OpKind.STORE_LOCK, locks, detail={"scope": "evidence", "objects": len(written)})
    scn.expect(WormRetention("evidence"))
    if read.ok:
        modes = sorted({str(o["mode"]) for o in read.value})
        scn.observe(
            f"Object Lock of the {len(read.value)} evidence object version(s) the drill wrote, as the "
            f"store reports it: {', '.join(modes) or 'none'}."
        )


def eventstore_exports_locked(scn: Scenario) -> None:
    """Read, straight from the backup store (HEAD of every version), the Object Lock of every daily
    event-store export the backup service wrote during the drill, and judge it as the evidence
    objects: COMPLIANCE until at least 2557 days (7 years) after the store received it."""
    from ..backup.store import EVENTSTORE_PREFIX
    from ..lab.parts import read_object_lock

    store = scn.lab.capability(Backups).backup_service().store

    def locks() -> list[dict]:
        found = []
        for version in store.versions(store.bucket, EVENTSTORE_PREFIX):
            if version.delete_marker:
                continue
            lock = read_object_lock(store.s3, store.bucket, version.key, version.version_id)
            found.append(
                {
                    "object_key": version.key,
                    "bucket": store.bucket,
                    "written_at": version.last_modified.timestamp() if version.last_modified else None,
                    **(lock or {"mode": None, "retain_until": None}),
                }
            )
        return found

    read = scn.read(OpKind.STORE_LOCK, locks, detail={"scope": "eventstore"})
    scn.expect(WormRetention("eventstore"))
    if read.ok:
        modes = sorted({str(o["mode"]) for o in read.value})
        scn.observe(
            f"Object Lock of the {len(read.value)} event-store export version(s), as the backup store "
            f"reports it: {', '.join(modes) or 'none'}."
        )
