"""The daily inventory of the evidence buckets and the daily export of the event store.

Contract: ``daily_inventory(store, buckets, dsn, now) -> key`` writes, in ``store.bucket``:

- ``eventstore/<day>.jsonl`` (each version under Object Lock COMPLIANCE until ``now`` + 2557 days, 7
  years: spec 1.3 and 3): the events (table public.events, every column, one JSON object per
  line with sorted keys, in seq order) committed since the previous day's export, i.e. with seq
  greater than the ``to_seq`` of the newest inventory of an earlier day (0 when there is none);
  a second run on the same day writes the day's file again, whole. Read in one REPEATABLE READ
  transaction; without an events table there is no event-store export (null);
- ``inventory/<day>.json`` (the key answered), written last::

    {"day": "2026-11-28", "at": <now>, "buckets": {"<bucket>": [{"key", "version_id", "size",
      "etag", "last_modified" (ISO 8601), "is_latest", "delete_marker"}, ...]},
     "eventstore": {"key", "sha256", "size", "from_seq" (exclusive), "to_seq", "count",
                    "last_hash"} | null}

``day`` is the UTC date of ``now`` (Control Plane clock). Every version and delete marker of
each given bucket is listed. Nothing here ever deletes an inventory or an event-store export.
``last_inventory_at(store)`` is the ``at`` of the newest inventory (None when there is none).
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

import psycopg

from harness.backup.pgtools import value_of
from harness.backup.schedule import day_of
from harness.backup.store import INVENTORY_PREFIX, BackupStore, eventstore_key, inventory_key, lock_until

log = logging.getLogger("harness.backup")
# WORM, kept >= 7 years (spec 1.3 and 3): 2557 days hold any 7 calendar years (as the Control Plane's
# evidence objects, controlplane.evidence.SEVEN_YEARS_DAYS). Counted from the Control Plane's clock,
# which the drill moves forward only, so never shorter on the store's own clock.
EXPORT_LOCK_MODE = "COMPLIANCE"
EXPORT_LOCK_DAYS = 2557


def _inventories(store: BackupStore) -> list[str]:
    return sorted(k for k in store.keys(store.bucket, INVENTORY_PREFIX) if k.endswith(".json"))


def _read_inventory(store: BackupStore, key: str) -> dict | None:
    body = store.read(store.bucket, key)
    try:
        data = json.loads(body) if body is not None else None
    except ValueError:
        log.warning("%s/%s is not JSON: ignored", store.bucket, key)
        return None
    return data if isinstance(data, dict) else None


def last_inventory_at(store: BackupStore) -> float | None:
    for key in reversed(_inventories(store)):
        data = _read_inventory(store, key)
        if data is not None and isinstance(data.get("at"), (int, float)):
            return float(data["at"])
    return None


def _previous_to_seq(store: BackupStore, day: str) -> int:
    for key in reversed(_inventories(store)):
        if key >= inventory_key(day):
            continue
        data = _read_inventory(store, key)
        exported = (data or {}).get("eventstore")
        if isinstance(exported, dict) and isinstance(exported.get("to_seq"), int):
            return exported["to_seq"]
    return 0


def _export_events(store: BackupStore, dsn: str, day: str, from_seq: int, now: float) -> dict | None:
    lines: list[bytes] = []
    last_seq, last_hash = from_seq, None
    with psycopg.connect(dsn, autocommit=False, connect_timeout=10) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        if value_of(conn.execute("SELECT to_regclass('public.events')")) is None:
            return None
        for seq, row in conn.execute(
            "SELECT e.seq, to_jsonb(e) FROM public.events e WHERE e.seq > %s ORDER BY e.seq", (from_seq,)
        ):
            lines.append(json.dumps(row, sort_keys=True, separators=(",", ":")).encode() + b"\n")
            last_seq, last_hash = int(seq), row.get("hash")
        conn.rollback()
    body = b"".join(lines)
    key = eventstore_key(day)
    store.s3.put_object(
        Bucket=store.bucket,
        Key=key,
        Body=body,
        ContentType="application/x-ndjson",
        ObjectLockMode=EXPORT_LOCK_MODE,
        ObjectLockRetainUntilDate=lock_until(now + EXPORT_LOCK_DAYS * 86400.0),
    )
    return {
        "key": key,
        "sha256": hashlib.sha256(body).hexdigest(),
        "size": len(body),
        "from_seq": from_seq,
        "to_seq": last_seq,
        "count": len(lines),
        "last_hash": last_hash,
    }


def _listing(store: BackupStore, bucket: str) -> list[dict]:
    return [
        {
            "key": v.key,
            "version_id": v.version_id,
            "size": v.size,
            "etag": v.etag,
            "last_modified": v.last_modified.isoformat() if v.last_modified else None,
            "is_latest": v.is_latest,
            "delete_marker": v.delete_marker,
        }
        for v in store.versions(bucket)
    ]


def daily_inventory(store: BackupStore, buckets: list[str], dsn: str, now: float) -> str:
    day = day_of(now)
    eventstore = _export_events(store, dsn, day, _previous_to_seq(store, day), now)
    inventory: dict[str, Any] = {
        "day": day,
        "at": now,
        "buckets": {b: _listing(store, b) for b in buckets},
        "eventstore": eventstore,
    }
    key = inventory_key(day)
    store.s3.put_object(
        Bucket=store.bucket,
        Key=key,
        ContentType="application/json",
        Body=json.dumps(inventory, sort_keys=True, indent=1).encode(),
    )
    log.info(
        "inventory %s written: %d object versions in %d buckets, %s events",
        key,
        sum(len(v) for v in inventory["buckets"].values()),
        len(buckets),
        eventstore["count"] if eventstore else "no",
    )
    return key
