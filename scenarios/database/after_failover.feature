@quarterly @ha-domain:database
Feature: Database / After a failover
  The quarterly failover drill of the database (spec section 4), parts 2 and 3; part 1, the
  controlled failover, is primary_failover.feature.
  Smoke verification: a test Deployment Intent is accepted, its evidence pack ingested, and its
  correlation id captured in the event store and the SIEM sink, on the promoted primary.

  @destructive
  Scenario: Smoke verification on the promoted primary
    Given the lab is in steady state
    And a sequenced workload of intents and approvals is running
    When the database primary is killed
    Then the replica is promoted and clients are repointed
    And writes resume
    And a test Deployment Intent is submitted, its evidence pack ingested and its correlation id captured
    And the old primary is rebuilt as a replica
