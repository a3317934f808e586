"""Steps of the connector drills (matrix rows 4-6). <platform> is one of intune, jamf, sccm,
landscape, ansible; intents go to ring1 and are promoted to ring2."""

from __future__ import annotations

from pytest_bdd import parsers

from ..lab.targets import CONNECTOR_WORKERS, PLATFORM_API, proxy
from ..runner import platforms as p
from ..runner import rollback
from .registry import drill_step


def _platform(name: str) -> str:
    name = name.strip()
    if name not in p.PLATFORMS:
        raise ValueError(f"unknown platform {name!r} in the step; known: {', '.join(p.PLATFORMS)}")
    return name


@drill_step("given", "every platform's connector is healthy")
def connectors_healthy(scenario):
    """Every platform Healthy with its promotions running, as its connector reports it; the API's
    health probes start (availability while the platforms fail)."""
    p.connectors_healthy(scenario)


@drill_step("given", parsers.parse("an intent for {platform} is published and applied"), needs=("platform_requests",))
def published_and_applied(scenario, platform):
    """Publish one intent for the platform and wait until the platform applied it once."""
    p.publish(scenario, [_platform(platform)])
    p.applied_exactly_once(scenario, platform)


@drill_step(
    "when",
    parsers.parse("{platform} answers 429 with Retry-After {seconds:g} s to every request"),
    needs=("platform_api_faults",),
    touches=(PLATFORM_API,),
)
def throttled(scenario, platform, seconds):
    """The platform API throttles every request (HTTP 429 with Retry-After) until healed."""
    p.degrade(scenario, _platform(platform), "throttle", seconds)


@drill_step(
    "when",
    parsers.parse("{platform} answers 429 with Retry-After {seconds:g} s to the next {n:d} requests"),
    needs=("platform_api_faults",),
    touches=(PLATFORM_API,),
)
def throttled_n(scenario, platform, seconds, n):
    """The platform API throttles its next n requests, then answers normally."""
    p.degrade(scenario, _platform(platform), "throttle", seconds, n)


@drill_step(
    "when",
    parsers.parse("the {platform} link gets {ms:d} ms of latency"),
    needs=("platform_link",),
    touches=(proxy("platforms.{platform}"),),
)
def latency(scenario, platform, ms):
    """Toxiproxy latency on the link from the connector to the platform API."""
    p.link_latency(scenario, _platform(platform), ms)


@drill_step(
    "when",
    parsers.parse("the {platform} API answers 503 to every request"),
    needs=("platform_api_faults",),
    touches=(PLATFORM_API,),
)
def api_errors(scenario, platform):
    """The platform API is out: it answers 503 to every request until healed."""
    p.degrade(scenario, _platform(platform), "error")


@drill_step(
    "when", parsers.parse("the {platform} site server is killed"), needs=("platform_kill",), touches=(PLATFORM_API,)
)
def server_killed(scenario, platform):
    """SIGKILL the platform's server (heal starts it again)."""
    p.server_killed(scenario, _platform(platform))


@drill_step("when", parsers.parse("the {platform} site server is restarted"), needs=("platform_kill",))
def server_restarted(scenario, platform):
    """Start the platform's server again (heals the scenario's faults on that platform)."""
    p.heal_platform(scenario, _platform(platform))


@drill_step("when", parsers.parse("the {platform} platform recovers"))
def platform_recovers(scenario, platform):
    """Heal every fault of the scenario on that platform (mode back to ok, latency removed)."""
    p.heal_platform(scenario, _platform(platform))


@drill_step("when", parsers.parse("intents are published for {platforms}"))
def intents_published(scenario, platforms):
    """Create, evidence and approve one intent per listed platform (comma-separated, repeats
    allowed), then publish them all at once; every publish must be accepted and queued."""
    p.publish(scenario, [_platform(x) for x in platforms.split(",")])


@drill_step("when", parsers.parse("{minutes:d} minutes pass"))
def minutes_pass(scenario, minutes):
    """Move the Control Plane's clock forward where the target grants clock control; else hold the
    faults in real time (plan hold_real_time: true) or record that the time did not pass."""
    p.pass_time(scenario, minutes * 60)


@drill_step("when", parsers.parse("{hours:d} hours pass"))
def hours_pass(scenario, hours):
    """As "N minutes pass", by hours."""
    p.pass_time(scenario, hours * 3600)


@drill_step("when", parsers.parse("the CAB lifts the pause for {platform}"))
def cab_lifts(scenario, platform):
    """A named CAB approver lifts the manual pause (POST /platforms/<platform>/resume)."""
    p.cab_lifts_pause(scenario, _platform(platform))


@drill_step("when", parsers.parse("the runbook requeues the {platform} dead-letter queue"), needs=("queues",))
def runbook_requeue(scenario, platform):
    """The runbook moves the dead-lettered intents back to the queue; the move must be confirmed."""
    p.runbook_requeue(scenario, _platform(platform))


@drill_step(
    "then",
    parsers.parse("assignments fail for {platform} only while the other platforms' are applied"),
    needs=("platform_requests",),
)
def assignments_fail(scenario, platform):
    """The platform's intents are not applied (its log) and PlatformDegraded is recorded; the others apply once."""
    p.assignments_fail_only_for(scenario, _platform(platform))


