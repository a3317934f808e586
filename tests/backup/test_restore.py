"""restore() against a real PostgreSQL and moto: into a fresh instance, falling back past a
corrupted or truncated newest snapshot, the misbehaving verify=False procedure, not_before, and
the cross-region export restored after a region loss."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import botocore.exceptions
import psycopg
import pytest

from harness.backup import catalogue, export_cross_region, pg_restore_into, restore, take_snapshot
from harness.lab.postgres import PgCluster
from tests.backup.conftest import (
    PG_BIN,
    Events,
    admin_dsn,
    app_dsn,
    approvals_recorded,
    chain_head,
    corrupt,
    counts,
    new_database,
    restore_into_database,
    seed,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def two_snapshots(db, store, vault):
    older = take_snapshot(db.dsn, PG_BIN, store, vault)
    seed(db.dsn, 2, 1, tag="between")
    newer = take_snapshot(db.dsn, PG_BIN, store, vault)
    assert newer.tables != older.tables
    return older, newer


def test_restore_into_a_fresh_instance(db, store, vault, tmp_path_factory):
    manifest = take_snapshot(db.dsn, PG_BIN, store, vault)
    events = Events()
    with contextlib.ExitStack() as stack:
        fresh: list[PgCluster] = []

        def rehydrate(dump):
            # a new instance, without the application role or database: pg_restore_into makes them
            cluster = stack.enter_context(PgCluster(state_dir=tmp_path_factory.mktemp("drill-state")))
            cluster.primary.query("DROP DATABASE controlplane")
            cluster.primary.query("DROP ROLE controlplane")
            pg_restore_into(cluster.primary.admin_dsn, PG_BIN, dump, owner_password="restored-secret")
            fresh.append(cluster)

        outcome = restore(store, vault, rehydrate, emit=events)
        assert outcome.ok and outcome.manifest == manifest and len(fresh) == 1
        node = fresh[0].primary
        restored = psycopg.conninfo.make_conninfo(
            host=node.host, port=node.port, dbname="controlplane", user="controlplane", password="restored-secret"
        )
        assert counts(restored) == manifest.tables
        assert chain_head(restored) == manifest.chain
        assert approvals_recorded(restored) == manifest.approvals == 2
        with psycopg.connect(restored) as conn:  # owners kept: the application role owns its tables
            owners = {r[0] for r in conn.execute("SELECT tableowner FROM pg_tables WHERE schemaname = 'public'")}
        assert owners == {"controlplane"}

    assert events.kinds() == [
        "restore_download",
        "restore_verify",
        "restore_decrypt",
        "restore_rehydrate",
        "restore_done",
    ]
    assert events.of("restore_verify")[0] == {**events.of("restore_verify")[0], "ok": True, "reasons": []}
    assert events.of("restore_download")[0]["bytes"] == manifest.object("dump.enc").size
    done = events.of("restore_done")[0]
    assert (done["snapshot_id"], done["tables"], done["chain"], done["tried"]) == (
        manifest.snapshot_id,
        dict(manifest.tables),
        dict(manifest.chain),
        1,
    )
    assert outcome.key_version == manifest.encryption["key_version"]
    assert set(outcome.phase_seconds) == {"download", "verify", "decrypt", "rehydrate"}
    assert all(s > 0 for s in outcome.phase_seconds.values())
    assert [(c.snapshot_id, c.verdict) for c in outcome.candidates] == [(manifest.snapshot_id, "restored")]


@pytest.mark.parametrize("truncate", [False, True], ids=["flipped-bytes", "truncated"])
def test_a_damaged_newest_snapshot_is_refused_and_the_next_older_restored(pg, db, store, vault, truncate):
    older, newer = two_snapshots(db, store, vault)
    corrupt(store, newer.object("dump.enc").key, truncate=truncate)
    events = Events()
    rehydrate, restored = restore_into_database(pg)
    outcome = restore(store, vault, rehydrate, emit=events)

    assert outcome.manifest == older and len(restored) == 1
    assert counts(admin_dsn(pg, restored[0])) == older.tables
    refused = outcome.candidates[0]
    assert (refused.snapshot_id, refused.verdict, refused.phase) == (newer.snapshot_id, "refused", "verify")
    assert refused.reason.startswith(f"snapshots/{newer.snapshot_id}/dump.enc: ")
    assert "sha256" in refused.reason
    assert ("(truncated)" in refused.reason) == truncate
    assert events.of("restore_refused") == [
        {"snapshot_id": newer.snapshot_id, "taken_at": newer.taken_at, "phase": "verify", "reason": refused.reason}
    ]
    assert [v["ok"] for v in events.of("restore_verify")] == [False, True]
    assert events.kinds()[-1] == "restore_done"


def test_without_verification_the_damaged_snapshot_is_tried_and_only_decryption_stops_it(pg, db, store, vault):
    older, newer = two_snapshots(db, store, vault)
    corrupt(store, newer.object("dump.enc").key)
    events = Events()
    rehydrate, restored = restore_into_database(pg)
    outcome = restore(store, vault, rehydrate, verify=False, emit=events)

    assert "restore_verify" not in events.kinds()
    assert events.kinds() == [
        "restore_download",
        "restore_refused",
        "restore_download",
        "restore_decrypt",
        "restore_rehydrate",
        "restore_done",
    ]
    refused = outcome.candidates[0]
    assert (refused.snapshot_id, refused.phase) == (newer.snapshot_id, "decrypt")
    assert "authentication failed" in refused.reason
    assert outcome.manifest == older and counts(admin_dsn(pg, restored[0])) == older.tables
    assert outcome.phase_seconds["verify"] == 0


def test_not_before_refuses_snapshots_too_old_for_the_plan(db, store, vault):
    older, newer = two_snapshots(db, store, vault)
    calls = []
    events = Events()
    outcome = restore(store, vault, calls.append, emit=events, not_before=newer.taken_at + 1)
    assert not outcome.ok and calls == []
    assert [(c.snapshot_id, c.phase) for c in outcome.candidates] == [
        (newer.snapshot_id, "age"),
        (older.snapshot_id, "age"),
    ]
    assert events.kinds() == ["restore_refused", "restore_refused", "restore_failed"]
    assert "before the plan's oldest acceptable" in outcome.candidates[0].reason

    # newest damaged, the older one too old: nothing is restored
    corrupt(store, newer.object("dump.enc").key)
    outcome = restore(store, vault, calls.append, not_before=(older.taken_at + newer.taken_at) / 2)
    assert not outcome.ok and calls == []
    assert [c.phase for c in outcome.candidates] == ["verify", "age"]


def test_after_a_region_loss_the_locked_export_is_restored_from_the_dr_bucket(pg, db, store, vault):
    hourly = take_snapshot(db.dsn, PG_BIN, store, vault)
    export = export_cross_region(store, hourly)
    assert (export.kind, export.snapshot_id, export.objects) == ("export", hourly.snapshot_id, hourly.objects)

    for v in store.versions(store.dr_bucket):
        until = store.retain_until(store.dr_bucket, v.key, v.version_id)
        assert abs(until.timestamp() - (hourly.taken_at + 90 * 86400)) < 2
        with pytest.raises(botocore.exceptions.ClientError):  # the lock holds
            store.s3.delete_object(Bucket=store.dr_bucket, Key=v.key, VersionId=v.version_id)

    store.s3.delete_object(Bucket=store.bucket, Key=hourly.object("dump.enc").key)  # the region is lost
    assert not restore(store, vault, lambda dump: None).ok
    rehydrate, restored = restore_into_database(pg)
    outcome = restore(store, vault, rehydrate, bucket=store.dr_bucket)
    assert outcome.manifest == export
    assert counts(admin_dsn(pg, restored[0])) == export.tables


def test_pg_restore_failure_is_a_clear_error(pg, tmp_path):
    bogus = tmp_path / "dump.pgc"
    bogus.write_bytes(b"not a dump")
    with pytest.raises(Exception) as caught:
        pg_restore_into(pg.primary.admin_dsn, PG_BIN, bogus, database=f"broken_{int(time.time())}")
    assert "pg_restore" in str(caught.value) and "input file" in str(caught.value)


def test_a_failed_rehydrate_stops_the_procedure(db, store, vault):
    older, newer = two_snapshots(db, store, vault)
    tried = []

    def rehydrate(dump):
        tried.append(dump.stat().st_size)
        raise RuntimeError("target instance would not start")

    events = Events()
    outcome = restore(store, vault, rehydrate, emit=events)
    assert not outcome.ok and len(tried) == 1  # the older one is not tried on a dirty target
    assert [(c.snapshot_id, c.verdict, c.phase) for c in outcome.candidates] == [
        (newer.snapshot_id, "failed", "rehydrate")
    ]
    assert events.kinds()[-1] == "restore_failed"
    assert "target instance would not start" in events.of("restore_failed")[0]["reason"]


def test_an_export_taken_directly_lands_locked_in_the_dr_bucket(db, store, vault):
    export = take_snapshot(db.dsn, PG_BIN, store, vault, kind="export")
    assert catalogue(store, store.dr_bucket) == [export] and catalogue(store, store.bucket) == []
    for v in store.versions(store.dr_bucket):
        assert (
            abs(store.retain_until(store.dr_bucket, v.key, v.version_id).timestamp() - (export.taken_at + 90 * 86400))
            < 2
        )


def test_the_control_planes_own_schema_round_trips(pg, store, vault):
    """controlplane/schema.sql itself (read as a file, never imported): snapshot, restore, compare."""
    name = new_database(pg, "cpschema")
    dsn = app_dsn(pg, name)
    schema = (Path(__file__).resolve().parents[2] / "controlplane" / "schema.sql").read_text()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(schema)
        conn.execute("UPDATE cp_clock SET offset_s = 7200")
        conn.execute(
            "INSERT INTO intents (idempotency_key, ring, platform, correlation_id) VALUES ('k1', 'ring0', 'jamf', 'c1')"
        )
    manifest = take_snapshot(dsn, PG_BIN, store, vault)
    assert abs(manifest.taken_at - (time.time() + 7200)) < 30
    assert manifest.chain == {"last_seq": 0, "last_hash": "0" * 64} and manifest.approvals == 0
    rehydrate, restored = restore_into_database(pg)
    assert restore(store, vault, rehydrate).manifest == manifest
    assert counts(admin_dsn(pg, restored[0])) == manifest.tables == counts(dsn)
