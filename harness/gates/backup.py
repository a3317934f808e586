"""Backup and restore gates (spec section 3, section 5 rule 3).

Judged from the harness's own reads of the backup store (it lists every snapshot, downloads its
objects and recomputes their SHA-256 against the manifest: op ``backup_catalogue``), of the
evidence buckets and the daily inventory, of the restored database, of the key vault, and from
the restore runbook's own log of what it downloaded, verified, refused and rehydrated (events of
source ``restore``), cross-checked against the harness's catalogue: a restore that says it
verified a snapshot the harness found corrupted fails.

A ``backup_catalogue`` op's value is a list of snapshots::

    {"snapshot_id", "kind" ("hourly" | "export"), "bucket", "taken_at" (Control Plane clock),
     "intact" (every object matches its manifest), "mismatches": [reason, ...],
     "retain_until" (the earliest Object Lock retain-until of its versions, epoch, or None),
     "tables": {table: rows}, "chain": {"last_seq", "last_hash"} | None, "approvals": int | None}

with detail {"phase": ..., "cp_now": the Control Plane's clock when it was read}.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from itertools import pairwise
from typing import Any

from harness.gates.base import Gate, answer, last_op, register, seconds
from harness.model import Event, EventKind, GateResult, History, Op, OpKind, detail_of, event_detail_of

HOUR = 3600.0
DAY = 86400.0
HOURLY_RETENTION_S = 7 * DAY
EXPORT_RETENTION_S = 90 * DAY
# A snapshot this close to the 7-day boundary when the catalogue was read may have been judged on
# either side of it by a retention run a moment earlier: neither kept nor deleted is required.
BOUNDARY_S = 300.0
LOCK_SLACK_S = 60.0


def _iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC).strftime("%Y-%m-%dT%H:%MZ")


def _catalogue(gate: Gate, history: History, phase: str) -> Op | GateResult:
    """The last read of the backup store in `phase`, or the gate's unknown when it was not read."""
    op = last_op(history, OpKind.BACKUP_CATALOGUE, phase=phase)
    if op is None:
        return gate.unknown(f"the backup store was not read ({phase})")
    if not op.ok:
        return gate.unknown(f"the backup store could not be read ({phase}): {op.error}")
    return op


def _of_kind(op: Op, kind: str) -> list[dict[str, Any]]:
    return sorted((s for s in op.value if s.get("kind") == kind), key=lambda s: s["taken_at"])


