"""BackupAgeHours <= 24 (spec section 3 "LastBackupAge <= 24h ... to be considered healthy", section
5 rule 3 "BackupAgeHours <= 24 before enabling new deployments") against real processes: moto
buckets holding the backup catalogue (snapshots/<id>/manifest.json), instances started with
--backup-bucket, the Control Plane's clock moved with POST /_clock/advance.

This module has its own lab (PostgreSQL, moto, az1 and az2 without --backup-bucket: the API
tier's minimum), because it moves the Control Plane's clock by more than a day. Each test starts
its own instance on its own fresh buckets; the clock only moves forward, so every manifest is
written relative to the clock as it is now.
"""

from __future__ import annotations

import json
import secrets
import time
import uuid

import pytest
import requests

from harness.lab.postgres import PgBinariesMissing, PgCluster, check_binaries, free_port, pg_bin_dir
from tests.controlplane.cplab import CONTROL, control_plane_lab, health, poll
from tests.controlplane.test_controlplane import approve, call, commit_evidence, new_intent, s3, sql

pytestmark = pytest.mark.timeout(120)  # integration: tests/conftest.py, by folder

CACHE_DEADLINE = 10.0  # the catalogue is cached 2 s per instance: a new manifest shows within that


@pytest.fixture(scope="module")
def bklab(tmp_path_factory):
    try:
        check_binaries(pg_bin_dir())
    except PgBinariesMissing as exc:  # pragma: no cover - depends on the machine
        pytest.skip(str(exc))
    with PgCluster() as pg, control_plane_lab(pg, tmp_path_factory) as lab:
        yield lab


def buckets(lab, n: int = 2, create: bool = True) -> list[str]:
    names = [f"bk-{secrets.token_hex(4)}-{i}" for i in range(n)]
    if create:
        for name in names:
            s3(lab).create_bucket(Bucket=name)
    return names


def cp_now(lab) -> float:
    """The Control Plane's clock, as the backup service reads it."""
    return sql(lab, "SELECT extract(epoch FROM cp_now())::float8")[0][0]


def snapshot(lab, bucket: str, taken_at: float, kind: str = "hourly") -> str:
    sid = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(taken_at)) + "-" + secrets.token_hex(2)
    s3(lab).put_object(
        Bucket=bucket,
        Key=f"snapshots/{sid}/manifest.json",
        Body=json.dumps({"snapshot_id": sid, "kind": kind, "taken_at": taken_at}).encode(),
    )
    return sid


def serve_with_backups(lab, bucket_names: list[str], *extra: str, s3_endpoint: str | None = None):
    name = "bk-" + secrets.token_hex(3)
    args = ["--allow-clock-control", "--backup-endpoint", lab.moto.endpoint_url]
    for b in bucket_names:
        args += ["--backup-bucket", b]
    return lab.serve(name, s3=s3_endpoint, extra=(*args, *extra))


def backups_part(instance) -> dict:
    return health(instance)[1]["components"]["backups"]


def wait_backups(instance, predicate, what: str) -> dict:
    def seen():
        part = backups_part(instance)
        return part if predicate(part) else None

    return poll(seen, CACHE_DEADLINE, f"{instance.name}: backups part {what}")


def approved(instance) -> dict:
    intent = new_intent(instance)
    commit_evidence(instance, intent["id"])
    assert approve(instance, intent["id"]).status_code == 200
    return intent


def publish(instance, intent: dict):
    return call(instance, "POST", f"/intents/{intent['id']}/publish", cid=f"bk-{uuid.uuid4()}")


def published_events(lab, intent_id: int) -> int:
    return sql(lab, "SELECT count(*) FROM events WHERE type = 'Published' AND intent_id = %s", (intent_id,))[0][0]


def assert_refused_by_backup_age(lab, instance, intent: dict, *needles: str) -> dict:
    refused = publish(instance, intent)
    body = refused.json()
    assert refused.status_code == 503, body
    assert (body["gate"], body["cause"]) == ("BackupAgeHours", "backup"), body
    for needle in needles:
        assert needle in body["error"], body
    assert call(instance, "GET", f"/intents/{intent['id']}").json()["state"] == "Approved"  # nothing written
    assert published_events(lab, intent["id"]) == 0
    return body


