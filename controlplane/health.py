"""ServiceHealth of one instance: database writable, event store append-only, evidence store up,
API tier redundant.

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

The API tier (the spec's stateless front end, at least three availability zones) is up when at
least ``min_instances`` instances (serve --min-instances, default 2) are serving: every instance
runs ``heartbeat_loop``, which UPSERTs its row of ``api_instances`` with the database's real clock
(clock_timestamp(), never the lab's cp_now()) every HEARTBEAT_INTERVAL_S, each in its own short
transaction with ``SET LOCAL synchronous_commit = off`` (a heartbeat never waits for the
synchronous standby; its failures are logged at debug level, once per run of failures). An
instance counts as serving while its last_seen is within LIVE_WINDOW_S of the database's clock
(one clock for every instance: no skew between hosts). The tier is read in the same short read
transaction as the database and event store parts; with the database down it is down
"database down", like the event store. Every part is {"status", "detail"}; the parts are, in
this order: database, event_store, evidence_store, api_tier (gates.service_health names the
first part that is down as the refusal's cause).

Backups (spec section 3: "LastBackupAge <= 24h ... to be considered healthy"): with a backup
catalogue (serve --backup-bucket, controlplane.backups) a fifth part, ``backups``, comes last:
{"status", "detail", "age_hours", "snapshot_id", "taken_at", "bucket"}, up while the newest
snapshot is at most 24 h old on the Control Plane's clock (cp_now(), read in the database part's
transaction), down when it is older, when there is none, or when the catalogue is unreadable;
down makes ServiceHealth Unhealthy. The catalogue's listing is cached 2 s per instance and runs
concurrently with the other checks. Publish judges this part as its own gate, BackupAgeHours
(gates.service_health leaves it out), so that it refuses also where the ServiceHealth gate is
skipped. Without --backup-bucket the part is absent.
"""

from __future__ import annotations

import asyncio
import logging
import time

import psycopg
from psycopg import errors

from controlplane import backups, events
from controlplane.backups import Catalogue
from controlplane.db import Database, DatabaseUnavailable
from controlplane.evidence import EvidenceStore, EvidenceStoreUnavailable
from controlplane.redact import short_cause

log = logging.getLogger("controlplane.health")

TRIGGERS = ("events_refuse_update_delete", "events_refuse_truncate")
PROBE_LOCK_TIMEOUT_MS = 200
HEARTBEAT_INTERVAL_S = 0.5  # every instance refreshes its api_instances row this often
LIVE_WINDOW_S = 3.0  # an instance whose row is older than this is not serving
DEFAULT_MIN_INSTANCES = 2  # serve --min-instances

# One heartbeat, in its own transaction: never waits for the synchronous standby.
HEARTBEAT_STATEMENTS = (
    "SET LOCAL synchronous_commit = off",
    "INSERT INTO api_instances (instance, last_seen) VALUES (%s, clock_timestamp())"
    " ON CONFLICT (instance) DO UPDATE SET last_seen = EXCLUDED.last_seen",
)


async def event_store_writable(conn) -> bool:
    """False when an append would have to wait for the chain head (see the module docstring)."""
    try:
        async with conn.transaction():  # a savepoint
            await conn.execute(f"SET LOCAL lock_timeout = '{PROBE_LOCK_TIMEOUT_MS}ms'")
            await conn.execute("LOCK TABLE event_chain_head IN ROW SHARE MODE")
            raise psycopg.Rollback()  # rolled back at once: the lock is not kept
    except errors.LockNotAvailable:
        return False
    except psycopg.Rollback as lost:  # the rollback itself failed (psycopg only logs that)
        raise psycopg.OperationalError("connection lost while the probe's lock was rolled back") from lost
    return True


def part(up: bool, detail: str) -> dict:
    return {"status": "up" if up else "down", "detail": detail}


