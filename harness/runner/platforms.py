"""Harness calls of the connector drills (matrix rows 4-6: Intune Graph degraded, Jamf API outage,
SCCM site server down). They act through the Control Plane's API (intents, promotions, its clock,
the runbook requeue), the fault registry (platform stand-ins and their links) and the lab's own
parts (the stand-ins' request logs, the queues); the rules are checkers in harness.gates.connectors."""

from __future__ import annotations

import datetime as dt
import time
from concurrent.futures import ThreadPoolExecutor

from ..gates.connectors import (
    DETECTION_SECONDS,
    AppliedExactlyOnce,
    AssignmentFails,
    CabManualPause,
    CabNotified,
    CabPauseHoldsUntilLifted,
    ConnectorBackoff,
    ConnectorsHealthy,
    DeadLettered,
    ManualImportOffered,
    NoCriticalBacklog,
    OtherPlatformsContinue,
    PromotionRefused,
    PromotionsResumed,
    PublishAccepted,
    QueueDepthAccurate,
    RequeueConfirmed,
    ResumeRequiresLowThrottleCount,
    SiteOutageRecorded,
    ThrottleCountAccurate,
)
from ..gates.waiver import waivable
from ..lab.capabilities import Queues
from ..lab.connectors import LAB_CONNECTOR_BACKOFF
from ..model import EventKind, FaultSpec, OpDetail, OpKind
from ..plan import LAB_PROVIDERS
from ..wait import poll
from ..workload import ControlPlane
from .clock import advance_clock
from .common import PLATFORMS, applied_counts, platform_log, read_events, start_probes
from .scenario import Scenario

DEADLINE = 30.0  # generous: every wait below polls a real condition until it holds
FIRST_RING, NEXT_RING = "ring1", "ring2"


def keys_of(scn: Scenario, platform: str) -> list[str]:
    return [i["key"] for i in scn.published.get(platform, [])]


def view(scn: Scenario, platform: str):
    """The Control Plane's view of one platform, recorded (value: the view)."""
    return scn.call(
        OpKind.PLATFORM_VIEW, ControlPlane.platform(platform), detail={"platform": platform}, read=lambda body: body
    )


def events_about(scn: Scenario, type_: str, platform: str, look: bool = False) -> list[dict]:
    """Read every event of a type from the store (recorded) and keep those about the platform
    appended since its fault. look: first read the Control Plane's view of the platform, as an
    operator would (the Control Plane applies its time rules when its state is read)."""
    if look:
        view(scn, platform)
    op = read_events(scn, type_=type_)
    since = _fault_wall(scn, platform)
    return (
        [
            e
            for e in (op.value or [])
            if (e.get("payload") or {}).get("platform") == platform
            and (since is None or dt.datetime.fromisoformat(e["at"]).timestamp() >= since - 0.5)
        ]
        if op.ok
        else []
    )


def _fault_wall(scn: Scenario, platform: str) -> float | None:
    injects = [e.wall for e in scn.recorder.history().events_of(EventKind.INJECT) if e.name.endswith(f":{platform}")]
    return min(injects) if injects else None


def _known_degraded(scn: Scenario, platform: str) -> None:
    """Wait until the Control Plane recorded the platform degraded (PlatformDegraded in its store)."""
    poll(lambda: events_about(scn, "PlatformDegraded", platform, look=True), timeout=DEADLINE, interval=0.3)


def _degraded_or_allowance(scn: Scenario, platform: str) -> float:
    """Wait until the Control Plane recorded the platform degraded, or the plan's detection
    allowance (targets.detection_seconds) after the fault's injection has passed: a promotion is
    judged from either (the checker is built with the same allowance, and with the spec's floor
    too when the plan waives it)."""
    allowance = float(scn.drill.targets.get("detection_seconds", DETECTION_SECONDS))
    injected = _fault_wall(scn, platform)
    left = DEADLINE if injected is None else max(0.0, injected + allowance + 1.0 - time.time())
    poll(lambda: events_about(scn, "PlatformDegraded", platform, look=True), timeout=left, interval=0.3)
    return allowance


# ---- given --------------------------------------------------------------------------------


