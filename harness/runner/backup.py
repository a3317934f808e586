"""Harness calls of the backup and restore drills (spec section 3, rule 3): act and record; the
rules are checkers in harness.gates.backup.

The harness reads the backup store itself: every snapshot's objects downloaded and their SHA-256
recomputed against the manifest (op ``backup_catalogue``), the locks read back, the evidence
buckets' versions listed, the day's inventory and event-store export read and hashed. The lab's
backup service keeps to its schedule on the Control Plane's clock, which the drill moves.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from pathlib import Path
from typing import Any, cast

import botocore.exceptions

from ..backup import catalogue
from ..backup.crypto import file_digest
from ..backup.inventory import _inventories
from ..backup.manifest import MANIFEST_NAME, snapshot_prefix
from ..backup.schedule import DAY, HOUR
from ..backup.store import error_code
from ..gates.backup import (
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
    replay_sent,
    replay_tested,
)
from ..gates.waiver import waivable
from ..lab.capabilities import Backups, DatabaseNodes
from ..model import EventDetail, EventKind, FaultSpec, OpDetail, OpKind, Outcome, event_detail_of
from ..wait import poll
from ..workload import ControlPlane
from .clock import _service, advance_clock, wait_caught_up
from .common import applied_counts, platform_log
from .platforms import _approved_intent
from .scenario import EMITTERS, RESTORE, Scenario, required

LOSS = "loss:primary-region"
HALT = "halt:backup-service"
SAMPLE = 20  # intents written before the snapshot, read through the restored Control Plane
REPLAY_PLATFORM = "intune"  # the workload's intents (harness.workload.ApiClient.create_intent)


# ---- reads of the store ------------------------------------------------------------------------


def _check_snapshot(store, bucket: str, manifest, tmp: Path) -> dict:
    observed = {}
    for i, ref in enumerate(manifest.objects):
        path = tmp / f"{manifest.snapshot_id}-{i}"
        if store.download(bucket, ref.key, path):
            observed[ref.key] = file_digest(path)
            path.unlink()
    locks: list[float | None] = []
    if bucket in store.locked_buckets:
        for version in store.versions(bucket, snapshot_prefix(manifest.snapshot_id)):
            if version.is_latest and not version.delete_marker:
                until = store.retain_until(bucket, version.key, version.version_id)
                locks.append(until.timestamp() if until else None)
    mismatches = manifest.mismatches(observed)
    return {
        "snapshot_id": manifest.snapshot_id,
        "kind": manifest.kind,
        "bucket": bucket,
        "taken_at": manifest.taken_at,
        "intact": not mismatches,
        "mismatches": mismatches,
        "retain_until": (None if not locks or None in locks else min(t for t in locks if t is not None)),
        "tables": dict(manifest.tables),
        "chain": dict(manifest.chain) if manifest.chain else None,
        "approvals": manifest.approvals,
    }


def check_catalogue(scn: Scenario, phase: str) -> Any:
    """The harness's own check of every snapshot in both backup buckets, recorded as one op."""
    service = _service(scn)
    cp_now = service.cp_now()

    def fetch():
        store = service.store
        with tempfile.TemporaryDirectory(prefix="drill-backup-check-") as tmp:
            return [
                _check_snapshot(store, bucket, m, Path(tmp))
                for bucket in (store.bucket, store.dr_bucket)
                for m in catalogue(store, bucket)
            ]

    return scn.read(OpKind.BACKUP_CATALOGUE, fetch, detail={"phase": phase, "cp_now": cp_now})


def _evidence_versions(scn: Scenario) -> None:
    service = _service(scn)
    s3 = service.store.s3

    def fetch():
        buckets = service.evidence_buckets
        return {
            "versioning": {b: s3.get_bucket_versioning(Bucket=b).get("Status") for b in buckets},
            "versions": {
                b: [[v.key, v.version_id] for v in service.store.versions(b) if not v.delete_marker] for b in buckets
            },
        }

    scn.read(OpKind.EVIDENCE_VERSIONS, fetch)


def _inventory(scn: Scenario) -> None:
    store = _service(scn).store
    detail: OpDetail = {}

    def fetch():
        keys = _inventories(store)
        if not keys:
            return None
        import json

        inventory = json.loads(store.read(store.bucket, keys[-1]))
        export = inventory.get("eventstore") or {}
        body = store.read(store.bucket, export["key"]) if export.get("key") else None
        detail["eventstore_sha256"] = hashlib.sha256(body).hexdigest() if body is not None else None
        return inventory

    scn.read(OpKind.INVENTORY_READ, fetch, detail=detail)


