@quarterly @ha-domain:connectors
Feature: SCCM site server down / offline site distribution interrupted
  Failure-modes matrix row "SCCM site server down | offline site distribution interrupted".
  Impact: the air-gapped ring cannot progress.
  Control Plane behaviour: records the site outage; the promotion gate fails until the site is healthy.
  Mitigation: validate SCCM.SiteHealth = Healthy; fallback to manual import if down for more than 24 h.

  @destructive
  Scenario: The SCCM site server is killed; promotion waits for SiteHealth; manual import offered after 24 h
    Given the lab is in steady state
    And every platform's connector is healthy
    And an intent for sccm is published and applied
    When the sccm site server is killed
    Then the Control Plane records the sccm site outage
    And promoting one sccm intent is refused by the gate SCCM.SiteHealth
    When 25 hours pass
    Then the fallback to manual import is offered for sccm
    When the sccm site server is restarted
    Then promotions for sccm resume
