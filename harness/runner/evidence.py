"""Harness calls of the evidence store drills (matrix row "Evidence store / Object storage outage")."""

from __future__ import annotations

from typing import Any

from ..model import FaultSpec, Outcome
from ..workload import ApiClient
from .common import gate, inject_fault
from .context import DrillContext, ScenarioRun

PRIMARY_LINK, ALTERNATE_LINK, GATEWAY = "s3", "s3-replica", "s3"


def _client(ctx: DrillContext) -> ApiClient:
    return ApiClient(ctx.lab.api_url, timeout=30)


def impact_count(ctx: DrillContext, run: ScenarioRun) -> int | None:
    client = _client(ctx)
    try:
        reply = client.call("GET", "/events/count", run.correlation_id, params={"type": "ImpactRecorded"})
    finally:
        client.close()
    return reply.body.get("count") if reply.outcome is Outcome.OK else None


def cut_alternate_region(ctx: DrillContext, run: ScenarioRun) -> None:
    run.state["impacts_before"] = impact_count(ctx, run)
    inject_fault(ctx, run, FaultSpec("proxy_down", ALTERNATE_LINK), "cut:alternate-region")
    run.observe("Link to the alternate region's bucket cut.")


def commit_evidence(ctx: DrillContext, run: ScenarioRun, with_copy: bool) -> None:
    """An approved intent whose evidence pack has (or has not) a validated alternate-region copy."""
    key = f"{run.correlation_id}-{'copy' if with_copy else 'nocopy'}"
    client = _client(ctx)
    try:
        intent = client.create_intent(key, run.correlation_id)
        evidence = client.call("POST", f"/intents/{intent.body['id']}/evidence", run.correlation_id,
                               json={"content": f"evidence pack {key}"}) if intent.outcome is Outcome.OK else intent
        client.call("POST", f"/intents/{intent.body['id']}/approve", run.correlation_id,
                    json={"approver": "drill-cab"}) if evidence.outcome is Outcome.OK else None
    finally:
        client.close()
    copy = evidence.body.get("ValidatedCopyExists") if isinstance(evidence.body, dict) else None
    ok = evidence.outcome is Outcome.OK and copy is with_copy
    gate(run, f"validated_copy_{'present' if with_copy else 'absent'}",
         f"Evidence pack committed {'with' if with_copy else 'without'} a validated alternate-region copy",
         {"ValidatedCopyExists": copy, "evidence": evidence.error or evidence.status}, str(with_copy), ok)
    if ok:
        run.state["pack_with_copy" if with_copy else "pack_without_copy"] = intent.body["id"]


def cut_evidence_store(ctx: DrillContext, run: ScenarioRun) -> None:
    run.state["rto_fault"] = "cut:evidence-store"
    run.state["store_fault"] = "unreachable"
    inject_fault(ctx, run, FaultSpec("proxy_down", PRIMARY_LINK), "cut:evidence-store")
    run.observe("Primary evidence store unreachable (its link cut).")


def store_answers(ctx: DrillContext, run: ScenarioRun, status: int) -> None:
    run.state["store_fault"] = f"answering {status}"
    inject_fault(ctx, run, FaultSpec("http_error", GATEWAY, {"status": status}), f"http-{status}:evidence-store")
    run.observe(f"Primary evidence store answering HTTP {status} to every request.")


def _publish(ctx: DrillContext, run: ScenarioRun, intent: Any):
    client = _client(ctx)
    try:
        return client.call("POST", f"/intents/{intent}/publish", run.correlation_id, json={})
    finally:
        client.close()


def publish_blocked(ctx: DrillContext, run: ScenarioRun) -> None:
    """Publishing a pack without a validated copy is refused: explicit error, Impact = publish blocked."""
    condition = run.state.get("store_fault", "down")
    reply = _publish(ctx, run, run.state.get("pack_without_copy"))
    body = reply.body if isinstance(reply.body, dict) else {}
    blocked = (reply.status == 503 and body.get("cause") == "evidence_store"
               and body.get("Impact") == "publish blocked" and bool(body.get("error")))
    run.state["attempts"] = body.get("attempts") or []
    gate(run, f"publish_blocked_store_{condition.replace(' ', '_')}",
         f"Publish blocked with an explicit error while the evidence store is {condition}",
         {"status": reply.status, "error": reply.error, "Impact": body.get("Impact"), "gate": body.get("gate")},
         "503, cause evidence_store, Impact = publish blocked", blocked)
    run.observe(f"Publish while the store is {condition}: {reply.error or reply.status}.")


def backoff_exponential(ctx: DrillContext, run: ScenarioRun) -> None:
    """The store calls behind the refusal were retried with waits doubling each time."""
    condition = run.state.get("store_fault", "down").replace(" ", "_")
    starts = [a.get("at_ms") for a in run.state.get("attempts", []) if isinstance(a, dict)]
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    ratios = [round(b / a, 2) for a, b in zip(gaps, gaps[1:]) if a > 0]
    ok = len(gaps) >= 2 and all(1.5 <= r <= 3.0 for r in ratios) if gaps else None
    gate(run, f"retry_backoff_exponential_{condition}", "Retry policy with exponential backoff (each wait "
         "about twice the previous)", {"attempts": len(starts), "gaps_ms": gaps, "ratios": ratios},
         "ratios 1.5 to 3.0", ok, "" if gaps else "the refusal listed no attempts")


def impact_recorded(ctx: DrillContext, run: ScenarioRun) -> None:
    before, after = run.state.get("impacts_before"), impact_count(ctx, run)
    ok = None if before is None or after is None else after > before
    gate(run, "impact_event_recorded", "Event Impact = publish blocked emitted to the event store",
         {"ImpactRecorded before": before, "after": after}, "more than before", ok)


def publish_fails_over(ctx: DrillContext, run: ScenarioRun) -> None:
    """A pack whose copy in the alternate region is validated (hash checked) is published from it."""
    reply = _publish(ctx, run, run.state.get("pack_with_copy"))
    source = reply.body.get("evidence_source") if isinstance(reply.body, dict) else None
    gate(run, "failover_with_validated_copy", "Failover to the alternate region bucket when "
         "ValidatedCopyExists (hash of the copy checked)", {"publish": reply.error or reply.status,
                                                              "evidence_source": source},
         "published from alternate-region", reply.outcome is Outcome.OK and source == "alternate-region")


def publishing_resumes(ctx: DrillContext, run: ScenarioRun) -> None:
    reply = _publish(ctx, run, run.state.get("pack_without_copy"))
    source = reply.body.get("evidence_source") if isinstance(reply.body, dict) else None
    gate(run, "publishing_resumed", "Publishing resumes from the primary store once it is healthy",
         {"publish": reply.error or reply.status, "evidence_source": source}, "published from primary",
         reply.outcome is Outcome.OK and source == "primary")
