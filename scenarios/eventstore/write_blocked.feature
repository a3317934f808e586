@quarterly @ha-domain:event-store
Feature: Event store / Write blocked
  Failure-modes matrix row "Event store write blocked | Audit events not persisted".
  Impact: non-compliance risk (a state change without its audit event).
  Control Plane behaviour: reject publishes until the store is healthy; a change whose audit
  event cannot be appended is refused (503, cause event_store) and rolls back, never
  acknowledged without its event.
  Mitigation: failover to the redundant cluster (the synchronous replica, the blocked primary
  fenced first); validation: EventStoreWriteSuccess >= 99.9% per hour.

  @destructive
  Scenario: Appends to the event store block on the database primary and the store fails over
    Given the lab is in steady state
    And a sequenced workload of intents and approvals is running
    When event store writes are blocked on the database primary
    Then publishing is refused until the event store is healthy
    And the event store fails over to the redundant cluster
    And writes resume
    And no audit event is lost or duplicated across the failover
    And the gate EventStoreWriteSuccess >= 99.9% per hour passes
    And the old primary is rebuilt as a replica
    And failback is refused while TransactionLag > 5 s and happens once it is <= 5 s
    And the post-failover validation passes