def connectors_healthy(scn: Scenario) -> None:
    """Every platform Healthy with promotions running, as the Control Plane has it from its
    connectors; then the API's health probes start (availability while the platforms fail)."""

    def platforms():
        return scn.call(
            OpKind.PLATFORMS_VIEW,
            ControlPlane.platforms(),
            read=lambda body: {v["platform"]: v for v in body.get("platforms", [])},
        )

    polled = poll(
        platforms,
        until=lambda op: (
            op.ok and len(op.value) == len(PLATFORMS) and not any(v["PromotionsPaused"] for v in op.value.values())
        ),
        timeout=DEADLINE,
        interval=0.2,
    )
    scn.expect(ConnectorsHealthy(PLATFORMS))
    if not polled.ok:
        scn.aborted = True
        raise RuntimeError(f"connectors not healthy, nothing injected: {polled.value.value or polled.value.error}")
    queues_drained(scn)
    start_probes(scn)  # platform faults must leave the API itself available


def queues_drained(scn: Scenario) -> None:
    """Wait until no intent is left in any platform's queue (visible or in flight: a message an
    earlier scenario of a shared lab left, being retried, would take part of this scenario's
    degraded answers). Read from SQS itself; one still there after the deadline is said."""
    unreadable: list[str] = []
    first: list[dict[str, int]] = []

    def depths() -> dict[str, int] | None:
        try:
            seen = {platform: scn.lab.capability(Queues).queue_depth(platform) for platform in PLATFORMS}
        except Exception as exc:  # noqa: BLE001 - no queue to read (a target without `queues`): not waited on
            unreadable.append(f"{type(exc).__name__}: {exc}")
            return None
        if not first:
            first.append(seen)
        return seen

    polled = poll(depths, until=lambda d: d is None or not any(d.values()), timeout=DEADLINE, interval=0.5)
    if unreadable:
        scn.observe(f"The platforms' queues could not be read before the faults: {unreadable[-1]}")
    elif polled.value and any(polled.value.values()):
        scn.observe(f"Intents were still queued from before when the platform faults began: {polled.value}")
    elif any(first[0].values()):
        queued = ", ".join(f"{p} {n}" for p, n in first[0].items() if n)
        scn.observe(f"Intents queued from before ({queued}) were done {polled.waited:.1f} s later, before any fault.")


# ---- faults -------------------------------------------------------------------------------


def degrade(scn: Scenario, platform: str, mode: str, retry_after: float = 1.0, requests_: int = 0) -> None:
    label = f"{mode}:{platform}"
    scn.recover_on(label, f"apply:{platform}")
    scn.inject(
        FaultSpec("platform_degrade", platform, {"mode": mode, "retry_after": retry_after, "requests": requests_}),
        label,
    )
    what = f"the next {requests_} requests" if requests_ else "every request"
    answer = {"throttle": f"429 (Retry-After {retry_after:g} s)", "error": "503"}.get(mode, mode)
    scn.observe(f"{platform} answers {answer} to {what}.")


def link_latency(scn: Scenario, platform: str, ms: int) -> None:
    scn.inject(FaultSpec("latency", f"platform-{platform}", {"latency_ms": ms}), f"latency:{platform}")
    scn.observe(f"{ms} ms of latency on the link to {platform} (Toxiproxy).")


def server_killed(scn: Scenario, platform: str) -> None:
    label = f"down:{platform}"
    scn.recover_on(label, f"apply:{platform}")
    scn.inject(FaultSpec("platform_down", platform), label)
    scn.observe(f"The {platform} server was killed (SIGKILL).")


def heal_platform(scn: Scenario, platform: str) -> None:
    """Heal every active fault of the scenario on this platform, newest first."""
    for entry in reversed(scn.journal.active()):
        if entry.label.endswith(f":{platform}"):
            scn.heal(entry.label)
    scn.observe(f"{platform} healed.")


