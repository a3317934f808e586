"""Restore the Control Plane's database from the newest usable snapshot, with hash verification.

Contract: ``restore(store, vault, rehydrate, bucket=None, verify=True, emit=..., not_before=None)
-> RestoreOutcome``. Candidates are the snapshots of ``bucket`` (default the hourly bucket; the
dr bucket after a region loss), newest first; for each:

0. ``not_before``: a snapshot taken (Control Plane clock) before it is refused, phase "age";
1. download its objects (latest versions) -> ``restore_download`` {snapshot_id, bucket, bytes,
   seconds}; an object that is missing or cannot be read is refused, phase "download";
2. verify=True: every object's sha256 and size against the manifest -> ``restore_verify``
   {snapshot_id, ok, reasons, seconds}; a mismatch is refused, phase "verify". verify=False (a
   deliberately misbehaving procedure, for negative drills) skips this step entirely;
3. decrypt with the key version the manifest names (the vault given must hold the key it
   names); a soft-deleted key is not used (as in Key Vault: recover it first), and a key that
   cannot be read or a dump that does not decrypt (AES-GCM authenticates every byte) is
   refused, phase "decrypt"; else ``restore_decrypt`` {snapshot_id, key_name, key_version,
   seconds};
4. ``rehydrate(dump_path)``, the caller's (initdb a fresh instance, roles, database,
   ``pg_restore_into``) -> ``restore_rehydrate`` {snapshot_id, seconds}; then ``restore_done``
   {snapshot_id, snapshot_kind, bucket, taken_at, key_version, tables, chain, approvals, seconds, tried}.

Every refusal emits ``restore_refused`` {snapshot_id, taken_at, phase, reason} and the next older
snapshot is tried. If rehydrate raises, the target's state is unknown: the procedure stops there
(no older snapshot is tried) and emits ``restore_failed`` {snapshot_id, phase: "rehydrate",
reason, tried}; when no candidate is left it emits ``restore_failed`` {snapshot_id: None,
phase: None, reason, tried}. ``RestoreOutcome.phase_seconds`` sums each phase over every
candidate tried. ``emit``'s name argument is the snapshot id (``"restore"`` for the final
restore_failed). Downloaded and decrypted files live in a private temporary directory (under
``workdir`` if given) of this process's user, removed after: rehydrate must read the dump as
that user (pg_restore is a client: it does).

``pg_restore_into(admin_dsn, pg_bin, dump, database, owner, owner_password)`` is the usual
rehydrate step: it creates the owner role (LOGIN, with the password) and the database when they
are missing (an existing role gets the password when one is given), then runs pg_restore as the
superuser in one transaction with --exit-on-error (owners kept); RestoreError carries
pg_restore's stderr tail.
"""

from __future__ import annotations

import datetime as dt
import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from harness.backup import crypto
from harness.backup.catalogue import catalogue
from harness.backup.keyvault import KeyVault
from harness.backup.manifest import DUMP_NAME, Manifest
from harness.backup.pgtools import ToolError, run_tool, with_dbname
from harness.backup.store import BackupStore

log = logging.getLogger("harness.backup")

PHASES = ("download", "verify", "decrypt", "rehydrate")
Emit = Callable[[str, str, dict], None]


class RestoreError(RuntimeError):
    """pg_restore (or the role and database set-up before it) failed; the message says why."""


@dataclass(frozen=True)
class Candidate:
    snapshot_id: str
    taken_at: float
    verdict: str  # "restored" | "refused" | "failed"
    phase: str | None  # where it was refused or failed: age, download, verify, decrypt, rehydrate
    reason: str


@dataclass
class RestoreOutcome:
    manifest: Manifest | None  # the snapshot restored, None when none was
    bucket: str
    candidates: list[Candidate] = field(default_factory=list)
    phase_seconds: dict[str, float] = field(default_factory=lambda: {p: 0.0 for p in PHASES})
    key_version: str | None = None

    @property
    def ok(self) -> bool:
        return self.manifest is not None


class _Refused(Exception):
    def __init__(self, phase: str, reason: str):
        super().__init__(reason)
        self.phase = phase
        self.reason = reason


