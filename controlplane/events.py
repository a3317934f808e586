"""The append-only, hash-chained event store: append inside the caller's transaction, verify.

hash = sha256_hex(prev_hash + canonical_json({seq, type, intent_id, correlation_id, payload}))
where canonical JSON has sorted keys, no spaces and ASCII escapes; the first prev_hash is
64 zeros (GENESIS). The chain head row is locked FOR UPDATE by every appender, so concurrent
instances append strictly one after another; gaps in seq (rolled-back transactions) are fine.

Event store write blocked (matrix row 7): the head lock is waited for at most LOCK_TIMEOUT_MS
(below the statement timeout); then the append raises EventStoreUnavailable, a 503 refusal with
cause "event_store", and the caller's state change rolls back with it: no acknowledged change
lacks its audit event. ``POLICY.ignore_failures`` (serve --unsafe-ignore-event-store) is a
deliberate misbehaviour for negative drills only: the append runs in a SAVEPOINT and on failure
the state change commits without its event. COUNTERS (per instance) feed GET /metrics/event-store.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import errors
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from controlplane import gates
from controlplane.http import Refused

log = logging.getLogger(__name__)

GENESIS = "0" * 64
COLUMNS = "seq, at, type, intent_id, correlation_id, payload, prev_hash, hash"
LOCK_TIMEOUT_MS = 1000  # waiting for the chain head; below the 2 s statement timeout


@dataclass
class Policy:
    """How appends behave in this process (one API instance)."""

    ignore_failures: bool = False  # UNSAFE, negative drills only (see the module docstring)


POLICY = Policy()
# attempted = appends asked for; appended = written in the caller's transaction (persisted when
# it commits); failed = write blocked; committed_without_event = failed, state change kept (UNSAFE)
COUNTERS = {"attempted": 0, "appended": 0, "failed": 0, "committed_without_event": 0}


class EventStoreUnavailable(Refused):
    """The event store cannot take the append (write blocked): answered 503, cause event_store;
    raised inside the transaction, so the state change rolls back with it."""

    def __init__(self, detail: str) -> None:
        super().__init__(
            gates.Refusal(503, "EventStoreWritable", f"event store write blocked: {detail}", cause="event_store")
        )


def metrics() -> dict:
    """The counters of this instance, for GET /metrics/event-store (informational)."""
    return {**COUNTERS, "lock_timeout_ms": LOCK_TIMEOUT_MS, "ignore_failures": POLICY.ignore_failures}


async def metrics_handler(request) -> Any:
    """GET /metrics/event-store (aiohttp handler)."""
    from aiohttp import web

    return web.json_response(metrics())


def canonical(seq: int, type_: str, intent_id: int | None, correlation_id: str, payload: Any) -> str:
    """The canonical JSON text that is hashed for one event."""
    return json.dumps(
        {"seq": seq, "type": type_, "intent_id": intent_id, "correlation_id": correlation_id, "payload": payload},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
    )


def chain_hash(prev_hash: str, seq: int, type_: str, intent_id: int | None, correlation_id: str, payload: Any) -> str:
    return hashlib.sha256(
        (prev_hash + canonical(seq, type_, intent_id, correlation_id, payload)).encode("utf-8")
    ).hexdigest()


async def append(
    conn: psycopg.AsyncConnection, type_: str, intent_id: int | None, correlation_id: str, payload: dict
) -> dict | None:
    """Append one event in the caller's open transaction; return its row (for the SIEM sink).

    Must be called inside a transaction: the head lock is held until commit, and the event
    is only visible (and the head only moved) if the caller's state change commits too.
    A head lock not granted within LOCK_TIMEOUT_MS raises EventStoreUnavailable (the caller's
    transaction must roll back); only with POLICY.ignore_failures (UNSAFE) it returns None instead.
    """
    COUNTERS["attempted"] += 1
    try:
        if POLICY.ignore_failures:
            async with conn.transaction():  # a SAVEPOINT: its failure keeps the caller's change
                row = await _append(conn, type_, intent_id, correlation_id, payload)
        else:
            row = await _append(conn, type_, intent_id, correlation_id, payload)
    except errors.LockNotAvailable:
        COUNTERS["failed"] += 1
        detail = f"chain head lock not granted within {LOCK_TIMEOUT_MS} ms"
        if not POLICY.ignore_failures:
            raise EventStoreUnavailable(detail) from None
        COUNTERS["committed_without_event"] += 1
        log.error(
            "UNSAFE: %s event of intent %s not appended (%s); the state change commits without it",
            type_,
            intent_id,
            detail,
        )
        return None
    COUNTERS["appended"] += 1
    return row


async def _append(
    conn: psycopg.AsyncConnection, type_: str, intent_id: int | None, correlation_id: str, payload: dict
) -> dict:
    # Round-trip through JSON so that the hashed payload equals what jsonb gives back.
    payload = json.loads(json.dumps(payload))
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT_MS}ms'")
    head = await (
        await cur.execute("SELECT last_seq, last_hash FROM event_chain_head WHERE id = 1 FOR UPDATE")
    ).fetchone()
    if head is None:
        raise RuntimeError("event_chain_head is empty: run `python -m controlplane migrate`")
    next_seq = await (await cur.execute("SELECT nextval(pg_get_serial_sequence('events', 'seq')) AS seq")).fetchone()
    if next_seq is None:
        raise RuntimeError("the events sequence returned no value")
    seq = next_seq["seq"]
    digest = chain_hash(head["last_hash"], seq, type_, intent_id, correlation_id, payload)
    row = await (
        await cur.execute(
            f"INSERT INTO events (seq, type, intent_id, correlation_id, payload, prev_hash, hash)"
            f" VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING {COLUMNS}",
            (seq, type_, intent_id, correlation_id, Jsonb(payload), head["last_hash"], digest),
        )
    ).fetchone()
    await cur.execute("UPDATE event_chain_head SET last_seq = %s, last_hash = %s WHERE id = 1", (seq, digest))
    if row is None:
        raise RuntimeError(f"event {seq} was not returned by its INSERT")
    return row


def verify_rows(rows: Iterable[dict], prev_hash: str = GENESIS) -> tuple[int, int | None, str]:
    """Check a run of events in seq order: (count, first_bad_seq or None, last hash).

    An event is bad when its prev_hash is not the previous event's hash (or GENESIS for
    the first) or when its hash does not match its recomputed content.
    """
    count = 0
    for row in rows:
        count += 1
        expected = chain_hash(
            prev_hash, row["seq"], row["type"], row["intent_id"], row["correlation_id"], row["payload"]
        )
        if row["prev_hash"] != prev_hash or row["hash"] != expected:
            return count, row["seq"], prev_hash
        prev_hash = row["hash"]
    return count, None, prev_hash


async def verify(conn: psycopg.AsyncConnection, batch: int = 2000) -> dict:
    """Recompute the whole chain: {"ok", "count", "first_bad_seq"}; also checks the head row."""
    cur = conn.cursor(row_factory=dict_row)
    # One snapshot for every batch and the head, while other instances keep appending.
    await cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    prev, after, total = GENESIS, 0, 0
    while True:
        rows = await (
            await cur.execute(f"SELECT {COLUMNS} FROM events WHERE seq > %s ORDER BY seq LIMIT %s", (after, batch))
        ).fetchall()
        if not rows:
            break
        count, bad, prev = verify_rows(rows, prev)
        total += count
        if bad is not None:
            return {"ok": False, "count": total, "first_bad_seq": bad}
        after = rows[-1]["seq"]
    head = await (await cur.execute("SELECT last_seq, last_hash FROM event_chain_head WHERE id = 1")).fetchone()
    if head is None or head["last_hash"] != prev:
        # The head moved past the last event (or was tampered with): report the event after it.
        return {"ok": False, "count": total, "first_bad_seq": (head or {}).get("last_seq")}
    return {"ok": True, "count": total, "first_bad_seq": None}


def as_json(row: dict) -> dict:
    """An event row as the API returns it."""
    return {**row, "at": row["at"].isoformat()}
