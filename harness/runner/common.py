"""Harness calls shared by every scenario: steady state, workload, and the final measurement."""

from __future__ import annotations

import time
from typing import Any

from .. import measure
from ..gates import build_gate, evaluate_gate
from ..model import GateResult, Outcome, Verdict
from ..workload import ApiClient, Prober, SequencedWriter
from .context import DrillContext, ScenarioRun

STEADY_PROBES = 5          # consecutive healthy probes required before any fault
STEADY_TIMEOUT = 30.0
PAGE = 1000                # GET /events answers at most 1000 rows
WARM_UP_WRITES = 25        # acknowledged writes before any fault, so loss has something to hit


class SteadyStateNotMet(RuntimeError):
    """The lab was not healthy before injection: the scenario stops without doing harm."""


def gate(run: ScenarioRun, gate_id: str, description: str, measured: Any, threshold: Any,
         ok: bool | None, detail: str = "") -> GateResult:
    """Record a behaviour gate: ok True -> pass, False -> fail, None -> unknown."""
    verdict = Verdict.UNKNOWN if ok is None else (Verdict.PASS if ok else Verdict.FAIL)
    return run.gate(GateResult(gate_id, description, measured, threshold, verdict, detail))


def track_fault(run: ScenarioRun, fault: Any, label: str) -> None:
    """Remember an injected fault: healed by heal_last_fault, or at the scenario's end, always."""
    run.state.setdefault("faults", []).append(fault)
    run.state.setdefault("fault_labels", {})[id(fault)] = label


def inject_fault(ctx: DrillContext, run: ScenarioRun, spec: Any, label: str) -> Any:
    from ..faults import FaultContext, build

    fault = build(spec)
    run.event("inject", label, fault=fault.describe())
    fault.inject(FaultContext(toxiproxy=ctx.lab.toxiproxy, lab=ctx.lab))
    track_fault(run, fault, label)
    return fault


def heal_last_fault(ctx: DrillContext, run: ScenarioRun) -> None:
    faults = run.state.get("faults", [])
    if not faults:
        raise RuntimeError("no fault to heal: the scenario injected none")
    fault = faults.pop()
    ctx.lab.heal_fault(fault)
    run.event("heal", run.state.get("fault_labels", {}).pop(id(fault), fault.describe()))


def steady_state(ctx: DrillContext, run: ScenarioRun) -> None:
    """1. heal whatever a killed run left (the lab's reset_faults); 2. the lab's own checks;
    3. STEADY_PROBES healthy answers in a row through the load balancer. Else abort."""
    ctx.lab.reset_faults()
    deadline = time.monotonic() + STEADY_TIMEOUT
    while True:   # the lab's own checks (a load balancer's first probes take a moment)
        checks = ctx.lab.steady_state_checks()
        failed = {name: detail for name, (ok, detail) in checks.items() if not ok}
        if not failed or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    client = ApiClient(ctx.lab.api_url, timeout=3)
    streak, last = 0, ""
    try:
        while streak < STEADY_PROBES and time.monotonic() < deadline and not failed:
            reply = client.health()
            streak, last = (streak + 1, "") if reply.outcome is Outcome.OK else (0, reply.error)
            time.sleep(0.05)
    finally:
        client.close()
    if streak < STEADY_PROBES and not failed:
        failed["ServiceHealth"] = last or "no healthy answer"
    ok = not failed
    gate(run, "steady_state", "Every probe green before injection (ServiceHealth = Healthy, "
         "replicas streaming, every API instance up)", "green" if ok else failed, "all green", ok)
    if not ok:
        run.aborted = True
        raise SteadyStateNotMet(f"steady state not met, nothing injected: {failed}")
    run.observe("Steady state: every probe green; nothing injected before this check passed.")


