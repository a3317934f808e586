"""The snapshots a bucket holds, read from their manifests, and the age of the newest.

Contract: ``catalogue(store, bucket) -> list[Manifest]``, newest first (by taken_at, then id):
one per ``snapshots/<id>/manifest.json`` that parses and names its own id; a manifest that is
missing, unreadable or malformed is not a snapshot (skipped, logged). ``newest_age_hours(store,
now)`` is the age in hours, on the Control Plane's clock, of the newest snapshot in the hourly
and the dr bucket together, None when there is none.
"""

from __future__ import annotations

import logging

from harness.backup.manifest import MANIFEST_NAME, SNAPSHOT_PREFIX, Manifest, ManifestError
from harness.backup.store import BackupStore

log = logging.getLogger("harness.backup")


def catalogue(store: BackupStore, bucket: str | None = None) -> list[Manifest]:
    bucket = bucket or store.bucket
    found: list[Manifest] = []
    for key in store.keys(bucket, SNAPSHOT_PREFIX):
        parts = key[len(SNAPSHOT_PREFIX) :].split("/")
        if len(parts) != 2 or parts[1] != MANIFEST_NAME:
            continue
        body = store.read(bucket, key)
        if body is None:
            continue
        try:
            manifest = Manifest.from_json(body)
        except ManifestError as exc:
            log.warning("%s/%s is not a snapshot manifest: %s", bucket, key, exc)
            continue
        if manifest.snapshot_id != parts[0]:
            log.warning("%s/%s names snapshot %s: skipped", bucket, key, manifest.snapshot_id)
            continue
        found.append(manifest)
    found.sort(key=lambda m: (m.taken_at, m.snapshot_id), reverse=True)
    return found


def newest_age_hours(store: BackupStore, now: float) -> float | None:
    taken = [m.taken_at for bucket in (store.bucket, store.dr_bucket) for m in catalogue(store, bucket)]
    return (now - max(taken)) / 3600.0 if taken else None