@drill_step("then", parsers.parse("promoting one {platform} intent is refused by the gate {gate_name}"))
def promotion_refused(scenario, platform, gate_name):
    """A ring promotion on the platform answers 503 naming the gate."""
    p.promotion_refused(scenario, _platform(platform), gate_name)


@drill_step("then", parsers.parse("PromotionsPaused is set for {platform}"))
def paused(scenario, platform):
    """A promotion of one of the platform's intents is refused by the gate PromotionsPaused."""
    p.promotions_paused(scenario, _platform(platform))


@drill_step("then", parsers.parse("the connector backoff doubles the base interval for {platform}"))
def connector_backoff(scenario, platform):
    """The platform received each intent's attempts spaced by waits doubling each time (its log)."""
    p.backoff_doubles(scenario, _platform(platform))


@drill_step("then", parsers.parse("the Control Plane counts {n:d} throttled answers from {platform}"))
def throttles_counted(scenario, n, platform):
    """GraphThrottleCount (ThrottleCount) reaches n and equals the 429s the platform really sent."""
    p.throttles_counted(scenario, _platform(platform), n)


@drill_step(
    "then", parsers.parse("every intent published for {platform} is applied exactly once"), needs=("platform_requests",)
)
def applied_once(scenario, platform):
    """Each intent published in the scenario reached the platform exactly once (its log)."""
    p.applied_exactly_once(scenario, _platform(platform))


@drill_step("then", parsers.parse("promotions for {platform} stay paused while GraphThrottleCount > 5"))
def paused_while_throttled(scenario, platform):
    """Healthy again, but a promotion is refused while the platform's real 429s in 5 minutes are above 5."""
    p.stay_paused(scenario, _platform(platform), "ThrottleCount")


@drill_step("then", parsers.parse("promotions for {platform} stay paused until the CAB lifts the pause"))
def paused_until_cab(scenario, platform):
    """Healthy again, but a promotion is refused until the CAB lifts its pause."""
    p.stay_paused(scenario, _platform(platform), "CAB manual pause")


@drill_step("then", parsers.parse("promotions for {platform} resume"))
def resume(scenario, platform):
    """Once PromotionsPaused clears, a promotion is accepted and its ring's intent applied exactly once."""
    p.promotions_resume(scenario, _platform(platform))


@drill_step("then", parsers.parse("a CAB manual pause is raised for {platform}"))
def cab_pause(scenario, platform):
    """CabManualPauseRaised (once, after > 15 min degraded on the Control Plane's clock) and a CAB notification."""
    p.cab_pause_raised(scenario, _platform(platform))


@drill_step("then", parsers.parse("a CAB notification is emitted for {platform}"))
def cab_notification(scenario, platform):
    """A CabNotification event about the platform reached the event store."""
    p.cab_notified(scenario, _platform(platform))


@drill_step(
    "then", parsers.parse("the queue depth of {platform} is reported while its intents wait"), needs=("queues",)
)
def queue_depth(scenario, platform):
    """GET /metrics/queues reports the depth (JamfQueueDepth) the harness reads from the queue itself, >= 1."""
    p.queue_depth_reported(scenario, _platform(platform))


@drill_step(
    "then",
    parsers.parse("the {platform} intents are dead-lettered after the connector's maximum attempts, not lost"),
    needs=("queues",),
)
def dead_lettered(scenario, platform):
    """After the last attempt every waiting intent is in the dead-letter queue (read by the harness)."""
    p.dead_lettered(scenario, _platform(platform))


@drill_step("then", parsers.parse("the Control Plane records the {platform} site outage"))
def site_outage(scenario, platform):
    """A SiteOutageRecorded event in the store, and no manual-import fallback offered yet."""
    p.site_outage_recorded(scenario, _platform(platform))


@drill_step("then", parsers.parse("the fallback to manual import is offered for {platform}"))
def manual_import(scenario, platform):
    """Down for more than 24 h on the Control Plane's clock: ManualImportOffered, once."""
    p.manual_import_offered(scenario, _platform(platform))


@drill_step("then", "no critical ring has a queue backlog older than 10 minutes")
def backlog(scenario):
    """No intent of a critical ring waits longer than 10 minutes (Control Plane clock)."""
    p.backlog_within_limit(scenario)


@drill_step(
    "when",
    "the connector workers are lost and the auto-scaling group replaces them",
    needs=("connector_workers", "platform_requests"),
    touches=(CONNECTOR_WORKERS,),
)
def connectors_fail_over(scenario):
    """SIGKILL every platform's connector worker (fault connector_worker_kill on all); the lab's
    auto-scaling group starts a replacement for each."""
    rollback.connectors_fail_over(scenario)


@drill_step(
    "then",
    parsers.parse("a Ring {n:d} rollback reaches every platform exactly once through the replacement workers"),
    needs=("connector_workers", "platform_requests"),
)
def ring_rollback(scenario, n):
    """POST /rings/ring<n>/rollback; every platform's stand-in log must show the dispatched key applied
    once, as a rollback, tested first, after that platform's worker was replaced."""
    rollback.ring_rollback(scenario, f"ring{n}")