def _iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def restore(
    store: BackupStore,
    vault: KeyVault,
    rehydrate: Callable[[Path], None],
    bucket: str | None = None,
    verify: bool = True,
    emit: Emit = lambda kind, name, detail: None,
    not_before: float | None = None,
    workdir: Path | None = None,
) -> RestoreOutcome:
    """See the module docstring. emit(kind, name, detail): name is the snapshot id (or "restore")."""
    bucket = bucket or store.bucket
    started = time.monotonic()
    outcome = RestoreOutcome(manifest=None, bucket=bucket)
    manifests = catalogue(store, bucket)
    for manifest in manifests:
        sid = manifest.snapshot_id
        try:
            if not_before is not None and manifest.taken_at < not_before:
                raise _Refused(
                    "age", f"taken at {_iso(manifest.taken_at)}, before the plan's oldest acceptable {_iso(not_before)}"
                )
            with tempfile.TemporaryDirectory(prefix="drill-restore-", dir=workdir) as tmp:
                plain = _fetch_and_open(store, vault, manifest, bucket, Path(tmp), verify, emit, outcome)
                t0 = time.monotonic()
                try:
                    rehydrate(plain)
                except Exception as exc:  # noqa: BLE001 - reported as the outcome, not raised
                    outcome.phase_seconds["rehydrate"] += time.monotonic() - t0
                    reason = f"rehydrate failed: {type(exc).__name__}: {exc}"
                    outcome.candidates.append(Candidate(sid, manifest.taken_at, "failed", "rehydrate", reason))
                    emit(
                        "restore_failed",
                        sid,
                        {"snapshot_id": sid, "phase": "rehydrate", "reason": reason, "tried": len(outcome.candidates)},
                    )
                    log.warning("restore of %s failed while rehydrating: %s", sid, reason)
                    return outcome
                seconds = time.monotonic() - t0
                outcome.phase_seconds["rehydrate"] += seconds
                emit("restore_rehydrate", sid, {"snapshot_id": sid, "seconds": seconds})
        except _Refused as refused:
            outcome.candidates.append(Candidate(sid, manifest.taken_at, "refused", refused.phase, refused.reason))
            emit(
                "restore_refused",
                sid,
                {"snapshot_id": sid, "taken_at": manifest.taken_at, "phase": refused.phase, "reason": refused.reason},
            )
            log.warning("snapshot %s refused (%s): %s", sid, refused.phase, refused.reason)
            continue
        outcome.manifest = manifest
        outcome.key_version = manifest.encryption["key_version"]
        outcome.candidates.append(Candidate(sid, manifest.taken_at, "restored", None, "restored"))
        emit(
            "restore_done",
            sid,
            {
                "snapshot_id": sid,
                "snapshot_kind": manifest.kind,
                "bucket": bucket,
                "taken_at": manifest.taken_at,
                "key_version": outcome.key_version,
                "tables": dict(manifest.tables),
                "chain": dict(manifest.chain) if manifest.chain is not None else None,
                "approvals": manifest.approvals,
                "seconds": time.monotonic() - started,
                "tried": len(outcome.candidates),
            },
        )
        log.info("restored snapshot %s from %s after %d candidates", sid, bucket, len(outcome.candidates))
        return outcome
    reason = (
        f"no snapshot could be restored from {bucket} ({len(outcome.candidates)} tried)"
        if manifests
        else f"no snapshot in {bucket}"
    )
    emit(
        "restore_failed",
        "restore",
        {"snapshot_id": None, "phase": None, "reason": reason, "tried": len(outcome.candidates)},
    )
    return outcome