def start_workload(ctx: DrillContext, run: ScenarioRun, interval: float = 0.02) -> None:
    """A sequenced writer (intents; every 5th also evidence, approval and publish) and a prober."""
    writer_client, probe_client = ApiClient(ctx.lab.api_url), ApiClient(ctx.lab.api_url, timeout=2)
    prefix = f"{ctx.drill}-{run.correlation_id.split('/')[0][:8]}-{len(ctx.scenarios)}"
    writer = SequencedWriter(writer_client, run.recorder, prefix, run.correlation_id, interval,
                             approve_every=5)
    prober = Prober(probe_client, run.recorder, interval=0.1)
    run.state.update(writer=writer, prober=prober, clients=[writer_client, probe_client])
    # an intent with committed evidence, for the "approval/publish blocked" checks later
    created = writer_client.create_intent(f"{prefix}-probe", run.correlation_id)
    if created.outcome is Outcome.OK:
        writer_client.call("POST", f"/intents/{created.body['id']}/evidence", run.correlation_id,
                           json={"content": "evidence of the probe intent"})
        run.state["probe_intent"] = created.body["id"]
    prober.start()
    writer.start()
    wait_for_count(run, "write", WARM_UP_WRITES, after=0.0, timeout=60)


def start_probes(ctx: DrillContext, run: ScenarioRun) -> None:
    """Health probes only (no writes): the API's availability while the scenario's faults act."""
    client = ApiClient(ctx.lab.api_url, timeout=2)
    prober = Prober(client, run.recorder, interval=0.1)
    run.state.update(prober=prober, clients=[*run.state.get("clients", []), client])
    prober.start()


def pause_writer(run: ScenarioRun) -> SequencedWriter:
    """Stop the background writer (for exact write counts); the writer object stays usable."""
    writer: SequencedWriter = run.state["writer"]
    writer.stop()
    return writer


def wait_for_count(run: ScenarioRun, kind: str, count: int, after: float, timeout: float) -> bool:
    """Poll the history until `count` ok ops of `kind` were invoked at/after `after`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sum(1 for o in run.recorder.ops(kind) if o.outcome is Outcome.OK and o.t_invoke >= after) >= count:
            return True
        time.sleep(0.02)
    return False


def wait_for_ok(run: ScenarioRun, kind: str, after: float, timeout: float) -> float | None:
    """Completion time of the first ok op of `kind` invoked at/after `after`, polling the history."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = [o.t_complete for o in run.recorder.ops(kind)
                if o.outcome is Outcome.OK and o.t_invoke >= after]
        if done:
            return min(done)
        time.sleep(0.02)
    return None


def stop_workload(run: ScenarioRun) -> None:
    for name in ("writer", "prober"):
        loop = run.state.get(name)
        if loop is not None:
            loop.stop()
    for client in run.state.get("clients", []):
        client.close()


