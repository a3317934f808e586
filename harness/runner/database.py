"""Harness calls of the database drills (matrix row 2, "Database / Primary unavailable", and the
replication-cut determinism drill): act and record; the rules are checkers in harness.gates."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from ..gates.eventstore import EventChainVerified
from ..gates.recovery import (ApprovalEventCount, FailoverCompleted, PublishApprovalBlocked,
                              TransactionLagBeforeFailback, WritesAfterFailback, WritesResumed)
from ..lab.failover import FailbackRefused
from ..model import FaultSpec, Outcome
from ..wait import poll
from .common import pause_writer, read_events, wait_for_count, wait_for_ok
from .scenario import Scenario

FAILOVER_TIMEOUT = 60.0
LAG_LIMIT = 5.0          # the spec: TransactionLag <= 5 s before failback
CATCH_UP_TIMEOUT = 30.0
RESUMED_WRITES = 15      # acknowledged writes on the promoted primary before verifying it


def kill_primary(scn: Scenario) -> None:
    """SIGKILL the primary's postmaster and every child: a crash, not a shutdown. RTO and RPO
    count from it."""
    name = scn.lab.database_primary()
    label = f"kill-primary:{name}"
    scn.recover_on(label, "write")
    scn.notes.update(primary_fault=label, failed_primary=name)
    scn.inject(FaultSpec("database_primary_kill", "database-primary"), label)
    scn.observe(f"Database primary {label.split(':')[1]} killed with SIGKILL (postmaster and children).")


def check_writes_blocked(scn: Scenario, cause: str) -> None:
    """Right after the kill, approve and publish an intent whose evidence was committed before: both
    at once, so that both are attempted while the primary is down (one after the other, the second
    came after a fast failover, as the first waits out the Control Plane's connect timeout)."""
    intent, key = scn.notes.get("probe_intent", (0, ""))
    with ThreadPoolExecutor(max_workers=2) as pool:
        calls = [pool.submit(scn.call, kind, "POST", f"/intents/{intent}/{kind}", value=key,
                             detail={"intent_id": intent}, json=body)
                 for kind, body in (("approve", {"approver": "drill-cab"}), ("publish", {}))]
        for call in calls:
            call.result()
    scn.expect(PublishApprovalBlocked(scn.notes["primary_fault"], cause))


def wait_failover(scn: Scenario) -> None:
    """The lab's failover controller promotes the replica and repoints the client endpoint."""
    scn.lab.failover.wait_failed_over(FAILOVER_TIMEOUT)
    scn.expect(FailoverCompleted(scn.notes["primary_fault"], FAILOVER_TIMEOUT))


def writes_resume(scn: Scenario) -> None:
    """Writes go through the API again after the clients were repointed."""
    history = scn.recorder.history()
    fault = scn.notes["primary_fault"]
    inject = history.first_event("inject", fault)
    reconnect = history.first_event("reconnect", after=inject.t) or inject
    writer = scn.workload.writer
    if not writer.is_alive():   # paused for exact counts: write here until one goes through
        poll(lambda: writer.write_one().outcome is Outcome.OK, timeout=FAILOVER_TIMEOUT, interval=0.05)
    else:                       # let the workload run on the new primary a while
        wait_for_ok(scn, "write", after=reconnect.t, timeout=FAILOVER_TIMEOUT)
        wait_for_count(scn, "write", RESUMED_WRITES, after=reconnect.t, timeout=FAILOVER_TIMEOUT)
    scn.expect(WritesResumed(fault))


def verify_consistency(scn: Scenario) -> None:
    """The runbook's consistency check, done by the harness itself: the whole event chain read and
    every hash recomputed; the approvals recorded on the promoted node read back."""
    read_events(scn, "read_chain")
    read_events(scn, type_="ApprovalRecorded", own=True)
    scn.expect(EventChainVerified())
    scn.expect(ApprovalEventCount(scn.notes["primary_fault"]))


def rebuild_old_primary(scn: Scenario) -> None:
    """The old primary back, rebuilt as a replica of the promoted one: the heal of the crash, or (a
    node the failover fenced) the lab's own recovery."""
    old = scn.notes["failed_primary"]
    if scn.journal.find(scn.notes["primary_fault"]) is not None:
        scn.heal(scn.notes["primary_fault"])
    else:
        scn.lab.restore_database_node(old)
    scn.observe(f"Old primary {old} rebuilt as a replica of {scn.lab.database_primary()}.")


def failback_when_caught_up(scn: Scenario, limit: float = LAG_LIMIT) -> None:
    """Fail back to the rebuilt node once its TransactionLag <= limit (sampled with a deadline);
    the failover controller measures it again at the switch and refuses above the limit."""
    old = scn.notes["failed_primary"]
    failover = scn.lab.failover
    poll(lambda: scn.read("lag", lambda: failover.transaction_lag(old), detail={"node": old}),
         until=lambda op: op.ok and op.value <= limit, timeout=CATCH_UP_TIMEOUT, interval=0.2)

    def switch():
        try:
            return Outcome.OK, failover.failback(old, max_lag=limit, synchronous=scn.drill.replication == "sync"), ""
        except FailbackRefused as refused:
            return Outcome.FAIL, refused.lag, str(refused)
    op = scn.recorder.invoke("failback", switch, correlation_id=scn.correlation_id, detail={"node": old})
    scn.expect(TransactionLagBeforeFailback(limit))
    scn.observe(f"Failback to {old}: {op.error or f'TransactionLag {op.value:.2f} s'}.")
    writer = scn.workload.writer if scn.workload else None
    if op.ok and writer is not None and writer.is_alive():
        wait_for_ok(scn, "write", after=op.done, timeout=FAILOVER_TIMEOUT)
        scn.expect(WritesAfterFailback())


# -- the determinism drill: replication link cut, then exactly N writes -----------------------

def wait_replica_caught_up(scn: Scenario) -> None:
    pause_writer(scn)
    replica = scn.lab.failover.candidate
    if not poll(lambda: scn.lab.replica_caught_up(replica), timeout=CATCH_UP_TIMEOUT).ok:
        raise RuntimeError(f"replica {replica} did not catch up within {CATCH_UP_TIMEOUT:.0f} s")


def cut_replication_link(scn: Scenario) -> None:
    replica = scn.lab.failover.candidate
    scn.inject(FaultSpec("partition", scn.lab.replication_proxy_name(replica)), f"partition:replication:{replica}")
    scn.observe(f"Replication link to {replica} cut (Toxiproxy partition).")


def write_exactly(scn: Scenario, n: int) -> None:
    writer = scn.workload.writer
    writer.client.timeout = 5.0
    acked = sum(1 for op in writer.write(n) if op.ok)
    scn.notes.setdefault("figures", {})["acknowledged_after_cut"] = acked
    scn.observe(f"{n} writes attempted after the cut, {acked} acknowledged.")


def validate_after_failover(scn: Scenario) -> None:
    """The post-failover validation script, as the drill's last step: the workload stops (the two
    database copies can then be compared at one position), the lab's pending events are delivered,
    then every read of harness.runner.validation is made and its gates stated."""
    from .validation import checks, collect

    if scn.workload is not None and scn.workload.writer is not None:
        scn.workload.writer.stop()
    if scn.drill.forwarder is not None:
        scn.drill.forwarder.flush(30)
    collect(scn.lab, scn.recorder, scn.correlation_id)
    for gate in checks(int(scn.drill.targets.get("event_count_growth", 5))):
        scn.expect(gate)
