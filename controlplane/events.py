"""The append-only, hash-chained event store: append inside the caller's transaction, verify.

hash = sha256_hex(prev_hash + canonical_json({seq, type, intent_id, correlation_id, payload}))
where canonical JSON has sorted keys, no spaces and ASCII escapes; the first prev_hash is
64 zeros (GENESIS). The chain head row is locked FOR UPDATE by every appender, so concurrent
instances append strictly one after another; gaps in seq (rolled-back transactions) are fine.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Iterable

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

GENESIS = "0" * 64
COLUMNS = "seq, at, type, intent_id, correlation_id, payload, prev_hash, hash"


def canonical(seq: int, type_: str, intent_id: int | None, correlation_id: str, payload: Any) -> str:
    """The canonical JSON text that is hashed for one event."""
    return json.dumps({"seq": seq, "type": type_, "intent_id": intent_id,
                       "correlation_id": correlation_id, "payload": payload},
                      sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def chain_hash(prev_hash: str, seq: int, type_: str, intent_id: int | None,
               correlation_id: str, payload: Any) -> str:
    return hashlib.sha256((prev_hash + canonical(seq, type_, intent_id, correlation_id, payload))
                          .encode("utf-8")).hexdigest()


async def append(conn: psycopg.AsyncConnection, type_: str, intent_id: int | None,
                 correlation_id: str, payload: dict) -> dict:
    """Append one event in the caller's open transaction; return its row (for the SIEM sink).

    Must be called inside a transaction: the head lock is held until commit, and the event
    is only visible (and the head only moved) if the caller's state change commits too.
    """
    # Round-trip through JSON so that the hashed payload equals what jsonb gives back.
    payload = json.loads(json.dumps(payload))
    cur = conn.cursor(row_factory=dict_row)
    head = await (await cur.execute(
        "SELECT last_seq, last_hash FROM event_chain_head WHERE id = 1 FOR UPDATE")).fetchone()
    if head is None:
        raise RuntimeError("event_chain_head is empty: run `python -m controlplane migrate`")
    seq = (await (await cur.execute(
        "SELECT nextval(pg_get_serial_sequence('events', 'seq')) AS seq")).fetchone())["seq"]
    digest = chain_hash(head["last_hash"], seq, type_, intent_id, correlation_id, payload)
    row = await (await cur.execute(
        f"INSERT INTO events (seq, type, intent_id, correlation_id, payload, prev_hash, hash)"
        f" VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING {COLUMNS}",
        (seq, type_, intent_id, correlation_id, Jsonb(payload), head["last_hash"], digest))).fetchone()
    await cur.execute("UPDATE event_chain_head SET last_seq = %s, last_hash = %s WHERE id = 1",
                      (seq, digest))
    return row


def verify_rows(rows: Iterable[dict], prev_hash: str = GENESIS) -> tuple[int, int | None, str]:
    """Check a run of events in seq order: (count, first_bad_seq or None, last hash).

    An event is bad when its prev_hash is not the previous event's hash (or GENESIS for
    the first) or when its hash does not match its recomputed content.
    """
    count = 0
    for row in rows:
        count += 1
        expected = chain_hash(prev_hash, row["seq"], row["type"], row["intent_id"],
                              row["correlation_id"], row["payload"])
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
        rows = await (await cur.execute(
            f"SELECT {COLUMNS} FROM events WHERE seq > %s ORDER BY seq LIMIT %s", (after, batch))).fetchall()
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
