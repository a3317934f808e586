@quarterly @ha-domain:database
Feature: Database / Primary unavailable
  Failure-modes matrix row "Database | Primary unavailable".
  Impact: no reads or writes for policy and evidence.
  Control Plane behaviour: publish and approval APIs block.
  Mitigation: failover to the secondary; a runbook verifies data consistency;
  validation: TransactionLag <= 5 s before failback.

  @destructive
  Scenario: The database primary crashes and the synchronous replica takes over
    Given the lab is in steady state
    And a sequenced workload of intents and approvals is running
    When the database primary is killed
    Then publishing and approval are blocked naming the cause "database"
    And the replica is promoted and clients are repointed
    And writes resume
    And the data is consistent
    And the old primary is rebuilt as a replica
    And failback is refused while TransactionLag > 5 s and happens once it is <= 5 s
    And the post-failover validation passes
