"""take_snapshot against a real PostgreSQL and moto: the manifest matches the stored bytes and the
source, taken_at is on the Control Plane's clock, no password leaks, and the snapshot is
consistent (rows committed after its export are in neither its figures nor its dump)."""

from __future__ import annotations

import hashlib
import logging
import subprocess
import time

import psycopg
import pytest

from harness.backup import catalogue, newest_age_hours, take_snapshot
from harness.backup.crypto import decrypt_file
from harness.backup.manifest import Manifest, manifest_key
from tests.backup.conftest import (
    PG_BIN,
    BlockedSnapshot,
    approvals_recorded,
    chain_head,
    counts,
    pg_dump_cmdlines,
    seed,
    set_clock,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def test_manifest_matches_the_stored_bytes_and_the_source_and_holds_no_password(pg, db, store, vault, caplog):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.INFO, logger="botocore")  # its DEBUG dumps every request
    with BlockedSnapshot(pg, db, store, vault) as blocked:
        running = pg_dump_cmdlines(db.port)
        assert running, "no pg_dump process found while the snapshot was held"
        assert all(db.password not in cmdline for cmdline in running), running
        assert all("password=" not in cmdline for cmdline in running), running
        manifest = blocked.release()

    dump = manifest.object("dump.enc")
    body = store.s3.get_object(Bucket=store.bucket, Key=dump.key)["Body"].read()
    assert (hashlib.sha256(body).hexdigest(), len(body)) == (dump.sha256, dump.size)
    stored = store.s3.get_object(Bucket=store.bucket, Key=manifest_key(manifest.snapshot_id))["Body"].read()
    assert Manifest.from_json(stored) == manifest
    assert (
        manifest.tables
        == counts(db.dsn)
        == {"approvals": 2, "cp_clock": 1, "event_chain_head": 1, "events": 5, "intents": 3}
    )
    assert manifest.chain == chain_head(db.dsn) and manifest.chain["last_seq"] == 5
    assert manifest.approvals == approvals_recorded(db.dsn) == 2
    assert (manifest.kind, manifest.source, manifest.format) == ("hourly", "primary", "pg_dump -Fc")
    assert manifest.encryption["alg"] == "AES-256-GCM"
    assert manifest.encryption["key_version"] == vault.current_version()
    assert len(bytes.fromhex(manifest.encryption["nonce"])) == 12
    assert catalogue(store, store.bucket) == [manifest]
    assert 0 <= newest_age_hours(store, time.time()) < 0.1

    assert db.password not in stored.decode()
    assert db.password not in caplog.text
    assert manifest.snapshot_id in caplog.text  # the log was captured at all


def test_taken_at_is_read_on_the_control_plane_clock(db, store, vault):
    set_clock(db.dsn, time.time() + 3 * 86400)
    ahead = take_snapshot(db.dsn, PG_BIN, store, vault)
    assert abs(ahead.taken_at - (time.time() + 3 * 86400)) < 30
    assert ahead.snapshot_id.startswith(time.strftime("%Y%m%dT%H", time.gmtime(ahead.taken_at)))

    set_clock(db.dsn, time.time() - 2 * 3600)
    behind = take_snapshot(db.dsn, PG_BIN, store, vault)
    assert abs(behind.taken_at - (time.time() - 2 * 3600)) < 30
    assert [m.snapshot_id for m in catalogue(store, store.bucket)] == [ahead.snapshot_id, behind.snapshot_id]

    with psycopg.connect(db.dsn, autocommit=True) as conn:  # no cp_now(): the database's clock
        conn.execute("DROP FUNCTION cp_now()")
    plain = take_snapshot(db.dsn, PG_BIN, store, vault)
    assert abs(plain.taken_at - time.time()) < 30


@pytest.mark.parametrize(
    "held_at", ["public.approvals", "aside.blocker"], ids=["before-pg_dump-starts", "while-pg_dump-runs"]
)
def test_rows_written_after_the_export_change_neither_the_counts_nor_the_dump(pg, db, store, vault, tmp_path, held_at):
    before_counts, before_head = counts(db.dsn), chain_head(db.dsn)
    with BlockedSnapshot(pg, db, store, vault, table=held_at) as blocked:
        seed(db.dsn, 4, 0, tag="written-after-export")  # committed after the export
        manifest = blocked.release()
    assert counts(db.dsn)["intents"] == before_counts["intents"] + 4  # the rows are there now

    assert manifest.tables == before_counts
    assert manifest.chain == before_head and manifest.approvals == 2

    sealed, plain = tmp_path / "dump.enc", tmp_path / "dump.pgc"
    sealed.write_bytes(store.s3.get_object(Bucket=store.bucket, Key=manifest.object("dump.enc").key)["Body"].read())
    decrypt_file(
        sealed,
        plain,
        vault.key(manifest.encryption["key_version"]),
        bytes.fromhex(manifest.encryption["nonce"]),
        manifest.snapshot_id.encode(),
    )
    data = subprocess.run(
        [str(PG_BIN / "pg_restore"), "--data-only", "-f", "-", str(plain)], capture_output=True, text=True, check=True
    ).stdout
    assert "seed-0-" in data
    assert "written-after-export" not in data
