"""ServiceHealth of one instance: database writable, event store append-only, evidence store up.

A part is {"status": "up"|"degraded"|"down", "detail": str}; only "down" makes ServiceHealth
Unhealthy. The evidence store is "up" when the primary bucket answers, "degraded" when only
the replica bucket (alternate region) answers and "down" when neither does: one short attempt
each, concurrently, never retried (/health must stay fast). The database is up only when
``pg_is_in_recovery()`` answers false within the timeout: a read-only replica (e.g. the
endpoint still points at it during a failover) is down for writes, and says so.

The event store is down "write blocked" when an append would wait for its chain head: probed
without writing, in a savepoint rolled back at once, as LOCK TABLE event_chain_head IN ROW SHARE
MODE (the table lock an appender's SELECT ... FOR UPDATE takes first) with lock_timeout
PROBE_LOCK_TIMEOUT_MS. It takes no row lock, so it neither waits for nor delays ordinary
appenders (whose row lock lasts through a synchronous commit), assigns no transaction id and
writes no WAL. With events.POLICY.ignore_failures (UNSAFE) the probe is skipped.
"""

from __future__ import annotations

import asyncio

import psycopg
from psycopg import errors

from controlplane import events
from controlplane.db import Database, DatabaseUnavailable
from controlplane.evidence import EvidenceStore, EvidenceStoreUnavailable

TRIGGERS = ("events_refuse_update_delete", "events_refuse_truncate")
PROBE_LOCK_TIMEOUT_MS = 200


async def event_store_writable(conn) -> bool:
    """False when an append would have to wait for the chain head (see the module docstring)."""
    try:
        async with conn.transaction():   # a savepoint
            await conn.execute(f"SET LOCAL lock_timeout = '{PROBE_LOCK_TIMEOUT_MS}ms'")
            await conn.execute("LOCK TABLE event_chain_head IN ROW SHARE MODE")
            raise psycopg.Rollback()     # rolled back at once: the lock is not kept
    except errors.LockNotAvailable:
        return False
    return True


def part(up: bool, detail: str) -> dict:
    return {"status": "up" if up else "down", "detail": detail}


async def check_database(db: Database) -> tuple[dict, dict]:
    """(database part, event_store part), from one short read transaction."""
    async def work(conn):
        in_recovery, has_schema = await (await conn.execute(
            "SELECT pg_is_in_recovery(),"
            " to_regclass('events') IS NOT NULL AND to_regclass('event_chain_head') IS NOT NULL")).fetchone()
        if not has_schema:
            return in_recovery, None, 0, True
        last_seq, triggers = await (await conn.execute(
            "SELECT (SELECT last_seq FROM event_chain_head WHERE id = 1),"
            " (SELECT count(*) FROM pg_trigger WHERE tgrelid = 'events'::regclass"
            "   AND tgname = ANY(%s) AND tgenabled <> 'D')", (list(TRIGGERS),))).fetchone()
        probe = not in_recovery and not events.POLICY.ignore_failures
        return in_recovery, last_seq, triggers, (await event_store_writable(conn)) if probe else None

    try:
        in_recovery, last_seq, triggers, writable = await db.run(work)
    except DatabaseUnavailable as exc:
        return part(False, f"unreachable: {exc}"), part(False, "database down")
    if in_recovery:
        detail = "read-only: in recovery (a replica cannot take writes)"
        return part(False, detail), part(False, detail)
    database = part(True, "primary, writable")
    if last_seq is None:
        return database, part(False, "schema missing: run `python -m controlplane migrate`")
    if triggers < len(TRIGGERS):
        return database, part(False, "append-only triggers missing or disabled")
    if writable is False:
        return database, part(False, f"write blocked: chain head not lockable within {PROBE_LOCK_TIMEOUT_MS} ms")
    if writable is None:
        return database, part(True, f"append-only, last seq {last_seq}; writes NOT checked "
                                    "(UNSAFE --unsafe-ignore-event-store)")
    return database, part(True, f"writable, append-only, last seq {last_seq}")


async def _outcome(check) -> tuple[bool, str]:
    try:
        return True, await check
    except EvidenceStoreUnavailable as exc:
        return False, str(exc)


async def check_evidence(store: EvidenceStore) -> dict:
    if store.replica_client is None:
        up, detail = await _outcome(store.check())
        return part(up, detail if up else f"unreachable: {detail}")
    (primary_up, primary), (replica_up, replica) = await asyncio.gather(
        _outcome(store.check()), _outcome(store.check_replica()))
    if primary_up:
        return part(True, primary if replica_up else f"{primary}; replica unreachable: {replica}")
    if replica_up:
        return {"status": "degraded", "detail": f"primary unreachable: {primary}; {replica}"}
    return part(False, f"unreachable: {primary}; replica unreachable: {replica}")


async def report(instance: str, db: Database, store: EvidenceStore) -> dict:
    """{"ServiceHealth": "Healthy"|"Unhealthy", "instance", "components": {...}}; the checks
    run concurrently, so the answer takes as long as the slowest one."""
    (database, event_store), evidence_store = await asyncio.gather(check_database(db), check_evidence(store))
    components = {"database": database, "event_store": event_store, "evidence_store": evidence_store}
    healthy = all(p["status"] != "down" for p in components.values())
    return {"ServiceHealth": "Healthy" if healthy else "Unhealthy", "instance": instance,
            "components": components}