def _fetch_and_open(
    store: BackupStore,
    vault: KeyVault,
    manifest: Manifest,
    bucket: str,
    tmp: Path,
    verify: bool,
    emit: Emit,
    outcome: RestoreOutcome,
) -> Path:
    """Steps 1-3 for one snapshot: the path of its decrypted dump, or _Refused."""
    sid = manifest.snapshot_id
    t0 = time.monotonic()
    paths: dict[str, Path] = {}
    unreadable: list[str] = []
    for i, ref in enumerate(manifest.objects):
        path = tmp / f"{i}-{ref.name}"
        try:
            if store.download(bucket, ref.key, path):
                paths[ref.key] = path
        except Exception as exc:  # noqa: BLE001 - the store did not answer: refused with why
            unreadable.append(f"{ref.key}: unreadable ({type(exc).__name__}: {str(exc).strip()[:200]})")
    seconds = time.monotonic() - t0
    outcome.phase_seconds["download"] += seconds
    emit(
        "restore_download",
        sid,
        {
            "snapshot_id": sid,
            "bucket": bucket,
            "seconds": seconds,
            "bytes": sum(p.stat().st_size for p in paths.values()),
        },
    )
    if unreadable:
        raise _Refused("download", "; ".join(unreadable))
    missing = [ref.key for ref in manifest.objects if ref.key not in paths]
    if missing:
        raise _Refused("download", "; ".join(f"{key}: missing" for key in missing))

    if verify:
        t0 = time.monotonic()
        reasons = manifest.mismatches({key: crypto.file_digest(path) for key, path in paths.items()})
        seconds = time.monotonic() - t0
        outcome.phase_seconds["verify"] += seconds
        emit("restore_verify", sid, {"snapshot_id": sid, "ok": not reasons, "reasons": reasons, "seconds": seconds})
        if reasons:
            raise _Refused("verify", "; ".join(reasons))

    t0 = time.monotonic()
    enc = manifest.encryption
    try:
        plain = tmp / "dump.pgc"
        try:
            if enc["key_name"] != vault.name:
                raise _Refused(
                    "decrypt", f"encrypted with key {enc['key_name']!r}, the vault given holds {vault.name!r}"
                )
            if vault.is_deleted():
                raise _Refused("decrypt", f"key {vault.name!r} is soft-deleted in the key vault (recover it first)")
            key = vault.key(enc["key_version"])
            crypto.decrypt_file(
                paths[manifest.object(DUMP_NAME).key], plain, key, bytes.fromhex(enc["nonce"]), sid.encode()
            )
        except _Refused:
            raise
        except crypto.DecryptError as exc:
            raise _Refused("decrypt", f"{manifest.object(DUMP_NAME).key}: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - the key vault, a bad nonce, ...: refused with why
            raise _Refused(
                "decrypt", f"key {enc.get('key_name')} version {enc.get('key_version')}: {type(exc).__name__}: {exc}"
            ) from None
    finally:
        seconds = time.monotonic() - t0
        outcome.phase_seconds["decrypt"] += seconds
    emit(
        "restore_decrypt",
        sid,
        {"snapshot_id": sid, "key_name": enc["key_name"], "key_version": enc["key_version"], "seconds": seconds},
    )
    return plain


def pg_restore_into(
    admin_dsn: str,
    pg_bin: Path,
    dump: Path,
    database: str = "controlplane",
    owner: str = "controlplane",
    owner_password: str | None = None,
    timeout: float = 3600.0,
) -> None:
    """See the module docstring."""
    try:
        with psycopg.connect(admin_dsn, autocommit=True, connect_timeout=10) as conn:
            role = sql.Identifier(owner)
            password = sql.SQL(" PASSWORD {}").format(sql.Literal(owner_password)) if owner_password else sql.SQL("")
            if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (owner,)).fetchone() is None:
                conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(role) + password)
            elif owner_password:
                conn.execute(sql.SQL("ALTER ROLE {} LOGIN").format(role) + password)
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone() is None:
                conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(database), role))
    except psycopg.Error as exc:
        raise RestoreError(
            f"cannot prepare role {owner!r} and database {database!r}: {type(exc).__name__}: {str(exc).strip()}"
        ) from None
    try:
        run_tool(
            pg_bin,
            "pg_restore",
            ["--exit-on-error", "--single-transaction", str(dump)],
            with_dbname(admin_dsn, database),
            timeout=timeout,
        )
    except ToolError as exc:
        raise RestoreError(f"pg_restore of {Path(dump).name} into database {database!r} failed: {exc}") from None
