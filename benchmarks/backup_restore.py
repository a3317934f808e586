"""Benchmark: the Control Plane database's backup and restore (harness/backup) by database size.

Real parts only: a PgCluster (PostgreSQL 15) as the source, a second PgCluster as the restore
target (a fresh instance, as the lab's restore runbook uses), and a moto server holding the
backup buckets and the key vault, set up with the calls of harness/lab/backups.py. Per size:

1. fill the Control Plane database (schema: controlplane/schema.sql) up to the size;
2. take_snapshot: pg_dump -Fc of an exported snapshot, AES-256-GCM, upload -> s, MB/s, object size;
3. restore with verify=True and verify=False into the target (pg_restore_into, as
   the embedded lab's Backups part does in restore_database), each followed by our validate:
   count(*) of every table of the manifest on the restored database against the manifest's counts;
4. PgCluster.add_replica (pg_basebackup + start + streaming) of the same database: the
   physical-copy reference.

The database grows from one size to the next (sizes run in ascending order); the store is
emptied between sizes. Run from the repository root:
    .venv/bin/python benchmarks/backup_restore.py --sizes 10MB,100MB
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.backup import BackupStore, KeyVault, pg_restore_into, restore, take_snapshot  # noqa: E402
from harness.backup.pgtools import run_tool  # noqa: E402
from harness.lab.moto import MotoServer  # noqa: E402
from harness.lab.parts import store_client  # noqa: E402
from harness.lab.postgres import APP_DATABASE, APP_ROLE, PgCluster  # noqa: E402

MB = 1 << 20
PHASES = ("download", "verify", "decrypt", "rehydrate", "validate", "total")

# What is filled: the two tables that grow in production, intents and the hash-chained event
# store (one IntentCreated event per intent), with their primary keys, unique and secondary
# indexes, so that pg_dump carries real rows and pg_restore rebuilds real indexes. Payloads
# are hex digests, like ids and hashes (the dump, without index pages and compressed, is about
# a quarter of the database). The chain head is moved to the last event, as the Control
# Plane's writers would leave it.
FILL = """
WITH new AS (
    INSERT INTO intents (idempotency_key, ring, platform, payload, state, correlation_id)
    SELECT 'bench-' || g, 'ring-' || g %% 4, 'platform-' || g %% 3,
           jsonb_build_object('version', g, 'artifact', md5(g::text) || md5((g * 7)::text),
                              'config', md5((g * 13)::text) || md5((g * 31)::text)),
           (ARRAY['Draft', 'Approved', 'Published'])[1 + g %% 3], md5('corr' || g)
    FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g
    RETURNING id, correlation_id)
INSERT INTO events (type, intent_id, correlation_id, payload, prev_hash, hash)
SELECT 'IntentCreated', id, correlation_id, jsonb_build_object('intent_id', id, 'by', 'bench'),
       md5('prev' || id) || md5('p' || id), md5('hash' || id) || md5('h' || id)
FROM new
"""
CHAIN_HEAD = (
    "UPDATE event_chain_head SET (last_seq, last_hash) = "
    "(SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1) WHERE id = 1"
)


def parse_size(text: str) -> int:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(MB|GB)\s*", text, re.IGNORECASE)
    if not match:
        raise argparse.ArgumentTypeError(f"bad size {text!r}: use e.g. 10MB or 1GB")
    return int(float(match[1]) * (MB if match[2].upper() == "MB" else 1024 * MB))


def db_size(conn: psycopg.Connection) -> int:
    return int(conn.execute("SELECT pg_database_size(current_database())").fetchone()[0])


def fill(conn: psycopg.Connection, target: int, next_id: int) -> tuple[int, float]:
    """Insert intents + events until the database reaches ~target bytes; (next id, seconds)."""
    start = time.monotonic()
    size, rows, per_row = db_size(conn), 2_000, None
    while size < 0.98 * target:
        if per_row:
            rows = max(1000, min(400_000, int((target - size) / per_row)))
        conn.execute(FILL, {"first": next_id, "last": next_id + rows - 1})
        next_id += rows
        grown, size = size, db_size(conn)
        per_row = max(1.0, (size - grown) / rows)
    conn.execute(CHAIN_HEAD)
    conn.execute("VACUUM (ANALYZE) intents, events")  # hint bits set once, before any copy
    return next_id, time.monotonic() - start


def validate(target: PgCluster, manifest) -> None:
    """Every table of the manifest holds, on the restored database, the rows it counted."""
    with psycopg.connect(target.primary.admin_dsn, dbname=APP_DATABASE, autocommit=True) as conn:
        for table, expected in manifest.tables.items():
            found = conn.execute(sql.SQL("SELECT count(*) FROM public.{}").format(sql.Identifier(table))).fetchone()[0]
            if found != expected:
                raise SystemExit(f"validate: {table} has {found} rows restored, the manifest says {expected}")


def timed_restore(
    store: BackupStore, vault: KeyVault, target: PgCluster, verify: bool, workdir: Path, snapshot_id: str
) -> dict[str, float]:
    """Drop the target's database, restore the newest snapshot into it, validate: phase seconds."""
    target.primary.query(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(APP_DATABASE)))

    def rehydrate(dump: Path) -> None:
        pg_restore_into(target.primary.admin_dsn, target.pg_bin, dump, APP_DATABASE, APP_ROLE, target.password)

    start = time.monotonic()
    outcome = restore(store, vault, rehydrate, verify=verify, workdir=workdir)
    if not outcome.ok or outcome.manifest.snapshot_id != snapshot_id:
        raise SystemExit(f"restore (verify={verify}) did not restore {snapshot_id}: {outcome.candidates}")
    validated = time.monotonic()
    validate(target, outcome.manifest)
    now = time.monotonic()
    return {**outcome.phase_seconds, "validate": now - validated, "total": now - start}


