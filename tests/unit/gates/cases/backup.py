"""Backup and restore (harness/gates/backup.py)."""

from __future__ import annotations

import pytest

from harness.gates import Gate
from harness.gates.backup import (
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
from harness.model import History

from ..builder import H
from .common import FAIL, PASS, UNKNOWN, Case, measured, measured_has, says

CASES: dict[type[Gate], list[Case]] = {}


HOUR, DAY = 3600.0, 86400.0
T0 = 1_800_000_000.0 - 1_800_000_000.0 % HOUR  # a clock hour on the Control Plane's clock
TABLES = {"intents": 40, "approvals": 10, "events": 90}
HEAD = {"last_seq": 90, "last_hash": "h90"}


def snap(
    sid: str,
    taken_at: float,
    kind: str = "hourly",
    *,
    intact: bool = True,
    retain_until=None,
    bucket: str | None = None,
) -> dict:
    bucket = bucket or ("backups-dr" if kind == "export" else "backups")
    if kind == "export" and retain_until is None:
        retain_until = taken_at + 90 * DAY
    return {
        "snapshot_id": sid,
        "kind": kind,
        "bucket": bucket,
        "taken_at": taken_at,
        "intact": intact,
        "mismatches": [] if intact else [f"snapshots/{sid}/dump.enc: size 10 != manifest 99 (truncated)"],
        "retain_until": retain_until,
        "tables": dict(TABLES),
        "chain": dict(HEAD),
        "approvals": 10,
    }


def catalogue(h: H, t: float, phase: str, cp_now: float, snaps: list[dict], ok: bool = True) -> H:
    return h.op(
        "backup_catalogue",
        t,
        ok=ok,
        value=snaps if ok else None,
        detail={"phase": phase, "cp_now": cp_now},
        error="" if ok else "the backup store did not answer",
    )


def hourly_run(hours: int = 26, skip: int | None = None, corrupt: int | None = None) -> list[dict]:
    return [snap(f"h{i}", T0 + i * HOUR + 5, intact=i != corrupt) for i in range(hours) if i != skip]


def exports(*days: int, lock_days: float = 90) -> list[dict]:
    return [snap(f"x{d}", T0 + d * DAY + 6, "export", retain_until=T0 + d * DAY + 6 + lock_days * DAY) for d in days]


WINDOW = (T0 + 30, T0 + 25 * HOUR + 30)

CASES[HourlySnapshotsTaken] = [
    Case(
        "a snapshot in every clock hour of the window, all intact",
        HourlySnapshotsTaken(*WINDOW),
        catalogue(H(), 1.0, "schedule", WINDOW[1], hourly_run()).build(),
        PASS,
        measured_has(hours=26, snapshots=26, missing_hours=[]),
    ),
    Case(
        "an hour without a snapshot",
        HourlySnapshotsTaken(*WINDOW),
        catalogue(H(), 1.0, "schedule", WINDOW[1], hourly_run(skip=7)).build(),
        FAIL,
        says("T15:00Z"),
    ),
    Case(
        "a snapshot whose object does not match its manifest",
        HourlySnapshotsTaken(*WINDOW),
        catalogue(H(), 1.0, "schedule", WINDOW[1], hourly_run(corrupt=3)).build(),
        FAIL,
        measured_has(not_intact=["h3"]),
    ),
    Case("the store was not read", HourlySnapshotsTaken(*WINDOW), H().build(), UNKNOWN),
    Case(
        "the store could not be read",
        HourlySnapshotsTaken(*WINDOW),
        catalogue(H(), 1.0, "schedule", WINDOW[1], [], ok=False).build(),
        UNKNOWN,
    ),
]

CASES[CrossRegionExportsTaken] = [
    Case(
        "an export at the start and 24 h later, each locked 90 days",
        CrossRegionExportsTaken(*WINDOW),
        catalogue(H(), 1.0, "schedule", WINDOW[1], hourly_run() + exports(0, 1)).build(),
        PASS,
        measured_has(exports=2, min_lock_days=90.0),
    ),
    Case(
        "no export after the first day: a gap longer than 24 h",
        CrossRegionExportsTaken(T0 + 30, T0 + 50 * HOUR),
        catalogue(H(), 1.0, "schedule", T0 + 50 * HOUR, exports(0)).build(),
        FAIL,
    ),
    Case(
        "an export locked for less than 90 days",
        CrossRegionExportsTaken(*WINDOW),
        catalogue(H(), 1.0, "schedule", WINDOW[1], exports(0, lock_days=30) + exports(1)).build(),
        FAIL,
        measured_has(short_locks=["x0"]),
    ),
    Case(
        "an export never locked",
        CrossRegionExportsTaken(*WINDOW),
        catalogue(H(), 1.0, "schedule", WINDOW[1], [dict(exports(0)[0], retain_until=None)] + exports(1)).build(),
        FAIL,
    ),
    Case(
        "no export at all",
        CrossRegionExportsTaken(*WINDOW),
        catalogue(H(), 1.0, "schedule", WINDOW[1], hourly_run()).build(),
        FAIL,
    ),
    Case("the store was not read", CrossRegionExportsTaken(*WINDOW), H().build(), UNKNOWN),
]

JUMP_NOW = T0 + 7 * DAY + 12.5 * HOUR  # h0..h12 are older than 7 days, h13..h25 younger


def retention(after: list[dict], *, attempt: dict | None = None) -> History:
    h = catalogue(H(), 1.0, "schedule", WINDOW[1], hourly_run() + exports(0, 1))
    catalogue(h, 5.0, "retention", JUMP_NOW, after)
    if attempt is not None:
        h.op("export_delete_attempt", 6.0, value=attempt)
    return h.build()


KEPT = [s for s in hourly_run() if JUMP_NOW - s["taken_at"] < 7 * DAY] + exports(0, 1)
REFUSED = {"snapshot_id": "x0", "deleted": False, "error": "AccessDenied"}

CASES[RetentionApplied] = [
    Case(
        "hourly snapshots past 7 days deleted, younger kept, exports kept, their deletion refused",
        RetentionApplied(),
        retention(KEPT, attempt=REFUSED),
        PASS,
        measured_has(expired_kept=[], young_deleted=[]),
    ),
    Case(
        "an hourly snapshot past 7 days is still there",
        RetentionApplied(),
        retention(KEPT + hourly_run()[:1], attempt=REFUSED),
        FAIL,
        measured_has(expired_kept=["h0"]),
    ),
    Case(
        "a snapshot younger than 7 days was deleted",
        RetentionApplied(),
        retention([s for s in KEPT if s["snapshot_id"] != "h20"], attempt=REFUSED),
        FAIL,
        measured_has(young_deleted=["h20"]),
    ),
    Case(
        "a cross-region export younger than 90 days was deleted",
        RetentionApplied(),
        retention([s for s in KEPT if s["snapshot_id"] != "x0"], attempt=REFUSED),
        FAIL,
    ),
    Case(
        "the store let the harness delete a locked export",
        RetentionApplied(),
        retention(KEPT, attempt={"snapshot_id": "x0", "deleted": True, "error": None}),
        FAIL,
    ),
    Case("no deletion was attempted", RetentionApplied(), retention(KEPT), UNKNOWN),
    Case(
        "the store was not read after the clock moved",
        RetentionApplied(),
        catalogue(H(), 1.0, "schedule", WINDOW[1], hourly_run()).build(),
        UNKNOWN,
    ),
]


def inventory(
    *,
    versions=(("evidence", "a", "v1"), ("evidence", "b", "v2")),
    listed=None,
    versioning="Enabled",
    export_sha="s1",
    written: bool = True,
) -> History:
    listed = listed if listed is not None else [("evidence", "a", "v1"), ("evidence", "b", "v2")]
    by_bucket: dict = {}
    for bucket, key, version in listed:
        by_bucket.setdefault(bucket, []).append([key, version])
    h = H().op(
        "evidence_versions",
        1.0,
        value={"versioning": {"evidence": versioning, "evidence-replica": "Enabled"}, "versions": by_bucket},
    )
    inv_buckets: dict = {}
    for bucket, key, version in versions:
        inv_buckets.setdefault(bucket, []).append({"key": key, "version_id": version})
    value = (
        {"day": "2027-01-16", "buckets": inv_buckets, "eventstore": {"sha256": "s1", "count": 90, "to_seq": 90}}
        if written
        else None
    )
    return h.op("inventory_read", 3.0, value=value, detail={"eventstore_sha256": export_sha}).build()


CASES[DailyInventory] = [
    Case(
        "every listed version in the day's inventory, buckets versioned, export intact",
        DailyInventory(),
        inventory(),
        PASS,
        measured_has(missing=[], unversioned=[]),
    ),
    Case(
        "a version the harness listed is missing from the inventory",
        DailyInventory(),
        inventory(versions=(("evidence", "a", "v1"),)),
        FAIL,
        measured_has(missing=["evidence/b@v2"]),
    ),
    Case("an evidence bucket without versioning", DailyInventory(), inventory(versioning="Suspended"), FAIL),
    Case(
        "the event-store export does not match the SHA-256 the inventory records",
        DailyInventory(),
        inventory(export_sha="other"),
        FAIL,
    ),
    Case("no inventory was written for the day", DailyInventory(), inventory(written=False), FAIL),
    Case("nothing was read", DailyInventory(), H().build(), UNKNOWN),
]

STALE_NOW = T0 + 30 * HOUR


def backup_publish(phase: str, age_h: float, status: int, cause: str | None = None) -> History:
    h = catalogue(H(), 1.0, phase, STALE_NOW, [snap("h0", STALE_NOW - age_h * HOUR)])
    detail = {"phase": phase, **({"cause": cause} if cause else {})}
    return h.op("publish", 2.0, ok=status < 300, status=status, value="k1", detail=detail).build()


CASES[PublishRefusedWhileBackupStale] = [
    Case(
        "a 25 h old backup: the publish is refused naming the cause backup",
        PublishRefusedWhileBackupStale(),
        backup_publish("stale", 25, 503, "backup"),
        PASS,
    ),
    Case(
        "a 25 h old backup and the publish was accepted",
        PublishRefusedWhileBackupStale(),
        backup_publish("stale", 25, 200),
        FAIL,
    ),
    Case(
        "refused, but for another cause",
        PublishRefusedWhileBackupStale(),
        backup_publish("stale", 25, 503, "database"),
        FAIL,
    ),
    Case(
        "the backup was not stale when the publish was tried",
        PublishRefusedWhileBackupStale(),
        backup_publish("stale", 2, 503, "backup"),
        UNKNOWN,
    ),
    Case(
        "no publish during the stale backup",
        PublishRefusedWhileBackupStale(),
        catalogue(H(), 1.0, "stale", STALE_NOW, [snap("h0", T0)]).build(),
        UNKNOWN,
    ),
]

CASES[PublishAcceptedAfterFreshSnapshot] = [
    Case(
        "a fresh snapshot, then the publish is accepted",
        PublishAcceptedAfterFreshSnapshot(),
        backup_publish("fresh", 0.1, 200),
        PASS,
    ),
    Case(
        "a fresh snapshot and the publish is still refused",
        PublishAcceptedAfterFreshSnapshot(),
        backup_publish("fresh", 0.1, 503, "backup"),
        FAIL,
    ),
    Case(
        "no fresh snapshot was seen before the publish",
        PublishAcceptedAfterFreshSnapshot(),
        backup_publish("fresh", 30, 200),
        UNKNOWN,
    ),
]

# ---- restore ---------------------------------------------------------------------------------

LOSS = "database-loss:all"
AT_FAULT = [snap("h1", T0 + 5), snap("h2", T0 + HOUR + 5), snap("h3", T0 + 2 * HOUR + 5)]


def restore(
    *,
    verified: list[str] = ("h3",),
    refused: dict | None = None,
    rehydrated: str | None = "h3",
    catalogue_snaps: list[dict] = AT_FAULT,
    cp_now: float = T0 + 2 * HOUR + 600,
    fault_t: float = 2.0,
    verify_after: bool = False,
) -> H:
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
    Case(
        "the newest snapshot verified, then rehydrated",
        SnapshotVerifiedBeforeRestore(),
        restore().build(),
        PASS,
        measured_has(harness_check="intact"),
    ),
    Case(
        "rehydrated without a verification (hash check skipped)",
        SnapshotVerifiedBeforeRestore(),
        restore(verified=[]).build(),
        FAIL,
    ),
    Case(
        "verified only after the rehydrate had begun",
        SnapshotVerifiedBeforeRestore(),
        restore(verify_after=True).build(),
        FAIL,
    ),
    Case(
        "the restore says it verified a snapshot the harness found corrupted",
        SnapshotVerifiedBeforeRestore(),
        restore(catalogue_snaps=AT_FAULT[:2] + [snap("h3", T0 + 2 * HOUR + 5, intact=False)]).build(),
        FAIL,
        says("truncated"),
    ),
    Case("nothing was rehydrated", SnapshotVerifiedBeforeRestore(), restore(rehydrated=None).build(), UNKNOWN),
]

