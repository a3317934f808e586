@quarterly @ha-domain:api
Feature: API tier / After a failover
  The quarterly failover drill of the API tier (spec section 4), parts 2 and 3; part 1, the
  controlled failover, is stateless_outage.feature.
  Smoke verification: a test Deployment Intent is accepted, its evidence pack ingested, and its
  correlation id captured in the event store and the SIEM sink, while the tier runs on the
  availability zones left.
  Rollback validation: a Ring 0 rollback, requested while every connector worker is lost and being
  replaced by the auto-scaling group, reaches every platform exactly once.

  @destructive
  Scenario: Smoke verification and a Ring 0 rollback while one availability zone's API instance is lost
    Given the lab is in steady state
    And a sequenced workload of intents and approvals is running
    When the API instance in az1 is killed
    Then the load balancer routes around it within the probe interval
    And a test Deployment Intent is submitted, its evidence pack ingested and its correlation id captured
    When the connector workers are lost and the auto-scaling group replaces them
    Then a Ring 0 rollback reaches every platform exactly once through the replacement workers
    When the API instance in az1 is redeployed