def pass_time(scn: Scenario, seconds: float) -> None:
    """Let `seconds` pass on the Control Plane's clock with the scenario's faults held: move the clock
    where the target grants clock control; else, when the plan says hold_real_time: true, hold the
    faults that long in real time; else record that the time did not pass, so that the time rules
    (the 15-minute CAB pause, the 24-hour manual import) are judged unknown, never pass."""
    if "clock" in scn.lab.capabilities():
        advance_clock(scn, seconds)
        return
    amount = f"{seconds / 60:g} min" if seconds < 2 * 3600 else f"{seconds / 3600:g} h"
    if not scn.drill.hold_real_time:
        scn.recorder.event(EventKind.CLOCK_MISSING, f"not-passed:{seconds:g}s", scn.correlation_id, seconds=seconds)
        scn.observe(
            f"{amount} did not pass: the target grants no clock control and the plan does not hold the "
            f"fault in real time (hold_real_time: true); the time rules are not judged."
        )
        return
    scn.recorder.event(EventKind.TIME_HELD, f"real-time:{seconds:g}s", scn.correlation_id, seconds=seconds)
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        time.sleep(min(left, 5.0))  # the fault held in real time: the time itself is the point
    scn.observe(f"Faults held {amount} in real time (no clock control; hold_real_time: true).")


# ---- intents ------------------------------------------------------------------------------


def _approved_intent(scn: Scenario, platform: str, n: int) -> tuple[int, str] | None:
    key = f"{scn.correlation_id}-{platform}-{n}"
    created = scn.call(
        OpKind.CREATE_INTENT,
        ControlPlane.create_intent(key, FIRST_RING, platform),
        value=key,
        read=lambda body: body["id"],
        timeout=30,
    )
    if not created.ok:
        return None
    detail: OpDetail = {"intent_id": created.value, "platform": platform, "ring": FIRST_RING}
    scn.call(
        OpKind.EVIDENCE, ControlPlane.evidence(created.value, f"evidence {key}"), value=key, detail=detail, timeout=30
    )
    scn.call(OpKind.APPROVE, ControlPlane.approve(created.value), value=key, detail=detail, timeout=30)
    return created.value, key


def publish(scn: Scenario, platforms: list[str]) -> None:
    """Approved intents for the platforms (repeats allowed), then published all at once."""
    ready = [(p, _approved_intent(scn, p, len(scn.published.get(p, [])) + i)) for i, p in enumerate(platforms)]

    def go(item):
        platform, intent = item
        if intent is None:
            return
        scn.call(
            OpKind.PUBLISH,
            ControlPlane.publish(intent[0]),
            value=intent[1],
            timeout=30,
            detail={"intent_id": intent[0], "platform": platform, "ring": FIRST_RING},
        )
        scn.published.setdefault(platform, []).append({"intent_id": intent[0], "key": intent[1]})

    with ThreadPoolExecutor(max_workers=len(ready)) as pool:
        list(pool.map(go, ready))
    scn.expect(PublishAccepted([i["key"] for items in scn.published.values() for i in items]))
    scn.observe(f"Published {len(platforms)} intents ({', '.join(platforms)}).")


def promote(scn: Scenario, platform: str) -> None:
    """Promote the scenario's first published intent of the platform to the next ring."""
    intents = scn.published.get(platform) or [{"intent_id": 0, "key": ""}]
    first = intents[0]
    scn.call(
        OpKind.PROMOTE,
        ControlPlane.promote(first["intent_id"], NEXT_RING),
        value=first["key"],
        timeout=30,
        detail={"platform": platform, "to_ring": NEXT_RING, "intent_id": first["intent_id"]},
    )


# ---- then ---------------------------------------------------------------------------------


def assignments_fail_only_for(scn: Scenario, platform: str) -> None:
    """Wait until the other platforms applied theirs and the Control Plane recorded this platform
    degraded; then mark the moment (the checkers judge what the platforms applied before it)."""
    others = {p: keys_of(scn, p) for p in scn.published if p != platform}
    poll(
        lambda: [applied_counts(scn, p) for p in others],
        until=lambda counts: all(c.get(k, 0) >= 1 for c, ks in zip(counts, others.values(), strict=True) for k in ks),
        timeout=DEADLINE,
    )
    _known_degraded(scn, platform)
    mark = f"assignments:{platform}"
    scn.checkpoint(mark)
    scn.expect(OtherPlatformsContinue(platform, others, mark))
    scn.expect(AssignmentFails(platform, keys_of(scn, platform), mark))


