"""The backup service's runner: does what ``schedule.due`` says is due, in order.

Contract: ``BackupJobs(store, vault, dsn, pg_bin, evidence_buckets=(), workdir=None)``;
``run_due(now=None) -> list[str]`` reads the last hourly snapshot, export and inventory from the
store itself (nothing is remembered between runs, so a restarted service carries on), asks
``due(now, ...)`` and runs, in this order: "hourly" (take_snapshot), "export" (the newest hourly
snapshot exported to the dr bucket), "inventory" (daily_inventory of the evidence buckets),
"retention" (apply_retention); it answers the jobs it ran. ``now`` defaults to the Control
Plane's clock read from the database. A run after hours of silence takes one snapshot, not one
per missed hour. A job that raises stops the run (the exception propagates); the next run
finds the same jobs due.
"""

from __future__ import annotations

from pathlib import Path

from harness.backup.catalogue import catalogue
from harness.backup.export import export_cross_region
from harness.backup.inventory import daily_inventory, last_inventory_at
from harness.backup.keyvault import KeyVault
from harness.backup.pgtools import cp_clock_of
from harness.backup.retention import apply_retention
from harness.backup.schedule import due
from harness.backup.snapshot import take_snapshot
from harness.backup.store import BackupStore


class BackupJobs:
    def __init__(
        self,
        store: BackupStore,
        vault: KeyVault,
        dsn: str,
        pg_bin: Path,
        evidence_buckets: tuple[str, ...] | list[str] = (),
        workdir: Path | None = None,
    ) -> None:
        self.store = store
        self.vault = vault
        self.dsn = dsn
        self.pg_bin = Path(pg_bin)
        self.evidence_buckets = list(evidence_buckets)
        self.workdir = workdir
        self.deleted: list[str] = []  # snapshot ids the last retention deleted

    def last_times(self) -> tuple[float | None, float | None, float | None]:
        """(last hourly snapshot, last export, last inventory), Control Plane clock, None = never."""
        hourly = [m.taken_at for m in catalogue(self.store, self.store.bucket) if m.kind == "hourly"]
        exports = [m.taken_at for m in catalogue(self.store, self.store.dr_bucket)]
        return (max(hourly, default=None), max(exports, default=None), last_inventory_at(self.store))

    def run_due(self, now: float | None = None) -> list[str]:
        now = cp_clock_of(self.dsn) if now is None else now
        jobs = due(now, *self.last_times())
        for job in jobs:
            if job == "hourly":
                take_snapshot(self.dsn, self.pg_bin, self.store, self.vault, workdir=self.workdir)
            elif job == "export":
                newest = next((m for m in catalogue(self.store, self.store.bucket) if m.kind == "hourly"), None)
                if newest is None:
                    newest = take_snapshot(self.dsn, self.pg_bin, self.store, self.vault, workdir=self.workdir)
                export_cross_region(self.store, newest)
            elif job == "inventory":
                daily_inventory(self.store, self.evidence_buckets, self.dsn, now)
            elif job == "retention":
                self.deleted = apply_retention(self.store, now)
        return jobs