def test_backup_age_on_the_control_plane_clock_gates_health_and_publish(bklab):
    primary, dr = buckets(bklab)
    fresh = snapshot(bklab, primary, cp_now(bklab))
    older = snapshot(bklab, dr, cp_now(bklab) - 3 * 3600, kind="export")
    s3(bklab).put_object(Bucket=primary, Key="snapshots/torn/manifest.json", Body=b'{"snapshot_id": "torn", "ta')
    s3(bklab).put_object(Bucket=primary, Key="snapshots/nomanifest/base.tar", Body=b"data")
    s3(bklab).put_object(
        Bucket=dr,
        Key="snapshots/notime/manifest.json",
        Body=json.dumps({"snapshot_id": "notime", "kind": "hourly"}).encode(),
    )
    bk = serve_with_backups(bklab, [primary, dr])
    try:
        status, body = health(bk)
        part = body["components"]["backups"]
        assert status == 200 and body["ServiceHealth"] == "Healthy", body
        assert list(body["components"]) == ["database", "event_store", "evidence_store", "api_tier", "backups"]
        assert part["status"] == "up" and part["detail"] == f"newest snapshot 0.0 h old ({fresh})", part
        assert (part["snapshot_id"], part["bucket"]) == (fresh, primary) and 0 <= part["age_hours"] < 0.05
        assert older != fresh
        ok = approved(bk)
        accepted = publish(bk, ok)
        assert accepted.status_code == 200 and accepted.json()["state"] == "Published", accepted.text

        # a day and an hour later on the Control Plane's clock: the newest snapshot is 25 h old
        # clock control needs the lab's bearer token (loopback is open to every local user)
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            refused = requests.post(bk.url + "/_clock/advance", json={"seconds": 60}, headers=headers, timeout=15)
            assert refused.status_code == 401 and "bearer token" in refused.json()["error"], refused.text
        moved = requests.post(bk.url + "/_clock/advance", json={"seconds": 25 * 3600}, headers=CONTROL, timeout=15)
        assert moved.status_code == 200, moved.text
        status, body = health(bk)
        part = body["components"]["backups"]
        assert status == 503 and body["ServiceHealth"] == "Unhealthy", body
        assert part["status"] == "down" and part["detail"] == "newest snapshot 25.0 h old (> 24 h)", part
        assert 25.0 <= part["age_hours"] < 25.1 and part["snapshot_id"] == fresh
        assert {k: v["status"] for k, v in body["components"].items() if k != "backups"} == {
            "database": "up",
            "event_store": "up",
            "evidence_store": "up",
            "api_tier": "up",
        }
        stale = approved(bk)
        refusal = assert_refused_by_backup_age(
            bklab, bk, stale, "BackupAgeHours = 25.0 > 24", "newest snapshot 25.0 h old"
        )
        assert 25.0 <= refusal["BackupAgeHours"] < 25.1

        # the backup service takes a snapshot (in the cross-region bucket), on the moved clock
        newer = snapshot(bklab, dr, cp_now(bklab), kind="export")
        part = wait_backups(bk, lambda p: p["status"] == "up", "up again")
        assert part["detail"] == f"newest snapshot 0.0 h old ({newer})" and part["bucket"] == dr, part
        again = publish(bk, stale)
        assert again.status_code == 200 and again.json()["state"] == "Published", again.text
        assert published_events(bklab, stale["id"]) == 1
    finally:
        bklab.stop(bk.name)


def test_unreadable_catalogue_then_no_snapshot_refuse_publish(bklab):
    present, missing = buckets(bklab, 2, create=False)
    s3(bklab).create_bucket(Bucket=present)
    s3(bklab).put_object(Bucket=present, Key="snapshots/junk/manifest.json", Body=b"not json")
    s3(bklab).put_object(Bucket=present, Key="snapshots/list/manifest.json", Body=b"[1, 2]")
    bk = serve_with_backups(bklab, [present, missing])
    try:
        part = backups_part(bk)
        assert part["status"] == "down" and part["age_hours"] is None, part
        assert part["detail"].startswith(f"backup catalogue unreadable: {missing}: "), part
        assert "NoSuchBucket" in part["detail"], part
        intent = approved(bk)
        refusal = assert_refused_by_backup_age(
            bklab, bk, intent, "BackupAgeHours unknown", "backup catalogue unreadable"
        )
        assert refusal["BackupAgeHours"] is None

        s3(bklab).create_bucket(Bucket=missing)
        part = wait_backups(bk, lambda p: "unreadable" not in p["detail"], "readable")
        assert part == {
            "status": "down",
            "detail": f"no snapshot (searched {present}, {missing})",
            "age_hours": None,
            "snapshot_id": None,
            "taken_at": None,
            "bucket": None,
        }
        assert health(bk)[0] == 503
        assert_refused_by_backup_age(bklab, bk, intent, "BackupAgeHours unknown (no snapshot")
    finally:
        bklab.stop(bk.name)


