@quarterly @ha-domain:evidence-store
Feature: Evidence store / Object storage outage
  Failure-modes matrix row "Evidence store | Object storage outage".
  Impact: evidence packs cannot be written or read, publish blocked.
  Control Plane behaviour: blocking gate with an explicit error; emit Impact = publish blocked.
  Mitigation: retry policy with exponential backoff (seen at the store: its gateway logs every
  attempt, so it is judged while the store answers 5xx); alternate storage region with a
  ValidatedCopyExists check (the harness reads the copy from the alternate bucket itself).
  Validation rule 1 (spec section 5), EvidencePackState = Committed before approval: while the store
  is unreachable, an intent whose evidence upload cannot commit is asked for approval, during the
  upload and after its refusal; the Control Plane must refuse both (4xx naming EvidencePackState).

  @destructive
  Scenario: The primary evidence store becomes unreachable, then answers 5xx
    Given the lab is in steady state
    And a sequenced workload of intents and approvals is running
    When the link to the alternate region is cut
    And an approved intent's evidence is committed without a copy in the alternate region
    And the alternate region link is restored
    And an approved intent's evidence is committed with a copy in the alternate region
    And the evidence store becomes unreachable
    Then publishing a pack without a validated copy is blocked with an explicit error
    And an event Impact = publish blocked is recorded
    And a pack with a validated copy is published from the alternate region
    And approving an intent whose evidence pack is not Committed is refused naming EvidencePackState
    When the evidence store link is restored
    And the evidence store answers 503 to every request
    Then publishing a pack without a validated copy is blocked with an explicit error
    And its retries back off exponentially
    When the evidence store recovers
    Then publishing resumes
    And the workload's publishes go through again
    And every evidence object the drill wrote is locked COMPLIANCE for at least 7 years
