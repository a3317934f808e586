"""Take one encrypted, consistent snapshot of the Control Plane's database into the backup store.

Contract: ``take_snapshot(dsn, pg_bin, store, vault, kind="hourly", bucket=None, workdir=None)
-> Manifest``. In one REPEATABLE READ READ ONLY transaction: ``pg_export_snapshot()``, then the
row counts of every table of schema public, the event chain head (``event_chain_head``), the
number of ApprovalRecorded events and the Control Plane's clock (``cp_now()``, else now()); while
that transaction is open, ``pg_dump -Fc --snapshot=<id>`` with the same dsn, so the dump and the
recorded figures are of the same instant and rows committed meanwhile are in neither. The dump
is encrypted with AES-256-GCM (key: the vault's current version, created on first use),
uploaded, and the manifest is written last: a snapshot without a manifest does not exist.
The password in the dsn reaches pg_dump through PGPASSWORD, never its command line, and is
never logged. The vault's key must not be soft-deleted (KeyDeleted: no snapshot is taken); a
failed connection or pg_dump raises SnapshotError, and nothing is published. ``bucket``
defaults to the hourly bucket for kind "hourly" and the dr bucket for "export"; an object
written to a bucket with Object Lock gets a retention of 90 days from taken_at. The snapshot
id is ``<taken_at as YYYYmmddTHHMMSSZ>-<8 hex>``; ``source`` defaults to the node's
cluster_name (its last ``/`` part), else ``host:port``.

Why ``pg_dump -Fc`` rather than ``pg_basebackup`` + WAL archiving: the exported snapshot lets
the dump and its manifest's row counts, chain head and clock describe the same instant (the
restore can then check them); the dump restores into any fresh instance of the same or a newer
major version (no identical data directory layout, no replication slot); it needs only the
application role (no REPLICATION privilege, no access to the server's files); and it is compact
(compressed, no indexes' pages, no bloat). The trade-off: restoring a large database takes
longer (indexes are rebuilt), and there is no point-in-time recovery between snapshots: the
recovery point is the last hourly snapshot (or the last daily export after a region loss).
"""

from __future__ import annotations

import logging
import secrets
import tempfile
import time
from pathlib import Path

import psycopg
from psycopg import sql

from harness.backup import crypto
from harness.backup.keyvault import KeyVault
from harness.backup.manifest import ALG, FORMAT, Manifest, ObjectRef, manifest_key, new_snapshot_id, object_key
from harness.backup.pgtools import cp_clock, redact, run_tool, split_password, value_of
from harness.backup.schedule import EXPORT_RETENTION_DAYS, retain_until
from harness.backup.store import BackupStore, lock_until

log = logging.getLogger("harness.backup")

LOCK_MODE = "COMPLIANCE"


class SnapshotError(RuntimeError):
    """The snapshot could not be taken; nothing was published (no manifest)."""


def read_state(conn: psycopg.Connection) -> dict:
    """In the caller's transaction: row counts of schema public, chain head, approvals, clock, source."""
    tables = [
        r[0]
        for r in conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY 1"
        )
    ]
    counts = {
        t: int(value_of(conn.execute(sql.SQL("SELECT count(*) FROM public.{}").format(sql.Identifier(t)))))
        for t in tables
    }
    chain = None
    if "event_chain_head" in counts:
        row = conn.execute("SELECT last_seq, last_hash FROM public.event_chain_head ORDER BY 1 LIMIT 1").fetchone()
        if row is not None:
            chain = {"last_seq": int(row[0]), "last_hash": str(row[1])}
    approvals = None
    if "events" in counts:
        approvals = int(value_of(conn.execute("SELECT count(*) FROM public.events WHERE type = 'ApprovalRecorded'")))
    cluster = conn.execute(
        "SELECT current_setting('cluster_name'), coalesce(host(inet_server_addr()), 'local'), inet_server_port()"
    ).fetchone()
    if cluster is None:
        raise psycopg.DataError("the server's name and address could not be read")
    source = cluster[0].rsplit("/", 1)[-1] if cluster[0] else f"{cluster[1]}:{cluster[2]}"
    return {"tables": counts, "chain": chain, "approvals": approvals, "taken_at": cp_clock(conn), "source": source}


def take_snapshot(
    dsn: str,
    pg_bin: Path,
    store: BackupStore,
    vault: KeyVault,
    kind: str = "hourly",
    bucket: str | None = None,
    workdir: Path | None = None,
    source: str | None = None,
    dump_timeout: float = 3600.0,
) -> Manifest:
    """See the module docstring. ``source`` overrides the node name read from cluster_name."""
    if kind not in ("hourly", "export"):
        raise ValueError(f"kind must be hourly or export, not {kind!r}")
    bucket = bucket or (store.bucket if kind == "hourly" else store.dr_bucket)
    started = time.monotonic()
    key_version = vault.ensure_key()
    key = vault.key(key_version)
    with tempfile.TemporaryDirectory(prefix="drill-snapshot-", dir=workdir) as tmp:
        plain, sealed = Path(tmp) / "dump.pgc", Path(tmp) / "dump.enc"
        try:
            conn = psycopg.connect(dsn, autocommit=False, connect_timeout=10)
        except psycopg.Error as exc:
            raise SnapshotError(
                f"cannot connect to the database: {redact(str(exc).strip(), split_password(dsn)[1])}"
            ) from None
        with conn:
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            conn.read_only = True
            exported = value_of(conn.execute("SELECT pg_export_snapshot()"))
            state = read_state(conn)
            try:
                run_tool(
                    pg_bin, "pg_dump", ["-Fc", f"--snapshot={exported}", "-f", str(plain)], dsn, timeout=dump_timeout
                )
            except Exception as exc:
                raise SnapshotError(f"pg_dump of the snapshot failed: {exc}") from None
            conn.rollback()
        snapshot_id = new_snapshot_id(state["taken_at"], secrets.token_hex(4))
        nonce = crypto.new_nonce()
        sha256, size = crypto.encrypt_file(plain, sealed, key, nonce, snapshot_id.encode())
        dump_key = object_key(snapshot_id)
        manifest = Manifest(
            snapshot_id=snapshot_id,
            kind=kind,
            taken_at=state["taken_at"],
            source=source or state["source"],
            objects=(ObjectRef(dump_key, sha256, size),),
            encryption={"alg": ALG, "key_name": vault.name, "key_version": key_version, "nonce": nonce.hex()},
            tables=state["tables"],
            chain=state["chain"],
            approvals=state["approvals"],
            format=FORMAT,
        )
        lock = _lock_args(store, bucket, manifest.taken_at)
        with open(sealed, "rb") as body:
            store.s3.put_object(Bucket=bucket, Key=dump_key, Body=body, **lock)
    store.s3.put_object(
        Bucket=bucket,
        Key=manifest_key(snapshot_id),
        Body=manifest.to_json().encode(),
        ContentType="application/json",
        **lock,
    )
    log.info(
        "snapshot %s (%s) of %s taken into %s: %d bytes, %d tables, in %.2f s",
        snapshot_id,
        kind,
        manifest.source,
        bucket,
        size,
        len(manifest.tables),
        time.monotonic() - started,
    )
    return manifest


def _lock_args(store: BackupStore, bucket: str, taken_at: float, days: float = EXPORT_RETENTION_DAYS) -> dict:
    if bucket not in store.locked_buckets:
        return {}
    return {"ObjectLockMode": LOCK_MODE, "ObjectLockRetainUntilDate": lock_until(retain_until(taken_at, days))}
