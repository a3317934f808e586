"""Steps of the API tier drills."""

from __future__ import annotations

from pytest_bdd import parsers, then, when

from ..runner import api


@when(parsers.parse("the API instance in {instance} is killed"))
def instance_killed(drill, instance):
    """SIGKILL one availability zone's API instance (az1, az2 or az3)."""
    api.kill_instance(drill, drill.current, instance)


@then("the load balancer routes around it within the probe interval")
def routed_around(drill):
    """No client request fails later than the load balancer's probe window after the kill."""
    api.routed_around(drill, drill.current)


@when("every API instance is down")
def all_down(drill):
    """SIGKILL every remaining API instance."""
    api.all_instances_down(drill, drill.current)


@then("new intents and approvals are blocked with a clear error")
def blocked(drill):
    """Creating an intent and approving answer 503 with an error and its cause."""
    api.blocked_with_clear_error(drill, drill.current)


@when("the API instances are redeployed")
def redeployed(drill):
    """Start every API instance again (the auto-redeploy)."""
    api.redeploy(drill, drill.current)


@then("the gate ServiceHealth = Healthy passes before a new publish")
def health_before_publish(drill):
    """Publish only once ServiceHealth = Healthy, and then it must be accepted."""
    api.service_health_before_publish(drill, drill.current)
