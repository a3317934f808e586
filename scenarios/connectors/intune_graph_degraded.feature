@quarterly @ha-domain:connectors
Feature: Intune Graph degraded / publish and assignment fail
  Failure-modes matrix row "Intune Graph degraded | publish/assignment fails".
  Impact: deployments paused for rings relying on Intune.
  Control Plane behaviour: backoff and retry; CAB manual pause if degraded for more than 15 minutes.
  Mitigation: ConnectorBackoff doubles the base interval; PromotionsPaused flag;
  validation: GraphThrottleCount <= 5 before resuming.

  @destructive
  Scenario: Graph throttles Intune; other platforms go on; promotions resume only once GraphThrottleCount <= 5
    Given the lab is in steady state
    And every platform's connector is healthy
    When intune answers 429 with Retry-After 0.5 s to the next 6 requests
    And the intune link gets 200 ms of latency
    And intents are published for intune, intune, jamf, sccm, landscape, ansible
    Then assignments fail for intune only while the other platforms' are applied
    And PromotionsPaused is set for intune
    And promoting one intune intent is refused by the gate PromotionsPaused
    And the connector backoff doubles the base interval for intune
    And the Control Plane counts 6 throttled answers from intune
    When the intune platform recovers
    Then every intent published for intune is applied exactly once
    And promotions for intune stay paused while GraphThrottleCount > 5
    When 5 minutes pass
    Then promotions for intune resume
    And no critical ring has a queue backlog older than 10 minutes

  @destructive
  Scenario: Graph degraded for more than 15 minutes raises a CAB manual pause
    Given the lab is in steady state
    And every platform's connector is healthy
    And an intent for intune is published and applied
    When intune answers 429 with Retry-After 0.5 s to every request
    Then PromotionsPaused is set for intune
    When 16 minutes pass
    Then a CAB manual pause is raised for intune
    When the intune platform recovers
    Then promotions for intune stay paused until the CAB lifts the pause
    When the CAB lifts the pause for intune
    Then promotions for intune resume