async def beat(conn, instance: str) -> None:
    """One heartbeat of ``instance`` (run it as the whole of a Database.run transaction)."""
    setting, upsert = HEARTBEAT_STATEMENTS
    await conn.execute(setting)
    await conn.execute(upsert, (instance,))


async def heartbeat_loop(db: Database, instance: str, interval: float = HEARTBEAT_INTERVAL_S) -> None:
    """Keep ``instance``'s api_instances row fresh until cancelled: one beat every ``interval``
    seconds (a slow beat is followed at once by the next one, never by a burst). A failure is
    logged at debug level when it differs from the previous one, so an outage logs one line."""
    last_failure: str | None = None
    next_at = time.monotonic()
    while True:
        try:
            await db.run(lambda conn: beat(conn, instance))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a heartbeat must outlive any failure
            failure = f"{type(exc).__name__}: {short_cause(exc)}"
            if failure != last_failure:
                log.debug("heartbeat of %s not written: %s", instance, failure)
            last_failure = failure
        else:
            if last_failure is not None:
                log.debug("heartbeat of %s written again", instance)
            last_failure = None
        next_at = max(next_at + interval, time.monotonic())
        await asyncio.sleep(next_at - time.monotonic())


def _instances(n: int) -> str:
    return f"{n} instance{'' if n == 1 else 's'}"


def api_tier_part(serving: list[str], known: int, min_instances: int) -> dict:
    """The api_tier part from the names of the serving instances and the count of known ones."""
    names = f" ({', '.join(serving)})" if serving else ""
    if len(serving) >= min_instances:
        return part(True, f"{len(serving)} of {_instances(known)} serving{names}; minimum {min_instances}")
    return part(False, f"{_instances(len(serving))} serving{names}; minimum {min_instances}")


async def check_database(
    db: Database, min_instances: int = DEFAULT_MIN_INSTANCES, clock: dict | None = None
) -> tuple[dict, dict, dict]:
    """(database part, event_store part, api_tier part), from one short read transaction. With
    ``clock`` (a dict), the Control Plane's clock is read in the same transaction:
    clock["now"] = extract(epoch FROM cp_now()), left unset when it cannot be read."""

    async def work(conn):
        in_recovery, has_schema, has_tier, has_clock = await (
            await conn.execute(
                "SELECT pg_is_in_recovery(),"
                " to_regclass('events') IS NOT NULL AND to_regclass('event_chain_head') IS NOT NULL,"
                " to_regclass('api_instances') IS NOT NULL,"
                " to_regprocedure('cp_now()') IS NOT NULL AND to_regclass('cp_clock') IS NOT NULL"
            )
        ).fetchone()
        if clock is not None and has_clock:
            clock["now"] = (await (await conn.execute("SELECT extract(epoch FROM cp_now())::float8")).fetchone())[0]
        tier: tuple[list[str], int] | None = None
        if has_tier and not in_recovery:
            serving, known = await (
                await conn.execute(
                    "SELECT coalesce(array_agg(instance ORDER BY instance)"
                    "   FILTER (WHERE last_seen >= clock_timestamp() - make_interval(secs => %s)), '{}'),"
                    " count(*) FROM api_instances",
                    (LIVE_WINDOW_S,),
                )
            ).fetchone()
            tier = (list(serving), known)
        if not has_schema:
            return in_recovery, None, 0, True, tier
        last_seq, triggers = await (
            await conn.execute(
                "SELECT (SELECT last_seq FROM event_chain_head WHERE id = 1),"
                " (SELECT count(*) FROM pg_trigger WHERE tgrelid = 'events'::regclass"
                "   AND tgname = ANY(%s) AND tgenabled <> 'D')",
                (list(TRIGGERS),),
            )
        ).fetchone()
        probe = not in_recovery and not events.POLICY.ignore_failures
        writable = (await event_store_writable(conn)) if probe else None
        return in_recovery, last_seq, triggers, writable, tier

    try:
        in_recovery, last_seq, triggers, writable, tier = await db.run(work)
    except DatabaseUnavailable as exc:
        return part(False, f"unreachable: {exc}"), part(False, "database down"), part(False, "database down")
    if in_recovery:
        detail = "read-only: in recovery (a replica cannot take writes)"
        return part(False, detail), part(False, detail), part(False, "database down")
    database = part(True, "primary, writable")
    if tier is not None:
        serving, known = tier
        api_tier = api_tier_part(serving, known, min_instances)
    else:
        api_tier = part(False, "schema missing (no table api_instances): run `python -m controlplane migrate`")
    if last_seq is None:
        return database, part(False, "schema missing: run `python -m controlplane migrate`"), api_tier
    if triggers < len(TRIGGERS):
        return database, part(False, "append-only triggers missing or disabled"), api_tier
    if writable is False:
        return (
            database,
            part(False, f"write blocked: chain head not lockable within {PROBE_LOCK_TIMEOUT_MS} ms"),
            api_tier,
        )
    if writable is None:
        return (
            database,
            part(True, f"append-only, last seq {last_seq}; writes NOT checked (UNSAFE --unsafe-ignore-event-store)"),
            api_tier,
        )
    return database, part(True, f"writable, append-only, last seq {last_seq}"), api_tier


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
        _outcome(store.check()), _outcome(store.check_replica())
    )
    if primary_up:
        return part(True, primary if replica_up else f"{primary}; replica unreachable: {replica}")
    if replica_up:
        return {"status": "degraded", "detail": f"primary unreachable: {primary}; {replica}"}
    return part(False, f"unreachable: {primary}; replica unreachable: {replica}")


