"""Harness calls of the event store drill (matrix row 7, "Event store write blocked").

The fault is real: an EXCLUSIVE lock on the chain head held on the database primary, so every
audit-event append waits. The Control Plane must refuse (never acknowledge a change without its
event) and refuse publishes; the lab's failover controller, seeing the store write-blocked,
fences the primary and promotes the synchronous replica (the redundant cluster). Then the chain
must be whole: nothing recorded before is lost or altered, nothing duplicated, every link intact.
"""

from __future__ import annotations

import dataclasses
import time

from ..gates import build_gate, evaluate_gate
from ..lab.failover import WRITE_BLOCKED
from ..measure.eventstore import chain_continuity, write_success
from ..model import FaultSpec, Outcome
from ..workload import ApiClient
from . import database
from .common import gate, heal_last_fault, inject_fault, read_events
from .context import DrillContext, ScenarioRun

TIMEOUT = 60.0
RETRY_INTERVAL = 0.25
CAUSE = "event_store"


def _client(ctx: DrillContext) -> ApiClient:
    return ApiClient(ctx.lab.api_url, timeout=10)


def block_writes(ctx: DrillContext, run: ScenarioRun) -> None:
    """Approve the probe intent (so that only the event store can stop its publish), record the
    chain as it is, then block every append on the primary. RTO and RPO count from the block."""
    client = _client(ctx)
    try:
        intent = run.state.get("probe_intent")
        if intent is not None:
            approved = client.call("POST", f"/intents/{intent}/approve", run.correlation_id,
                                   json={"approver": "drill-cab"})
            if approved.outcome is Outcome.OK:
                run.state["approved_intent"] = intent
        run.state["chain_before"] = read_events(client, run.correlation_id)
    finally:
        client.close()
    name = ctx.lab.database_primary()
    label = f"event-store-block:{name}"
    run.state.update(failed_primary=name, rto_fault=label)
    inject_fault(ctx, run, FaultSpec("event_store_block", "database-primary"), label)
    before = run.state["chain_before"]
    run.observe(f"Event store writes blocked on the database primary {name} (EXCLUSIVE lock on the chain "
                f"head); {len(before) if before is not None else 'unknown'} events recorded before.")


def _publish(client: ApiClient, run: ScenarioRun, intent) -> tuple[float, float, object]:
    started = time.monotonic()
    reply = client.call("POST", f"/intents/{intent}/publish", run.correlation_id, json={})
    return started, time.monotonic(), reply


def publish_refused_until_healthy(ctx: DrillContext, run: ScenarioRun) -> None:
    """A publish while the store is blocked answers 503 naming the event store with an explicit
    error; it is accepted again only once the store is healthy (the blocked primary fenced).
    If the failover finished before the first check, the refusal was not observed: unknown."""
    description = "Publish refused while the event store is write-blocked (503, cause event_store)"
    intent = run.state.get("approved_intent")
    if intent is None:
        gate(run, "publish_refused_event_store_blocked", description, None, f"503 {CAUSE}", None,
             "no approved intent could be prepared before the fault")
        return
    client = _client(ctx)
    try:
        _, first_done, first = _publish(client, run, intent)
        accepted = first_done if first.outcome is Outcome.OK else None
        deadline = time.monotonic() + TIMEOUT
        while accepted is None and time.monotonic() < deadline:
            time.sleep(RETRY_INTERVAL)
            _, done, reply = _publish(client, run, intent)
            accepted = done if reply.outcome is Outcome.OK else None
    finally:
        client.close()
    body = first.body if isinstance(first.body, dict) else {}
    refused = first.status == 503 and body.get("cause") == CAUSE and bool(body.get("error"))
    measured = {"status": first.status, "cause": body.get("cause"), "gate": body.get("gate"),
                "error": (first.error or "")[:200]}
    history = run.recorder.history()
    t0 = history.first_event("inject").t
    healthy = history.first_event("fence") or history.first_event("reconnect")
    if not refused and healthy is not None and healthy.t <= first_done:
        gate(run, "publish_refused_event_store_blocked", description, measured, f"503 cause {CAUSE}", None,
             "the failover finished before the check could run")
    else:
        gate(run, "publish_refused_event_store_blocked", description, measured, f"503 cause {CAUSE}", refused)
    ok = accepted is not None and healthy is not None and accepted >= healthy.t
    gate(run, "publish_accepted_only_when_event_store_healthy",
         "Publish accepted again only once the event store is healthy (after the blocked primary was fenced)",
         {"accepted_after_s": None if accepted is None else round(accepted - t0, 3),
          "store_healthy_after_s": None if healthy is None else round(healthy.t - t0, 3)},
         "accepted, not before the store is healthy", ok)
    run.observe(f"Publish while the event store was blocked: {first.error or first.status}; accepted again "
                f"{'never' if accepted is None else f'{accepted - t0:.2f} s after the block'}.")


