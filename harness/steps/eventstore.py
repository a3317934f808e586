"""Steps of the event store drill (matrix row 7, "Event store write blocked")."""

from __future__ import annotations

from pytest_bdd import parsers

from ..lab.targets import DATABASE_PRIMARY
from ..runner import eventstore
from .registry import drill_step


@drill_step(
    "when",
    "event store writes are blocked on the database primary",
    needs=("event_store_block",),
    touches=(DATABASE_PRIMARY,),
)
def event_store_blocked(scenario):
    """Read the audit chain, then hold an EXCLUSIVE lock on the event store's chain head on the
    database primary: reads still work, every audit-event append waits (healed at the end, always)."""
    eventstore.block_writes(scenario)


@drill_step("then", "publishing is refused until the event store is healthy")
def publishing_refused_event_store(scenario):
    """A publish of an approved intent answers 503 with cause event_store while the store is
    blocked, and is accepted again only once the store is healthy."""
    eventstore.publish_refused_until_healthy(scenario)


@drill_step("then", "the event store fails over to the redundant cluster")
def event_store_fails_over(scenario):
    """The lab's failover detects the write-blocked store, fences the primary, promotes the
    synchronous replica and repoints the clients; the fault is then healed."""
    eventstore.wait_failover(scenario)


@drill_step("then", "no audit event is lost or duplicated across the failover")
def audit_chain_whole(scenario):
    """Every event recorded before the fault is there with its hash, no seq or hash twice, every
    hash recomputed and linked, across the failover boundary too."""
    eventstore.verify_audit_chain(scenario)


@drill_step("then", parsers.parse("the gate EventStoreWriteSuccess >= {percent:g}% per hour passes"))
def event_store_write_success(scenario, percent):
    """Per clock hour: audit events persisted exactly once / state changes attempted (refused and
    timed out included) must be >= percent; no change acknowledged without its event."""
    eventstore.write_success_gate(scenario, percent / 100.0)