# ---- the schedule and retention ----------------------------------------------------------------


def run_clock_hours(scn: Scenario, hours: int) -> None:
    """List the evidence buckets' versions, then move the Control Plane's clock `hours` hours on, one
    at a time, the backup service catching up after each; then read the store and the day's inventory."""
    _evidence_versions(scn)
    start = _service(scn).cp_now()
    for _ in range(hours):
        advance_clock(scn, HOUR, observe=False)
    end = _service(scn).cp_now()
    scn.backup.window = (start, end)
    check_catalogue(scn, "schedule")
    _inventory(scn)
    scn.observe(f"The Control Plane's clock ran {hours} h, one hour at a time; the backup service kept up.")


def _window(scn: Scenario) -> tuple[float, float]:
    """The Control Plane's clock at the start and the end of the hours run_clock_hours ran."""
    return required(scn.backup.window, "the clock hours run")


def hourly_snapshots(scn: Scenario) -> None:
    scn.expect(HourlySnapshotsTaken(*_window(scn)))


def cross_region_exports(scn: Scenario) -> None:
    scn.expect(CrossRegionExportsTaken(*_window(scn)))


def daily_inventory(scn: Scenario) -> None:
    scn.expect(DailyInventory())


def past_hourly_retention(scn: Scenario) -> None:
    """Move the clock so that the window's first half is older than 7 days and its second half
    younger (half an hour from either side of the boundary); then read the store, and try to
    delete the oldest cross-region export as an operator would."""
    start, end = _window(scn)
    target = start + 7 * DAY + (end - start) / 2 + HOUR / 2
    advance_clock(scn, max(HOUR, target - _service(scn).cp_now()))
    check_catalogue(scn, "retention")
    store = _service(scn).store
    exports = catalogue(store, store.dr_bucket)
    if not exports:
        scn.read(OpKind.EXPORT_DELETE_ATTEMPT, lambda: (_ for _ in ()).throw(RuntimeError("no export to delete")))
    else:
        oldest = exports[-1]
        key = f"{snapshot_prefix(oldest.snapshot_id)}{MANIFEST_NAME}"

        def attempt():
            version = next(v for v in store.versions(store.dr_bucket, key) if v.is_latest)
            try:
                store.s3.delete_object(Bucket=store.dr_bucket, Key=key, VersionId=version.version_id)
            except botocore.exceptions.ClientError as exc:
                return {"snapshot_id": oldest.snapshot_id, "deleted": False, "error": error_code(exc)}
            return {"snapshot_id": oldest.snapshot_id, "deleted": True, "error": None}

        scn.read(OpKind.EXPORT_DELETE_ATTEMPT, attempt)
    scn.expect(RetentionApplied())


# ---- a stale backup blocks new deployments -------------------------------------------------------


def halt_backups(scn: Scenario) -> None:
    scn.inject(FaultSpec("backup_halt", "backup-service"), HALT)
    scn.observe("The backup service stopped taking snapshots.")


def resume_backups(scn: Scenario) -> None:
    scn.heal(HALT)
    scn.observe("The backup service resumed.")


def _publish(scn: Scenario, phase: str, until_ok: float = 0.0) -> None:
    intent = _approved_intent(scn, "intune", len(scn.backup.publishes))
    scn.backup.publishes.append(intent)
    if intent is None:
        return

    def go():
        return scn.call(
            OpKind.PUBLISH,
            ControlPlane.publish(intent[0]),
            value=intent[1],
            timeout=30,
            detail={"intent_id": intent[0], "platform": "intune", "phase": phase},
        )

    if until_ok:  # each instance re-reads the catalogue every 2 s: retry within a deadline
        poll(go, until=lambda op: op.ok, timeout=until_ok, interval=0.5)
    else:
        go()


def publish_refused_while_stale(scn: Scenario) -> None:
    check_catalogue(scn, "stale")
    _publish(scn, "stale")
    scn.expect(PublishRefusedWhileBackupStale())


def publish_accepted_when_fresh(scn: Scenario) -> None:
    wait_caught_up(scn)
    check_catalogue(scn, "fresh")
    _publish(scn, "fresh", until_ok=15.0)
    scn.expect(PublishAcceptedAfterFreshSnapshot())


# ---- corruption, loss and restore ------------------------------------------------------------------


