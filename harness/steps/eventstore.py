"""Steps of the event store drill (matrix row 7, "Event store write blocked")."""

from __future__ import annotations

from pytest_bdd import parsers, then, when

from ..runner import eventstore


@when("event store writes are blocked on the database primary")
def event_store_blocked(drill):
    """Record the audit chain, then hold an EXCLUSIVE lock on the event store's chain head on the
    database primary: reads still work, every audit-event append waits (healed at the end, always)."""
    eventstore.block_writes(drill, drill.current)


@then("publishing is refused until the event store is healthy")
def publishing_refused_event_store(drill):
    """A publish of an approved intent answers 503 with cause event_store while the store is
    blocked, and is accepted again only once the store is healthy."""
    eventstore.publish_refused_until_healthy(drill, drill.current)


@then("the event store fails over to the redundant cluster")
def event_store_fails_over(drill):
    """The lab's failover detects the write-blocked store, fences the primary, promotes the
    synchronous replica and repoints the clients; the fault is then healed."""
    eventstore.wait_failover(drill, drill.current)


@then("no audit event is lost or duplicated across the failover")
def audit_chain_whole(drill):
    """Every event recorded before the fault is there with its hash, no seq or hash twice, the
    hash chain verifies and links across the failover boundary."""
    eventstore.verify_audit_chain(drill, drill.current)


@then(parsers.parse("the gate EventStoreWriteSuccess >= {percent:g}% per hour passes"))
def event_store_write_success(drill, percent):
    """Per clock hour: audit events persisted (exactly once) / acknowledged state changes needing
    one (intent, evidence, approval, publish) must be >= percent."""
    eventstore.write_success_gate(drill, drill.current, percent / 100.0)
