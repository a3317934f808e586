"""The backup catalogue as the Control Plane reads it: the age of the newest snapshot (spec
section 3, "LastBackupAge <= 24h ... to be considered healthy"; section 5 rule 3, "BackupAgeHours
<= 24 before enabling new deployments").

The backup service (not this package) writes, in each backup bucket (serve --backup-bucket,
repeatable, e.g. ``backups`` and the cross-region ``backups-dr``), one object
``snapshots/<snapshot_id>/manifest.json`` per snapshot: a JSON object with at least
``snapshot_id``, ``kind`` ("hourly" | "export") and ``taken_at`` (epoch seconds on the Control
Plane's own clock: what ``SELECT extract(epoch FROM cp_now())`` gave when it was taken).

``BackupCatalogue.listing()`` lists ``snapshots/`` in every bucket (concurrently), reads the
manifests and keeps the one with the greatest taken_at. A snapshot whose manifest is missing,
is not JSON, or has no numeric taken_at is not a snapshot (skipped, logged once). A manifest is
read once per ETag (the parsed answer is kept), so a refresh costs one LIST per bucket plus a
GET per new manifest. The answer is cached ``CACHE_S`` seconds per instance (one refresh at a
time; callers meanwhile wait for it): /health and publish never list S3 on every request.

Every boto3 call runs in the loop's default executor, bounded by ``2 x timeout + 1`` seconds,
with botocore's own retries off; a bucket that cannot be listed (unreachable, NoSuchBucket, no
answer) is recorded in ``Listing.errors`` with a short cause, never raised. The endpoint is
serve --backup-endpoint (default the --s3-endpoint): a lab points it at the store directly, so
that an evidence store outage (its fault proxy) does not make the backup age unknown.

``part(listing, now)`` turns a listing and the Control Plane's clock (``cp_now()`` in epoch
seconds) into the ``backups`` part of /health, {"status", "detail", "age_hours", "snapshot_id",
"taken_at", "bucket"}:

- up       "newest snapshot 0.3 h old (20261128T101500Z-ab12)"
- degraded the same, with "; bucket backups-dr unreadable: ..." (a fresh snapshot was found, so
           the age is known to be within 24 h although a bucket could not be read)
- down     "newest snapshot 25.0 h old (> 24 h)", "no snapshot (searched backups, backups-dr)",
           "backup catalogue unreadable: backups-dr: ..." (age_hours null: the age is unknown)
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

import botocore.exceptions

from controlplane.evidence import S3_ERRORS, s3_client
from controlplane.redact import short_cause

log = logging.getLogger("controlplane.backups")

MAX_AGE_HOURS = 24.0  # spec: LastBackupAge <= 24h / BackupAgeHours <= 24
CACHE_S = 2.0  # one listing per instance at most this often
PREFIX = "snapshots/"
MANIFEST = "manifest.json"
MAX_MANIFEST_BYTES = 1 << 20
MAX_PAGES = 100  # LIST pages per bucket and refresh (100 000 objects)
READ_CONCURRENCY = 8  # manifests read at once (first refresh only: later ones are cached)


class CatalogueUnreadable(Exception):
    """A bucket could not be read; str() is the short cause."""


@dataclass(frozen=True)
class Snapshot:
    snapshot_id: str
    kind: str | None
    taken_at: float  # epoch seconds, Control Plane clock
    bucket: str
    key: str


@dataclass(frozen=True)
class Listing:
    """One refresh of the catalogue: the newest snapshot over the buckets that could be read,
    how many snapshots were seen, and {bucket: cause} of the buckets that could not be read."""

    newest: Snapshot | None
    snapshots: int
    errors: dict[str, str] = field(default_factory=dict)
    buckets: tuple[str, ...] = ()


def parse_manifest(raw: bytes, bucket: str, key: str) -> Snapshot | None:
    """The snapshot a manifest describes, or None when it is not one (not JSON, not an object,
    no finite numeric taken_at)."""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(body, dict):
        return None
    taken_at = body.get("taken_at")
    if isinstance(taken_at, bool) or not isinstance(taken_at, (int, float)) or not math.isfinite(taken_at):
        return None
    sid = body.get("snapshot_id")
    if not isinstance(sid, str) or not sid:
        sid = key.split("/")[1]
    kind = body.get("kind") if isinstance(body.get("kind"), str) else None
    return Snapshot(sid, kind, float(taken_at), bucket, key)


def manifest_key(key: str) -> bool:
    """snapshots/<snapshot_id>/manifest.json, exactly."""
    parts = key.split("/")
    return len(parts) == 3 and parts[0] + "/" == PREFIX and bool(parts[1]) and parts[2] == MANIFEST


class BackupCatalogue:
    def __init__(
        self, endpoint_url: str, buckets: list[str] | tuple[str, ...], timeout: float = 2.0, cache_s: float = CACHE_S
    ) -> None:
        self.endpoint_url = endpoint_url
        self.buckets = tuple(dict.fromkeys(buckets))  # in order, each once
        self.timeout = timeout
        self.cache_s = cache_s
        self.client = s3_client(endpoint_url, timeout)
        self._cached: tuple[float, Listing] | None = None  # (monotonic when read, listing)
        self._lock: asyncio.Lock | None = None
        self._manifests: dict[tuple[str, str], tuple[str, Snapshot | None]] = {}  # (bucket, key) -> (etag, parsed)
        self.clock_offset_s: float | None = None  # cp_now() - time.time() when last read (health)

    # ---- bounded boto3 calls ---------------------------------------------------------

    async def _call(self, fn):
        loop = asyncio.get_running_loop()
        bound = 2 * self.timeout + 1
        try:
            return await asyncio.wait_for(loop.run_in_executor(None, fn), timeout=bound)
        except TimeoutError:
            raise CatalogueUnreadable(f"no answer within {bound:.1f} s") from None
        except S3_ERRORS as exc:
            raise CatalogueUnreadable(short_cause(exc).replace(" (reached max retries: 0)", "")) from exc

    # ---- one bucket ------------------------------------------------------------------

    async def _list(self, bucket: str) -> dict[str, str]:
        """{manifest key: etag} of the bucket (every page)."""
        keys: dict[str, str] = {}
        token = None
        for _ in range(MAX_PAGES):
            kwargs = {"Bucket": bucket, "Prefix": PREFIX, **({"ContinuationToken": token} if token else {})}
            page = await self._call(lambda kwargs=kwargs: self.client.list_objects_v2(**kwargs))
            for obj in page.get("Contents", []):
                if manifest_key(obj["Key"]):
                    keys[obj["Key"]] = obj.get("ETag", "")
            token = page.get("NextContinuationToken") if page.get("IsTruncated") else None
            if not token:
                break
        return keys

    async def _read(self, bucket: str, key: str, etag: str, gate: asyncio.Semaphore) -> Snapshot | None:
        cached = self._manifests.get((bucket, key))
        if cached is not None and cached[0] == etag and etag:
            return cached[1]

        def get() -> bytes | None:
            try:
                return self.client.get_object(Bucket=bucket, Key=key)["Body"].read(MAX_MANIFEST_BYTES + 1)
            except botocore.exceptions.ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                    return None  # deleted since the listing (retention): not a snapshot
                raise

        async with gate:
            raw = await self._call(get)
        snapshot = None
        if raw is not None and len(raw) <= MAX_MANIFEST_BYTES:
            snapshot = parse_manifest(raw, bucket, key)
        if snapshot is None and raw is not None:
            log.warning("backup catalogue: s3://%s/%s is not a snapshot manifest (skipped)", bucket, key)
        if raw is not None:
            self._manifests[(bucket, key)] = (etag, snapshot)
        return snapshot

    async def _bucket(self, bucket: str, gate: asyncio.Semaphore) -> list[Snapshot]:
        keys = await self._list(bucket)
        for stale in [k for k in self._manifests if k[0] == bucket and k[1] not in keys]:
            del self._manifests[stale]
        found = await asyncio.gather(*(self._read(bucket, key, etag, gate) for key, etag in keys.items()))
        return [s for s in found if s is not None]

    # ---- the catalogue ---------------------------------------------------------------

    async def refresh(self) -> Listing:
        """List every bucket now (uncached)."""
        gate = asyncio.Semaphore(READ_CONCURRENCY)
        outcomes = await asyncio.gather(*(self._bucket(b, gate) for b in self.buckets), return_exceptions=True)
        snapshots: list[Snapshot] = []
        errors: dict[str, str] = {}
        for bucket, outcome in zip(self.buckets, outcomes, strict=True):
            if isinstance(outcome, CatalogueUnreadable):
                errors[bucket] = str(outcome)
            elif isinstance(outcome, BaseException):
                if isinstance(outcome, asyncio.CancelledError):
                    raise outcome
                errors[bucket] = f"{type(outcome).__name__}: {short_cause(outcome)}"
            else:
                snapshots.extend(outcome)
        newest = max(snapshots, key=lambda s: (s.taken_at, s.snapshot_id), default=None)
        return Listing(newest, len(snapshots), errors, self.buckets)

    async def listing(self) -> Listing:
        """The catalogue, at most CACHE_S seconds old (one refresh at a time)."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        cached = self._cached
        if cached is not None and time.monotonic() - cached[0] < self.cache_s:
            return cached[1]
        async with self._lock:
            cached = self._cached
            if cached is not None and time.monotonic() - cached[0] < self.cache_s:
                return cached[1]
            listing = await self.refresh()
            self._cached = (time.monotonic(), listing)
            return listing

    def estimated_now(self) -> float:
        """The Control Plane's clock estimated without the database: the wall clock plus the
        offset last read (0 when never read: cp_now() is the database clock plus an offset)."""
        return time.time() + (self.clock_offset_s or 0.0)


