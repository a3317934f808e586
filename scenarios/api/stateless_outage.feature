@quarterly @ha-domain:api
Feature: Control Plane API/Policy services / Stateless service outage
  Failure-modes matrix row "Control Plane API/Policy services | Stateless service outage".
  Impact: new Deployment Intents and approvals blocked.
  Control Plane behaviour: pause promotions; existing endpoints unaffected (the connectors
  keep serving the work already queued).
  Mitigation: LB health probes; auto-redeploy; CAB incident review;
  validation rule: ServiceHealth = Healthy required before a new publish (ServiceHealth counts the
  tier's redundancy: fewer than two availability zones serving is Unhealthy).
  Target: 99.9% availability at 5-minute granularity (a window is good when 99.9% of the requests
  in it were served; the drill's bad windows are judged as a share of the month's error budget).

  @destructive
  Scenario: One availability zone's API instance is lost, then the whole tier
    Given the lab is in steady state
    And a sequenced workload of intents and approvals is running
    When the API instance in az1 is killed
    Then the load balancer routes around it within the probe interval
    And the API stays available at 99.9% per 5-minute window while one availability zone is lost
    When landscape answers 429 with Retry-After 0.5 s to the next 2 requests
    And intents are published for landscape, landscape
    And every API instance is down
    Then new intents and approvals are blocked with a clear error
    And the connectors keep serving the queued landscape work
    When the API instance in az1 is redeployed
    Then a publish is refused while ServiceHealth is Unhealthy
    When the API instances are redeployed
    Then the gate ServiceHealth = Healthy passes before a new publish