CORRUPT_AT_FAULT = AT_FAULT[:2] + [snap("h3", T0 + 2 * HOUR + 5, intact=False)]

CASES[CorruptSnapshotRefused] = [
    Case(
        "the corrupted newest snapshot refused with its reason, the next older restored",
        CorruptSnapshotRefused("h3"),
        restore(
            catalogue_snaps=CORRUPT_AT_FAULT, refused={"h3": "sha256 differs"}, verified=["h2"], rehydrated="h2"
        ).build(),
        PASS,
    ),
    Case(
        "the corrupted snapshot was restored",
        CorruptSnapshotRefused("h3"),
        restore(catalogue_snaps=CORRUPT_AT_FAULT).build(),
        FAIL,
    ),
    Case(
        "refused, but an older snapshot than the next intact one was restored",
        CorruptSnapshotRefused("h3"),
        restore(
            catalogue_snaps=CORRUPT_AT_FAULT, refused={"h3": "sha256 differs"}, verified=["h1"], rehydrated="h1"
        ).build(),
        FAIL,
        measured_has(expected="h2"),
    ),
    Case(
        "nothing restored at all",
        CorruptSnapshotRefused("h3"),
        restore(
            catalogue_snaps=CORRUPT_AT_FAULT, refused={"h3": "sha256 differs"}, verified=[], rehydrated=None
        ).build(),
        FAIL,
    ),
    Case("the corrupted snapshot is not in the store", CorruptSnapshotRefused("h9"), restore().build(), UNKNOWN),
]