def take_snapshots(scn: Scenario, hours: int) -> None:
    """Move the clock `hours` on, one at a time: a snapshot each hour (and the export when due)."""
    for _ in range(hours):
        advance_clock(scn, HOUR, observe=False)
    scn.observe(
        f"The Control Plane's clock ran {hours} h, one hour at a time; the backup service took a snapshot each hour."
    )


def take_export(scn: Scenario) -> None:
    """Move the clock a day on: the backup service takes the hourly snapshot and, 24 h after the
    last one, the cross-region export."""
    advance_clock(scn, DAY)


def corrupt_newest(scn: Scenario, bucket: str, how: str) -> None:
    fault = scn.inject(FaultSpec("backup_corrupt", bucket, {"how": how}), f"corrupt:{bucket}")
    scn.backup.corrupted = fault.snapshot_id
    scn.observe(f"Snapshot {fault.snapshot_id} in {bucket}: a {how}d version of its dump written over it.")


def lose_database(scn: Scenario) -> None:
    """Read the store as it is, then lose every database node with its data."""
    check_catalogue(scn, "at_fault")
    scn.recover_on(LOSS, "write")
    scn.inject(FaultSpec("database_loss", "primary-region"), LOSS)
    scn.observe("The primary region's database is lost: every node killed, its data deleted.")


def _fingerprint(vault) -> str:
    return hashlib.sha256(vault.key()).hexdigest()[:16]  # never the key itself


def soft_delete_key(scn: Scenario) -> None:
    vault = _service(scn).vault
    scn.read(OpKind.KEY_READ, lambda: _fingerprint(vault), detail={"phase": "before"})
    vault.soft_delete()
    scn.read(OpKind.KEY_READ, lambda: _fingerprint(vault), detail={"phase": "deleted"})
    scn.observe("The backup encryption key was soft-deleted.")


def recover_key(scn: Scenario) -> None:
    vault = _service(scn).vault
    version = vault.current_version()

    def purge():
        if version is None:
            raise RuntimeError("no key version to purge")
        vault.purge(version)
        return "purged"

    scn.read(OpKind.KEY_PURGE, purge)
    vault.recover()
    scn.read(OpKind.KEY_READ, lambda: _fingerprint(vault), detail={"phase": "recovered"})
    scn.expect(KeyRecoveredFromSoftDelete())


def restore(scn: Scenario, bucket: str, verify: bool = True) -> None:
    """The restore runbook: newest verified snapshot of `bucket` into a fresh primary; its data read
    back from the restored node before the Control Plane sees it; the clients repointed."""
    lab = scn.lab
    validate_s: dict[str, float] = {}

    def validate(node: str) -> None:
        started = time.monotonic()
        _read_restored(scn, node)
        validate_s["validate"] = time.monotonic() - started

    def emit(kind: str, name: str, detail: dict) -> None:  # the runbook's phases: EventKind values
        scn.event(EventKind(kind), name, source=RESTORE, **cast(EventDetail, detail))

    def run():
        outcome = lab.capability(Backups).restore_database(bucket=bucket, verify=verify, emit=emit, validate=validate)
        if not outcome.ok:
            reasons = "; ".join(f"{c.snapshot_id}: {c.reason}" for c in outcome.candidates) or "no snapshot"
            return Outcome.FAIL, None, f"nothing restored: {reasons}"
        return (
            Outcome.OK,
            {"snapshot_id": outcome.manifest.snapshot_id, "phases": {**outcome.phase_seconds, **validate_s}},
            "",
        )

    op = scn.recorder.invoke(
        OpKind.RESTORE, run, correlation_id=scn.correlation_id, detail={"bucket": bucket, "verify": verify}
    )
    if op.ok:
        phases = op.value["phases"]
        scn.figures.update(
            {f"restore_{k}_s": round(v, 3) for k, v in phases.items()},
            restored_snapshot=op.value["snapshot_id"],
            restore_seconds=round(sum(phases.values()), 3),
        )
        scn.observe(
            f"Restored snapshot {op.value['snapshot_id']} from {bucket} "
            f"({', '.join(f'{k} {v:.2f} s' for k, v in phases.items())})."
        )
    else:
        scn.observe(f"The restore failed: {op.error}")
    _sample_through_controlplane(scn)


def snapshot_verified(scn: Scenario) -> None:
    scn.expect(SnapshotVerifiedBeforeRestore())


def restored_data_valid(scn: Scenario) -> None:
    scn.expect(RestoredDataValid())