def finish(ctx: DrillContext, run: ScenarioRun) -> None:
    """Stop the clients, take the final read, and measure RTO, RPO, writes and availability.

    The threshold gates are judged here, from the history only (pure measure + gates)."""
    writer: SequencedWriter | None = run.state.get("writer")
    stop_workload(run)
    if writer is not None and not run.aborted:
        writer.final_read()
    history = run.recorder.history()
    targets = ctx.targets
    measured: dict[str, Any] = {}
    if history.first_event("inject") is not None and writer is not None:
        # the fault that the recovery is measured from: the scenario's main one if it named it
        rto = measure.rto(history, fault=run.state.get("rto_fault"))
        run.phases.update({k: round(v, 3) for k, v in rto.phases.items()})
        measured["rto_seconds"] = None if rto.seconds is None else round(rto.seconds, 3)
        try:
            accounting = measure.write_accounting(history)
            rpo = measure.rpo(history, fault=run.state.get("rto_fault"))
            measured.update(rpo_seconds=rpo.seconds if rpo.seconds is None else round(rpo.seconds, 3),
                            lost_writes=accounting.lost_count,
                            duplicated_writes=accounting.duplicated_count,
                            acknowledged_writes=accounting.acknowledged,
                            indeterminate_writes_recovered=len(accounting.recovered_indeterminate))
            run.lost_write_keys = [str(k) for k in accounting.lost]
        except measure.NoFinalRead as exc:
            run.observe(f"No final read: {exc}")
    avail = measure.availability(history)
    measured["availability"] = None if avail.overall is None else round(avail.overall, 5)
    measured["availability_buckets"] = [
        {"start": round(b.start, 3), "ok": b.ok, "total": b.total, "ratio": b.ratio} for b in avail.buckets]
    run.measurements.update(measured)
    if history.first_event("inject") is None or writer is None:
        return
    record_correlation_ids(ctx, run)
    checks = [build_gate("rto_seconds", target=targets["rto_seconds"]),
              build_gate("rpo_seconds", target=targets["rpo_seconds"]),
              build_gate("lost_writes", allowed=int(targets.get("lost_writes", 0))),
              build_gate("duplicated_writes")]
    if "availability" in targets:
        checks.append(build_gate("availability", target=targets["availability"]))
    context = {k: v for k, v in measured.items() if v is not None or k == "rto_seconds"}
    if "availability" in targets:
        context["availability"] = [b.ratio for b in avail.buckets]
    for check in checks:
        run.gate(evaluate_gate(check, context))


def read_events(client: ApiClient, request_cid: str, correlation_id: str | None = None,
                type_: str | None = None) -> list[dict] | None:
    """Every event in seq order (only one correlation id's, or one type's, when given); None when
    the event store cannot be read."""
    rows: list[dict] = []
    after = 0
    while True:
        params = {"after": after, "limit": PAGE}
        if correlation_id:
            params["correlation_id"] = correlation_id
        if type_:
            params["type"] = type_
        reply = client.call("GET", "/events", request_cid, params=params)
        if reply.outcome is not Outcome.OK:
            return None
        page = reply.body["events"]
        rows += page
        if len(page) < PAGE:
            return rows
        after = page[-1]["seq"]


def record_correlation_ids(ctx: DrillContext, run: ScenarioRun) -> None:
    """Spec rule 2: every fault and recovery event, with its correlation id, goes to the event
    store (through the API, after recovery) and must be found there and in the SIEM sink."""
    events = run.recorder.history().events
    client = ApiClient(ctx.lab.api_url, timeout=10)
    missing_store: list[str] = []
    try:
        for i, event in enumerate(events):
            reply = client.call("POST", "/events/operational", event.correlation_id, json={
                "event_id": f"{run.correlation_id}#{i}", "kind": event.kind, "name": event.name,
                "at": event.wall, "detail": {k: str(v) for k, v in event.detail.items()}})
            if reply.outcome is not Outcome.OK:
                missing_store.append(f"{event.kind}:{event.name} ({reply.error})")
        stored = client.call("GET", "/events", run.correlation_id,
                             params={"correlation_id": run.correlation_id, "limit": 1000})
    finally:
        client.close()
    kinds = {e.kind for e in events}
    if stored.outcome is Outcome.OK:
        found = {e["payload"].get("kind") for e in stored.body["events"] if e["type"] == "DrillEvent"}
        missing_store += sorted(kinds - found)
    else:
        missing_store.append(f"event store unreadable: {stored.error}")
    siem = ctx.lab.siem_records()
    missing_siem = None if siem is None else sorted(
        kinds - {r.get("kind") for r in siem if r.get("correlation_id") == run.correlation_id})
    ok = not missing_store and not missing_siem
    measured = {"events": len(events), "missing_in_event_store": missing_store,
                "missing_in_siem": "SIEM not readable by this provider" if siem is None else missing_siem}
    gate(run, "correlation_ids_recorded", "Every fault and recovery event logged with its correlation id "
         "to the event store and the SIEM (validation rule 2)", measured, "none missing",
         None if siem is None and not missing_store else ok)