def restored(*, tables=TABLES, verified=True, head=HEAD, approvals=10, missing=(), checked=5) -> History:
    h = restore()
    h.op(
        "restored_data",
        9.0,
        value={"tables": dict(tables), "approvals": approvals, "chain": {"verified": verified, "events": 90, **head}},
    )
    return h.op("restored_sample", 9.5, value={"checked": checked, "missing": list(missing)}).build()


CASES[RestoredDataValid] = [
    Case(
        "counts, chain head, approvals equal and every sampled intent readable", RestoredDataValid(), restored(), PASS
    ),
    Case(
        "a table has fewer rows than at snapshot time",
        RestoredDataValid(),
        restored(tables={**TABLES, "approvals": 9}),
        FAIL,
        measured_has(counts_differ=["approvals"]),
    ),
    Case("the hash chain does not verify", RestoredDataValid(), restored(verified=False), FAIL),
    Case(
        "the chain ends before the snapshot's head",
        RestoredDataValid(),
        restored(head={"last_seq": 80, "last_hash": "h80"}),
        FAIL,
    ),
    Case("ApprovalEventCount differs", RestoredDataValid(), restored(approvals=9), FAIL),
    Case(
        "an intent written before the snapshot cannot be read through the Control Plane",
        RestoredDataValid(),
        restored(missing=("k7",)),
        FAIL,
    ),
    Case("no intent was sampled", RestoredDataValid(), restored(checked=0), UNKNOWN),
    Case("the restored database was not read", RestoredDataValid(), restore().build(), UNKNOWN),
]

