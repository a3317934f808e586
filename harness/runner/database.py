"""Harness calls of the database drills (matrix row 2, "Database / Primary unavailable", and the
replication-cut determinism drill): act and record; the rules are checkers in harness.gates."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeout

from ..gates.eventstore import EventChainVerified
from ..gates.recovery import (
    ApprovalEventCount,
    FailoverCompleted,
    PublishApprovalBlocked,
    TransactionLagBeforeFailback,
    WritesAfterFailback,
    WritesResumed,
)
from ..lab.capabilities import DatabaseNodes
from ..lab.failover import FailbackRefused, transaction_lag
from ..model import EventKind, FaultSpec, Op, OpDetail, OpKind, Outcome
from ..wait import poll
from ..workload import ControlPlane
from .common import pause_writer, read_events, wait_for_count, wait_for_ok
from .scenario import PrimaryFault, Scenario, probe_or_none, required

FAILOVER_TIMEOUT = 60.0
LAG_LIMIT = 5.0  # the spec: TransactionLag <= 5 s before failback
CATCH_UP_TIMEOUT = 30.0
# The failback drill: latency on the rebuilt node's replication link, just over what makes its lag
# pass the limit (the heartbeats commit every 0.5 s: replayed commits then trail by the latency),
# bounded by the toxic's own time limit; with synchronous replication every commit waits for it.
LAG_LATENCY_MS = 6000
LAG_FAULT_TIME_LIMIT = 60.0
LAG_BUILD_TIMEOUT = 30.0
LAG_MARGIN = 0.5  # requested once the harness measures lag > limit + this: still over at the action's check
TAKE_EFFECT_TIMEOUT = 60.0
WAITING_AFTER = 5.0  # an action not answered by then is waiting (not refusing)
SAMPLE_INTERVAL = 0.2  # the harness's lag and role samples
LAG_SAMPLE_FRESH = 10.0  # the gate needs a lag sample this close before the failback took effect
RESUMED_WRITES = 15  # acknowledged writes on the promoted primary before verifying it


def primary_fault(scn: Scenario) -> PrimaryFault:
    """The fault that took the primary away (kill_primary, eventstore.block_writes)."""
    return required(scn.primary, "the database primary's fault")


def kill_primary(scn: Scenario) -> None:
    """SIGKILL the primary's postmaster and every child: a crash, not a shutdown. RTO and RPO
    count from it."""
    name = scn.lab.capability(DatabaseNodes).database_primary()
    label = f"kill-primary:{name}"
    scn.recover_on(label, "write")
    scn.primary = PrimaryFault(label, name)
    scn.inject(FaultSpec("database_primary_kill", "database-primary"), label)
    scn.observe(f"Database primary {label.split(':')[1]} killed with SIGKILL (postmaster and children).")


def check_writes_blocked(scn: Scenario, cause: str) -> None:
    """Right after the kill, approve and publish an intent whose evidence was committed before: both
    at once, so that both are attempted while the primary is down (one after the other, the second
    came after a fast failover, as the first waits out the Control Plane's connect timeout)."""
    intent, key = probe_or_none(scn)
    with ThreadPoolExecutor(max_workers=2) as pool:
        calls = [
            pool.submit(scn.call, kind, request, value=key, detail={"intent_id": intent})
            for kind, request in (
                (OpKind.APPROVE, ControlPlane.approve(intent)),
                (OpKind.PUBLISH, ControlPlane.publish(intent)),
            )
        ]
        for call in calls:
            call.result()
    scn.expect(PublishApprovalBlocked(primary_fault(scn).label, cause))


def wait_failover(scn: Scenario) -> None:
    """The lab's failover controller promotes the replica and repoints the client endpoint."""
    scn.lab.observer.wait_failed_over(FAILOVER_TIMEOUT)
    scn.expect(FailoverCompleted(primary_fault(scn).label, FAILOVER_TIMEOUT))


def writes_resume(scn: Scenario) -> None:
    """Writes go through the API again after the clients were repointed."""
    history = scn.recorder.history()
    fault = primary_fault(scn).label
    inject = required(history.first_event(EventKind.INJECT, fault), f"the injection of {fault}")
    reconnect = history.first_event(EventKind.RECONNECT, after=inject.t) or inject
    writer = scn.writer()
    if not writer.is_alive():  # paused for exact counts: write here until one goes through
        poll(lambda: writer.write_one().outcome is Outcome.OK, timeout=FAILOVER_TIMEOUT, interval=0.05)
    else:  # let the workload run on the new primary a while
        wait_for_ok(scn, OpKind.WRITE, after=reconnect.t, timeout=FAILOVER_TIMEOUT)
        wait_for_count(scn, OpKind.WRITE, RESUMED_WRITES, after=reconnect.t, timeout=FAILOVER_TIMEOUT)
    scn.expect(WritesResumed(fault))


def verify_consistency(scn: Scenario) -> None:
    """The runbook's consistency check, done by the harness itself: the whole event chain read and
    every hash recomputed; the approvals recorded on the promoted node read back."""
    read_events(scn, OpKind.READ_CHAIN)
    read_events(scn, type_="ApprovalRecorded", own=True)
    scn.expect(EventChainVerified())
    scn.expect(ApprovalEventCount(primary_fault(scn).label))


def rebuild_old_primary(scn: Scenario) -> None:
    """The old primary back, rebuilt as a replica of the promoted one: the heal of the crash, or (a
    node the failover fenced) the lab's own recovery."""
    old = primary_fault(scn).node
    if scn.journal.find(primary_fault(scn).label) is not None:
        scn.heal(primary_fault(scn).label)
    else:
        scn.lab.capability(DatabaseNodes).restore_database_node(old)
    scn.observe(f"Old primary {old} rebuilt as a replica of {scn.lab.capability(DatabaseNodes).database_primary()}.")


def failback_when_caught_up(scn: Scenario, limit: float = LAG_LIMIT) -> None:
    """The failback drilled against its lag rule (row 2's validation "TransactionLag <= 5 s before
    failback"), with the harness as the witness:

    1. the replication link to the rebuilt node is slowed (a Toxiproxy latency toxic on its
       `repl-*` proxy, through the fault journal) until the harness measures its lag over `limit`;
    2. the failback is requested through the failback action (the lab's failover controller, or
       an external target's runbook hook `database_failback`) while that lag lasts: the action
       must refuse (FailbackRefused, 409) or wait; the harness does not check the lag first;
    3. refused: the latency is removed, the harness waits until it measures lag <= `limit`, and
       requests again.
    All along the harness measures the lag itself (ops "lag") and whether the node left recovery
    (ops "in_recovery"); the gate judges the lag it measured when the failback took effect."""
    scn.expect(TransactionLagBeforeFailback(limit, fresh_s=LAG_SAMPLE_FRESH))
    old = primary_fault(scn).node
    synchronous = scn.drill.replication == "sync"
    watch = FailbackWatch(scn, old, scn.lab.capability(DatabaseNodes).database_primary()).start()
    label = f"latency:replication:{old}"
    writer = scn.workload.writer if scn.workload else None
    try:
        slowed = _slow_replication(scn, old, label, watch, limit)
        with ThreadPoolExecutor(max_workers=1) as pool:
            asked = pool.submit(
                _request_failback, scn, old, limit, synchronous, "while lagging" if slowed else "lag not built"
            )
            try:  # an action that waits is waiting for the lag: the latency goes while it waits
                asked.result(timeout=WAITING_AFTER)
            except FuturesTimeout:
                scn.observe(
                    f"The failback action is still waiting {WAITING_AFTER:g} s after the request: "
                    f"the latency is removed while it waits."
                )
            if scn.journal.find(label) is not None:
                scn.heal(label)
            first = asked.result(timeout=TAKE_EFFECT_TIMEOUT)
        if not first.ok and first.outcome is Outcome.FAIL:  # refused: wait until caught up, ask again
            caught_up = poll(
                lambda: watch.last_lag(),
                until=lambda lag: lag is not None and lag <= limit,
                timeout=CATCH_UP_TIMEOUT,
                interval=SAMPLE_INTERVAL,
            )
            if not caught_up.ok:
                scn.observe(
                    f"{old} did not catch up to TransactionLag <= {limit:g} s within "
                    f"{CATCH_UP_TIMEOUT:.0f} s after the latency was removed."
                )
                return
            last = _request_failback(scn, old, limit, synchronous, "caught up")
        else:
            last = first
        took = poll(lambda: watch.promoted, until=bool, timeout=TAKE_EFFECT_TIMEOUT, interval=SAMPLE_INTERVAL)
        scn.observe(
            f"Failback to {old}: "
            + (f"took effect (the harness read {old} out of recovery)" if took.ok else "never seen taking effect")
            + "."
        )
    finally:
        watch.stop()
        if scn.journal.find(label) is not None:
            scn.heal(label)
    if last.ok and writer is not None and writer.is_alive():
        wait_for_ok(scn, OpKind.WRITE, after=last.done, timeout=FAILOVER_TIMEOUT)
        scn.expect(WritesAfterFailback())


def _slow_replication(scn: Scenario, node: str, label: str, watch: FailbackWatch, limit: float) -> bool:
    """Latency on the replication link to `node` until the harness measures its lag over `limit`.
    False (said in an observation) when the lab could not build that lag."""
    try:
        link = scn.lab.capability(DatabaseNodes).replication_proxy_name(node)
    except Exception as exc:  # the lab cannot slow that link: said, and the gate is unknown
        scn.observe(f"The lab could not build TransactionLag > {limit:g} s on {node}: {exc}.")
        return False
    scn.inject(FaultSpec("latency", link, {"latency_ms": LAG_LATENCY_MS}, time_limit_s=LAG_FAULT_TIME_LIMIT), label)
    built = poll(
        lambda: watch.last_lag(),
        until=lambda lag: lag is not None and lag > limit + LAG_MARGIN,
        timeout=LAG_BUILD_TIMEOUT,
        interval=SAMPLE_INTERVAL,
    )
    if not built.ok:
        scn.observe(
            f"The lab could not build TransactionLag > {limit:g} s on {node} within "
            f"{LAG_BUILD_TIMEOUT:.0f} s ({LAG_LATENCY_MS} ms latency on its replication link)."
        )
    return built.ok


def _request_failback(scn: Scenario, node: str, limit: float, synchronous: bool, when: str) -> Op:
    """One request of the failback action, recorded as op "failback": ok (the action answered that
    it switched, its own lag figure as value), FAIL (it refused for lag) or indeterminate."""
    failover = scn.lab.observer

    def switch():
        try:
            return Outcome.OK, failover.failback(node, max_lag=limit, synchronous=synchronous), ""
        except FailbackRefused as refused:
            return Outcome.FAIL, refused.lag, str(refused)

    op = scn.recorder.invoke(
        OpKind.FAILBACK, switch, correlation_id=scn.correlation_id, detail={"node": node, "requested": when}
    )
    answer = "switched" if op.ok else op.error
    scn.observe(f"Failback to {node} requested ({when}): {answer}.")
    return op


class FailbackWatch:
    """The harness's own watch of a failback target, every SAMPLE_INTERVAL on its own SQL
    connections: the node's TransactionLag against the primary it fails back from (op "lag",
    harness.lab.failover.transaction_lag: replay LSN against the primary's current LSN, and the
    replay timestamp) and whether it is still in recovery (op "in_recovery")."""

    def __init__(self, scn: Scenario, node: str, primary: str):
        self.scn, self.node, self.primary = scn, node, primary
        self.promoted = False
        self._lag: float | None = None
        self._halt = threading.Event()
        self._thread = threading.Thread(target=self._run, name="failback-watch", daemon=True)

    def start(self) -> FailbackWatch:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._halt.set()
        self._thread.join(30)

    def last_lag(self) -> float | None:
        """The last lag the harness measured, None when its last sample failed."""
        return self._lag

    def _query(self, name: str):
        return lambda statement, params=None: self.scn.lab.capability(DatabaseNodes).node_query(name, statement, params)

    def _run(self) -> None:
        detail: OpDetail = {"node": self.node, "primary": self.primary}
        while not self._halt.is_set():
            if not self.promoted:
                lag = self.scn.read(
                    OpKind.LAG,
                    lambda: transaction_lag(self._query(self.primary), self._query(self.node)),
                    detail=detail,
                )
                self._lag = lag.value if lag.ok else None
            role = self.scn.read(
                OpKind.IN_RECOVERY,
                lambda: self._query(self.node)("SELECT pg_is_in_recovery()")[0][0],
                detail={"node": self.node},
            )
            if role.ok and role.value is False:
                self.promoted = True
            self._halt.wait(SAMPLE_INTERVAL)


# -- the determinism drill: replication link cut, then exactly N writes -----------------------


def wait_replica_caught_up(scn: Scenario) -> None:
    pause_writer(scn)
    replica = scn.lab.observer.candidate
    if not poll(lambda: scn.lab.capability(DatabaseNodes).replica_caught_up(replica), timeout=CATCH_UP_TIMEOUT).ok:
        raise RuntimeError(f"replica {replica} did not catch up within {CATCH_UP_TIMEOUT:.0f} s")


def cut_replication_link(scn: Scenario) -> None:
    replica = scn.lab.observer.candidate
    scn.inject(
        FaultSpec("partition", scn.lab.capability(DatabaseNodes).replication_proxy_name(replica)),
        f"partition:replication:{replica}",
    )
    scn.observe(f"Replication link to {replica} cut (Toxiproxy partition).")


def write_exactly(scn: Scenario, n: int) -> None:
    """Exactly n writes, sent at once, each acknowledged or not and recorded as the writer's: with
    synchronous replication each waits for a confirmation that never comes (the Control Plane
    gives up after its 2 s statement timeout); one after another, they waited n times that."""
    writer = scn.writer()
    writer.client.timeout = 5.0
    with ThreadPoolExecutor(max_workers=n) as pool:
        ops = list(pool.map(lambda _: writer.write_one(), range(n)))
    acked = sum(1 for op in ops if op.ok)
    scn.figures["acknowledged_after_cut"] = acked
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
