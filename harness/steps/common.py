"""Steps every scenario uses."""

from __future__ import annotations

from pytest_bdd import parsers

from ..runner import common
from .registry import drill_step


@drill_step("given", "the lab is in steady state")
def lab_in_steady_state(scenario):
    """Heal leftovers, then require every probe green (ServiceHealth, replication, load balancer);
    otherwise the scenario stops before any harm. The same check runs again after every heal."""
    common.steady_state(scenario, "before")


@drill_step("given", "a sequenced workload of intents and approvals is running")
def workload_running(scenario):
    """Start sequenced intent writes (every 5th with evidence, approval, publish) and health probes."""
    common.start_workload(scenario)


@drill_step("when", parsers.parse("the {link} link is restored"))
def link_restored(scenario, link):
    """Heal the active fault on that link: alternate region, evidence store, replication, or a
    platform's name (every fault is also healed at the scenario's end)."""
    common.restore_link(scenario, link)
