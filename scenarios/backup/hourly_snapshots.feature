@quarterly @ha-domain:backup-restore
Feature: Backup and restore / Hourly snapshots and retention
  Spec section 3: "automated snapshots every hour with 7-day retention; separate cross-region
  export every 24h stored for >= 90 days per compliance"; evidence and event-store objects
  "versioned objects + daily inventory", retention >= 7 years (the daily event-store exports are
  written under Object Lock COMPLIANCE for 2557 days; the harness reads the lock back).
  The backup service (pg_dump -Fc of one exported snapshot, AES-256-GCM, a SHA-256 manifest per
  snapshot) keeps to the Control Plane's clock, which the drill moves an hour at a time. The
  harness downloads every snapshot and recomputes each object's SHA-256 itself, reads the
  exports' Object Lock retention back, and tries to delete an export as an operator would
  (moto enforces Object Lock deletes, not every COMPLIANCE rule: it lets a retention be shortened).

  Scenario: A snapshot every hour, a cross-region export every day, kept as long as the spec says
    Given the lab is in steady state
    And a sequenced workload of intents and approvals is running
    When the Control Plane's clock runs 25 hours, one hour at a time
    Then a snapshot was taken every hour, each object matching the SHA-256 in its manifest
    And a cross-region export was taken every 24 hours and locked for at least 90 days
    And evidence and event-store objects are versioned with a daily inventory
    And every event-store export the drill wrote is locked COMPLIANCE for at least 7 years
    When the clock moves past the 7-day retention of the first of those snapshots
    Then hourly snapshots older than 7 days are deleted, younger ones and the cross-region exports kept