CASES[BackupRpo] = [
    Case(
        "the restored snapshot was 10 minutes old at the fault",
        BackupRpo(3600, LOSS),
        restore(cp_now=T0 + 2 * HOUR + 600, fault_t=1.0 + 5).build(),
        PASS,
        measured(pytest.approx(600 - 5 + 5)),
    ),
    Case("the restored snapshot was older than the target at the fault", BackupRpo(300, LOSS), restore().build(), FAIL),
    Case(
        "a corrupted newest snapshot makes the restored one an hour older",
        BackupRpo(3600, LOSS),
        restore(catalogue_snaps=CORRUPT_AT_FAULT, refused={"h3": "x"}, verified=["h2"], rehydrated="h2").build(),
        FAIL,
    ),
    Case("no restore after the fault", BackupRpo(3600, LOSS), restore(rehydrated=None).build(), UNKNOWN),
]


def key_drill(*, readable_deleted=False, same=True, purged=False) -> History:
    h = H().op("key_read", 1.0, value="fp1", detail={"phase": "before"})
    h.op(
        "key_read",
        2.0,
        ok=readable_deleted,
        value="fp1" if readable_deleted else None,
        detail={"phase": "deleted"},
        error="" if readable_deleted else "KeyDeleted",
    )
    h.op("key_read", 3.0, value="fp1" if same else "fp2", detail={"phase": "recovered"})
    return h.op("key_purge", 4.0, ok=purged, error="" if purged else "AccessDenied").build()