def promotion_refused(scn: Scenario, platform: str, gate_name: str) -> None:
    """Once the Control Plane recorded the platform degraded (or the plan's detection allowance
    passed without it), a promotion is attempted."""
    _degraded_or_allowance(scn, platform)
    promote(scn, platform)
    scn.expect(
        waivable(
            scn.drill,
            "detection_seconds",
            lambda allowance: PromotionRefused(
                platform, gate_name, detection_s=DETECTION_SECONDS if allowance is None else allowance
            ),
        )
    )


def promotions_paused(scn: Scenario, platform: str) -> None:
    """PromotionsPaused, shown the only way that counts: once the Control Plane recorded the
    platform degraded (or the plan's detection allowance passed without it), a promotion attempt
    refused by that gate."""
    _degraded_or_allowance(scn, platform)
    promote(scn, platform)
    scn.expect(
        waivable(
            scn.drill,
            "detection_seconds",
            lambda allowance: PromotionRefused(
                platform,
                "PromotionsPaused",
                gate_id=f"promotions_paused_{platform}",
                detection_s=DETECTION_SECONDS if allowance is None else allowance,
            ),
        )
    )


def backoff_policy(scn: Scenario) -> dict | None:
    """The connectors' configured retry policy {base_seconds, factor, max_attempts}: the plan's
    targets.connector_backoff, else, on a lab, what the lab starts its connectors with; None for
    an external target whose plan does not state it (its checkers are then unknown)."""
    stated = scn.drill.targets.get("connector_backoff")
    if isinstance(stated, dict):
        return stated
    return dict(LAB_CONNECTOR_BACKOFF) if scn.lab.provider in LAB_PROVIDERS else None


def backoff_doubles(scn: Scenario, platform: str) -> None:
    """Wait until one intent reached the platform its configured maximum attempts (its request
    log), then judge the waits against the configured base interval."""
    keys = set(keys_of(scn, platform))
    policy = backoff_policy(scn)

    def most_attempts() -> int:
        counts: dict[str, int] = {}
        for r in platform_log(scn.lab, platform) or ():
            if r.get("idempotency_key") in keys and r.get("path", "/apply") == "/apply":
                counts[r["idempotency_key"]] = counts.get(r["idempotency_key"], 0) + 1
        return max(counts.values(), default=0)

    if policy is not None:
        poll(most_attempts, until=lambda n: n >= policy["max_attempts"], timeout=DEADLINE, interval=0.2)
    scn.expect(
        ConnectorBackoff(
            platform,
            sorted(keys),
            None if policy is None else policy["base_seconds"],
            None if policy is None else policy["max_attempts"],
        )
    )


def throttles_counted(scn: Scenario, platform: str, n: int) -> None:
    """Read the Control Plane's count once it reaches n (the checker compares it with the 429s the
    platform really sent)."""
    poll(
        lambda: view(scn, platform),
        until=lambda op: op.ok and _throttles(op.value) >= n,
        timeout=DEADLINE,
        interval=0.2,
    )
    scn.expect(ThrottleCountAccurate(platform, n))


def _throttles(v: dict) -> int:
    return v.get("GraphThrottleCount", v.get("ThrottleCount", 0)) or 0


def applied_exactly_once(scn: Scenario, platform: str, ring: str | None = None) -> None:
    keys = [k + (f"@{ring}" if ring else "") for k in keys_of(scn, platform)]
    poll(lambda: applied_counts(scn, platform), until=lambda c: all(c.get(k, 0) >= 1 for k in keys), timeout=DEADLINE)
    scn.expect(AppliedExactlyOnce(platform, keys_of(scn, platform), ring))


def stay_paused(scn: Scenario, platform: str, reason: str) -> None:
    """Once the platform is Healthy again (the Control Plane has it back), a promotion is attempted:
    it must be refused while the throttle count is high, or until the CAB lifts its pause."""
    poll(
        lambda: view(scn, platform),
        until=lambda op: op.ok and op.value.get("health") == "Healthy",
        timeout=DEADLINE,
        interval=0.2,
    )
    promote(scn, platform)
    scn.expect(ResumeRequiresLowThrottleCount(platform) if "Count" in reason else CabPauseHoldsUntilLifted(platform))


