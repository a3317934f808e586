"""The backup catalogue as the Control Plane reads it: the age of the newest snapshot (spec
section 3, "LastBackupAge <= 24h ... to be considered healthy"; section 5 rule 3, "BackupAgeHours
<= 24 before enabling new deployments").

Two sources (one per instance, chosen by serve's flags; both give ``listing()`` through the same
cache, and the same ``part``): the harness's manifests in S3 (``BackupCatalogue``, below), or the
deployment's own tool, ``PgBackRestCatalogue`` (serve --backup-pgbackrest-config, issue 26:
``pgbackrest info --output=json``, the newest backup's ``timestamp.stop`` over every repository;
see its docstring).

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
import os
import re
import shutil
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
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
PGBACKREST = "pgbackrest"
PGBACKREST_TIMEOUT_S = 10.0  # one pgbackrest info run, killed past it
MAX_INFO_BYTES = 16 << 20
MAX_CONFIG_BYTES = 1 << 20
INFO_OK = (0, 2)  # a repository's status: ok, "no valid backups" (read, and empty)
INFO_MISSING_STANZA = 1  # "missing stanza path"
SECRET_OPTION_SUFFIXES = ("-pass", "-key", "-key-secret", "-token", "-password")
_S3_CODE = re.compile(r"<Code>([A-Za-z0-9.]{1,64})</Code>")
_ERROR_PREFIX = re.compile(r"^ERROR:\s*\[(\d+)\]:\s*")


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
    noun: str = "snapshot"  # what the catalogue holds: "snapshot" (manifests), "backup" (pgBackRest)
    place: str = "bucket"  # what the errors are keyed by, in the degraded detail ("" for pgBackRest's repoN)
    searched: str = ""  # where "no snapshot (searched ...)" looked: the buckets when empty


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


class Catalogue:
    """A source of the backups part: ``refresh()`` reads it now; ``listing()`` answers it at most
    ``cache_s`` old, one refresh at a time (callers meanwhile wait for it)."""

    def __init__(self, cache_s: float = CACHE_S) -> None:
        self.cache_s = cache_s
        self._cached: tuple[float, Listing] | None = None  # (monotonic when read, listing)
        self._lock: asyncio.Lock | None = None
        self.clock_offset_s: float | None = None  # cp_now() - time.time() when last read (health)

    async def refresh(self) -> Listing:
        raise NotImplementedError

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


class BackupCatalogue(Catalogue):
    """The manifests in the backup buckets (serve --backup-bucket)."""

    def __init__(
        self, endpoint_url: str, buckets: list[str] | tuple[str, ...], timeout: float = 2.0, cache_s: float = CACHE_S
    ) -> None:
        super().__init__(cache_s)
        self.endpoint_url = endpoint_url
        self.buckets = tuple(dict.fromkeys(buckets))  # in order, each once
        self.timeout = timeout
        self.client = s3_client(endpoint_url, timeout)
        self._manifests: dict[tuple[str, str], tuple[str, Snapshot | None]] = {}  # (bucket, key) -> (etag, parsed)

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


# ---- the second source: pgBackRest's own catalogue ---------------------------------------


def _repo_cause(message: object) -> str:
    """pgBackRest's message for a repository, made short: its first line, plus the S3 error code
    when the message carries the response (pgBackRest prints the whole request and answer)."""
    text = message if isinstance(message, str) else str(message)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    first = lines[0].rstrip(":") if lines else "no message"
    code = _S3_CODE.search(text)
    if code and code.group(1) not in first:
        first += f": {code.group(1)}"
    return first


def _obj(value: object) -> dict:
    return value if isinstance(value, dict) else {}


def _items(value: object) -> list[dict]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def parse_info(raw: str | bytes, stanza: str) -> Listing:
    """The Listing of one stanza from ``pgbackrest info --output=json`` (all repositories).

    Each repository ``repoN`` is searched; one whose status is neither ok (0) nor "no valid
    backups" (2) is an error with its short cause (1 "missing stanza path": a wrong stanza or an
    empty repository; 99: it could not be read). The newest backup is the one with the greatest
    ``timestamp.stop`` over every repository; ``Snapshot.bucket`` is its repository (``repoN``),
    ``snapshot_id`` its label, ``kind`` its type (full, diff, incr). CatalogueUnreadable when
    the answer is not pgBackRest's JSON or has no entry for the stanza."""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise CatalogueUnreadable("its answer is not JSON") from None
    entry = None
    if isinstance(body, list):
        entry = next((e for e in body if isinstance(e, dict) and e.get("name") == stanza), None)
    if entry is None:
        raise CatalogueUnreadable(f"no stanza {stanza} in its answer")
    repos: list[str] = []
    errors: dict[str, str] = {}
    for repo in _items(entry.get("repo")):
        key = repo.get("key")
        if isinstance(key, bool) or not isinstance(key, int):
            continue
        name = f"repo{key}"
        repos.append(name)
        status = _obj(repo.get("status"))
        code = status.get("code")
        if code in INFO_OK:
            continue
        cause = _repo_cause(status.get("message", "no status"))
        errors[name] = f"stanza {stanza}: {cause}" if code == INFO_MISSING_STANZA else cause
    backups: list[Snapshot] = []
    for backup in _items(entry.get("backup")):
        stop = _obj(backup.get("timestamp")).get("stop")
        label = backup.get("label")
        if isinstance(stop, bool) or not isinstance(stop, (int, float)) or not math.isfinite(stop):
            continue
        if not isinstance(label, str) or not label:
            continue
        key = _obj(backup.get("database")).get("repo-key")
        repo_name = f"repo{key}" if isinstance(key, int) and not isinstance(key, bool) else "repo?"
        kind = backup.get("type") if isinstance(backup.get("type"), str) else None
        backups.append(Snapshot(label, kind, float(stop), repo_name, label))
    newest = max(backups, key=lambda b: (b.taken_at, b.snapshot_id), default=None)
    searched = f"stanza {stanza}" + (f": {', '.join(repos)}" if repos else "")
    return Listing(newest, len(backups), errors, tuple(repos), noun="backup", place="", searched=searched)


