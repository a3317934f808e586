@adhoc @ha-domain:database
Feature: Database / Writes acknowledged after the replication link is cut
  Determinism check of the loss accounting: with the link to the failover replica cut,
  every write the primary acknowledges afterwards exists only on the primary. Killing the
  primary then loses exactly those writes when replication is asynchronous, and none when
  it is synchronous (the commits are never confirmed, so never acknowledged).

  @destructive
  Scenario: The replication link is cut, then the primary crashes
    Given the lab is in steady state
    And a sequenced workload of intents and approvals is running
    And the replica has caught up
    When the replication link to the replica is cut
    And 5 writes are attempted
    And the database primary is killed
    Then the replica is promoted and clients are repointed
    And writes resume
    When the replication link is restored
    Then the old primary is rebuilt as a replica
    And failback is refused while TransactionLag > 5 s and happens once it is <= 5 s
