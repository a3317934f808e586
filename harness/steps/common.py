"""Steps every scenario uses."""

from __future__ import annotations

from pytest_bdd import given, parsers, when

from ..runner import common


@given("the lab is in steady state")
def lab_in_steady_state(drill):
    """Heal leftovers, then require every probe green (ServiceHealth, replication, load balancer);
    otherwise the scenario stops before any harm."""
    common.steady_state(drill, drill.current)


@given("a sequenced workload of intents and approvals is running")
def workload_running(drill):
    """Start sequenced intent writes (every 5th with evidence, approval, publish) and health probes."""
    common.start_workload(drill, drill.current)


@when(parsers.parse("the {link} link is restored"))
def link_restored(drill, link):
    """Heal the most recent fault of the scenario (every fault is also healed at its end)."""
    common.heal_last_fault(drill, drill.current)
