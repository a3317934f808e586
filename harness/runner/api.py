"""Harness calls of the API tier drills (matrix row "Control Plane API/Policy services")."""

from __future__ import annotations

import time

from ..model import Outcome
from ..workload import ApiClient
from .common import gate, wait_for_count
from .context import DrillContext, ScenarioRun

REDEPLOY_TIMEOUT = 60.0


def kill_instance(ctx: DrillContext, run: ScenarioRun, name: str) -> None:
    """SIGKILL one availability zone's API instance, with the workload running."""
    run.event("inject", f"kill-api:{name}", instance=name, signal="SIGKILL")
    ctx.lab.kill_api_instance(name)
    run.state.setdefault("killed_instances", []).append(name)
    run.observe(f"API instance {name} killed with SIGKILL.")


def routed_around(ctx: DrillContext, run: ScenarioRun) -> None:
    """No client request may fail later than the load balancer's probe window after the kill."""
    inject = run.recorder.history().first_event("inject")
    window = ctx.lab.probe_window
    after = inject.t + window
    # let the workload run well past the window, so the check has something to judge
    wait_for_count(run, "write", 20, after=after, timeout=60)
    wait_for_count(run, "probe", 10, after=after, timeout=60)
    ops = [o for o in run.recorder.ops() if o.kind in ("write", "probe", "approve", "publish", "evidence")
           and o.t_invoke >= inject.t]
    late = [o for o in ops if o.outcome is not Outcome.OK and o.t_invoke > after]
    early = [o for o in ops if o.outcome is not Outcome.OK and o.t_invoke <= after]
    gate(run, "no_failed_requests_beyond_probe_interval",
         "LB health probes route around the lost instance: no failed client request beyond the probe "
         "interval", {"failed_after_window": len(late), "failed_within_window": len(early),
                      "requests_after_kill": len(ops)}, f"0 failed later than {window:.1f} s after the kill",
         not late, "; ".join(sorted({o.error for o in late}))[:300])
    run.observe(f"After the kill: {len(ops)} client requests, {len(early)} failed within the "
                f"{window:.1f} s probe window, {len(late)} later.")


def all_instances_down(ctx: DrillContext, run: ScenarioRun) -> None:
    run.state["rto_fault"] = "kill-api:all"
    run.event("inject", "kill-api:all", instances=",".join(ctx.lab.api_instances()))
    for name in ctx.lab.api_instances():
        if name not in run.state.get("killed_instances", []):
            ctx.lab.kill_api_instance(name)
    run.observe("Every API instance killed: the stateless tier is out.")


def blocked_with_clear_error(ctx: DrillContext, run: ScenarioRun) -> None:
    """New intents and approvals are refused with an explicit, machine-readable error."""
    client = ApiClient(ctx.lab.api_url, timeout=10)
    try:
        intent = client.create_intent(f"blocked-{run.correlation_id}", run.correlation_id)
        approve = client.call("POST", f"/intents/{run.state.get('probe_intent', 0)}/approve",
                              run.correlation_id, json={"approver": "drill-cab"})
    finally:
        client.close()
    replies = {"intent": intent, "approve": approve}
    clear = all(r.status == 503 and isinstance(r.body, dict) and r.body.get("error") and r.body.get("cause")
                for r in replies.values())
    observed = {k: r.error or str(r.status) for k, r in replies.items()}
    gate(run, "intents_and_approvals_blocked", "New Deployment Intents and approvals blocked with a clear "
         "error while every API instance is down", observed, "503 with error and cause", clear)
    run.observe(f"With every instance down: intent -> {observed['intent']}; approve -> {observed['approve']}.")


def redeploy(ctx: DrillContext, run: ScenarioRun) -> None:
    for name in ctx.lab.api_instances():
        ctx.lab.redeploy_api_instance(name)
    run.event("heal", "redeploy-api")
    run.observe("API instances redeployed.")


def service_health_before_publish(ctx: DrillContext, run: ScenarioRun) -> None:
    """After the redeploy, publish only once ServiceHealth = Healthy; then it must succeed."""
    client = ApiClient(ctx.lab.api_url, timeout=10)
    deadline, health = time.monotonic() + REDEPLOY_TIMEOUT, None
    try:
        while time.monotonic() < deadline:
            health = client.health()
            if health.outcome is Outcome.OK:
                break
            time.sleep(0.1)
        intent = run.state.get("probe_intent")
        client.call("POST", f"/intents/{intent}/approve", run.correlation_id, json={"approver": "drill-cab"})
        publish = client.call("POST", f"/intents/{intent}/publish", run.correlation_id, json={})
    finally:
        client.close()
    healthy = health is not None and health.outcome is Outcome.OK
    gate(run, "service_health_before_publish", "Validation rule: ServiceHealth = Healthy required before "
         "a new publish", {"ServiceHealth": "Healthy" if healthy else (health.error if health else None),
                           "publish": publish.error or publish.status},
         "Healthy, then publish accepted", healthy and publish.outcome is Outcome.OK)