def wait_failover(ctx: DrillContext, run: ScenarioRun) -> None:
    """The controller detects the blocked store, fences the primary, promotes the synchronous
    replica, repoints the clients; then the fault is healed (a no-op on the fenced node)."""
    try:
        database.wait_failover(ctx, run)
        history = run.recorder.history()
        detect, fence = history.first_event("detect"), history.first_event("fence")
        cause = detect.detail.get("cause") if detect else None
        gate(run, "failover_cause_event_store_write_blocked",
             "Failover to the redundant cluster triggered by the write-blocked event store, the old "
             "primary fenced before the promote",
             {"detect_cause": cause, "fenced": fence.name if fence else None},
             f"cause {WRITE_BLOCKED}, old primary fenced",
             None if detect is None else cause == WRITE_BLOCKED and fence is not None)
    finally:
        if run.state.get("faults"):
            heal_last_fault(ctx, run)


def verify_audit_chain(ctx: DrillContext, run: ScenarioRun) -> None:
    """Nothing recorded before the fault lost or altered, nothing duplicated, the chain linked
    end to end and across the failover boundary (and GET /events/verify ok)."""
    client = _client(ctx)
    try:
        verify = client.call("GET", "/events/verify", run.correlation_id)
        after = read_events(client, run.correlation_id)
    finally:
        client.close()
    before = run.state.get("chain_before")
    if before is None or after is None:
        for gate_id in ("audit_events_not_lost", "audit_events_not_duplicated", "event_chain_linked_across_failover"):
            gate(run, gate_id, "Audit chain across the failover", None, "readable", None,
                 "the event store could not be read " + ("before the fault" if before is None else "after it"))
        return
    c = chain_continuity(before, after)
    run.measurements.update(audit_events_lost=len(c.lost) + len(c.altered), audit_events_duplicated=len(c.duplicated))
    gate(run, "audit_events_not_lost", "Every audit event recorded before the fault is still there, same hash",
         {"recorded_before": c.before, "lost": list(c.lost[:20]), "altered": list(c.altered[:20])},
         "0 lost, 0 altered", not c.lost and not c.altered)
    gate(run, "audit_events_not_duplicated", "No audit event (seq or hash) appears twice",
         {"events": c.after, "duplicated": list(c.duplicated[:20])}, "none", not c.duplicated)
    verified = verify.body if verify.outcome is Outcome.OK else verify.error
    ok = (None if verify.outcome is not Outcome.OK or c.first_after is None
          else bool(verify.body.get("ok")) and not c.broken_links and bool(c.boundary_linked))
    gate(run, "event_chain_linked_across_failover",
         "Hash chain verifies end to end and links across the failover boundary",
         {"verify": verified, "broken_links": list(c.broken_links[:20]), "last_before": c.last_before,
          "first_after": c.first_after, "boundary_linked": c.boundary_linked},
         "verify ok, every link intact", ok, "" if c.first_after is not None else "no event after the fault")
    run.observe(f"Audit chain after the failover: {c.after} events, {len(c.lost)} lost, {len(c.altered)} altered, "
                f"{len(c.duplicated)} duplicated; seq {c.last_before} -> {c.first_after} linked: {c.boundary_linked}.")


def write_success_gate(ctx: DrillContext, run: ScenarioRun, target: float) -> None:
    """EventStoreWriteSuccess per clock hour, from the workload's acknowledged state changes and
    the events carrying this scenario's correlation id (pure measure and gate)."""
    # The history first: every change it holds as acknowledged was committed, with its event,
    # before the events are read (the workload keeps writing meanwhile).
    history = run.recorder.history()
    client = _client(ctx)
    try:
        rows = read_events(client, run.correlation_id, correlation_id=run.correlation_id)
    finally:
        client.close()
    run.measurements["event_store_counters"] = instance_counters(ctx)
    if rows is None:
        gate(run, "event_store_write_success", f"EventStoreWriteSuccess >= {target:.1%} per hour", None,
             f">= {target}", None, "the event store could not be read")
        return
    ws = write_success(history.ops, rows)
    run.measurements.update(EventStoreWriteSuccess=None if ws.worst is None else round(ws.worst, 5),
                            event_store_acknowledged_changes=ws.needed, event_store_persisted_events=ws.persisted)
    result = evaluate_gate(build_gate("event_store_write_success", target=target),
                           {"EventStoreWriteSuccess": list(ws.hours)})
    extra = "; ".join(f"{what}: {', '.join(items[:5])}" for what, items in
                      (("missing", ws.missing), ("duplicated", ws.duplicated)) if items)
    run.gate(dataclasses.replace(result, detail=f"{result.detail}; {ws.persisted}/{ws.needed} persisted"
                                                + (f"; {extra}" if extra else "")))


def instance_counters(ctx: DrillContext) -> dict:
    """Each API instance's GET /metrics/event-store (informational; {} where not reachable)."""
    try:
        instances = ctx.lab.endpoints().get("instances") or {}
    except Exception:  # noqa: BLE001 - informational only
        return {}
    counters = {}
    for name, url in instances.items():
        client = ApiClient(url, timeout=2)
        try:
            reply = client.call("GET", "/metrics/event-store")
            counters[name] = reply.body if reply.outcome is Outcome.OK else reply.error
        finally:
            client.close()
    return counters
