"""Retention of snapshots (spec section 3): hourly ones 7 days, cross-region exports >= 90 days.

Contract: ``apply_retention(store, now) -> list[str]``, the snapshot ids deleted, hourly bucket
first, then dr bucket (an export keeps its hourly snapshot's id, so an id deleted from both
buckets appears twice). ``now`` is the Control Plane's clock (the snapshots' taken_at clock).

- an hourly snapshot (hourly bucket) older than 7 days is deleted for good: every version and
  delete marker under ``snapshots/<id>/``, the manifest first, so that a half-deleted snapshot is
  no longer a snapshot;
- an export (dr bucket) older than 90 days is deleted the same way only when no version under its
  prefix still has an Object Lock retention in force on the store's clock (checked first, then
  enforced by the store itself); a younger export, or one still locked, is kept (logged);
- inventories and event-store exports are never deleted here (their retention is years).
"""

from __future__ import annotations

import logging
import time

import botocore.exceptions

from harness.backup.catalogue import catalogue
from harness.backup.manifest import MANIFEST_NAME, snapshot_prefix
from harness.backup.schedule import export_expired, hourly_expired, lock_expired
from harness.backup.store import BackupStore, error_code

log = logging.getLogger("harness.backup")


def _delete_snapshot(store: BackupStore, bucket: str, snapshot_id: str) -> None:
    versions = store.versions(bucket, snapshot_prefix(snapshot_id))
    versions.sort(key=lambda v: not v.key.endswith("/" + MANIFEST_NAME))  # the manifest first
    store.delete_versions(bucket, versions)


def apply_retention(store: BackupStore, now: float, store_now: float | None = None) -> list[str]:
    """See the module docstring; store_now (default: this machine's clock) judges the locks."""
    deleted: list[str] = []
    for manifest in catalogue(store, store.bucket):
        if manifest.kind == "hourly" and hourly_expired(manifest.taken_at, now):
            _delete_snapshot(store, store.bucket, manifest.snapshot_id)
            deleted.append(manifest.snapshot_id)
    store_now = time.time() if store_now is None else store_now
    for manifest in catalogue(store, store.dr_bucket):
        if not export_expired(manifest.taken_at, now):
            continue
        versions = store.versions(store.dr_bucket, snapshot_prefix(manifest.snapshot_id))
        untils = [store.retain_until(store.dr_bucket, v.key, v.version_id) for v in versions if not v.delete_marker]
        if not lock_expired([u.timestamp() if u else None for u in untils], store_now):
            log.info("export %s is past 90 days but still locked: kept", manifest.snapshot_id)
            continue
        try:
            _delete_snapshot(store, store.dr_bucket, manifest.snapshot_id)
        except botocore.exceptions.ClientError as exc:
            log.warning("export %s: the store refused its deletion (%s): kept", manifest.snapshot_id, error_code(exc))
            continue
        deleted.append(manifest.snapshot_id)
    if deleted:
        log.info("retention deleted %d snapshots: %s", len(deleted), ", ".join(deleted))
    return deleted
