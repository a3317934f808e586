"""Steps of the database drills."""

from __future__ import annotations

from pytest_bdd import given, parsers, then, when

from ..runner import database


@when("the database primary is killed")
def primary_killed(drill):
    database.kill_primary(drill, drill.current)


@then(parsers.parse('publishing and approval are blocked naming the cause "{cause}"'))
def publishing_blocked(drill, cause):
    database.check_writes_blocked(drill, drill.current, cause)


@then("the replica is promoted and clients are repointed")
def replica_promoted(drill):
    database.wait_failover(drill, drill.current)


@then("writes resume")
def writes_resume(drill):
    database.writes_resume(drill, drill.current)


@then("the data is consistent")
def data_consistent(drill):
    database.verify_consistency(drill, drill.current)


@then("the old primary is rebuilt as a replica")
def old_primary_rebuilt(drill):
    database.rebuild_old_primary(drill, drill.current)


@then(parsers.parse("failback happens only after TransactionLag <= {limit:g} s"))
def failback_gated(drill, limit):
    database.failback_when_caught_up(drill, drill.current, limit)


@given("the replica has caught up")
def replica_caught_up(drill):
    database.wait_replica_caught_up(drill, drill.current)


@when("the replication link to the replica is cut")
def replication_cut(drill):
    database.cut_replication_link(drill, drill.current)


@when("the replication link is restored")
def replication_restored(drill):
    database.heal_faults(drill, drill.current)


@when(parsers.parse("{n:d} writes are attempted"))
def writes_attempted(drill, n):
    database.write_exactly(drill, drill.current, n)
