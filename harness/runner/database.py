"""Harness calls of the database drills: kill the primary, watch the failover, verify, fail back."""

from __future__ import annotations

import time

from ..lab.failover import FailbackRefused
from ..model import Outcome
from ..workload import ApiClient
from .common import gate, pause_writer, track_fault, wait_for_count, wait_for_ok
from .context import DrillContext, ScenarioRun

FAILOVER_TIMEOUT = 60.0
LAG_LIMIT = 5.0          # the spec: TransactionLag <= 5 s before failback
CATCH_UP_TIMEOUT = 30.0
RESUMED_WRITES = 15      # acknowledged writes on the promoted primary before verifying it


def kill_primary(ctx: DrillContext, run: ScenarioRun) -> None:
    """SIGKILL the primary's postmaster and every child: a crash, not a shutdown."""
    name = ctx.lab.database_primary()
    run.state["failed_primary"] = name
    run.state["rto_fault"] = f"kill-primary:{name}"     # RTO and RPO count from the crash
    run.event("inject", f"kill-primary:{name}", node=name, signal="SIGKILL")
    try:
        ctx.lab.kill_database_node(name)
    except Exception:
        run.event("heal", f"kill-primary:{name}")
        raise
    run.observe(f"Database primary {name} killed with SIGKILL (postmaster and children).")


def check_writes_blocked(ctx: DrillContext, run: ScenarioRun, cause: str) -> None:
    """While the primary is down, approval and publish must be refused: 503 naming the cause.

    Called right after the kill, on an intent whose evidence was committed before the fault.
    If the failover already finished, the outage can no longer be observed: unknown."""
    intent = run.state.get("probe_intent")
    description = f"Publish/approval APIs block while the primary is down (503, cause '{cause}')"
    if intent is None:
        gate(run, "publish_approval_blocked", description, None, f"503 {cause}", None,
             "no intent with committed evidence was created before the fault")
        return
    client = ApiClient(ctx.lab.api_url, timeout=10)
    try:
        replies = {kind: client.call("POST", f"/intents/{intent}/{kind}", run.correlation_id, json=body)
                   for kind, body in (("approve", {"approver": "drill-cab"}), ("publish", {}))}
    finally:
        client.close()
    observed = {k: (r.error or str(r.status))[:160] for k, r in replies.items()}
    blocked = all(r.status == 503 and isinstance(r.body, dict) and r.body.get("cause") == cause
                  for r in replies.values())
    closed = run.recorder.history().first_event("reconnect") is not None
    if closed and not blocked:
        gate(run, "publish_approval_blocked", description, observed, f"503 {cause}", None,
             "the failover finished before the check could run")
        return
    gate(run, "publish_approval_blocked", description, observed, f"503 cause {cause}", blocked)
    run.observe(f"While the primary was down: approve -> {observed['approve']}; "
                f"publish -> {observed['publish']}.")


def wait_failover(ctx: DrillContext, run: ScenarioRun) -> None:
    """The lab's failover controller promotes the replica and repoints the client endpoint."""
    ok = ctx.lab.failover.wait_failed_over(FAILOVER_TIMEOUT)
    history = run.recorder.history()
    phases = {e.kind: round(e.t - history.first_event("inject").t, 3)
              for e in history.events if e.kind in ("detect", "promote", "reconnect")}
    gate(run, "failover_completed", "Replica promoted and clients repointed (automatic failover)",
         phases or ctx.lab.failover.error, f"within {FAILOVER_TIMEOUT:.0f} s", ok,
         "" if ok else f"controller state {ctx.lab.failover.state}: {ctx.lab.failover.error}")
    run.observe(f"Failover controller: {phases} (seconds after the kill).")


def writes_resume(ctx: DrillContext, run: ScenarioRun) -> None:
    """A write through the API succeeds again after the clients were repointed."""
    history = run.recorder.history()
    reconnect = history.first_event("reconnect") or history.first_event("inject")
    writer = run.state.get("writer")
    if writer is not None and not writer.is_alive():   # paused for exact counts: write here
        deadline = time.monotonic() + FAILOVER_TIMEOUT
        while writer.write_one().outcome is not Outcome.OK and time.monotonic() < deadline:
            time.sleep(0.05)
    done = wait_for_ok(run, "write", after=reconnect.t, timeout=FAILOVER_TIMEOUT)
    if writer is not None and writer.is_alive():   # let the workload run on the new primary a while
        wait_for_count(run, "write", RESUMED_WRITES, after=reconnect.t, timeout=FAILOVER_TIMEOUT)
    gate(run, "writes_resumed", "Writes resume through the API after the failover",
         None if done is None else round(done - history.first_event("inject").t, 3),
         f"within {FAILOVER_TIMEOUT:.0f} s", done is not None)
    refused = [o for o in run.recorder.ops()
               if o.kind in ("write", "approve", "publish") and o.t_invoke >= history.first_event("inject").t
               and o.t_complete <= reconnect.t and o.outcome is not Outcome.OK]
    if refused:
        causes = sorted({o.error.split(":")[0] for o in refused})
        run.observe(f"{len(refused)} API writes refused during the outage ({', '.join(causes)}).")


