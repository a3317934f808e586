@quarterly @ha-domain:event-store
Feature: Event store / After a failover
  The quarterly failover drill of the event store (spec section 4), parts 2 and 3; part 1, the
  controlled failover, is write_blocked.feature.
  Smoke verification: a test Deployment Intent is accepted, its evidence pack ingested, and its
  correlation id captured in the event store and the SIEM sink, on the redundant cluster.
  Rollback validation: a Ring 0 rollback, requested while every connector worker is lost and being
  replaced by the auto-scaling group, reaches every platform exactly once.

  @destructive
  Scenario: Smoke verification and a Ring 0 rollback on the redundant cluster
    Given the lab is in steady state
    And a sequenced workload of intents and approvals is running
    When event store writes are blocked on the database primary
    Then the event store fails over to the redundant cluster
    And writes resume
    And a test Deployment Intent is submitted, its evidence pack ingested and its correlation id captured
    When the connector workers are lost and the auto-scaling group replaces them
    Then a Ring 0 rollback reaches every platform exactly once through the replacement workers
    And the old primary is rebuilt as a replica