def test_unsafe_publish_while_unhealthy_still_refuses_on_backup_age(bklab):
    (bucket,) = buckets(bklab, 1)
    snapshot(bklab, bucket, cp_now(bklab) - 30 * 3600)
    bk = serve_with_backups(bklab, [bucket], "--unsafe-publish-while-unhealthy")
    try:
        part = backups_part(bk)
        assert part["status"] == "down" and part["detail"] == "newest snapshot 30.0 h old (> 24 h)", part
        intent = approved(bk)
        assert_refused_by_backup_age(bklab, bk, intent, "BackupAgeHours = 30.0 > 24")
        assert "ServiceHealth gate skipped" not in bk.log_text()  # no other part is down: not that gate
    finally:
        bklab.stop(bk.name)


def test_evidence_store_outage_leaves_the_backup_age_known(bklab):
    """--backup-endpoint reaches the catalogue directly: the evidence store (a dead endpoint here)
    being down makes its own part down, not the backups part. A bucket that cannot be read next
    to a fresh snapshot leaves the age known: degraded, not down."""
    (bucket,) = buckets(bklab, 1)
    sid = snapshot(bklab, bucket, cp_now(bklab) - 1800)
    missing = f"bk-{secrets.token_hex(4)}-missing"
    bk = serve_with_backups(bklab, [bucket, missing], s3_endpoint=f"http://127.0.0.1:{free_port()}")
    try:
        status, body = health(bk)
        assert status == 503 and body["components"]["evidence_store"]["status"] == "down", body
        part = body["components"]["backups"]
        assert part["status"] == "degraded" and part["snapshot_id"] == sid, part
        assert part["detail"].startswith(f"newest snapshot 0.5 h old ({sid}); bucket {missing} unreadable: "), part
        assert 0.49 < part["age_hours"] < 0.6
        intent = new_intent(bk)
        refused = call(bk, "POST", f"/intents/{intent['id']}/publish")
        assert refused.status_code == 503 and refused.json()["gate"] == "ServiceHealth", refused.text
        assert refused.json()["cause"] == "evidence_store"  # the first part down; backups is not down
    finally:
        bklab.stop(bk.name)


def test_without_backup_buckets_nothing_is_enforced(bklab):
    az1 = bklab.instances["az1"]
    status, body = health(az1)
    assert status == 200 and "backups" not in body["components"], body
    assert "BackupAgeHours is not enforced: no --backup-bucket" in az1.log_text()
    intent = approved(az1)
    assert publish(az1, intent).status_code == 200


# ---- the part's rules, as pure functions (no lab) ----------------------------------------------


def test_manifest_parsing_and_the_part_rules():
    from controlplane.backups import Listing, Snapshot, parse_manifest, part

    manifest = b'{"snapshot_id": "s1", "kind": "hourly", "taken_at": 100}'
    assert parse_manifest(manifest, "b", "snapshots/s1/manifest.json") == Snapshot(
        "s1", "hourly", 100.0, "b", "snapshots/s1/manifest.json"
    )
    assert parse_manifest(b'{"taken_at": 5.5}', "b", "snapshots/dir-id/manifest.json").snapshot_id == "dir-id"
    for raw in (
        b"",
        b"nope",
        b"[]",
        b'{"taken_at": true}',
        b'{"taken_at": "100"}',
        b'{"taken_at": NaN}',
        b'{"snapshot_id": "x"}',
        b"\xff\xfe",
    ):
        assert parse_manifest(raw, "b", "snapshots/x/manifest.json") is None, raw

    hour = 3600.0
    newest = Snapshot("s2", "export", 1000 * hour, "dr", "snapshots/s2/manifest.json")
    up = part(Listing(newest, 2, {}, ("main", "dr")), 1000 * hour + 24 * hour)
    assert (up["status"], up["age_hours"], up["detail"]) == ("up", 24.0, "newest snapshot 24.0 h old (s2)")
    down = part(Listing(newest, 2, {}, ("main", "dr")), 1000 * hour + 24 * hour + 1)
    assert (down["status"], down["detail"]) == ("down", "newest snapshot 24.0 h old (> 24 h)")
    assert part(Listing(newest, 1, {}, ("dr",)), 999 * hour)["age_hours"] == 0.0  # never negative
    degraded = part(Listing(newest, 1, {"main": "timeout"}, ("main", "dr")), 1001 * hour)
    assert degraded["status"] == "degraded" and degraded["age_hours"] == 1.0
    assert degraded["detail"] == "newest snapshot 1.0 h old (s2); bucket main unreadable: timeout"
    unknown = part(Listing(newest, 1, {"main": "timeout"}, ("main", "dr")), 1030 * hour)
    assert (unknown["status"], unknown["age_hours"]) == ("down", None)
    assert unknown["detail"] == ("backup catalogue unreadable: main: timeout; newest readable snapshot 30.0 h old (s2)")
    none = part(Listing(None, 0, {}, ("main", "dr")), 0.0)
    assert (none["status"], none["detail"]) == ("down", "no snapshot (searched main, dr)")
