@quarterly @ha-domain:database
Feature: Database / After a failover
  The quarterly failover drill of the database (spec section 4), parts 2 and 3; part 1, the
  controlled failover, is primary_failover.feature.
  Smoke verification: a test Deployment Intent is accepted, its evidence pack ingested, and its
  correlation id captured in the event store and the SIEM sink, on the promoted primary.
  Rollback validation: a Ring 0 rollback, requested while every connector worker is lost and being
  replaced by the auto-scaling group, reaches every platform exactly once.

  @destructive
  Scenario: Smoke verification and a Ring 0 rollback on the promoted primary
    Given the lab is in steady state
    And a sequenced workload of intents and approvals is running
    When the database primary is killed
    Then the replica is promoted and clients are repointed
    And writes resume
    And a test Deployment Intent is submitted, its evidence pack ingested and its correlation id captured
    When the connector workers are lost and the auto-scaling group replaces them
    Then a Ring 0 rollback reaches every platform exactly once through the replacement workers
    And the old primary is rebuilt as a replica
