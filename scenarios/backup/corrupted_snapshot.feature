@quarterly @ha-domain:backup-restore
Feature: Backup and restore / Corrupted newest snapshot
  Spec section 3: "restoration procedure includes hash verification and rehydration".
  The restore chooses the newest snapshot whose every object matches its manifest's SHA-256: a
  corrupted or truncated one is refused (the report says which and why) and the next older one
  tried. The harness checks every snapshot's hashes itself and reads the restored database
  before any client reaches it: row counts per table against the source's at snapshot time, the
  event hash chain recomputed end to end, ApprovalEventCount; then a sample of intents read
  through the Control Plane pointed at the restored database. What the snapshot did not hold is
  replayed with its idempotency keys and must be applied exactly once (rule 4).

  @destructive
  Scenario: The newest hourly snapshot is truncated; the restore refuses it and restores the one before
    Given the lab is in steady state
    And a sequenced workload of intents and approvals is running
    And 2 hourly snapshots are taken
    When the newest hourly snapshot's dump is truncated in the store
    And the primary region's database is lost
    And the database is restored from the newest verified hourly snapshot
    Then the corrupted snapshot is refused, naming why, and the next older one is restored
    And every hash of the restored snapshot was verified before it was rehydrated
    And the restored data is valid: row counts, the event hash chain, ApprovalEventCount, intents readable
    And the backup RPO is within the plan's target
    And the database replicas are rebuilt from the restored primary
    And the intents written after the snapshot are replayed and applied exactly once
