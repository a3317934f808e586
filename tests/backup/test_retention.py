"""Retention, the daily inventory and the job runner against a real PostgreSQL and moto, with
the Control Plane's clock moved (cp_clock) to make snapshots days old."""

from __future__ import annotations

import calendar
import hashlib
import json
import time
from itertools import pairwise

import pytest

from harness.backup import (
    BackupJobs,
    apply_retention,
    catalogue,
    daily_inventory,
    export_cross_region,
    newest_age_hours,
    take_snapshot,
)
from tests.backup.conftest import PG_BIN, chain_head, seed, set_clock

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]
DAY = 86400.0


def snapshot_at(db, store, vault, epoch):
    set_clock(db.dsn, epoch)
    return take_snapshot(db.dsn, PG_BIN, store, vault)


def test_hourly_snapshots_kept_7_days_and_exports_90_days_while_locked(db, store, vault):
    now = time.time()
    ancient = snapshot_at(db, store, vault, now - 100 * DAY)  # export locked 90 days: lock passed
    old_locked = snapshot_at(db, store, vault, now - 95 * DAY)  # export locked 200 days: still held
    month = snapshot_at(db, store, vault, now - 30 * DAY)  # export locked 1 day: young, kept
    week = snapshot_at(db, store, vault, now - 8 * DAY)
    recent = snapshot_at(db, store, vault, now - 6 * DAY)
    current = snapshot_at(db, store, vault, now)
    export_cross_region(store, ancient)
    export_cross_region(store, old_locked, retention_days=200)
    export_cross_region(store, month, retention_days=1)

    deleted = apply_retention(store, now)

    assert sorted(deleted) == sorted(
        [ancient.snapshot_id, old_locked.snapshot_id, month.snapshot_id, week.snapshot_id, ancient.snapshot_id]
    )  # ancient: hourly and export
    assert [m.snapshot_id for m in catalogue(store, store.bucket)] == [current.snapshot_id, recent.snapshot_id]
    assert [m.snapshot_id for m in catalogue(store, store.dr_bucket)] == [month.snapshot_id, old_locked.snapshot_id]
    for bucket, gone in ((store.bucket, week), (store.dr_bucket, ancient)):
        assert store.versions(bucket, f"snapshots/{gone.snapshot_id}/") == []  # every version, for good
    body = store.read(store.dr_bucket, old_locked.object("dump.enc").key)
    assert hashlib.sha256(body).hexdigest() == old_locked.object("dump.enc").sha256
    assert apply_retention(store, now) == []  # nothing more to do


def test_daily_inventory_lists_every_version_and_exports_new_events(db, store, vault):
    evidence = store.bucket + "-evidence"
    store.s3.create_bucket(Bucket=evidence)
    store.s3.put_bucket_versioning(Bucket=evidence, VersioningConfiguration={"Status": "Enabled"})
    store.s3.put_object(Bucket=evidence, Key="packs/a.json", Body=b"first")
    store.s3.put_object(Bucket=evidence, Key="packs/a.json", Body=b"second version")
    store.s3.put_object(Bucket=evidence, Key="packs/b.json", Body=b"b")
    store.s3.delete_object(Bucket=evidence, Key="packs/b.json")
    day1 = float(calendar.timegm((2026, 3, 1, 23, 0, 0)))

    key = daily_inventory(store, [evidence], db.dsn, day1)
    assert key == "inventory/2026-03-01.json"
    inventory = json.loads(store.read(store.bucket, key))
    listed = {(v["key"], v["version_id"], v["size"], v["delete_marker"]) for v in inventory["buckets"][evidence]}
    truth = store.s3.list_object_versions(Bucket=evidence)
    assert listed == (
        {(v["Key"], v["VersionId"], v["Size"], False) for v in truth["Versions"]}
        | {(m["Key"], m["VersionId"], None, True) for m in truth["DeleteMarkers"]}
    )
    assert len(listed) == 4
    assert all(v["etag"] and v["last_modified"] for v in inventory["buckets"][evidence] if not v["delete_marker"])
    exported = inventory["eventstore"]
    lines = store.read(store.bucket, "eventstore/2026-03-01.jsonl")
    assert exported["sha256"] == hashlib.sha256(lines).hexdigest() and exported["size"] == len(lines)
    head = store.s3.head_object(Bucket=store.bucket, Key="eventstore/2026-03-01.jsonl")  # WORM, 7 years
    assert head["ObjectLockMode"] == "COMPLIANCE"
    assert head["ObjectLockRetainUntilDate"].timestamp() >= day1 + 2557 * DAY
    rows = [json.loads(line) for line in lines.splitlines()]
    assert [r["seq"] for r in rows] == [1, 2, 3, 4, 5] and exported["count"] == 5
    assert (exported["from_seq"], exported["to_seq"], exported["last_hash"]) == (0, 5, chain_head(db.dsn)["last_hash"])
    assert all(r["prev_hash"] == p["hash"] for p, r in pairwise(rows))

    seed(db.dsn, 2, 0, tag="day2")
    day2 = daily_inventory(store, [evidence], db.dsn, day1 + DAY)
    second = json.loads(store.read(store.bucket, day2))["eventstore"]
    assert (second["key"], second["from_seq"], second["to_seq"], second["count"]) == (
        "eventstore/2026-03-02.jsonl",
        5,
        7,
        2,
    )
    seed(db.dsn, 1, 0, tag="day2-later")  # a second run the same day: the whole day again
    second = json.loads(store.read(store.bucket, daily_inventory(store, [evidence], db.dsn, day1 + DAY + 60)))
    assert (second["eventstore"]["from_seq"], second["eventstore"]["to_seq"]) == (5, 8)


def test_jobs_run_what_is_due_in_order_and_coalesce_missed_hours(db, store, vault):
    t0 = float(calendar.timegm((2031, 3, 10, 1, 10, 0)))
    jobs = BackupJobs(store, vault, db.dsn, PG_BIN, evidence_buckets=[store.bucket])
    hourly = lambda: catalogue(store, store.bucket)  # noqa: E731
    exports = lambda: catalogue(store, store.dr_bucket)  # noqa: E731

    set_clock(db.dsn, t0)
    assert jobs.run_due() == ["hourly", "export", "inventory", "retention"]
    assert len(hourly()) == 1 and [m.snapshot_id for m in exports()] == [hourly()[0].snapshot_id]
    assert store.read(store.bucket, "inventory/2031-03-10.json") is not None
    assert jobs.run_due() == []  # same clock hour: nothing is due

    set_clock(db.dsn, t0 + 5 * 3600)  # five hours without a run
    assert jobs.run_due() == ["hourly", "retention"]
    assert len(hourly()) == 2  # one snapshot, not five
    assert abs(hourly()[0].taken_at - (t0 + 5 * 3600)) < 30

    set_clock(db.dsn, t0 + 25 * 3600)
    assert jobs.run_due() == ["hourly", "export", "inventory", "retention"]
    assert len(hourly()) == 3 and len(exports()) == 2
    assert store.read(store.bucket, "inventory/2031-03-11.json") is not None
    assert newest_age_hours(store, t0 + 25 * 3600 + 360) == pytest.approx(0.1, abs=0.02)


def test_store_ensure_is_idempotent_versioned_and_locked_where_it_must_be(store):
    store.ensure()
    store.ensure()
    for bucket in (store.bucket, store.dr_bucket, store.vault_bucket):
        assert store.s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    assert (
        store.lock_enabled(store.bucket),
        store.lock_enabled(store.dr_bucket),
        store.lock_enabled(store.vault_bucket),
    ) == (True, True, True)  # bucket: the event-store exports