def verify_consistency(ctx: DrillContext, run: ScenarioRun) -> None:
    """The event store's hash chain verifies end to end on the promoted primary, and every
    acknowledged approval's event is there (ApprovalEventCount matches)."""
    client = ApiClient(ctx.lab.api_url, timeout=10)
    try:
        chain = client.call("GET", "/events/verify", run.correlation_id)
        approvals = client.call("GET", "/events/count", run.correlation_id, params={"type": "ApprovalRecorded"})
    finally:
        client.close()
    gate(run, "event_chain_intact", "Append-only event store: hash chain verifies after failover",
         chain.body if chain.outcome is Outcome.OK else chain.error, "ok",
         None if chain.outcome is not Outcome.OK else bool(chain.body.get("ok")))
    acked = sum(1 for o in run.recorder.ops("approve") if o.outcome is Outcome.OK)
    count = approvals.body.get("count") if approvals.outcome is Outcome.OK else None
    gate(run, "approval_event_count", "ApprovalEventCount after failover >= approvals acknowledged",
         count, f">= {acked}", None if count is None else count >= acked)


def rebuild_old_primary(ctx: DrillContext, run: ScenarioRun) -> None:
    old = run.state.get("failed_primary") or ctx.lab.failover.candidate
    ctx.lab.failover.rebuild(old, synchronous=ctx.replication == "sync")
    run.observe(f"Old primary {old} rebuilt as a replica of {ctx.lab.database_primary()}.")


def failback_when_caught_up(ctx: DrillContext, run: ScenarioRun, limit: float = LAG_LIMIT) -> None:
    """Fail back to the rebuilt node only once its TransactionLag <= limit (polled with a deadline)."""
    old = run.state.get("failed_primary")
    failover = ctx.lab.failover
    deadline, lag = time.monotonic() + CATCH_UP_TIMEOUT, None
    while time.monotonic() < deadline:
        lag = failover.transaction_lag(old)
        if lag <= limit:
            break
        time.sleep(0.2)
    try:
        measured = failover.failback(old, max_lag=limit, synchronous=ctx.replication == "sync")
        gate(run, "transaction_lag_seconds", f"TransactionLag <= {limit:g} s before failback",
             round(measured, 3), f"<= {limit:g} s", True)
        run.observe(f"Failback to {old} after TransactionLag {measured:.2f} s.")
    except FailbackRefused as refused:
        gate(run, "transaction_lag_seconds", f"TransactionLag <= {limit:g} s before failback",
             round(refused.lag, 3), f"<= {limit:g} s", False, str(refused))
        run.observe(str(refused))
        return
    writer = run.state.get("writer")
    after = time.monotonic()
    done = wait_for_ok(run, "write", after=after, timeout=FAILOVER_TIMEOUT) if writer and writer.is_alive() else None
    if writer and writer.is_alive():
        gate(run, "writes_after_failback", "Writes succeed after failback", done is not None,
             "true", done is not None)


# -- the determinism drill: replication link cut, then exactly N writes -----------------------

def wait_replica_caught_up(ctx: DrillContext, run: ScenarioRun) -> None:
    writer = pause_writer(run)
    run.state["writer_paused"] = writer
    replica = ctx.lab.failover.candidate
    deadline = time.monotonic() + CATCH_UP_TIMEOUT
    while time.monotonic() < deadline:
        if ctx.lab.replica_caught_up(replica):
            return
        time.sleep(0.05)
    raise RuntimeError(f"replica {replica} did not catch up within {CATCH_UP_TIMEOUT:.0f} s")


def cut_replication_link(ctx: DrillContext, run: ScenarioRun) -> None:
    replica = ctx.lab.failover.candidate
    run.event("inject", f"partition:replication:{replica}")
    track_fault(run, ctx.lab.partition_replication(replica), f"partition:replication:{replica}")
    run.observe(f"Replication link to {replica} cut (Toxiproxy partition).")


def write_exactly(ctx: DrillContext, run: ScenarioRun, n: int) -> None:
    writer = run.state["writer_paused"]
    writer.client.timeout = 5.0
    ops = writer.write(n)
    acked = sum(1 for o in ops if o.outcome is Outcome.OK)
    run.state["acked_after_cut"] = acked
    run.measurements["acknowledged_after_cut"] = acked
    run.observe(f"{n} writes attempted after the cut, {acked} acknowledged.")
