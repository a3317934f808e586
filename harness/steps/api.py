"""Steps of the API tier drills."""

from __future__ import annotations

from pytest_bdd import parsers

from ..lab.targets import API_INSTANCE, EVERY_API_INSTANCE
from ..runner import api
from ..runner.scenario import required
from .registry import drill_step


@drill_step(
    "when", parsers.parse("the API instance in {instance} is killed"), needs=("api_instances",), touches=(API_INSTANCE,)
)
def instance_killed(scenario, instance):
    """SIGKILL one availability zone's API instance (az1, az2 or az3)."""
    api.kill_instance(scenario, instance)
    scenario.lost_az = instance


@drill_step("then", "the load balancer routes around it within the probe interval")
def routed_around(scenario):
    """No client request fails later than the load balancer's probe window after the kill."""
    api.routed_around(scenario, required(scenario.lost_az, "the availability zone lost"))


@drill_step(
    "then",
    parsers.parse("the API stays available at {percent:g}% per 5-minute window while one availability zone is lost"),
)
def available_while_az_lost(scenario, percent):
    """The scenario's error budget: a 5-minute window is good when at least `percent` of the
    harness's own requests in it were served; the bad windows' share of the period's budget stays
    within the plan's drill allowance (gate availability_budget)."""
    api.available_while_az_lost(scenario, required(scenario.lost_az, "the availability zone lost"), percent / 100.0)


@drill_step("when", "every API instance is down", needs=("api_instances",), touches=(EVERY_API_INSTANCE,))
def all_down(scenario):
    """SIGKILL every remaining API instance."""
    api.all_instances_down(scenario)


@drill_step("then", "new intents and approvals are blocked with a clear error")
def blocked(scenario):
    """Creating an intent and approving answer 503 with an error and its cause."""
    api.blocked_with_clear_error(scenario)


@drill_step(
    "then", parsers.parse("the connectors keep serving the queued {platform} work"), needs=("platform_requests",)
)
def served_while_api_down(scenario, platform):
    """With the API tier down, every intent queued for the platform is applied once (its log)."""
    api.serve_queued_work(scenario, platform.strip())


@drill_step("when", parsers.parse("the API instance in {instance} is redeployed"), needs=("api_instances",))
def instance_redeployed(scenario, instance):
    """Start that instance again: the tier answers, but without its redundancy."""
    api.redeploy(scenario, instance)


@drill_step("then", "a publish is refused while ServiceHealth is Unhealthy")
def publish_refused_unhealthy(scenario):
    """Once the Control Plane answers ServiceHealth = Unhealthy, a publish between two such answers
    must be refused."""
    api.publish_while_unhealthy(scenario)


@drill_step("when", "the API instances are redeployed", needs=("api_instances",))
def redeployed(scenario):
    """Start every killed API instance again (the auto-redeploy)."""
    api.redeploy(scenario)


@drill_step("then", "the gate ServiceHealth = Healthy passes before a new publish")
def health_before_publish(scenario):
    """Once ServiceHealth = Healthy, a publish must be accepted."""
    api.publish_when_healthy(scenario)