def _errors(listing: Listing) -> str:
    return "; ".join(f"{bucket}: {cause}" for bucket, cause in listing.errors.items())


def part(listing: Listing, now: float, clock_note: str = "") -> dict:
    """The /health part ``backups`` (see the module docstring); ``now``: cp_now() as epoch seconds."""
    newest = listing.newest
    out: dict[str, Any] = {
        "status": "down",
        "detail": "",
        "age_hours": None,
        "snapshot_id": None,
        "taken_at": None,
        "bucket": None,
    }
    age = None
    newest_id = None
    if newest is not None:
        age = round(max(0.0, now - newest.taken_at) / 3600.0, 4)
        newest_id = newest.snapshot_id
        out.update(snapshot_id=newest.snapshot_id, taken_at=newest.taken_at, bucket=newest.bucket)
    fresh = age is not None and age <= MAX_AGE_HOURS
    if fresh:
        out.update(
            status="degraded" if listing.errors else "up",
            age_hours=age,
            detail=f"newest snapshot {age:.1f} h old ({newest_id})",
        )
        if listing.errors:
            out["detail"] += "; " + "; ".join(f"bucket {b} unreadable: {c}" for b, c in listing.errors.items())
    elif listing.errors:  # the unreadable bucket may hold a fresher one: the age is unknown
        detail = f"backup catalogue unreadable: {_errors(listing)}"
        if age is not None:
            detail += f"; newest readable snapshot {age:.1f} h old ({newest_id})"
        out["detail"] = detail
    elif age is not None:
        out.update(age_hours=age, detail=f"newest snapshot {age:.1f} h old (> {MAX_AGE_HOURS:g} h)")
    else:
        out["detail"] = f"no snapshot (searched {', '.join(listing.buckets)})"
    if clock_note:
        out["detail"] += f" [{clock_note}]"
    return out


def unreadable_part(cause: str) -> dict:
    return {
        "status": "down",
        "detail": f"backup catalogue unreadable: {cause}",
        "age_hours": None,
        "snapshot_id": None,
        "taken_at": None,
        "bucket": None,
    }
