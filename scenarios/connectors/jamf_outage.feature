@quarterly @ha-domain:connectors
Feature: Jamf API outage / macOS distribution fails
  Failure-modes matrix row "Jamf API outage | macOS distribution fails".
  Impact: macOS ring progression halted.
  Control Plane behaviour: backoff and CAB notification.
  Mitigation: the runbook confirms the requeue (nothing lost, dead letters after the maximum
  attempts); the metric JamfQueueDepth is monitored.

  @destructive
  Scenario: The Jamf API is out (503); macOS rings halt, intents are dead-lettered, requeued and applied once
    Given the lab is in steady state
    And every platform's connector is healthy
    When the jamf API answers 503 to every request
    And intents are published for jamf, jamf, landscape
    Then assignments fail for jamf only while the other platforms' are applied
    And promoting one jamf intent is refused by the gate PromotionsPaused
    And a CAB notification is emitted for jamf
    And the queue depth of jamf is reported while its intents wait
    And the connector backoff doubles the base interval for jamf
    And the jamf intents are dead-lettered after the connector's maximum attempts, not lost
    When the jamf platform recovers
    And the runbook requeues the jamf dead-letter queue
    Then every intent published for jamf is applied exactly once
    And promotions for jamf resume
    And no critical ring has a queue backlog older than 10 minutes