CASES[KeyRecoveredFromSoftDelete] = [
    Case(
        "unreadable while deleted, recovered with the same material, purge refused",
        KeyRecoveredFromSoftDelete(),
        key_drill(),
        PASS,
    ),
    Case("recovered as different key material", KeyRecoveredFromSoftDelete(), key_drill(same=False), FAIL),
    Case("the purge of a soft-deleted key succeeded", KeyRecoveredFromSoftDelete(), key_drill(purged=True), FAIL),
    Case(
        "the key was still readable after its deletion",
        KeyRecoveredFromSoftDelete(),
        key_drill(readable_deleted=True),
        FAIL,
    ),
    Case("the key was never read", KeyRecoveredFromSoftDelete(), H().build(), UNKNOWN),
]


def replayed(
    *,
    applies: dict | None = None,
    tested=("k1", "k2"),
    read_back=("k1", "k2"),
    created: dict | None = None,
    before_replay=(),
    as_recorded=False,
) -> History:
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
    Case(
        "each replayed intent back in the store, its key tested, applied once",
        ReplayedExactlyOnce("landscape", ("k1", "k2")),
        replayed(),
        PASS,
    ),
    Case(
        "a replayed intent applied a second time",
        ReplayedExactlyOnce("landscape", ("k1", "k2")),
        replayed(applies={"k1": 2, "k2": 1}),
        FAIL,
        measured_has(applied_twice=["k1"]),
    ),
    Case(
        "a replayed intent never applied",
        ReplayedExactlyOnce("landscape", ("k1", "k2")),
        replayed(applies={"k1": 1}),
        FAIL,
    ),
    Case(
        "a replayed intent missing from the store",
        ReplayedExactlyOnce("landscape", ("k1", "k2")),
        replayed(read_back=("k1",)),
        FAIL,
    ),
    Case(
        "the connector never tested a key after the restore",
        ReplayedExactlyOnce("landscape", ("k1", "k2")),
        replayed(tested=("k1",)),
        FAIL,
    ),
    Case(
        "an intent the restored store still had (replay answered 200) is not sent again: no test needed",
        ReplayedExactlyOnce("landscape", ("k1", "k2")),
        replayed(tested=("k1",), created={"k1": 201, "k2": 200}),
        PASS,
        measured_has(key_tested=1, still_in_restored_store=1),
    ),
    Case(
        "an intent made again (replay answered 201) whose key was never tested",
        ReplayedExactlyOnce("landscape", ("k1", "k2")),
        replayed(tested=("k1",), created={"k1": 201, "k2": 201}),
        FAIL,
    ),
    Case(
        "a replay the restored store answered 200, as the runner records it (value the intent id): no test needed",
        ReplayedExactlyOnce("landscape", ("k1", "k2")),
        replayed(tested=("k1",), created={"k1": 201, "k2": 200}, as_recorded=True),
        PASS,
        measured_has(key_tested=1, still_in_restored_store=1),
    ),
    Case(
        "a key looked up after the restore only before its replay was published (the original message): "
        "the replay's own dispatch was never tested",
        ReplayedExactlyOnce("landscape", ("k1", "k2")),
        replayed(tested=("k1",), before_replay=("k2",)),
        FAIL,
        measured_has(key_tested=1),
    ),
    Case("nothing was written after the snapshot", ReplayedExactlyOnce("landscape", ()), replayed(), UNKNOWN),
]
