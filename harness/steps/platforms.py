"""Steps of the connector drills (matrix rows 4-6). <platform> is one of intune, jamf, sccm,
landscape, ansible; intents go to ring1 and are promoted to ring2."""

from __future__ import annotations

from pytest_bdd import given, parsers, then, when

from ..runner import platforms as p


def _platform(name: str) -> str:
    name = name.strip()
    if name not in p.PLATFORMS:
        raise ValueError(f"unknown platform {name!r} in the step; known: {', '.join(p.PLATFORMS)}")
    return name


@given("every platform's connector is healthy")
def connectors_healthy(drill):
    """Every platform Healthy with its promotions running, as its connector reports it; the API's
    health probes start (availability while the platforms fail)."""
    p.connectors_healthy(drill, drill.current)


@given(parsers.parse("an intent for {platform} is published and applied"))
def published_and_applied(drill, platform):
    """Publish one intent for the platform and wait until the platform applied it once."""
    p.publish(drill, drill.current, [_platform(platform)])
    p.applied_exactly_once(drill, drill.current, platform)


@when(parsers.parse("{platform} answers 429 with Retry-After {seconds:g} s to every request"))
def throttled(drill, platform, seconds):
    """The platform API throttles every request (HTTP 429 with Retry-After) until healed."""
    p.degrade(drill, drill.current, _platform(platform), "throttle", seconds)


@when(parsers.parse("{platform} answers 429 with Retry-After {seconds:g} s to the next {n:d} requests"))
def throttled_n(drill, platform, seconds, n):
    """The platform API throttles its next n requests, then answers normally."""
    p.degrade(drill, drill.current, _platform(platform), "throttle", seconds, n)


@when(parsers.parse("the {platform} link gets {ms:d} ms of latency"))
def latency(drill, platform, ms):
    """Toxiproxy latency on the link from the connector to the platform API."""
    p.link_latency(drill, drill.current, _platform(platform), ms)


@when(parsers.parse("the {platform} API becomes unreachable"))
def unreachable(drill, platform):
    """Cut the link from the connector to the platform API (Toxiproxy proxy down)."""
    p.link_cut(drill, drill.current, _platform(platform))


@when(parsers.parse("the {platform} site server is killed"))
def server_killed(drill, platform):
    """SIGKILL the platform's server (heal starts it again)."""
    p.server_killed(drill, drill.current, _platform(platform))


@when(parsers.parse("the {platform} site server is restarted"))
def server_restarted(drill, platform):
    """Start the platform's server again (heals the scenario's faults on that platform)."""
    p.heal_platform(drill, drill.current, _platform(platform))


@when(parsers.parse("the {platform} platform recovers"))
def platform_recovers(drill, platform):
    """Heal every fault of the scenario on that platform (mode back to ok, latency removed)."""
    p.heal_platform(drill, drill.current, _platform(platform))


@when(parsers.parse("intents are published for {platforms}"))
def intents_published(drill, platforms):
    """Create, evidence and approve one intent per listed platform (comma-separated, repeats
    allowed), then publish them all at once; every publish must be accepted and queued."""
    p.publish(drill, drill.current, [_platform(x) for x in platforms.split(",")])


@when(parsers.parse("{minutes:d} minutes pass"))
def minutes_pass(drill, minutes):
    """Move the Control Plane's clock forward (the lab allows it; time rules run in seconds)."""
    p.advance_clock(drill, drill.current, minutes * 60)


@when(parsers.parse("{hours:d} hours pass"))
def hours_pass(drill, hours):
    """Move the Control Plane's clock forward by hours."""
    p.advance_clock(drill, drill.current, hours * 3600)


@when(parsers.parse("the CAB lifts the pause for {platform}"))
def cab_lifts(drill, platform):
    """A named CAB approver lifts the manual pause (POST /platforms/<platform>/resume)."""
    p.cab_lifts_pause(drill, drill.current, _platform(platform))


@when(parsers.parse("the runbook requeues the {platform} dead-letter queue"))
def runbook_requeue(drill, platform):
    """The runbook moves the dead-lettered intents back to the queue; the move must be confirmed."""
    p.runbook_requeue(drill, drill.current, _platform(platform))


