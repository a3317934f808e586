@quarterly @ha-domain:connectors
Feature: Connectors / Failover, smoke verification and rollback
  The quarterly failover drill of the connector tier (spec section 4), its three parts in one
  scenario. Controlled failover: every platform's connector worker is lost (SIGKILL) and the
  auto-scaling group starts a replacement; the queues hold what the lost workers had not done.
  Smoke verification: a test Deployment Intent is accepted, its evidence pack ingested, and its
  correlation id captured in the event store and the SIEM sink. Rollback validation: a Ring 0
  rollback reaches every platform exactly once through the replacement workers (the platform
  stand-ins' own logs: key tested first, applied once, as a rollback).
  The matrix rows of the platforms themselves are intune_graph_degraded, jamf_outage and
  sccm_site_down.

  @destructive
  Scenario: The connector workers fail over; a test intent and a Ring 0 rollback still go through
    Given the lab is in steady state
    And every platform's connector is healthy
    And a sequenced workload of intents and approvals is running
    When the connector workers are lost and the auto-scaling group replaces them
    Then a test Deployment Intent is submitted, its evidence pack ingested and its correlation id captured
    And a Ring 0 rollback reaches every platform exactly once through the replacement workers
