@quarterly @ha-domain:backup-restore
Feature: Backup and restore / Primary region's database lost
  Spec section 3: the database restored from the "separate cross-region export every 24h";
  "key material: signing + vault secrets recoverable via soft-delete and purge protection";
  connector state restored "by replaying Deployment Intents (idempotent) into connectors".
  The key vault is a stand-in: a versioned S3 object under Object Lock in the lab's moto (a
  soft-delete is a delete marker; a purge, the deletion of a locked version, is refused).

  @destructive
  Scenario: Every database node is lost; the database is restored from the cross-region export
    Given the lab is in steady state
    And a sequenced workload of intents and approvals is running
    And a cross-region export is taken
    When the primary region's database is lost
    And the backup encryption key is soft-deleted
    Then the key is recovered from soft-delete and its purge is refused
    When the database is restored from the newest verified cross-region export
    Then every hash of the restored snapshot was verified before it was rehydrated
    And the restored data is valid: row counts, the event hash chain, ApprovalEventCount, intents readable
    And the backup RPO is within the plan's target
    And the database replicas are rebuilt from the restored primary
    And the intents written after the snapshot are replayed and applied exactly once