def promotions_resume(scn: Scenario, platform: str) -> None:
    """Once the Control Plane lifts PromotionsPaused, a promotion is attempted and its ring's intent
    must reach the platform once."""
    poll(
        lambda: view(scn, platform),
        until=lambda op: op.ok and not op.value.get("PromotionsPaused"),
        timeout=DEADLINE,
        interval=0.2,
    )
    promote(scn, platform)
    key = f"{(scn.published.get(platform) or [{'key': ''}])[0]['key']}@{NEXT_RING}"
    poll(lambda: applied_counts(scn, platform).get(key, 0), until=lambda n: n >= 1, timeout=DEADLINE)
    scn.expect(PromotionsResumed(platform, NEXT_RING))


def cab_pause_raised(scn: Scenario, platform: str) -> None:
    poll(lambda: events_about(scn, "CabManualPauseRaised", platform, look=True), timeout=10, interval=0.3)
    events_about(scn, "CabNotification", platform)
    scn.expect(CabManualPause(platform))


def cab_lifts_pause(scn: Scenario, platform: str) -> None:
    op = scn.call(OpKind.CAB_LIFT, ControlPlane.lift_pause(platform), detail={"platform": platform})
    if not op.ok:
        raise RuntimeError(f"the CAB pause of {platform} could not be lifted: {op.error}")
    scn.observe(f"CAB lifted the manual pause of {platform}.")


def cab_notified(scn: Scenario, platform: str) -> None:
    poll(lambda: events_about(scn, "CabNotification", platform, look=True), timeout=DEADLINE, interval=0.3)
    scn.expect(CabNotified(platform))


def queue_depth_reported(scn: Scenario, platform: str) -> None:
    """The queue's depth read by the harness (from the queue itself) right before and after the
    Control Plane's metric, until the metric shows intents waiting."""

    def bracket():
        scn.read(
            OpKind.QUEUE_DEPTH, lambda: scn.lab.capability(Queues).queue_depth(platform), detail={"platform": platform}
        )
        metrics = scn.call(OpKind.QUEUE_METRICS, ControlPlane.queue_metrics(), read=lambda body: body.get("queues", {}))
        scn.read(
            OpKind.QUEUE_DEPTH, lambda: scn.lab.capability(Queues).queue_depth(platform), detail={"platform": platform}
        )
        return ((metrics.value or {}).get(platform) or {}).get("queue_depth") if metrics.ok else None

    poll(bracket, until=lambda depth: depth, timeout=DEADLINE, interval=0.2)
    scn.expect(QueueDepthAccurate(platform))


def _dead_letters(scn: Scenario, platform: str):
    return scn.read(
        OpKind.DEAD_LETTERS,
        lambda: [m.get("idempotency_key") for m in scn.lab.capability(Queues).dead_letters(platform)],
        detail={"platform": platform},
    )


def dead_lettered(scn: Scenario, platform: str) -> None:
    """Read the dead-letter queue (the harness's own read) until every intent of the platform is in it."""
    keys = keys_of(scn, platform)
    poll(
        lambda: _dead_letters(scn, platform),
        until=lambda op: op.ok and set(keys) <= set(op.value or ()),
        timeout=DEADLINE,
        interval=0.3,
    )
    policy = backoff_policy(scn)
    scn.expect(DeadLettered(platform, keys, None if policy is None else policy["max_attempts"]))


def runbook_requeue(scn: Scenario, platform: str) -> None:
    scn.call(OpKind.REQUEUE, ControlPlane.requeue(platform), detail={"platform": platform})
    keys = set(keys_of(scn, platform))
    poll(
        lambda: _dead_letters(scn, platform),
        until=lambda op: op.ok and not keys & set(op.value or ()),
        timeout=DEADLINE,
        interval=0.3,
    )
    scn.expect(RequeueConfirmed(platform, sorted(keys)))


def backlog_within_limit(scn: Scenario) -> None:
    scn.expect(NoCriticalBacklog())


def site_outage_recorded(scn: Scenario, platform: str) -> None:
    poll(lambda: events_about(scn, "SiteOutageRecorded", platform, look=True), timeout=DEADLINE, interval=0.3)
    events_about(scn, "ManualImportOffered", platform)
    scn.expect(SiteOutageRecorded(platform))


def manual_import_offered(scn: Scenario, platform: str) -> None:
    poll(lambda: events_about(scn, "ManualImportOffered", platform, look=True), timeout=DEADLINE, interval=0.3)
    scn.expect(ManualImportOffered(platform))
