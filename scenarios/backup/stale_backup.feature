@quarterly @ha-domain:backup-restore
Feature: Backup and restore / Stale backup blocks deployments
  Spec section 5, rule 3: "gating rule BackupAgeHours <= 24 before enabling new deployments";
  section 3: "LastBackupAge <= 24h for database + evidence store to be considered healthy".
  The harness reads the newest snapshot's age from the store itself (Control Plane clock) and
  judges the publish answers against it.

  @destructive
  Scenario: The backup service stops; a publish is refused once the newest snapshot is a day old
    Given the lab is in steady state
    When the backup service stops taking snapshots
    And 25 hours pass
    Then a publish is refused while the newest snapshot is older than 24 hours
    When the backup service resumes
    Then a fresh snapshot is taken and a publish is accepted