@register
class HourlySnapshotsTaken(Gate):
    """A snapshot every hour of the Control Plane's clock across the window, each object matching
    the SHA-256 its manifest records (recomputed by the harness from the downloaded bytes)."""

    judges = "lab"
    id = "hourly_snapshots"
    description = "Automated database snapshot every hour, each object matching its SHA-256 manifest"
    threshold = "every hour, all intact"

    def __init__(self, start: float, end: float, phase: str = "schedule"):
        self.start, self.end, self.phase = start, end, phase

    def evaluate(self, history: History) -> GateResult:
        op = _catalogue(self, history, self.phase)
        if isinstance(op, GateResult):
            return op
        hourly = [s for s in _of_kind(op, "hourly") if self.start - HOUR < s["taken_at"] <= self.end]
        first = (self.start // HOUR) * HOUR
        hours = [first + i * HOUR for i in range(int((self.end - first) // HOUR) + 1)]
        missing = [_iso(h) for h in hours if not any(h <= s["taken_at"] < h + HOUR for s in hourly)]
        broken = [s["snapshot_id"] for s in hourly if not s.get("intact")]
        measured = {
            "hours": len(hours),
            "snapshots": len(hourly),
            "missing_hours": missing[:10],
            "not_intact": broken[:10],
        }
        if not hours:
            return self.unknown("the window holds no clock hour", measured)
        return self.judge(not missing and not broken, measured)


@register
class CrossRegionExportsTaken(Gate):
    """A cross-region export at least every 24 h across the window, each intact in the second
    bucket and under an Object Lock retention of at least 90 days from when it was taken."""

    judges = "lab"
    id = "cross_region_exports"
    description = "Cross-region export every 24 h, intact, locked for >= 90 days"
    threshold = "gap <= 24 h (+1 h tick), locked >= 90 d"

    def __init__(self, start: float, end: float, phase: str = "schedule"):
        self.start, self.end, self.phase = start, end, phase

    def evaluate(self, history: History) -> GateResult:
        op = _catalogue(self, history, self.phase)
        if isinstance(op, GateResult):
            return op
        exports = [s for s in _of_kind(op, "export") if s["taken_at"] <= self.end]
        if not exports:
            return self.judge(False, {"exports": 0}, "no cross-region export was taken")
        times = [s["taken_at"] for s in exports if s["taken_at"] >= self.start - DAY - HOUR] or [
            exports[-1]["taken_at"]
        ]
        gaps = [b - a for a, b in pairwise(times)] + [self.end - times[-1]]
        short_locks = [
            s["snapshot_id"]
            for s in exports
            if s.get("retain_until") is None or s["retain_until"] < s["taken_at"] + EXPORT_RETENTION_S - LOCK_SLACK_S
        ]
        broken = [s["snapshot_id"] for s in exports if not s.get("intact")]
        locked = [(s["retain_until"] - s["taken_at"]) / DAY for s in exports if s.get("retain_until")]
        measured = {
            "exports": len(exports),
            "max_gap_h": round(max(gaps) / HOUR, 2),
            "min_lock_days": round(min(locked), 2) if locked else None,
            "short_locks": short_locks[:10],
            "not_intact": broken[:10],
        }
        return self.judge(max(gaps) <= DAY + HOUR and not short_locks and not broken, measured)


@register
class RetentionApplied(Gate):
    """Retention on the Control Plane's clock: hourly snapshots older than 7 days deleted, younger
    ones kept; every cross-region export younger than 90 days kept, and the store refused the
    harness's own attempt to delete one (Object Lock)."""

    judges = "lab"
    id = "retention_applied"
    description = "Hourly snapshots kept 7 days then deleted; cross-region exports kept >= 90 days (locked)"
    threshold = "none expired kept, none young deleted, export delete refused"

    def __init__(self, before: str = "schedule", after: str = "retention"):
        self.before, self.after = before, after

    def evaluate(self, history: History) -> GateResult:
        old = _catalogue(self, history, self.before)
        if isinstance(old, GateResult):
            return old
        new = _catalogue(self, history, self.after)
        if isinstance(new, GateResult):
            return new
        now = detail_of(new)["cp_now"]
        present = {(s["bucket"], s["snapshot_id"]) for s in new.value}
        expired_kept, young_deleted, exports_deleted = [], [], []
        for s in _of_kind(old, "hourly"):
            age = now - s["taken_at"]
            if abs(age - HOURLY_RETENTION_S) <= BOUNDARY_S:
                continue
            kept = (s["bucket"], s["snapshot_id"]) in present
            if age > HOURLY_RETENTION_S and kept:
                expired_kept.append(s["snapshot_id"])
            elif age < HOURLY_RETENTION_S and not kept:
                young_deleted.append(s["snapshot_id"])
        expired_kept += [
            s["snapshot_id"]
            for s in _of_kind(new, "hourly")
            if now - s["taken_at"] > HOURLY_RETENTION_S + BOUNDARY_S and s["snapshot_id"] not in expired_kept
        ]
        for s in _of_kind(old, "export"):
            if now - s["taken_at"] < EXPORT_RETENTION_S and (s["bucket"], s["snapshot_id"]) not in present:
                exports_deleted.append(s["snapshot_id"])
        attempt = last_op(history, OpKind.EXPORT_DELETE_ATTEMPT)
        deleted = None if attempt is None or not isinstance(attempt.value, dict) else attempt.value.get("deleted")
        measured = {
            "expired_kept": expired_kept[:10],
            "young_deleted": young_deleted[:10],
            "exports_deleted": exports_deleted[:10],
            "hourly_checked": len(_of_kind(old, "hourly")),
            "exports_checked": len(_of_kind(old, "export")),
            "export_delete": None
            if attempt is None
            else ("deleted" if deleted else f"refused: {attempt.value.get('error')}"),
        }
        if expired_kept or young_deleted or exports_deleted or deleted:
            return self.judge(False, measured)
        if attempt is None or deleted is None:
            return self.unknown("no deletion of a cross-region export was attempted", measured)
        if not any(now - s["taken_at"] > HOURLY_RETENTION_S + BOUNDARY_S for s in _of_kind(old, "hourly")):
            return self.unknown("no hourly snapshot was old enough to expire", measured)
        return self.judge(True, measured)


@register
class DailyInventory(Gate):
    """Evidence and event-store objects versioned with a daily inventory: every evidence bucket
    has versioning enabled, every object version the harness listed before the day's inventory is
    in it, and the day's event-store export matches the SHA-256 and sequence range it records."""

    judges = "lab"
    id = "daily_inventory"
    description = "Evidence/event-store objects versioned, with a daily inventory listing every version"
    threshold = "versioned, none missing, export intact"

    def evaluate(self, history: History) -> GateResult:
        listed = last_op(history, OpKind.EVIDENCE_VERSIONS)
        inventory = last_op(history, OpKind.INVENTORY_READ)
        if listed is None or inventory is None:
            return self.unknown("the evidence versions or the day's inventory were not read")
        if not listed.ok or not inventory.ok:
            return self.unknown(f"a read failed: {listed.error or inventory.error}")
        if inventory.value is None:
            return self.judge(False, {"inventory": None}, "no inventory was written for the day")
        unversioned = sorted(b for b, status in listed.value["versioning"].items() if status != "Enabled")
        in_inventory = {
            (b, v["key"], v["version_id"]) for b, versions in inventory.value["buckets"].items() for v in versions
        }
        missing = [
            f"{b}/{key}@{version}"
            for b, versions in listed.value["versions"].items()
            for key, version in versions
            if (b, key, version) not in in_inventory
        ]
        export = inventory.value.get("eventstore") or {}
        export_ok = bool(export) and detail_of(inventory).get("eventstore_sha256") == export.get("sha256")
        measured = {
            "day": inventory.value.get("day"),
            "versions_listed": sum(map(len, listed.value["versions"].values())),
            "missing": missing[:10],
            "unversioned": unversioned,
            "eventstore_export": {
                "count": export.get("count"),
                "to_seq": export.get("to_seq"),
                "sha256_matches": export_ok,
            },
        }
        return self.judge(not missing and not unversioned and export_ok, measured)


@register
class PublishRefusedWhileBackupStale(Gate):
    """BackupAgeHours <= 24 before enabling new deployments (rule 3): while the newest snapshot the
    harness finds in the store is older than 24 h on the Control Plane's clock, a publish is
    refused naming the cause "backup"."""

    judges = "system"
    id = "publish_refused_backup_stale"
    description = "A publish is refused (cause backup) while the newest snapshot is older than 24 h"
    threshold = "refused, cause backup"

    def evaluate(self, history: History) -> GateResult:
        stale = last_op(history, OpKind.BACKUP_CATALOGUE, phase="stale")
        publish = last_op(history, OpKind.PUBLISH, phase="stale")
        if stale is None or publish is None or not stale.ok:
            return self.unknown("the stale catalogue or the publish during it was not recorded")
        age = _newest_age_h(stale)
        measured = {"backup_age_h": age, "publish": answer(publish)}
        if age is None or age <= 24:
            return self.unknown("the newest snapshot was not older than 24 h when the publish was attempted", measured)
        return self.judge(publish.status == 503 and detail_of(publish).get("cause") == "backup", measured)


@register
class PublishAcceptedAfterFreshSnapshot(Gate):
    """Once a fresh snapshot is in the store (the harness sees it, age <= 24 h), a publish is accepted."""

    judges = "system"
    id = "publish_accepted_backup_fresh"
    description = "A publish is accepted once a fresh snapshot (<= 24 h) is in the store"
    threshold = "accepted"

    def evaluate(self, history: History) -> GateResult:
        fresh = last_op(history, OpKind.BACKUP_CATALOGUE, phase="fresh")
        publish = last_op(history, OpKind.PUBLISH, phase="fresh")
        if fresh is None or publish is None or not fresh.ok:
            return self.unknown("the fresh catalogue or the publish after it was not recorded")
        age = _newest_age_h(fresh)
        measured = {"backup_age_h": age, "publish": answer(publish)}
        if age is None or age > 24:
            return self.unknown("no fresh snapshot was found before the publish", measured)
        return self.judge(publish.ok, measured)


def _newest_age_h(op: Op) -> float | None:
    times = [s["taken_at"] for s in op.value if s.get("intact")]
    return round((detail_of(op)["cp_now"] - max(times)) / HOUR, 2) if times else None


# ---- restore ----------------------------------------------------------------------------------


def _restore(history: History) -> tuple[str | None, list[Event], list[Event]]:
    """(rehydrated snapshot id, the restore's events, its rehydrate events) from its log; id None:
    it never rehydrated."""
    events = history.events_of(
        EventKind.RESTORE_DOWNLOAD,
        EventKind.RESTORE_VERIFY,
        EventKind.RESTORE_REFUSED,
        EventKind.RESTORE_REHYDRATE,
        EventKind.RESTORE_DONE,
        source="restore",
    )
    rehydrated = [e for e in events if e.kind == EventKind.RESTORE_REHYDRATE]
    return (event_detail_of(rehydrated[-1]).get("snapshot_id") if rehydrated else None), events, rehydrated


@register
class SnapshotVerifiedBeforeRestore(Gate):
    """A restore rehydrates only a snapshot whose every object verified against its manifest, checked
    before the rehydrate began, and the harness's own check of the same objects agrees."""

    judges = "lab"
    id = "snapshot_verified"
    description = "Restore hash-verified the snapshot's objects before rehydrating it"
    threshold = "verified before rehydrate, intact"

    def evaluate(self, history: History) -> GateResult:
        catalogue = _catalogue(self, history, "at_fault")
        if isinstance(catalogue, GateResult):
            return catalogue
        snapshot, events, rehydrated = _restore(history)
        if snapshot is None:
            return self.unknown("the restore never began rehydrating a snapshot")
        start = rehydrated[-1].t
        verified = [
            e
            for e in events
            if e.kind == EventKind.RESTORE_VERIFY
            and e.t <= start
            and event_detail_of(e).get("snapshot_id") == snapshot
            and event_detail_of(e).get("ok")
        ]
        harness = {s["snapshot_id"]: s for s in catalogue.value}.get(snapshot)
        measured = {
            "snapshot": snapshot,
            "verified_before_rehydrate": bool(verified),
            "harness_check": None
            if harness is None
            else ("intact" if harness.get("intact") else "; ".join(harness.get("mismatches", []))[:200]),
        }
        if harness is None:
            return self.unknown(f"the harness did not see snapshot {snapshot} in the store", measured)
        return self.judge(bool(verified) and bool(harness.get("intact")), measured)


@register
class CorruptSnapshotRefused(Gate):
    """The snapshot the drill corrupted is refused with its reason, and the next older snapshot the
    harness found intact is the one restored."""

    judges = "lab"
    id = "corrupt_snapshot_refused"
    description = "A corrupted or truncated snapshot is refused (with the reason) and the next older one restored"
    threshold = "refused; next older intact restored"

    def __init__(self, corrupted: str):
        self.corrupted = corrupted

    def evaluate(self, history: History) -> GateResult:
        catalogue = _catalogue(self, history, "at_fault")
        if isinstance(catalogue, GateResult):
            return catalogue
        snapshot, events, _ = _restore(history)
        refused = [
            e
            for e in events
            if e.kind == EventKind.RESTORE_REFUSED and event_detail_of(e).get("snapshot_id") == self.corrupted
        ]
        by_id = {s["snapshot_id"]: s for s in catalogue.value}
        if self.corrupted not in by_id:
            return self.unknown(f"the corrupted snapshot {self.corrupted} is not in the store")
        bucket = by_id[self.corrupted]["bucket"]
        older = [
            s
            for s in catalogue.value
            if s["bucket"] == bucket and s.get("intact") and s["taken_at"] < by_id[self.corrupted]["taken_at"]
        ]
        expected = max(older, key=lambda s: s["taken_at"])["snapshot_id"] if older else None
        measured = {
            "corrupted": self.corrupted,
            "refused": bool(refused),
            "reason": event_detail_of(refused[-1]).get("reason") if refused else None,
            "restored": snapshot,
            "expected": expected,
        }
        if snapshot is None:
            return self.judge(False, measured, "nothing was restored")
        return self.judge(bool(refused) and bool(measured["reason"]) and snapshot == expected, measured)


@register
class RestoredDataValid(Gate):
    """The restored database holds what the snapshot held: row counts per table equal to the
    source's at snapshot time, the event hash chain verified end to end by the harness up to the
    snapshot's chain head, ApprovalEventCount equal, and a sample of intents written before the
    snapshot readable through a Control Plane pointed at the restored database."""

    judges = "lab"
    id = "restored_data_valid"
    description = "Restored data valid: row counts, event hash chain end to end, ApprovalEventCount, intents readable"
    threshold = "all equal, chain intact, sample readable"

    def evaluate(self, history: History) -> GateResult:
        catalogue = _catalogue(self, history, "at_fault")
        if isinstance(catalogue, GateResult):
            return catalogue
        snapshot, _, _ = _restore(history)
        data = last_op(history, OpKind.RESTORED_DATA)
        sample = last_op(history, OpKind.RESTORED_SAMPLE)
        if snapshot is None or data is None or sample is None:
            return self.unknown("the restore did not complete, or its data was not read back")
        if not data.ok or not sample.ok:
            return self.unknown(f"the restored database could not be read: {data.error or sample.error}")
        source = {s["snapshot_id"]: s for s in catalogue.value}.get(snapshot)
        if source is None:
            return self.unknown(f"snapshot {snapshot} is not in the harness's catalogue")
        counts = data.value["tables"]
        differ = sorted(t for t, n in source["tables"].items() if counts.get(t) != n)
        chain = data.value["chain"]
        head = source.get("chain") or {}
        chain_ok = (
            chain.get("verified")
            and chain.get("last_seq") == head.get("last_seq")
            and chain.get("last_hash") == head.get("last_hash")
        )
        measured = {
            "snapshot": snapshot,
            "tables": len(source["tables"]),
            "counts_differ": differ[:10],
            "chain": {
                "verified": chain.get("verified"),
                "events": chain.get("events"),
                "head_matches": chain.get("last_hash") == head.get("last_hash"),
            },
            "approvals": {"restored": data.value.get("approvals"), "snapshot": source.get("approvals")},
            "sample": {"read": sample.value["checked"], "missing": sample.value["missing"][:10]},
        }
        if not source["tables"] or sample.value["checked"] == 0:
            return self.unknown("nothing to compare: no table counts or no intent sampled", measured)
        ok = (
            not differ
            and bool(chain_ok)
            and data.value.get("approvals") == source.get("approvals")
            and not sample.value["missing"]
        )
        return self.judge(ok, measured)


@register
class BackupRpo(Gate):
    """Backup RPO: the age, at the fault, of the snapshot restored (on the Control Plane's clock)
    <= the plan's backup_rpo_seconds (24 h; 1 h for tier-1)."""

    judges = "lab"
    id = "backup_rpo_seconds"
    operator, unit = "<=", "s"

    def __init__(self, target: float, fault: str):
        self.target, self.fault = target, fault
        self.limit = target
        self.threshold = f"<= {target:g} s"
        self.description = f"Backup RPO (age of the restored snapshot at the fault) <= {target:g} s"

    def evaluate(self, history: History) -> GateResult:
        catalogue = _catalogue(self, history, "at_fault")
        if isinstance(catalogue, GateResult):
            return catalogue
        snapshot, _, _ = _restore(history)
        inject = history.first_event(EventKind.INJECT, self.fault)
        if snapshot is None or inject is None:
            return self.unknown("no restore after the fault")
        source = {s["snapshot_id"]: s for s in catalogue.value}.get(snapshot)
        if source is None:
            return self.unknown(f"snapshot {snapshot} is not in the harness's catalogue")
        fault_cp = detail_of(catalogue)["cp_now"] + (inject.wall - catalogue.wall_invoke)
        age = fault_cp - source["taken_at"]
        return self.judge(age <= self.target, seconds(age), f"restored {snapshot}")


@register
class KeyRecoveredFromSoftDelete(Gate):
    """The backup encryption key, soft-deleted, is unreadable until recovered, then recovered with
    the same material (the harness compares fingerprints), and its purge is refused."""

    judges = "lab"
    id = "key_recovered"
    description = "Backup encryption key recoverable from soft-delete (same key), purge refused"
    threshold = "recovered, same fingerprint, purge refused"

    def evaluate(self, history: History) -> GateResult:
        before = last_op(history, OpKind.KEY_READ, phase="before")
        deleted = last_op(history, OpKind.KEY_READ, phase="deleted")
        after = last_op(history, OpKind.KEY_READ, phase="recovered")
        purge = last_op(history, OpKind.KEY_PURGE)
        if before is None or deleted is None or after is None or purge is None:
            return self.unknown("the key was not read before, during and after its soft-delete, or no purge tried")
        if not before.ok:
            return self.unknown(f"the key could not be read before the drill: {before.error}")
        same_key = after.ok and after.value == before.value
        measured = {
            "readable_while_deleted": deleted.ok,
            "recovered": after.ok,
            "same_key": same_key,
            "purge": "refused" if not purge.ok else "purged",
        }
        return self.judge(not deleted.ok and same_key and not purge.ok, measured)


def replay_sent(publishes: Iterable[Op]) -> dict[str, float]:
    """{idempotency key: wall time its first replay publish was sent}, from the replay's publish ops
    (their value is the key), whatever each answered (a 504 may have dispatched it)."""
    sent: dict[str, float] = {}
    for op in publishes:
        sent[op.value] = min(sent.get(op.value, op.wall_invoke), op.wall_invoke)
    return sent


def replay_tested(lookups: Iterable[tuple[str | None, float]], sent: Mapping[str, float]) -> set[str]:
    """The replayed keys the platform was asked about (Test-IdempotencyKey) for the replay's own
    dispatch: `lookups` (key, wall time the stand-in logged it), each counted only at or after the
    key's replay publish was sent (`sent`, replay_sent). The runner waits on this and the gate judges
    it, so the wait cannot end on a lookup the gate does not count."""
    return {key for key, at in lookups if key is not None and key in sent and at >= sent[key]}


@register
class ReplayedExactlyOnce(Gate):
    """Intents written after the snapshot, replayed with their idempotency keys after the restore,
    are each in the restored store again and applied exactly once at their platform, the connector
    having tested the key first (Test-IdempotencyKey, rule 4), as the stand-ins logged. An intent the
    restored store still had (its replay answered 200, not 201) is not sent again, so it needs no test.

    The test that counts is the one of the replay's own dispatch: a lookup of the key logged at or
    after its replay publish was sent (`replay_tested`, the wait of harness.runner.backup reads the
    same), both on the wall clock each was taken on. A lookup between the restore and that publish
    (the original message, dispatched late) says nothing about the replay."""

    judges = "system"
    id = "replayed_exactly_once"
    description = "Intents written after the snapshot replayed and applied exactly once (Test-IdempotencyKey)"
    threshold = "all present, each applied once, key tested"

    def __init__(self, platform: str, keys: tuple[str, ...]):
        self.platform, self.keys = platform, tuple(keys)

    def evaluate(self, history: History) -> GateResult:
        from harness.measure.platforms import applied, arrivals, requests_at

        replay = last_op(history, OpKind.REPLAY_READ)
        done = history.events_of(EventKind.RESTORE_DONE, source="restore")
        start = done[0] if done else None
        if not self.keys:
            return self.unknown("no intent was written after the snapshot")
        if replay is None or not replay.ok or start is None:
            return self.unknown("the replayed intents were not read back after a restore")
        seen = arrivals(history, self.platform)
        missing = sorted(set(self.keys) - set(replay.value))
        counts = {k: len(applied(seen.get(k, []))) for k in self.keys}
        lookups = replay_tested(
            (
                (event_detail_of(e).get("idempotency_key"), e.wall)
                for e in requests_at(history, self.platform)
                if event_detail_of(e).get("path") == "/applied"
            ),
            replay_sent(history.ops_of(OpKind.REPLAY_PUBLISH)),
        )
        # a replay the restored store answered 200 (it still had the intent, published: the snapshot
        # was taken after it) is not dispatched again, so nothing is tested; every other is
        # (the op's value is the intent id the answer gave: its key is in the detail)
        survived = {
            detail_of(o).get("idempotency_key", o.value)
            for o in history.ops_of(OpKind.REPLAY_CREATE)
            if o.ok and o.status == 200
        }
        must_test = [k for k in self.keys if k not in survived]
        tested = [k for k in must_test if k in lookups]
        measured = {
            "replayed": len(self.keys),
            "missing": missing[:10],
            "not_applied": sorted(k for k, n in counts.items() if n == 0)[:10],
            "applied_twice": sorted(k for k, n in counts.items() if n > 1)[:10],
            "key_tested": len(tested),
            "still_in_restored_store": len(self.keys) - len(must_test),
        }
        ok = not missing and all(n == 1 for n in counts.values()) and len(tested) == len(must_test)
        return self.judge(ok, measured)
