"""Harness calls of the event store drill (matrix row 7, "Event store write blocked").

The fault is real: an EXCLUSIVE lock on the chain head held on the database primary, so every
audit-event append waits. The Control Plane must refuse (never acknowledge a change without its
event) and refuse publishes; the lab's failover controller, seeing the store write-blocked,
fences the primary and promotes the synchronous replica (the redundant cluster). Then the chain
must be whole: the harness reads it before and after and recomputes every hash itself.
"""

from __future__ import annotations

from ..gates.eventstore import (
    AuditEventsNotDuplicated,
    AuditEventsNotLost,
    EventChainVerified,
    EventStoreWriteSuccess,
    FailoverCause,
    NoChangeWithoutEvent,
    PublishAcceptedOnlyWhenStoreHealthy,
    PublishRefusedWhileStoreBlocked,
)
from ..lab.capabilities import DatabaseNodes
from ..model import FaultSpec, OpKind
from ..wait import poll
from ..workload import ControlPlane
from . import database
from .common import read_events
from .scenario import PrimaryFault, Scenario, probe_or_none

TIMEOUT = 60.0
RETRY_INTERVAL = 0.25


def block_writes(scn: Scenario) -> None:
    """Approve the probe intent (so that only the event store can stop its publish), read the chain
    as it is, then block every append on the primary. RTO and RPO count from the block."""
    intent, key = probe_or_none(scn)
    scn.call(OpKind.APPROVE, ControlPlane.approve(intent), value=key, detail={"intent_id": intent})
    before = read_events(scn, OpKind.READ_CHAIN)
    name = scn.lab.capability(DatabaseNodes).database_primary()
    label = f"event-store-block:{name}"
    scn.recover_on(label, "write")
    scn.primary = PrimaryFault(label, name)
    scn.inject(FaultSpec("event_store_block", "database-primary"), label)
    scn.observe(
        f"Event store writes blocked on the database primary {name} (EXCLUSIVE lock on the chain "
        f"head); {len(before.value) if before.ok else 'unknown'} events recorded before."
    )


def publish_refused_until_healthy(scn: Scenario) -> None:
    """Publish the approved intent now, and again every 0.25 s until it is accepted."""
    intent, key = probe_or_none(scn)
    poll(
        lambda: scn.call(OpKind.PUBLISH, ControlPlane.publish(intent), value=key, detail={"intent_id": intent}),
        until=lambda op: op.ok,
        timeout=TIMEOUT,
        interval=RETRY_INTERVAL,
    )
    label = database.primary_fault(scn).label
    scn.expect(PublishRefusedWhileStoreBlocked(label))
    scn.expect(PublishAcceptedOnlyWhenStoreHealthy(label))


def wait_failover(scn: Scenario) -> None:
    """The controller detects the blocked store, fences the primary, promotes the synchronous
    replica, repoints the clients; then the fault is healed (a no-op on the fenced node)."""
    try:
        database.wait_failover(scn)
        scn.expect(FailoverCause(database.primary_fault(scn).label))
    finally:
        scn.heal(database.primary_fault(scn).label)


def verify_audit_chain(scn: Scenario) -> None:
    """Read the whole chain after the failover (the harness recomputes and links every hash)."""
    read_events(scn, OpKind.READ_CHAIN)
    label = database.primary_fault(scn).label
    for gate in (AuditEventsNotLost(label), AuditEventsNotDuplicated(label), EventChainVerified(label)):
        scn.expect(gate)


def write_success_gate(scn: Scenario, target: float) -> None:
    """EventStoreWriteSuccess per hour over every state change the workload attempts in the scenario
    (read back when it ends), and none acknowledged without its event."""
    scn.expect(EventStoreWriteSuccess(target, fault=database.primary_fault(scn).label))
    scn.expect(NoChangeWithoutEvent())