def median_phases(runs: list[dict[str, float]]) -> dict[str, float]:
    return {phase: statistics.median(r[phase] for r in runs) for phase in PHASES}


def one_size(
    label: str,
    target_bytes: int,
    source: PgCluster,
    target: PgCluster,
    moto: MotoServer,
    s3,
    workdir: Path,
    next_id: int,
    runs: int,
) -> tuple[int, dict]:
    moto.reset()  # the previous size's snapshots and key gone
    store = BackupStore(s3)  # as harness.lab.backups.BackupService.start()
    vault = KeyVault(s3, store.vault_bucket)
    store.ensure()
    vault.ensure_key()

    with psycopg.connect(source.primary.dsn, autocommit=True) as conn:
        next_id, fill_s = fill(conn, target_bytes, next_id)
        size = db_size(conn)
        counts = dict(
            conn.execute(
                "SELECT 'intents', count(*) FROM intents UNION ALL SELECT 'events', count(*) FROM events"
            ).fetchall()
        )

    start = time.monotonic()
    manifest = take_snapshot(source.primary.dsn, source.pg_bin, store, vault, workdir=workdir)
    snapshot_s = time.monotonic() - start
    stored = sum(ref.size for ref in manifest.objects)
    start = time.monotonic()  # where the snapshot's time goes: the same pg_dump, alone
    run_tool(source.pg_bin, "pg_dump", ["-Fc", "-f", str(workdir / "alone.pgc")], source.primary.dsn)
    pg_dump_s = time.monotonic() - start
    (workdir / "alone.pgc").unlink()

    verified, unverified = [], []
    for _ in range(runs):  # interleaved, so that a drift (cache, disk) hits both modes
        verified.append(timed_restore(store, vault, target, True, workdir, manifest.snapshot_id))
        unverified.append(timed_restore(store, vault, target, False, workdir, manifest.snapshot_id))
    with psycopg.connect(target.primary.admin_dsn, dbname=APP_DATABASE, autocommit=True) as conn:
        restored = db_size(conn)

    basebackups = []
    for i in range(runs):
        name = f"base-{label.lower()}-{i}"
        start = time.monotonic()
        source.add_replica(name)  # pg_basebackup -X stream, start, streaming
        basebackups.append(time.monotonic() - start)
        source.lose_node(name)  # killed, data dir removed
    return next_id, {
        "label": label,
        "size": size,
        "counts": counts,
        "fill_s": fill_s,
        "snapshot_s": snapshot_s,
        "pg_dump_s": pg_dump_s,
        "stored": stored,
        "restored": restored,
        "verified": median_phases(verified),
        "unverified": median_phases(unverified),
        "basebackup_s": statistics.median(basebackups),
    }


