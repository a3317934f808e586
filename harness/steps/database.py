"""Steps of the database drills."""

from __future__ import annotations

from pytest_bdd import given, parsers, then, when

from ..runner import database


@when("the database primary is killed")
def primary_killed(drill):
    """SIGKILL the database primary (every process of it)."""
    database.kill_primary(drill, drill.current)


@then(parsers.parse('publishing and approval are blocked naming the cause "{cause}"'))
def publishing_blocked(drill, cause):
    """Approve and publish must answer 503 naming the cause while the primary is down."""
    database.check_writes_blocked(drill, drill.current, cause)


@then("the replica is promoted and clients are repointed")
def replica_promoted(drill):
    """Wait for the lab's failover: detect, promote the replica, repoint the client endpoint."""
    database.wait_failover(drill, drill.current)


@then("writes resume")
def writes_resume(drill):
    """A write through the API succeeds again (the RTO's end)."""
    database.writes_resume(drill, drill.current)


@then("the data is consistent")
def data_consistent(drill):
    """Event hash chain verifies; ApprovalEventCount covers every acknowledged approval."""
    database.verify_consistency(drill, drill.current)


@then("the old primary is rebuilt as a replica")
def old_primary_rebuilt(drill):
    """Rebuild the failed primary as a replica of the new one."""
    database.rebuild_old_primary(drill, drill.current)


@then(parsers.parse("failback happens only after TransactionLag <= {limit:g} s"))
def failback_gated(drill, limit):
    """Fail back only once the rebuilt node's TransactionLag <= limit."""
    database.failback_when_caught_up(drill, drill.current, limit)


@given("the replica has caught up")
def replica_caught_up(drill):
    """Pause the writer and wait until the failover target has replayed everything."""
    database.wait_replica_caught_up(drill, drill.current)


@when("the replication link to the replica is cut")
def replication_cut(drill):
    """Partition the replication link to the failover target (Toxiproxy)."""
    database.cut_replication_link(drill, drill.current)


@when(parsers.parse("{n:d} writes are attempted"))
def writes_attempted(drill, n):
    """Make exactly n writes, one after another, and count the acknowledged ones."""
    database.write_exactly(drill, drill.current, n)
