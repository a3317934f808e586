"""Steps of the database drills."""

from __future__ import annotations

from pytest_bdd import parsers

from ..lab.targets import DATABASE_PRIMARY, FAILBACK_LINKS, REPLICATION_LINK
from ..runner import database
from .registry import drill_step


@drill_step("when", "the database primary is killed", needs=("database_kill",), touches=(DATABASE_PRIMARY,))
def primary_killed(scenario):
    """SIGKILL the database primary (every process of it)."""
    database.kill_primary(scenario)


@drill_step("then", parsers.parse('publishing and approval are blocked naming the cause "{cause}"'))
def publishing_blocked(scenario, cause):
    """Approve and publish are attempted while the primary is down: each must answer 503 naming the cause."""
    database.check_writes_blocked(scenario, cause)


@drill_step("then", "the replica is promoted and clients are repointed")
def replica_promoted(scenario):
    """Wait for the lab's failover: detect, promote the replica, repoint the client endpoint."""
    database.wait_failover(scenario)


@drill_step("then", "writes resume")
def writes_resume(scenario):
    """A write through the API succeeds again (the RTO's end)."""
    database.writes_resume(scenario)


@drill_step("then", "the data is consistent")
def data_consistent(scenario):
    """The harness recomputes the event chain's hashes; ApprovalEventCount equals the approvals acknowledged."""
    database.verify_consistency(scenario)


@drill_step("then", "the old primary is rebuilt as a replica")
def old_primary_rebuilt(scenario):
    """Rebuild the failed primary as a replica of the new one."""
    database.rebuild_old_primary(scenario)


@drill_step(
    "then",
    parsers.parse("failback is refused while TransactionLag > {limit:g} s and happens once it is <= {again:g} s"),
    touches=(FAILBACK_LINKS,),
)
def failback_gated(scenario, limit, again):
    """Slow the rebuilt node's replication link until the harness measures its TransactionLag over
    the limit, request the failback then (the action must refuse or wait), and once the lag is back
    within the limit request it again; the harness's own lag samples judge it."""
    if again != limit:
        raise ValueError(f"one limit, said twice: {limit:g} s and {again:g} s")
    database.failback_when_caught_up(scenario, limit)


@drill_step("given", "the replica has caught up")
def replica_caught_up(scenario):
    """Pause the writer and wait until the failover target has replayed everything."""
    database.wait_replica_caught_up(scenario)


@drill_step(
    "when", "the replication link to the replica is cut", needs=("replication_cut",), touches=(REPLICATION_LINK,)
)
def replication_cut(scenario):
    """Partition the replication link to the failover target (Toxiproxy)."""
    database.cut_replication_link(scenario)


@drill_step("when", parsers.parse("{n:d} writes are attempted"))
def writes_attempted(scenario, n):
    """Make exactly n writes, all at once, and count the acknowledged ones."""
    database.write_exactly(scenario, n)


@drill_step("then", "the post-failover validation passes")
def validated_after_failover(scenario):
    """ServicesReady, MetadataTablesInSync (per-table checksums on the primary and the DR copy),
    EventCountGrowth >= the plan's threshold, ApprovalEventCount equal on both copies, and every
    failover event in the store also in the SIEM (the same checks as `drill validate --after-failover`)."""
    database.validate_after_failover(scenario)