def report(r: dict, runs: int) -> None:
    v, u, bb = r["verified"], r["unverified"], r["basebackup_s"]
    size_mb = r["size"] / MB
    print(
        f"\n== {r['label']}: controlplane database {size_mb:.1f} MB (pg_database_size; intents "
        f"{r['counts']['intents']:,} rows, events {r['counts']['events']:,}), filled in {r['fill_s']:.1f} s"
    )
    print(
        f"  snapshot     {r['snapshot_s']:8.2f} s  {size_mb / r['snapshot_s']:7.1f} MB/s of database; "
        f"object {r['stored'] / MB:.1f} MB ({100 * r['stored'] / r['size']:.0f}% of the database)"
    )
    print(
        f"    pg_dump -Fc alone {r['pg_dump_s']:8.2f} s  ({100 * r['pg_dump_s'] / r['snapshot_s']:.0f}% of the "
        f"snapshot; the rest: export, counts, AES-256-GCM, upload)"
    )
    print(f"  restore (median of {runs})  {'verified':>10} {'MB/s':>8} {'unverified':>11}")
    for phase in PHASES:
        # download, verify and decrypt move the stored object; the later phases, the database
        moved = r["stored"] if phase in ("download", "verify", "decrypt") else r["size"]
        rate = f"{moved / MB / v[phase]:8.0f}" if v[phase] > 0 else f"{'-':>8}"
        cell = f"{u[phase]:10.2f} s" if phase != "verify" else f"{'-':>12}"
        print(f"    {phase:<17} {v[phase]:10.2f} s {rate} {cell}")
    print(f"    restored database {r['restored'] / MB:.1f} MB ({100 * r['restored'] / r['size']:.0f}% of the source)")
    print(
        f"  verify cost  {100 * v['verify'] / v['total']:5.1f}% of the verified restore; "
        f"verified/unverified total {v['total'] / u['total']:.2f}x"
    )
    print(f"  basebackup   {bb:8.2f} s  (PgCluster.add_replica: pg_basebackup + start + streaming)")
    print(
        f"  ratios       restore/basebackup {v['total'] / bb:.1f}x, snapshot/basebackup "
        f"{r['snapshot_s'] / bb:.1f}x, (snapshot+restore)/basebackup {(r['snapshot_s'] + v['total']) / bb:.1f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--sizes",
        default="10MB,100MB,1GB",
        type=lambda s: sorted((parse_size(p), p.strip().upper()) for p in s.split(",")),
        help="target database sizes, MB or GB, comma separated (default %(default)s)",
    )
    parser.add_argument("--runs", type=int, default=3, help="restores and basebackups per size (median)")
    args = parser.parse_args()

    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="drill-bench-backup-"))  # dumps on disk, as the lab's
    source, target, moto = PgCluster(), PgCluster(), MotoServer()
    results = []
    try:
        source.start()
        target.start()
        moto.start()
        s3 = store_client("s3", moto.endpoint_url)
        with psycopg.connect(source.primary.dsn) as conn, conn.transaction():
            conn.execute((ROOT / "controlplane" / "schema.sql").read_text())  # as `controlplane migrate`
        next_id = 1
        for target_bytes, label in args.sizes:
            t0 = time.monotonic()
            next_id, result = one_size(label, target_bytes, source, target, moto, s3, workdir, next_id, args.runs)
            report(result, args.runs)
            print(f"  ({label} measured in {time.monotonic() - t0:.0f} s)", flush=True)
            results.append(result)
    finally:
        for stop in (target.down, source.down, moto.down, lambda: shutil.rmtree(workdir, ignore_errors=True)):
            try:
                stop()
            except Exception as exc:  # noqa: BLE001 - the other parts still get cleaned up
                print(f"cleanup: {type(exc).__name__}: {exc}", file=sys.stderr)

    print(
        f"\n{'size':>9} {'snap s':>7} {'MB/s':>6} {'object':>8} {'restore':>8} {'rehydr.':>8} "
        f"{'verify%':>8} {'v/unv':>6} {'basebk':>7} {'rst/bb':>7}"
    )
    for r in results:
        v, u = r["verified"], r["unverified"]
        print(
            f"{r['size'] / MB:7.0f}MB {r['snapshot_s']:7.2f} {r['size'] / MB / r['snapshot_s']:6.1f} "
            f"{r['stored'] / MB:6.1f}MB {v['total']:8.2f} {v['rehydrate']:8.2f} "
            f"{100 * v['verify'] / v['total']:7.1f}% {v['total'] / u['total']:6.2f} "
            f"{r['basebackup_s']:7.2f} {v['total'] / r['basebackup_s']:6.1f}x"
        )
    print(f"whole benchmark: {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
