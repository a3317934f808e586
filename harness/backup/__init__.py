"""Backup and restore of the Control Plane's database (spec section 3), as a platform's backup
service does it: hourly encrypted pg_dump snapshots with manifests, a daily cross-region export
under Object Lock, a daily inventory with the event store's export, retention, and a restore
that verifies hashes before it rehydrates a fresh instance. Reaches the database by SQL and
pg_dump, the store by boto3; never imports ``controlplane``.

Modules: manifest (pure), schedule (pure rules), crypto (AES-256-GCM of files), store (buckets
and layout), keyvault (key vault stand-in), pgtools (client tools without a password on their
command line), snapshot, export, inventory, retention, catalogue, jobs (the runner), restore.
"""

from harness.backup.catalogue import catalogue, newest_age_hours
from harness.backup.export import ExportRefused, export_cross_region
from harness.backup.inventory import daily_inventory, last_inventory_at
from harness.backup.jobs import BackupJobs
from harness.backup.keyvault import KeyDeleted, KeyMissing, KeyVault, KeyVaultError, PurgeRefused
from harness.backup.manifest import Manifest, ManifestError, ObjectRef
from harness.backup.pgtools import cp_clock_of
from harness.backup.restore import Candidate, RestoreError, RestoreOutcome, pg_restore_into, restore
from harness.backup.retention import apply_retention
from harness.backup.schedule import due
from harness.backup.snapshot import SnapshotError, take_snapshot
from harness.backup.store import BackupStore

__all__ = [
    "BackupJobs",
    "BackupStore",
    "Candidate",
    "ExportRefused",
    "KeyDeleted",
    "KeyMissing",
    "KeyVault",
    "KeyVaultError",
    "Manifest",
    "ManifestError",
    "ObjectRef",
    "PurgeRefused",
    "RestoreError",
    "RestoreOutcome",
    "SnapshotError",
    "apply_retention",
    "catalogue",
    "cp_clock_of",
    "daily_inventory",
    "due",
    "export_cross_region",
    "last_inventory_at",
    "newest_age_hours",
    "pg_restore_into",
    "restore",
    "take_snapshot",
]