def _secret_values(files: list[Path]) -> list[str]:
    """The values of pgBackRest's secret options (``*-pass``, ``*-key``, ``*-key-secret``,
    ``*-token``) in the config files the Control Plane can read: scrubbed from every cause."""
    values = []
    for path in files:
        try:
            with open(path, "rb") as f:
                text = f.read(MAX_CONFIG_BYTES).decode(errors="replace")
        except OSError:
            continue
        for line in text.splitlines():
            name, sep, value = line.partition("=")
            if sep and name.strip().endswith(SECRET_OPTION_SUFFIXES) and len(value.strip()) >= 4:
                values.append(value.strip())
    return values


class PgBackRestCatalogue(Catalogue):
    """The backups of one pgBackRest stanza, read with ``pgbackrest info --output=json`` (serve
    --backup-pgbackrest-config FILE [--backup-pgbackrest-include DIR] --backup-stanza NAME).

    pgBackRest's repositories are encrypted client side: the bucket's objects cannot be parsed,
    so the Control Plane asks the tool, as a deployment's monitoring does. One run answers every
    repository; each refresh is one run (cached ``cache_s``, one at a time, like the S3 listing),
    bounded by ``timeout`` seconds, past which the run (its process group) is killed. pgBackRest's
    own ``--io-timeout`` is an eighth of it: the tool gives up on a repository it cannot reach
    (after its retries, about 4.6 io-timeouts) before the kill, and the other repository's answer
    still counts (degraded, not down).

    Clocks: a backup's age is cp_now() minus its ``timestamp.stop``, a time on the deployment's
    clock (pgBackRest's host and the database server it backs up). The lab runs pgBackRest and its
    PostgreSQL on the Control Plane's clock, so the two are on one clock; in a deployment they
    share NTP time.

    User: pgBackRest runs as the Control Plane's own user, which must be able to read the config
    and the include folder (in the lab the Control Plane runs as the harness's user: root, or the
    same user as PostgreSQL, so it can). ``info`` writes nothing on this host (no log file, no
    lock: ``--log-level-file=off`` besides), so it leaves no file the PostgreSQL user cannot
    open. Its environment has no PG*/PGBACKREST_*/AWS_* variables (the config alone decides),
    and no cause carries a secret: pgBackRest redacts its request headers, and the values of the
    secret options in the config files are scrubbed besides."""

    def __init__(
        self,
        config: str | os.PathLike,
        stanza: str,
        include: str | os.PathLike | None = None,
        timeout: float = PGBACKREST_TIMEOUT_S,
        cache_s: float = CACHE_S,
        binary: str = PGBACKREST,
    ) -> None:
        super().__init__(cache_s)
        self.config = Path(config)
        self.include = Path(include) if include is not None else None
        self.stanza = stanza
        self.timeout = timeout
        self.binary = binary
        self._logged: str | None = None  # the cause last logged

    @property
    def io_timeout(self) -> float:
        return max(0.1, round(self.timeout / 8, 1))

    def command(self, binary: str) -> list[str]:
        return [
            binary,
            f"--config={self.config}",
            *([f"--config-include-path={self.include}"] if self.include is not None else []),
            f"--stanza={self.stanza}",
            "--log-level-console=off",
            "--log-level-stderr=error",
            "--log-level-file=off",
            f"--io-timeout={self.io_timeout:g}",
            "info",
            "--output=json",
        ]

    def _scrub(self, text: str) -> str:
        files = [self.config]
        if self.include is not None:
            try:
                files += sorted(p for p in self.include.iterdir() if p.name.endswith(".conf"))
            except OSError:
                pass
        for value in _secret_values(files):
            text = text.replace(value, "***")
        return text

    def _unreadable(self, cause: str) -> Listing:
        return Listing(
            None,
            0,
            {"pgbackrest info": short_cause(CatalogueUnreadable(self._scrub(cause)))},
            noun="backup",
            place="",
            searched=f"stanza {self.stanza}",
        )

    async def run(self) -> bytes:
        """pgbackrest info's JSON; CatalogueUnreadable with a short cause when it cannot be had."""
        binary = shutil.which(self.binary)
        if binary is None:
            raise CatalogueUnreadable(f"{self.binary} is not installed (apt-get install pgbackrest)")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "AWS_"))}
        env["LC_ALL"] = "C"
        try:
            child = await asyncio.create_subprocess_exec(
                *self.command(binary),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=env,
                cwd="/",
                start_new_session=True,  # its own group: a kill takes every process it started
            )
        except OSError as exc:
            raise CatalogueUnreadable(f"cannot run {binary}: {exc.strerror or exc}") from None
        try:
            stdout, stderr = await asyncio.wait_for(child.communicate(), timeout=self.timeout)
        except BaseException as exc:  # the timeout, or the caller cancelled: never leave it running
            _kill_group(child.pid)
            await child.wait()
            if isinstance(exc, TimeoutError):
                raise CatalogueUnreadable(f"no answer within {self.timeout:g} s (stopped)") from None
            raise
        if child.returncode != 0:
            said = stderr.decode(errors="replace")
            errors = [line for line in said.splitlines() if line.startswith("ERROR:")]
            first = (errors[0] if errors else next((ln for ln in said.splitlines() if ln.strip()), "")).strip()
            first = _ERROR_PREFIX.sub(r"[\1] ", first) or "nothing on stderr"
            raise CatalogueUnreadable(f"failed (exit {child.returncode}): {first}")
        if len(stdout) > MAX_INFO_BYTES:
            raise CatalogueUnreadable(f"its answer is over {MAX_INFO_BYTES} bytes")
        return stdout

    async def refresh(self) -> Listing:
        """Run pgbackrest info now (uncached)."""
        try:
            listing = parse_info(await self.run(), self.stanza)
        except CatalogueUnreadable as exc:
            unreadable = self._unreadable(str(exc))
            cause = unreadable.errors["pgbackrest info"]
            if cause != self._logged:  # once per run of the same cause, not every refresh
                log.warning("backup catalogue: stanza %s: %s", self.stanza, cause)
            self._logged = cause
            return unreadable
        self._logged = None
        if listing.errors:
            scrubbed = {repo: short_cause(CatalogueUnreadable(self._scrub(c))) for repo, c in listing.errors.items()}
            listing = Listing(
                listing.newest,
                listing.snapshots,
                scrubbed,
                listing.buckets,
                listing.noun,
                listing.place,
                listing.searched,
            )
        return listing


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


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
    noun = listing.noun
    if fresh:
        out.update(
            status="degraded" if listing.errors else "up",
            age_hours=age,
            detail=f"newest {noun} {age:.1f} h old ({newest_id})",
        )
        if listing.errors:
            place = f"{listing.place} " if listing.place else ""
            out["detail"] += "; " + "; ".join(f"{place}{b} unreadable: {c}" for b, c in listing.errors.items())
    elif listing.errors:  # the unreadable bucket may hold a fresher one: the age is unknown
        detail = f"backup catalogue unreadable: {_errors(listing)}"
        if age is not None:
            detail += f"; newest readable {noun} {age:.1f} h old ({newest_id})"
        out["detail"] = detail
    elif age is not None:
        out.update(age_hours=age, detail=f"newest {noun} {age:.1f} h old (> {MAX_AGE_HOURS:g} h)")
    else:
        out["detail"] = f"no {noun} (searched {listing.searched or ', '.join(listing.buckets)})"
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
