"""Harness calls of the API tier drill (matrix row 1, "Control Plane API/Policy services /
Stateless service outage"): act and record; the rules are checkers in harness.gates.api."""

from __future__ import annotations

from ..gates.api import (
    ConnectorsServeQueuedWork,
    IntentsAndApprovalsBlocked,
    PublishAcceptedWhenHealthy,
    PublishRefusedWhileUnhealthy,
)
from ..gates.availability import NoFailedRequestsBeyondProbeWindow
from ..lab.capabilities import ApiTier
from ..measure.probes import TARGET
from ..model import EventKind, FaultSpec, OpKind
from ..wait import poll
from ..workload import ControlPlane
from .common import applied_counts, availability_gate, wait_for_count
from .scenario import Scenario, probe_or_none, required

REDEPLOY_TIMEOUT = 60.0
ALL = "kill-api:all"


def kill_instance(scn: Scenario, name: str) -> None:
    """SIGKILL one availability zone's API instance, with the workload running."""
    scn.inject(FaultSpec("api_instance_kill", name), f"kill-api:{name}")
    scn.observe(f"API instance {name} killed with SIGKILL.")


def routed_around(scn: Scenario, name: str) -> None:
    """No client request may fail later than the load balancer's probe window after the kill."""
    label = f"kill-api:{name}"
    inject = required(scn.recorder.history().first_event(EventKind.INJECT, label), f"the injection of {label}")
    window = scn.lab.capability(ApiTier).probe_window()
    # let the workload run well past the window, so the checker has something to judge
    wait_for_count(scn, OpKind.WRITE, 20, after=inject.t + window, timeout=60)
    wait_for_count(scn, OpKind.PROBE, 10, after=inject.t + window, timeout=60)
    scn.expect(NoFailedRequestsBeyondProbeWindow(label, window))


def available_while_az_lost(scn: Scenario, name: str, target: float) -> None:
    """The scenario's availability error budget (gate availability_budget), a 5-minute window good at
    `target` of the harness's requests served (the plan's targets.availability when tighter). It
    judges the whole scenario: the zone's loss and the tier's outage the drill causes next both use
    the budget, against the plan's drill allowance."""
    gate = availability_gate(scn, max(target, float(scn.drill.targets.get("availability", TARGET))))
    if gate not in scn.checks:
        scn.expect(gate)
    scn.observe(
        f"Availability with {name} lost is judged as the scenario's error budget: every request of "
        f"the harness, per 5-minute window, the whole tier's outage included."
    )


def all_instances_down(scn: Scenario) -> None:
    scn.recover_on(ALL, "write")
    scn.inject(FaultSpec("api_instance_kill", "all"), ALL)
    scn.checkpoint(f"{ALL}:down")  # every kill returned: the harness saw each instance dead
    scn.observe("Every API instance killed: the stateless tier is out.")


def blocked_with_clear_error(scn: Scenario) -> None:
    """A new intent and an approval are attempted while the tier is down."""
    key = f"blocked-{scn.correlation_id}"
    scn.call(OpKind.CREATE_INTENT, ControlPlane.create_intent(key), value=key)
    intent, probe_key = (scn.probe.intent_id, scn.probe.key) if scn.probe else (0, None)
    scn.call(OpKind.APPROVE, ControlPlane.approve(intent), value=probe_key, detail={"intent_id": intent})
    scn.expect(IntentsAndApprovalsBlocked(ALL))


def serve_queued_work(scn: Scenario, platform: str) -> None:
    """The intents published just before the outage reach their platform while the API is down."""
    keys = [i["key"] for i in scn.published.get(platform, [])]
    poll(lambda: applied_counts(scn, platform), until=lambda c: all(c.get(k, 0) >= 1 for k in keys), timeout=30)
    scn.expect(ConnectorsServeQueuedWork(ALL, platform, keys))


def redeploy(scn: Scenario, name: str | None = None) -> None:
    """Start killed instances again (the auto-redeploy): one, or all that are down."""
    if name is not None:
        scn.heal(target=name)
        scn.observe(f"API instance {name} redeployed.")
        return
    while (entry := scn.journal.find()) is not None and entry.fault.TYPE == "api_instance_kill":
        scn.heal(entry.label)
    scn.observe("API instances redeployed.")


def publish_while_unhealthy(scn: Scenario) -> None:
    """Wait until the Control Plane answers ServiceHealth = Unhealthy (the tier short of instances),
    then attempt a publish of an approved intent between two health answers."""
    intent, key = _approved(scn)
    poll(
        lambda: scn.call(OpKind.HEALTH, ControlPlane.health(), timeout=3).detail.get("ServiceHealth"),
        until=lambda said: said == "Unhealthy",
        timeout=REDEPLOY_TIMEOUT,
        interval=0.2,
    )
    scn.call(OpKind.PUBLISH, ControlPlane.publish(intent), value=key, detail={"intent_id": intent})
    scn.call(OpKind.HEALTH, ControlPlane.health(), timeout=3)
    scn.expect(PublishRefusedWhileUnhealthy(ALL))


def publish_when_healthy(scn: Scenario) -> None:
    """Once ServiceHealth = Healthy, a publish of the approved intent is attempted: it must pass."""
    intent, key = _approved(scn)
    poll(
        lambda: scn.call(OpKind.HEALTH, ControlPlane.health(), timeout=3).detail.get("ServiceHealth"),
        until=lambda said: said == "Healthy",
        timeout=REDEPLOY_TIMEOUT,
        interval=0.2,
    )
    scn.call(OpKind.PUBLISH, ControlPlane.publish(intent), value=key, detail={"intent_id": intent})
    scn.expect(PublishAcceptedWhenHealthy(ALL))


def _approved(scn: Scenario) -> tuple[int, str]:
    """The probe intent (evidence committed before the faults), approved once."""
    intent, key = probe_or_none(scn)
    if not scn.probe_approved:
        approve = poll(
            lambda: scn.call(OpKind.APPROVE, ControlPlane.approve(intent), value=key, detail={"intent_id": intent}),
            until=lambda op: op.ok,
            timeout=REDEPLOY_TIMEOUT,
            interval=0.2,
        )
        scn.probe_approved = approve.ok
    return intent, key