def backup_rpo(scn: Scenario) -> None:
    scn.expect(waivable(scn.drill, "backup_rpo_seconds", lambda target: BackupRpo(target, LOSS)))


def corrupt_refused(scn: Scenario) -> None:
    scn.expect(CorruptSnapshotRefused(scn.backup.corrupted or "(none corrupted)"))


def _read_restored(scn: Scenario, node: str) -> None:
    """Counts per table, the event chain recomputed, approvals: straight from the restored node."""
    from ..measure.eventstore import chain_continuity

    def fetch():
        db = scn.lab.part(DatabaseNodes)
        tables = [
            r[0]
            for r in db.node_query(
                node,
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON "
                "n.oid = c.relnamespace WHERE n.nspname = 'public' AND "
                "c.relkind IN ('r', 'p') AND NOT c.relispartition",
            )
        ]
        counts = {t: db.node_query(node, f'SELECT count(*) FROM public."{t}"')[0][0] for t in tables}
        columns = ("seq", "type", "intent_id", "correlation_id", "payload", "prev_hash", "hash")
        events = [
            dict(zip(columns, row, strict=True))
            for row in db.node_query(node, f"SELECT {', '.join(columns)} FROM events ORDER BY seq")
        ]
        last = events[-1] if events else {"seq": None, "hash": None}
        approvals = db.node_query(node, "SELECT count(*) FROM events WHERE type = 'ApprovalRecorded'")[0][0]
        return {
            "tables": counts,
            "approvals": approvals,
            "chain": {
                "verified": chain_continuity((), events).ok,
                "events": len(events),
                "last_seq": last["seq"],
                "last_hash": last["hash"],
            },
        }

    scn.read(OpKind.RESTORED_DATA, fetch, detail={"node": node})


def _restored_taken_at(scn: Scenario) -> float | None:
    history = scn.recorder.history()
    done = history.events_of(EventKind.RESTORE_DONE, source="restore")
    return float(event_detail_of(done[-1])["taken_at"]) if done else None


def _cp_clock(scn: Scenario):
    """wall time -> the Control Plane's clock at that time: the offset now, less every move of the
    clock the drill made since."""
    offset = _service(scn).cp_now() - time.time()
    moves = [
        (e.wall, float(event_detail_of(e).get("seconds", 0))) for e in scn.recorder.history().events_of(EventKind.CLOCK)
    ]
    return lambda wall: wall + offset - sum(seconds for at, seconds in moves if at > wall)


