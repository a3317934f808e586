@quarterly @ha-domain:evidence-store
Feature: Evidence store / After a failover
  The quarterly failover drill of the evidence store (spec section 4), parts 2 and 3; part 1, the
  controlled failover, is object_storage_outage.feature.
  The evidence store fails over for reads only: a pack with a validated copy is published from
  the alternate region, while a new pack cannot be written until the primary store is back (the
  matrix row's "publish blocked"). So the smoke verification runs once the store has recovered:
  a test Deployment Intent is accepted, its evidence pack ingested, and its correlation id
  captured in the event store and the SIEM sink.
  Rollback validation runs while the primary store is out: a Ring 0 rollback, requested while
  every connector worker is lost and being replaced by the auto-scaling group, reaches every
  platform exactly once.

  @destructive
  Scenario: A Ring 0 rollback while the evidence store is out; smoke verification once it has recovered
    Given the lab is in steady state
    And a sequenced workload of intents and approvals is running
    When an approved intent's evidence is committed with a copy in the alternate region
    And the evidence store becomes unreachable
    Then a pack with a validated copy is published from the alternate region
    When the connector workers are lost and the auto-scaling group replaces them
    Then a Ring 0 rollback reaches every platform exactly once through the replacement workers
    When the evidence store recovers
    Then the workload's publishes go through again
    And a test Deployment Intent is submitted, its evidence pack ingested and its correlation id captured
    And every evidence object the drill wrote is locked COMPLIANCE for at least 7 years
