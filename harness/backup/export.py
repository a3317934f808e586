"""The daily cross-region export: a snapshot's objects and manifest copied, verified and locked.

Contract: ``export_cross_region(store, manifest, retention_days=90) -> Manifest`` reads the
snapshot's objects from the hourly bucket, refuses (ExportRefused, with the reasons) when their
sha256 or size differ from the manifest (a corrupted snapshot is never archived for 90 days),
writes them to ``dr_bucket`` under the same keys, then the manifest (kind "export", same
snapshot id, objects and figures) last; every object version written carries an Object Lock
retention (COMPLIANCE) until taken_at + retention_days, taken_at being the Control Plane's clock.
The store (moto in the lab) enforces the lock on its own clock; a real S3 refuses a retain-until
date in the past, which only a Control Plane clock running months behind would produce.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

from harness.backup import crypto
from harness.backup.manifest import Manifest, manifest_key
from harness.backup.schedule import EXPORT_RETENTION_DAYS, retain_until
from harness.backup.store import BackupStore, lock_until

log = logging.getLogger("harness.backup")

LOCK_MODE = "COMPLIANCE"


class ExportRefused(RuntimeError):
    """The snapshot's bytes do not match its manifest (or are missing); nothing was exported."""


def export_cross_region(
    store: BackupStore,
    manifest: Manifest,
    retention_days: float = EXPORT_RETENTION_DAYS,
    source_bucket: str | None = None,
) -> Manifest:
    source_bucket = source_bucket or store.bucket
    export = manifest.as_export()
    lock: dict[str, Any] = {
        "ObjectLockMode": LOCK_MODE,
        "ObjectLockRetainUntilDate": lock_until(retain_until(manifest.taken_at, retention_days)),
    }
    with tempfile.TemporaryDirectory(prefix="drill-export-") as tmp:
        paths, observed = {}, {}
        for i, ref in enumerate(manifest.objects):
            path = Path(tmp) / f"{i}.bin"
            if store.download(source_bucket, ref.key, path):
                paths[ref.key] = path
                observed[ref.key] = crypto.file_digest(path)
        reasons = manifest.mismatches(observed)
        if reasons:
            raise ExportRefused(f"snapshot {manifest.snapshot_id} not exported: " + "; ".join(reasons))
        for ref in manifest.objects:
            with open(paths[ref.key], "rb") as body:
                store.s3.put_object(Bucket=store.dr_bucket, Key=ref.key, Body=body, **lock)
    store.s3.put_object(
        Bucket=store.dr_bucket,
        Key=manifest_key(export.snapshot_id),
        Body=export.to_json().encode(),
        ContentType="application/json",
        **lock,
    )
    log.info(
        "snapshot %s exported to %s, locked until %s",
        export.snapshot_id,
        store.dr_bucket,
        lock["ObjectLockRetainUntilDate"].isoformat(),
    )
    return export