def _sample_through_controlplane(scn: Scenario) -> None:
    """Intents the workload wrote (acknowledged) well before the restored snapshot, read back by id
    through the load balancer: the Control Plane now runs on the restored database."""
    taken_at = _restored_taken_at(scn)
    if taken_at is None:
        return
    cp = _cp_clock(scn)
    before = [
        o
        for o in scn.recorder.ops(OpKind.WRITE)
        if o.ok and o.t_complete is not None and cp(o.wall_invoke + (o.t_complete - o.t_invoke)) < taken_at - 1.0
    ]
    sample = before[:: max(1, len(before) // SAMPLE)][:SAMPLE]
    from ..workload import ApiClient

    def fetch():
        client = ApiClient(scn.lab.api_url, timeout=10)
        try:
            missing = []
            for op in sample:
                reply = client.send(ControlPlane.intents(op.value), scn.correlation_id)
                keys = [i["idempotency_key"] for i in reply.body["intents"]] if reply.outcome is Outcome.OK else []
                if op.value not in keys:
                    missing.append(op.value)
            return {"checked": len(sample), "missing": missing}
        finally:
            client.close()

    scn.read(OpKind.RESTORED_SAMPLE, fetch)


def rebuild_replicas(scn: Scenario) -> None:
    scn.heal(LOSS)
    scn.observe("The replicas were rebuilt from the restored primary; the failover controller watches again.")


# ---- the replay ----------------------------------------------------------------------------------


def lost_to_restore(writes: list, cp, taken_at: float, restored_at: float) -> list[str]:
    """The keys of the acknowledged writes a restore lost, to replay: acknowledged, sent no earlier
    than 1 s before the snapshot was taken (on the Control Plane's clock, `cp` mapping a wall time
    onto it; one the snapshot still had is answered 200 by the replay, and not sent again) and
    sent before the restore was done (wall clock): a write the workload sent once the restored
    database was in place went to it, so nothing of it was lost; replaying it counted the harness's
    own later writes as lost, and the gate then waited for a test of a dispatch never made again."""
    return [o.value for o in writes if o.ok and cp(o.wall_invoke) >= taken_at - 1.0 and o.wall_invoke < restored_at]


def replay_after_snapshot(scn: Scenario) -> None:
    """Replay what the restore lost, from the submitting side's outbox (the harness's clients keep
    every acknowledged write with its idempotency key): every intent acknowledged after the restored
    snapshot (and sent before the restore was done: the workload's later writes went to the
    restored database) is submitted again with the same key (and its evidence, approval and publish when it
    had them), and the drill's own fault and recovery events are delivered again (by event id). The
    connectors then test each key at its platform before applying (rule 4)."""
    taken_at = _restored_taken_at(scn)
    if taken_at is None:
        scn.observe("Nothing to replay: no snapshot was restored.")
        return
    cp = _cp_clock(scn)
    published_keys = {o.value for o in scn.recorder.ops(OpKind.PUBLISH) if o.ok and o.detail.get("workload")}
    restored_at = scn.recorder.history().events_of(EventKind.RESTORE_DONE, source=RESTORE)[-1].wall
    lost = lost_to_restore(scn.recorder.ops(OpKind.WRITE), cp, taken_at, restored_at)
    replayed: list[str] = []
    survived: set[str] = set()  # 200, not 201: the restored store still had it; it is not sent again
    for key in lost:
        created = scn.call(
            OpKind.REPLAY_CREATE,
            ControlPlane.create_intent(key, platform=REPLAY_PLATFORM),
            value=key,
            read=lambda body: body["id"],
            timeout=30,
            detail={"idempotency_key": key},
        )
        if not created.ok:
            continue
        replayed.append(key)
        if created.status == 200:
            survived.add(key)
        if key in published_keys:
            for kind, request in (
                (OpKind.REPLAY_EVIDENCE, ControlPlane.evidence(created.value, f"evidence of {key}")),
                (OpKind.REPLAY_APPROVE, ControlPlane.approve(created.value)),
                (OpKind.REPLAY_PUBLISH, ControlPlane.publish(created.value)),
            ):
                scn.call(kind, request, value=key, timeout=30, detail={"intent_id": created.value})
    forwarder = scn.drill.forwarder
    if forwarder is not None:
        for event in scn.recorder.history().events:
            if event.source in EMITTERS and event.event_id:
                forwarder.submit(event)
    keys = sorted(k for k in replayed if k in published_keys)
    sent = replay_sent(scn.recorder.ops(OpKind.REPLAY_PUBLISH))

    def tested_by_replay() -> set:
        """Keys the platform was asked about (Test-IdempotencyKey) for the replay's own dispatch:
        every replay dispatched is tested first, also one applied before the loss. Only a lookup at
        or after the key's replay publish counts (what the gate counts): an original message
        dispatched late is tested after the restore too, before the replay's own test, and waiting
        on it let the harness read back (and the history end) before the replay was tested."""
        log = platform_log(scn.lab, REPLAY_PLATFORM) or ()
        return replay_tested(
            ((r.get("idempotency_key"), r.get("at", 0)) for r in log if r.get("path") == "/applied"), sent
        )

    waited = poll(tested_by_replay, timeout=60, until=lambda seen: set(keys) - survived <= seen)
    if not waited.ok:
        scn.observe(
            f"Not every replayed key was tested at its platform within 60 s: "
            f"{', '.join(sorted(set(keys) - survived - waited.value)[:10])}."
        )
    poll(
        lambda: applied_counts(scn, REPLAY_PLATFORM),
        timeout=60,
        until=lambda counts: all(counts.get(k, 0) >= 1 for k in keys),
    )

    def read_back():
        from ..workload import ApiClient

        client = ApiClient(scn.lab.api_url, timeout=10)
        try:
            found = []
            for key in replayed:
                reply = client.send(ControlPlane.intents(key), scn.correlation_id)
                if reply.outcome is Outcome.OK and any(i["idempotency_key"] == key for i in reply.body["intents"]):
                    found.append(key)
            return found
        finally:
            client.close()

    scn.read(OpKind.REPLAY_READ, read_back)
    scn.expect(ReplayedExactlyOnce(REPLAY_PLATFORM, tuple(keys)))
    scn.observe(
        f"Replayed {len(replayed)} intents written after the snapshot ({len(keys)} published) and the drill's events."
    )