async def check_backups(catalogue: Catalogue, clock: dict, listing=None) -> dict:
    """The backups part: the catalogue's newest snapshot (``listing``: an awaitable of it, else
    catalogue.listing()), aged on the Control Plane's clock: clock["now"], read with the database
    part; without it, the wall clock plus the offset last read, and the detail says so."""
    try:
        listed = await (listing if listing is not None else catalogue.listing())
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - an unexpected failure is "unreadable", never a 500
        log.error("backup catalogue: %s: %s", type(exc).__name__, short_cause(exc))
        return backups.unreadable_part(f"{type(exc).__name__}: {short_cause(exc)}")
    now = clock.get("now")
    note = ""
    if now is not None:
        catalogue.clock_offset_s = now - time.time()
    else:
        now = catalogue.estimated_now()
        note = (
            "Control Plane clock estimated from the last offset read: database unreadable"
            if catalogue.clock_offset_s is not None
            else "Control Plane clock estimated as the wall clock: database unreadable"
        )
    return backups.part(listed, now, note)


async def report(
    instance: str,
    db: Database,
    store: EvidenceStore,
    min_instances: int = DEFAULT_MIN_INSTANCES,
    catalogue: Catalogue | None = None,
) -> dict:
    """{"ServiceHealth": "Healthy"|"Unhealthy", "instance", "components": {...}}; the checks
    run concurrently, so the answer takes as long as the slowest one. With a backup catalogue
    the part ``backups`` comes last (aged on the clock read by the database check)."""
    clock: dict = {}
    listing = asyncio.ensure_future(catalogue.listing()) if catalogue is not None else None
    try:
        (database, event_store, api_tier), evidence_store = await asyncio.gather(
            check_database(db, min_instances, clock if catalogue is not None else None), check_evidence(store)
        )
    except BaseException:
        if listing is not None:
            listing.cancel()
        raise
    components = {
        "database": database,
        "event_store": event_store,
        "evidence_store": evidence_store,
        "api_tier": api_tier,
    }
    if catalogue is not None:
        components["backups"] = await check_backups(catalogue, clock, listing)
    healthy = all(p["status"] != "down" for p in components.values())
    return {"ServiceHealth": "Healthy" if healthy else "Unhealthy", "instance": instance, "components": components}
