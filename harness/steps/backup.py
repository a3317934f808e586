"""Steps of the backup and restore drills (spec section 3)."""

from __future__ import annotations

from pytest_bdd import given, parsers, then, when

from ..runner import backup, evidence


@when(parsers.parse("the Control Plane's clock runs {hours:d} hours, one hour at a time"))
def clock_runs(scenario, hours):
    """List the evidence versions, move the clock an hour at a time (the backup service catching up
    after each), then read every snapshot, lock and the day's inventory from the store."""
    backup.run_clock_hours(scenario, hours)


@then("a snapshot was taken every hour, each object matching the SHA-256 in its manifest")
def every_hour(scenario):
    """Judge the store read: a snapshot in every clock hour, every object's SHA-256 recomputed by the harness."""
    backup.hourly_snapshots(scenario)


@then("a cross-region export was taken every 24 hours and locked for at least 90 days")
def every_day_exported(scenario):
    """Judge the store read: an export per 24 h in the second region's bucket, Object Lock >= 90 days."""
    backup.cross_region_exports(scenario)


@then("evidence and event-store objects are versioned with a daily inventory")
def inventory(scenario):
    """Judge the store read: evidence buckets versioned, every version listed in the day's inventory."""
    backup.daily_inventory(scenario)


@when("the clock moves past the 7-day retention of the first of those snapshots")
def past_retention(scenario):
    """Half the window older than 7 days; then the store is read and an export's deletion tried."""
    backup.past_hourly_retention(scenario)


@then("hourly snapshots older than 7 days are deleted, younger ones and the cross-region exports kept")
def retention_applied(scenario):
    """Judged on the reads the step before made."""
    scenario.checkpoint("retention")


@when("the backup service stops taking snapshots")
def backups_halted(scenario):
    """Stop the backup service (fault backup_halt: no snapshot is taken until it resumes)."""
    backup.halt_backups(scenario)


@when("the backup service resumes")
def backups_resumed(scenario):
    """Heal backup_halt: the service takes what is due on the Control Plane's clock."""
    backup.resume_backups(scenario)


@then("a publish is refused while the newest snapshot is older than 24 hours")
def refused_stale(scenario):
    """Try a publish; judged against the newest snapshot's age the harness read from the store."""
    backup.publish_refused_while_stale(scenario)


@then("a fresh snapshot is taken and a publish is accepted")
def accepted_fresh(scenario):
    """Wait for the fresh snapshot in the store, then publish (retried up to 15 s while instances re-read it)."""
    backup.publish_accepted_when_fresh(scenario)


@given(parsers.parse("{hours:d} hourly snapshots are taken"))
def hourly_taken(scenario, hours):
    """Move the Control Plane's clock an hour at a time; the backup service takes a snapshot each hour."""
    backup.take_snapshots(scenario, hours)


@given("a cross-region export is taken")
def export_taken(scenario):
    """Move the Control Plane's clock 24 h: the backup service exports its newest snapshot to the second region."""
    backup.take_export(scenario)


@when(parsers.parse("the newest hourly snapshot's dump is {how} in the store"))
def snapshot_corrupted(scenario, how):
    """A damaged version of its dump object written over it: "truncated" or "bit-flipped"."""
    backup.corrupt_newest(scenario, "backups", {"truncated": "truncate", "bit-flipped": "flip"}[how])


@when("the primary region's database is lost")
def database_lost(scenario):
    """Read the store, then SIGKILL every database node and delete its data."""
    backup.lose_database(scenario)


@when("the backup encryption key is soft-deleted")
def key_deleted(scenario):
    """Soft-delete the key vault's backup key (a delete marker on its versioned, locked object)."""
    backup.soft_delete_key(scenario)


@then("the key is recovered from soft-delete and its purge is refused")
def key_recovered(scenario):
    """Try to purge the key's version (must be refused), recover it, and read its fingerprint back."""
    backup.recover_key(scenario)


@when(parsers.parse("the database is restored from the newest verified {source}"))
def restored(scenario, source):
    """The restore runbook ("hourly snapshot": the hourly bucket; "cross-region export": the
    second region's bucket)."""
    buckets = {"hourly snapshot": "backups", "cross-region export": "backups-dr"}
    backup.restore(scenario, buckets[source])


@then("every hash of the restored snapshot was verified before it was rehydrated")
def verified(scenario):
    """Judge the restore's events: every object's hash verified before rehydration, cross-checked
    with the harness's own check."""
    backup.snapshot_verified(scenario)


@then("the corrupted snapshot is refused, naming why, and the next older one is restored")
def corrupt_refused(scenario):
    """Judge the restore's events: the damaged snapshot refused with its reason, the next older one restored."""
    backup.corrupt_refused(scenario)


@then("the restored data is valid: row counts, the event hash chain, ApprovalEventCount, intents readable")
def data_valid(scenario):
    """Judge the restored node's reads (counts per table, event chain, approvals) and the intents
    read through the Control Plane."""
    backup.restored_data_valid(scenario)


@then("the backup RPO is within the plan's target")
def rpo(scenario):
    """Judge the restored snapshot's age at the fault against targets.backup_rpo_seconds."""
    backup.backup_rpo(scenario)


@then("the database replicas are rebuilt from the restored primary")
def replicas(scenario):
    """Heal database_loss: replicas rebuilt from the restored primary, the failover controller restarted."""
    backup.rebuild_replicas(scenario)


@then("the intents written after the snapshot are replayed and applied exactly once")
def replayed(scenario):
    """Re-submit what the clients wrote after the snapshot with the same idempotency keys; each
    platform applies it once."""
    backup.replay_after_snapshot(scenario)


@then("every event-store export the drill wrote is locked COMPLIANCE for at least 7 years")
def eventstore_exports_locked(scenario):
    """WORM (spec 1.3 and 3): the Object Lock the backup store reports (HEAD) for every version of the
    daily event-store exports: COMPLIANCE, retain-until >= 2557 days after the store received it."""
    evidence.eventstore_exports_locked(scenario)