@then(parsers.parse("assignments fail for {platform} only while the other platforms' are applied"))
def assignments_fail(drill, platform):
    """The platform's intents are not applied and it is recorded unhealthy; the others apply once."""
    p.assignments_fail_only_for(drill, drill.current, _platform(platform))


@then(parsers.parse("promoting one {platform} intent is refused by the gate {gate_name}"))
def promotion_refused(drill, platform, gate_name):
    """A ring promotion on the platform answers 503 naming the gate."""
    p.promotion_refused(drill, drill.current, _platform(platform), gate_name)


@then(parsers.parse("PromotionsPaused is set for {platform}"))
def paused(drill, platform):
    """The Control Plane's PromotionsPaused flag is set for the platform."""
    p.promotions_paused(drill, drill.current, _platform(platform))


@then(parsers.parse("the connector backoff doubles the base interval for {platform}"))
def connector_backoff(drill, platform):
    """Each failed attempt of an intent waits twice the previous; attempts are spaced that far."""
    p.backoff_doubles(drill, drill.current, _platform(platform))


@then(parsers.parse("the Control Plane counts {n:d} throttled answers from {platform}"))
def throttles_counted(drill, n, platform):
    """GraphThrottleCount (ThrottleCount) reaches n."""
    p.throttles_counted(drill, drill.current, _platform(platform), n)


@then(parsers.parse("every intent published for {platform} is applied exactly once"))
def applied_once(drill, platform):
    """Each intent published in the scenario reached the platform exactly once."""
    p.applied_exactly_once(drill, drill.current, _platform(platform))


@then(parsers.parse("promotions for {platform} stay paused while GraphThrottleCount > 5"))
def paused_while_throttled(drill, platform):
    """Healthy again, but paused (and a promotion refused) while the throttle count is above 5."""
    p.stay_paused(drill, drill.current, _platform(platform), "ThrottleCount")


@then(parsers.parse("promotions for {platform} stay paused until the CAB lifts the pause"))
def paused_until_cab(drill, platform):
    """Healthy again, but paused (and a promotion refused) until the CAB lifts its pause."""
    p.stay_paused(drill, drill.current, _platform(platform), "CAB manual pause")


@then(parsers.parse("promotions for {platform} resume"))
def resume(drill, platform):
    """PromotionsPaused clears; a promotion is accepted and applied exactly once."""
    p.promotions_resume(drill, drill.current, _platform(platform))


@then(parsers.parse("a CAB manual pause is raised for {platform}"))
def cab_pause(drill, platform):
    """CabManualPause set, with its event and a CAB notification."""
    p.cab_pause_raised(drill, drill.current, _platform(platform))


@then(parsers.parse("a CAB notification is emitted for {platform}"))
def cab_notification(drill, platform):
    """A CabNotification event about the platform reached the event store."""
    p.cab_notified(drill, drill.current, _platform(platform))


@then(parsers.parse("the queue depth of {platform} is reported while its intents wait"))
def queue_depth(drill, platform):
    """GET /metrics/queues reports the platform's queue depth (JamfQueueDepth) >= 1."""
    p.queue_depth_reported(drill, drill.current, _platform(platform))


@then(parsers.parse("the {platform} intents are dead-lettered after the connector's maximum attempts, not lost"))
def dead_lettered(drill, platform):
    """After the last attempt every waiting intent is in the dead-letter queue."""
    p.dead_lettered(drill, drill.current, _platform(platform))


@then(parsers.parse("the Control Plane records the {platform} site outage"))
def site_outage(drill, platform):
    """SiteHealth Down, a SiteOutageRecorded event, and no manual-import fallback yet."""
    p.site_outage_recorded(drill, drill.current, _platform(platform))


@then(parsers.parse("the fallback to manual import is offered for {platform}"))
def manual_import(drill, platform):
    """Down for more than 24 h: fallback manual-import offered, with its event."""
    p.manual_import_offered(drill, drill.current, _platform(platform))


@then("no critical ring has a queue backlog older than 10 minutes")
def backlog(drill):
    """No intent of a critical ring waits longer than 10 minutes (Control Plane clock)."""
    p.backlog_within_limit(drill, drill.current)


@then(parsers.parse("the connectors keep serving the queued {platform} work"))
def served_while_api_down(drill, platform):
    """With the API tier still down, every intent queued for the platform is applied once."""
    p.served_while_api_down(drill, drill.current, _platform(platform))
