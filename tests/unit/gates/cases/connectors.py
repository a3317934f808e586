"""The platform connectors (matrix rows 4-6; harness/gates/connectors.py)."""

from __future__ import annotations

from typing import Any

from harness.gates import Gate
from harness.gates.connectors import (
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
    RingRollbackApplied,
    SiteOutageRecorded,
    ThrottleCountAccurate,
)

from ..builder import H, row
from .common import FAIL, PASS, UNKNOWN, Case, measured, measured_has, says
from .shared import read_events

CASES: dict[type[Gate], list[Case]] = {}


def platforms(**paused: list[str]) -> dict:
    """The Control Plane's view of its platforms; the named ones paused for these reasons."""
    return {
        p: {
            "platform": p,
            "health": "Healthy",
            "PromotionsPaused": bool(paused.get(p)),
            "pause_reasons": paused.get(p, []),
        }
        for p in ("intune", "jamf", "sccm", "landscape", "ansible")
    }


def stored(type_: str, platform: str, t: float, **payload: Any) -> dict:
    """An event row about a platform, appended at history time t."""
    return row(type_, payload={"platform": platform, **payload}, t=t)


def promote(
    h: H, t: float, platform: str, *, ok: bool = True, gate: str | None = None, key: str = "k1", to_ring: str = "ring2"
) -> H:
    detail = {"platform": platform, "to_ring": to_ring, "intent_id": 1}
    if gate:
        detail["gate"] = gate
    return h.op("promote", t, ok=ok, value=key, status=200 if ok else 503, detail=detail)


def attempts(h: H, platform: str, key: str, *times: float, status: int = 503) -> H:
    for t in times:
        h.platform_request(platform, t, key=key, status=status)
    return h


def throttled(h: H, platform: str, *times: float) -> H:
    return attempts(h, platform, "k1", *times, status=429)


CASES[ConnectorsHealthy] = [
    Case(
        "every platform Healthy before the fault",
        ConnectorsHealthy(),
        H().op("platforms_view", 1.0, value=platforms()).inject("throttle:intune", 10.0).build(),
        PASS,
    ),
    Case(
        "a platform with its promotions paused",
        ConnectorsHealthy(),
        H().op("platforms_view", 1.0, value=platforms(jamf=["health"])).inject("throttle:intune", 10.0).build(),
        FAIL,
        measured({"jamf": ["health"]}),
    ),
    Case(
        "a view after the first fault is not the precondition",
        ConnectorsHealthy(),
        H()
        .op("platforms_view", 1.0, value=platforms())
        .inject("throttle:intune", 10.0)
        .op("platforms_view", 12.0, value=platforms(intune=["health"]))
        .build(),
        PASS,
    ),
    Case(
        "a platform not Healthy fails, even with its promotions running",
        ConnectorsHealthy(),
        H()
        .op(
            "platforms_view",
            1.0,
            value={
                **platforms(),
                "sccm": {"platform": "sccm", "health": "Unhealthy", "PromotionsPaused": False, "pause_reasons": []},
            },
        )
        .inject("down:sccm", 10.0)
        .build(),
        FAIL,
        None,
    ),
    Case(
        "the platforms were checked only after the first fault",
        ConnectorsHealthy(),
        H().inject("throttle:intune", 10.0).op("platforms_view", 12.0, value=platforms()).build(),
        UNKNOWN,
    ),
    Case(
        "a platform missing from the view fails",
        ConnectorsHealthy(),
        H()
        .op("platforms_view", 1.0, value={p: v for p, v in platforms().items() if p != "jamf"})
        .inject("throttle:intune", 10.0)
        .build(),
        FAIL,
        measured({"jamf": "not reported"}),
    ),
    Case(
        "the platforms could not be read",
        ConnectorsHealthy(),
        H().op("platforms_view", 1.0, ok=False, status=503, error="503").inject("throttle:intune", 10.0).build(),
        UNKNOWN,
    ),
]

CASES[PublishAccepted] = [
    Case(
        "every intent published accepted",
        PublishAccepted(["k1", "k2"]),
        H().op("publish", 1.0, value="k1", status=202).op("publish", 1.0, value="k2", status=202).build(),
        PASS,
    ),
    Case(
        "a publish refused",
        PublishAccepted(["k1", "k2"]),
        H().op("publish", 1.0, value="k1", status=202).op("publish", 1.0, ok=False, value="k2", status=503).build(),
        FAIL,
        says("k2: 503"),
    ),
    Case(
        "another scenario's publish is not judged",
        PublishAccepted(["k1"]),
        H().op("publish", 1.0, value="k1", status=202).op("publish", 1.0, ok=False, value="k9", status=503).build(),
        PASS,
    ),
    Case(
        "nothing was published",
        PublishAccepted(["k1"]),
        H().op("publish", 1.0, value="k9", status=202).build(),
        UNKNOWN,
    ),
]

OTHERS = {"jamf": ["j1"], "sccm": ["s1"]}

CASES[OtherPlatformsContinue] = [
    Case(
        "the other platforms applied theirs once by the checkpoint",
        OtherPlatformsContinue("intune", OTHERS, "assignments:intune"),
        attempts(H().inject("throttle:intune", 10.0), "jamf", "j1", 12.0, status=200)
        .platform_request("sccm", 12.0, key="s1", status=429)
        .platform_request("sccm", 13.0, key="s1", status=200)
        .checkpoint("assignments:intune", 20.0)
        .build(),
        PASS,
        measured({"jamf": [1], "sccm": [1]}),
    ),
    Case(
        "an intent of another platform applied twice",
        OtherPlatformsContinue("intune", OTHERS, "assignments:intune"),
        attempts(H().inject("throttle:intune", 10.0), "jamf", "j1", 12.0, 14.0, status=200)
        .platform_request("sccm", 13.0, key="s1", status=200)
        .checkpoint("assignments:intune", 20.0)
        .build(),
        FAIL,
    ),
    Case(
        "an apply after the harness looked does not count",
        OtherPlatformsContinue("intune", OTHERS, "assignments:intune"),
        attempts(H().inject("throttle:intune", 10.0), "jamf", "j1", 12.0, status=200)
        .checkpoint("assignments:intune", 20.0)
        .platform_request("sccm", 25.0, key="s1", status=200)
        .build(),
        FAIL,
        measured({"jamf": [1], "sccm": [0]}),
    ),
    Case(
        "the harness did not look",
        OtherPlatformsContinue("intune", OTHERS, "assignments:intune"),
        attempts(H().inject("throttle:intune", 10.0), "jamf", "j1", 12.0, status=200).build(),
        UNKNOWN,
    ),
    Case(
        "no other platform was published to",
        OtherPlatformsContinue("intune", {}, "assignments:intune"),
        H().inject("throttle:intune", 10.0).checkpoint("assignments:intune", 20.0).build(),
        UNKNOWN,
    ),
]


def intune_failing() -> H:
    return throttled(H().inject("throttle:intune", 10.0), "intune", 11.0, 12.0)


CASES[AssignmentFails] = [
    Case(
        "none applied and the platform recorded degraded",
        AssignmentFails("intune", ["k1"], "assignments:intune"),
        read_events(intune_failing(), 15.0, "PlatformDegraded", stored("PlatformDegraded", "intune", 11.5))
        .checkpoint("assignments:intune", 16.0)
        .build(),
        PASS,
        measured({"published": 1, "applied": 0, "recorded_unhealthy": True}),
    ),
    Case(
        "the failing platform applied an intent",
        AssignmentFails("intune", ["k1"], "assignments:intune"),
        read_events(
            intune_failing().platform_request("intune", 13.0, key="k1", status=200),
            15.0,
            "PlatformDegraded",
            stored("PlatformDegraded", "intune", 11.5),
        )
        .checkpoint("assignments:intune", 16.0)
        .build(),
        FAIL,
    ),
    Case(
        "the Control Plane did not record the platform degraded",
        AssignmentFails("intune", ["k1"], "assignments:intune"),
        read_events(intune_failing(), 15.0, "PlatformDegraded", stored("PlatformDegraded", "jamf", 11.5))
        .checkpoint("assignments:intune", 16.0)
        .build(),
        FAIL,
        measured_has(recorded_unhealthy=False),
    ),
    Case(
        "a PlatformDegraded from before the fault does not count",
        AssignmentFails("intune", ["k1"], "assignments:intune"),
        read_events(intune_failing(), 15.0, "PlatformDegraded", stored("PlatformDegraded", "intune", 5.0))
        .checkpoint("assignments:intune", 16.0)
        .build(),
        FAIL,
    ),
    Case(
        "an apply after the checkpoint is not judged",
        AssignmentFails("intune", ["k1"], "assignments:intune"),
        read_events(intune_failing(), 15.0, "PlatformDegraded", stored("PlatformDegraded", "intune", 11.5))
        .checkpoint("assignments:intune", 16.0)
        .heal("throttle:intune", 20.0)
        .platform_request("intune", 21.0, key="k1", status=200)
        .build(),
        PASS,
    ),
    Case(
        "PlatformDegraded events were not read",
        AssignmentFails("intune", ["k1"], "assignments:intune"),
        intune_failing().checkpoint("assignments:intune", 16.0).build(),
        UNKNOWN,
    ),
    Case(
        "no fault on the platform",
        AssignmentFails("intune", ["k1"], "assignments:intune"),
        read_events(
            H().inject("throttle:jamf", 10.0), 15.0, "PlatformDegraded", stored("PlatformDegraded", "intune", 11.5)
        )
        .checkpoint("assignments:intune", 16.0)
        .build(),
        UNKNOWN,
    ),
]


def degraded_known(h: H) -> H:
    """The Control Plane recorded intune degraded at 12 (read at 13)."""
    return read_events(h, 13.0, "PlatformDegraded", stored("PlatformDegraded", "intune", 12.0))


CASES[PromotionRefused] = [
    Case(
        "a promotion refused by the gate while the platform fails",
        PromotionRefused("intune", "PromotionsPaused"),
        promote(degraded_known(intune_failing()), 14.0, "intune", ok=False, gate="PromotionsPaused")
        .heal("throttle:intune", 30.0)
        .build(),
        PASS,
    ),
    Case(
        "a promotion accepted while the platform fails",
        PromotionRefused("intune", "PromotionsPaused"),
        promote(degraded_known(intune_failing()), 14.0, "intune").heal("throttle:intune", 30.0).build(),
        FAIL,
    ),
    Case(
        "a refusal by another gate",
        PromotionRefused("intune", "PromotionsPaused"),
        promote(degraded_known(intune_failing()), 14.0, "intune", ok=False, gate="SCCM.SiteHealth")
        .heal("throttle:intune", 30.0)
        .build(),
        FAIL,
    ),
    Case(
        "a promotion before the Control Plane knew is not judged",
        PromotionRefused("intune", "PromotionsPaused"),
        promote(
            promote(degraded_known(intune_failing()), 11.0, "intune"), 14.0, "intune", ok=False, gate="PromotionsPaused"
        )
        .heal("throttle:intune", 30.0)
        .build(),
        PASS,
    ),
    Case(
        "no promotion attempted while the platform failed",
        PromotionRefused("intune", "PromotionsPaused"),
        promote(degraded_known(intune_failing()).heal("throttle:intune", 30.0), 31.0, "intune").build(),
        UNKNOWN,
    ),
    Case(
        "the Control Plane's record of the platform degraded was not read",
        PromotionRefused("intune", "PromotionsPaused"),
        promote(intune_failing(), 14.0, "intune", ok=False, gate="PromotionsPaused").build(),
        UNKNOWN,
    ),
    Case(
        "no fault on the platform",
        PromotionRefused("intune", "PromotionsPaused"),
        promote(H(), 14.0, "intune", ok=False, gate="PromotionsPaused").build(),
        UNKNOWN,
    ),
    # issue 24: the window starts at the injection plus the plan's detection allowance (60 s by default)
    Case(
        "the Control Plane never recorded the platform degraded: a promotion accepted after the allowance fails",
        PromotionRefused("intune", "PromotionsPaused"),
        promote(read_events(intune_failing(), 74.0, "PlatformDegraded"), 75.0, "intune")
        .heal("throttle:intune", 100.0)
        .build(),
        FAIL,
        says("the detection allowance of 60 s"),
    ),
    Case(
        "a promotion accepted after the allowance, before the Control Plane's late record, fails",
        PromotionRefused("intune", "PromotionsPaused"),
        promote(
            read_events(intune_failing(), 95.0, "PlatformDegraded", stored("PlatformDegraded", "intune", 90.0)),
            75.0,
            "intune",
        )
        .heal("throttle:intune", 100.0)
        .build(),
        FAIL,
        measured_has(detection_s=80.0, judged_from_s=60.0),
    ),
    Case(
        "a tighter allowance from the plan (5 s): a promotion accepted 8 s after the injection fails",
        PromotionRefused("intune", "PromotionsPaused", detection_s=5.0),
        promote(intune_failing(), 18.0, "intune").heal("throttle:intune", 30.0).build(),
        FAIL,
    ),
    Case(
        "never recorded degraded, but the promotion after the allowance refused by the gate",
        PromotionRefused("intune", "PromotionsPaused"),
        promote(intune_failing(), 75.0, "intune", ok=False, gate="PromotionsPaused")
        .heal("throttle:intune", 100.0)
        .build(),
        PASS,
        measured_has(detection_s=None),
    ),
    Case(
        "the detection latency is measured: recorded degraded 2 s after the injection",
        PromotionRefused("intune", "PromotionsPaused"),
        promote(degraded_known(intune_failing()), 14.0, "intune", ok=False, gate="PromotionsPaused")
        .heal("throttle:intune", 30.0)
        .build(),
        PASS,
        measured_has(detection_s=2.0, judged_from_s=2.0),
    ),
]

BACKOFF = ConnectorBackoff("jamf", ["k1", "k2"], base_s=0.5)


def looked_up_attempts(h: H, *attempts: tuple[str, float, int]) -> H:
    """Attempts (key, lookup time, apply status) each made of a Test-IdempotencyKey lookup and,
    0.4 s later (a 200 ms link each way), the apply."""
    for key, t, status in attempts:
        h.platform_request("jamf", t, key=key, status=404, path="/applied", outcome="tested")
        h.platform_request("jamf", round(t + 0.4, 3), key=key, status=status)
    return h


CASES[ConnectorBackoff] = [
    Case(
        "each wait twice the previous, from the base interval",
        BACKOFF,
        attempts(H(), "jamf", "k1", 10.0, 10.5, 11.5, 13.5).build(),
        PASS,
        measured(
            {
                "gaps_s": [0.5, 1.0, 2.0],
                "round_trip_s": 0.0,
                "waits_s": [0.5, 1.0, 2.0],
                "ratios": [2.0, 2.0],
                "attempts": 4,
                "growth": 2.0,
            }
        ),
    ),
    Case(
        "two intents in lockstep over a 200 ms link: the gaps 2.6, 3.6, 5.6 s hold waits of 0.5, 1, 2 s",
        BACKOFF,
        looked_up_attempts(
            H(),
            ("k1", 10.0, 503),
            ("k2", 11.3, 503),
            ("k1", 12.6, 503),
            ("k2", 14.4, 503),
            ("k1", 16.2, 503),
            ("k2", 19.0, 503),
            ("k1", 21.8, 200),
        ).build(),
        PASS,
        measured(
            {
                "gaps_s": [2.6, 3.6, 5.6],
                "round_trip_s": 0.4,
                "waits_s": [0.5, 1.0, 2.0],
                "ratios": [2.0, 2.0],
                "attempts": 4,
                "growth": 2.0,
            }
        ),
    ),
    Case(
        "a second intent arriving late puts its wait in one gap only (gaps 0.5, 1.53, 3.0 s)",
        BACKOFF,
        attempts(
            attempts(H(), "jamf", "k1", 10.0, 10.501, 12.034, 15.03), "jamf", "k2", 11.508, 14.029, 15.101, 17.098
        ).build(),
        PASS,
        measured_has(gaps_s=[0.501, 1.533, 2.996], waits_s=[0.501, 1.007, 1.995], ratios=[2.01, 1.98]),
    ),
    Case(
        "a wait cut short by another intent's call is no backoff of the platform",
        BACKOFF,
        attempts(attempts(H(), "jamf", "k1", 10.0, 10.5, 11.5, 13.5), "jamf", "k2", 10.05, 10.55, 11.55).build(),
        FAIL,
        measured_has(waits_s=[0.05, 0.05, 0.05]),
    ),
    Case(
        "the same wait every time over a 200 ms link",
        BACKOFF,
        looked_up_attempts(H(), ("k1", 10.0, 503), ("k1", 11.3, 503), ("k1", 12.6, 503), ("k1", 13.9, 200)).build(),
        FAIL,
        measured(
            {
                "gaps_s": [1.3, 1.3, 1.3],
                "round_trip_s": 0.4,
                "waits_s": [0.5, 0.5, 0.5],
                "ratios": [1.0, 1.0],
                "attempts": 4,
                "growth": 1.0,
            }
        ),
    ),
    Case(
        "a backoff whose gaps do not grow", BACKOFF, attempts(H(), "jamf", "k1", 10.0, 10.5, 11.0, 11.5).build(), FAIL
    ),
    Case(
        "a first gap shorter than the base interval",
        BACKOFF,
        attempts(H(), "jamf", "k1", 10.0, 10.1, 10.3, 10.7).build(),
        FAIL,
    ),
    Case("gaps growing fourfold", BACKOFF, attempts(H(), "jamf", "k1", 10.0, 10.5, 12.5, 20.5).build(), FAIL),
    Case(
        "arrivals after the runbook's requeue start a new delivery",
        BACKOFF,
        attempts(H(), "jamf", "k1", 10.0, 10.5, 11.5, 13.5)
        .op("requeue", 20.0, detail={"platform": "jamf"})
        .platform_request("jamf", 20.1, key="k1", status=503)
        .platform_request("jamf", 20.2, key="k1", status=200)
        .build(),
        PASS,
    ),
    Case(
        "the retries end at the first applied arrival",
        BACKOFF,
        attempts(H(), "jamf", "k1", 10.0, 10.5)
        .platform_request("jamf", 11.5, key="k1", status=200)
        .platform_request("jamf", 11.6, key="k1", status=200, outcome="duplicate")
        .build(),
        PASS,
    ),
    Case(
        "an attempt repeated without any wait is no backoff",
        BACKOFF,
        attempts(H(), "jamf", "k1", 10.0, 10.5, 10.5, 11.5).build(),
        FAIL,
    ),
    Case(
        "fewer than 3 attempts reached the platform", BACKOFF, attempts(H(), "jamf", "k1", 10.0, 10.5).build(), UNKNOWN
    ),
    # issue 24: the spec's 2x within 1.8-2.2 (growth per retry), base and maximum attempts from the plan
    Case(
        "waits growing 2.5x per retry are not the spec's 2x",
        BACKOFF,
        attempts(H(), "jamf", "k1", 10.0, 10.5, 11.75, 14.875).build(),
        FAIL,
        says("grew 2.50 x per retry, not 1.8-2.2"),
    ),
    Case(
        "waits growing 1.6x per retry are not the spec's 2x",
        BACKOFF,
        attempts(H(), "jamf", "k1", 10.0, 10.5, 11.3, 12.58).build(),
        FAIL,
        measured_has(growth=1.6),
    ),
    Case(
        "a first wait twice the configured base interval (the plan says 0.5 s, the connector waits 1 s)",
        BACKOFF,
        attempts(H(), "jamf", "k1", 10.0, 11.0, 13.0, 17.0).build(),
        FAIL,
        says("first wait was 1.000 s"),
    ),
    Case(
        "more attempts than the configured maximum",
        ConnectorBackoff("jamf", ["k1"], base_s=0.5, max_attempts=4),
        attempts(H(), "jamf", "k1", 10.0, 10.5, 11.5, 13.5, 17.5).build(),
        FAIL,
        says("more than the 4 configured"),
    ),
    Case(
        "a loaded machine: the first wait 80 ms late (ratios 1.72, 2.0), the growth over all waits 1.86",
        ConnectorBackoff("jamf", ["k1"], base_s=0.5, max_attempts=4),
        attempts(H(), "jamf", "k1", 10.0, 10.58, 11.58, 13.58).build(),
        PASS,
        measured_has(growth=1.857),
    ),
    Case(
        "the connectors' configured backoff is not known (an external plan that does not state it)",
        ConnectorBackoff("jamf", ["k1"], base_s=None),
        attempts(H(), "jamf", "k1", 10.0, 10.5, 11.5).build(),
        UNKNOWN,
        says("targets.connector_backoff"),
    ),
]


def intune_view(h: H, t: float, count: int) -> H:
    return h.op(
        "platform_view", t, value={"platform": "intune", "GraphThrottleCount": count}, detail={"platform": "intune"}
    )


SIX_429 = (10.0, 11.0, 12.0, 13.0, 14.0, 15.0)

CASES[ThrottleCountAccurate] = [
    Case(
        "the count equals the platform's 429s and reached n",
        ThrottleCountAccurate("intune", 5),
        intune_view(throttled(H(), "intune", *SIX_429), 16.0, 6).build(),
        PASS,
        measured_has(highest_reported=6, sent_by_platform=6),
    ),
    Case(
        "a throttle count that disagrees with the platform's 429s",
        ThrottleCountAccurate("intune", 5),
        intune_view(throttled(H(), "intune", *SIX_429), 16.0, 5).build(),
        FAIL,
        says("reported 5, platform sent 6"),
    ),
    Case(
        "an earlier read that over-counted fails though the last agrees",
        ThrottleCountAccurate("intune", 5),
        intune_view(intune_view(throttled(H(), "intune", *SIX_429), 12.5, 6), 16.0, 6).build(),
        FAIL,
    ),
    Case(
        "a count that agrees but never reached n",
        ThrottleCountAccurate("intune", 5),
        intune_view(throttled(H(), "intune", 10.0, 11.0, 12.0), 16.0, 3).build(),
        FAIL,
    ),
    Case(
        "a 429 sent within the report delay before the read may be uncounted",
        ThrottleCountAccurate("intune", 5),
        intune_view(throttled(H(), "intune", 10.0, 11.0, 12.0, 13.0, 14.0, 15.6), 16.0, 5).build(),
        PASS,
    ),
    Case(
        "429s older than the window on the Control Plane's clock drop out",
        ThrottleCountAccurate("intune", 5),
        intune_view(
            throttled(throttled(H(), "intune", *SIX_429).clock(20.0, 600), "intune", 21.0, 22.0, 23.0, 24.0, 25.0),
            26.0,
            5,
        ).build(),
        PASS,
    ),
    Case(
        "the Control Plane's view was not read",
        ThrottleCountAccurate("intune", 5),
        throttled(H(), "intune", *SIX_429).build(),
        UNKNOWN,
    ),
]

CASES[AppliedExactlyOnce] = [
    Case(
        "every intent applied once (after a 429)",
        AppliedExactlyOnce("intune", ["k1", "k2"]),
        throttled(H(), "intune", 10.0)
        .platform_request("intune", 12.0, key="k1", status=200)
        .platform_request("intune", 12.0, key="k2", status=200)
        .build(),
        PASS,
        measured({"published": 2, "missing": 0, "duplicated": 0}),
    ),
    Case(
        "an intent never applied",
        AppliedExactlyOnce("intune", ["k1", "k2"]),
        throttled(H(), "intune", 10.0)
        .platform_request("intune", 12.0, key="k1", status=200)
        .platform_request("intune", 12.0, key="k2", status=429)
        .build(),
        FAIL,
        measured_has(missing=1),
    ),
    Case(
        "an intent applied twice by a redelivery",
        AppliedExactlyOnce("intune", ["k1"]),
        attempts(H(), "intune", "k1", 12.0, 30.0, status=200).build(),
        FAIL,
        measured_has(duplicated=1),
    ),
    Case(
        "a connector's Test-IdempotencyKey lookup is not a second apply",
        AppliedExactlyOnce("intune", ["k1"]),
        H()
        .platform_request("intune", 12.0, key="k1", status=200)
        .platform_request("intune", 30.0, key="k1", status=200, outcome="tested", path="/applied")
        .build(),
        PASS,
    ),
    Case(
        "with a ring, the ring's own key is judged",
        AppliedExactlyOnce("intune", ["k1"], ring="ring2"),
        H()
        .platform_request("intune", 12.0, key="k1", status=200)
        .platform_request("intune", 30.0, key="k1@ring2", status=200)
        .build(),
        PASS,
    ),
    Case(
        "no intent was published",
        AppliedExactlyOnce("intune", []),
        H().platform_request("intune", 12.0, key="k1", status=200).build(),
        UNKNOWN,
    ),
]


def throttle_healed(*times: float) -> H:
    return throttled(H().inject("throttle:intune", 9.0), "intune", *times).heal("throttle:intune", 16.0)


CASES[ResumeRequiresLowThrottleCount] = [
    Case(
        "a promotion refused while the throttle count was 6",
        ResumeRequiresLowThrottleCount("intune"),
        promote(throttle_healed(*SIX_429), 17.0, "intune", ok=False, gate="PromotionsPaused").build(),
        PASS,
        measured_has(throttle_count=6, accepted=0),
    ),
    Case(
        "a promotion accepted while the throttle count was 6",
        ResumeRequiresLowThrottleCount("intune"),
        promote(throttle_healed(*SIX_429), 17.0, "intune").build(),
        FAIL,
        measured_has(throttle_count=6, accepted=1),
    ),
    Case(
        "a promotion before the recovery is not judged",
        ResumeRequiresLowThrottleCount("intune"),
        promote(
            promote(throttle_healed(*SIX_429), 12.0, "intune"), 17.0, "intune", ok=False, gate="PromotionsPaused"
        ).build(),
        PASS,
    ),
    Case(
        "a count of exactly 5 is not above the limit",
        ResumeRequiresLowThrottleCount("intune"),
        promote(throttle_healed(*SIX_429[:5]), 17.0, "intune").build(),
        UNKNOWN,
    ),
    Case(
        "429s older than 5 minutes on the Control Plane's clock do not count",
        ResumeRequiresLowThrottleCount("intune"),
        promote(throttle_healed(*SIX_429).clock(16.5, 300), 17.0, "intune").build(),
        UNKNOWN,
    ),
    Case(
        "the platform was not healed",
        ResumeRequiresLowThrottleCount("intune"),
        promote(throttled(H().inject("throttle:intune", 9.0), "intune", *SIX_429), 17.0, "intune").build(),
        UNKNOWN,
    ),
]

CASES[PromotionsResumed] = [
    Case(
        "the last promotion accepted and applied once",
        PromotionsResumed("intune", "ring2"),
        promote(promote(H(), 20.0, "intune", ok=False, gate="PromotionsPaused"), 30.0, "intune")
        .platform_request("intune", 31.0, key="k1@ring2", status=200)
        .build(),
        PASS,
    ),
    Case(
        "the last promotion refused",
        PromotionsResumed("intune", "ring2"),
        promote(H(), 30.0, "intune", ok=False, gate="PromotionsPaused").build(),
        FAIL,
    ),
    Case(
        "the promoted intent applied twice",
        PromotionsResumed("intune", "ring2"),
        attempts(promote(H(), 30.0, "intune"), "intune", "k1@ring2", 31.0, 32.0, status=200).build(),
        FAIL,
        measured_has(applied=2),
    ),
    Case(
        "an apply before the promotion does not count",
        PromotionsResumed("intune", "ring2"),
        promote(H().platform_request("intune", 25.0, key="k1@ring2", status=200), 30.0, "intune").build(),
        FAIL,
        measured_has(applied=0),
    ),
    Case(
        "no promotion attempted",
        PromotionsResumed("intune", "ring2"),
        H().platform_request("intune", 31.0, key="k1@ring2", status=200).build(),
        UNKNOWN,
    ),
]


def cab_pause(
    clock_s: float, raised_at: tuple[float, ...] = (21.0,), notice_platform: str = "jamf", clock_at: float = 20.0
) -> H:
    """jamf failing from 10; the Control Plane's clock moved `clock_s` at `clock_at`; the CAB pause
    rows raised at `raised_at`, a notification at 21; both read at 30."""
    h = H().inject("error:jamf", 10.0).clock(clock_at, clock_s)
    h = read_events(h, 30.0, "CabManualPauseRaised", *(stored("CabManualPauseRaised", "jamf", t) for t in raised_at))
    return read_events(h, 30.5, "CabNotification", stored("CabNotification", notice_platform, 21.0))


CASES[CabManualPause] = [
    Case(
        "raised once after more than 15 minutes on the Control Plane's clock, with a notification",
        CabManualPause("jamf"),
        cab_pause(1000).build(),
        PASS,
        measured({"raised": 1, "degraded_for_s": [1011.0], "notifications": 1}),
    ),
    Case(
        "raised before 15 minutes on the Control Plane's clock (14 min 51 s)",
        CabManualPause("jamf"),
        cab_pause(880).build(),
        FAIL,
        measured_has(degraded_for_s=[891.0]),
    ),
    Case(
        "a clock move after the pause does not age it",
        CabManualPause("jamf"),
        cab_pause(1000, clock_at=25.0).build(),
        FAIL,
        measured_has(degraded_for_s=[11.0]),
    ),
    Case("raised twice", CabManualPause("jamf"), cab_pause(1000, raised_at=(21.0, 22.0)).build(), FAIL),
    Case(
        "no CAB notification about the platform",
        CabManualPause("jamf"),
        cab_pause(1000, notice_platform="intune").build(),
        FAIL,
    ),
    Case(
        "the CAB notifications were not read",
        CabManualPause("jamf"),
        read_events(
            H().inject("error:jamf", 10.0).clock(20.0, 1000),
            30.0,
            "CabManualPauseRaised",
            stored("CabManualPauseRaised", "jamf", 21.0),
        ).build(),
        UNKNOWN,
    ),
    Case(
        "no fault on the platform",
        CabManualPause("jamf"),
        read_events(
            read_events(
                H().clock(20.0, 1000), 30.0, "CabManualPauseRaised", stored("CabManualPauseRaised", "jamf", 21.0)
            ),
            30.5,
            "CabNotification",
            stored("CabNotification", "jamf", 21.0),
        ).build(),
        UNKNOWN,
    ),
    # a target without clock control (no lab.clock) that does not hold the fault in real time
    Case(
        "no clock control, fault held 20 s, no pause yet: unknown, never a fail or a pass",
        CabManualPause("jamf"),
        read_events(
            read_events(H().inject("error:jamf", 10.0), 30.0, "CabManualPauseRaised"), 30.5, "CabNotification"
        ).build(),
        UNKNOWN,
        says("needs 15 min of real time or clock control"),
    ),
    Case(
        "no clock control: a pause raised after 11 s still fails",
        CabManualPause("jamf"),
        cab_pause(0, raised_at=(21.0,), clock_at=5.0).build(),
        FAIL,
    ),
    Case(
        "no clock control, the fault held 16 min in real time (hold_real_time): judged",
        CabManualPause("jamf"),
        read_events(
            read_events(
                H().inject("error:jamf", 10.0),
                1000.0,
                "CabManualPauseRaised",
                stored("CabManualPauseRaised", "jamf", 970.0),
            ),
            1000.5,
            "CabNotification",
            stored("CabNotification", "jamf", 970.0),
        ).build(),
        PASS,
    ),
]


def recovered_jamf() -> H:
    return H().inject("error:jamf", 10.0).heal("error:jamf", 20.0)


def cab_lift(h: H, t: float, ok: bool = True) -> H:
    return h.op("cab_lift", t, ok=ok, status=200 if ok else 409, detail={"platform": "jamf"})


CASES[CabPauseHoldsUntilLifted] = [
    Case(
        "refused after the recovery until the lift, accepted after it",
        CabPauseHoldsUntilLifted("jamf"),
        promote(
            cab_lift(promote(recovered_jamf(), 21.0, "jamf", ok=False, gate="CabManualPause"), 25.0), 26.0, "jamf"
        ).build(),
        PASS,
    ),
    Case(
        "a promotion accepted before the CAB lifted the pause",
        CabPauseHoldsUntilLifted("jamf"),
        cab_lift(promote(recovered_jamf(), 21.0, "jamf"), 25.0).build(),
        FAIL,
    ),
    Case(
        "a promotion accepted with no lift at all",
        CabPauseHoldsUntilLifted("jamf"),
        promote(recovered_jamf(), 21.0, "jamf").build(),
        FAIL,
    ),
    Case(
        "a lift the Control Plane refused does not end the hold",
        CabPauseHoldsUntilLifted("jamf"),
        promote(
            cab_lift(promote(recovered_jamf(), 21.0, "jamf", ok=False, gate="CabManualPause"), 25.0, ok=False),
            26.0,
            "jamf",
        ).build(),
        FAIL,
        None,
    ),
    Case(
        "no promotion between the recovery and the lift",
        CabPauseHoldsUntilLifted("jamf"),
        promote(cab_lift(recovered_jamf(), 25.0), 26.0, "jamf").build(),
        UNKNOWN,
    ),
    Case(
        "the platform was not healed",
        CabPauseHoldsUntilLifted("jamf"),
        promote(H().inject("error:jamf", 10.0), 21.0, "jamf").build(),
        UNKNOWN,
    ),
]

CASES[CabNotified] = [
    Case(
        "a CAB notification about the outage",
        CabNotified("jamf"),
        read_events(
            H().inject("error:jamf", 10.0), 30.0, "CabNotification", stored("CabNotification", "jamf", 21.0)
        ).build(),
        PASS,
    ),
    Case(
        "notifications about another platform only",
        CabNotified("jamf"),
        read_events(
            H().inject("error:jamf", 10.0), 30.0, "CabNotification", stored("CabNotification", "intune", 21.0)
        ).build(),
        FAIL,
    ),
    Case(
        "a notification from before the fault does not count",
        CabNotified("jamf"),
        read_events(
            H().inject("error:jamf", 10.0), 30.0, "CabNotification", stored("CabNotification", "jamf", 5.0)
        ).build(),
        FAIL,
    ),
    Case("the notifications were not read", CabNotified("jamf"), H().inject("error:jamf", 10.0).build(), UNKNOWN),
    Case(
        "no fault on the platform",
        CabNotified("jamf"),
        read_events(H(), 30.0, "CabNotification", stored("CabNotification", "jamf", 21.0)).build(),
        UNKNOWN,
    ),
]


def queue_bracket(before: int, reported: int | None, after: int | None, platform: str = "jamf") -> H:
    h = H().op("queue_depth", 10.0, value=before, detail={"platform": platform})
    h.op("queue_metrics", 10.2, value={"jamf": {"queue_depth": reported}})
    if after is not None:
        h.op("queue_depth", 10.4, value=after, detail={"platform": platform})
    return h


CASES[QueueDepthAccurate] = [
    Case(
        "the metric equals the queue read right before and after",
        QueueDepthAccurate("jamf"),
        queue_bracket(3, 3, 3).build(),
        PASS,
        measured({"reported": 3, "queue_before": 3, "queue_after": 3}),
    ),
    Case(
        "a figure between a falling queue's depths before and after",
        QueueDepthAccurate("jamf"),
        queue_bracket(4, 3, 2).build(),
        PASS,
    ),
    Case("the metric says 0 while 3 intents wait", QueueDepthAccurate("jamf"), queue_bracket(3, 0, 3).build(), FAIL),
    Case("a figure outside the bracket", QueueDepthAccurate("jamf"), queue_bracket(3, 5, 3).build(), FAIL),
    Case(
        "no read of the queue after the metric", QueueDepthAccurate("jamf"), queue_bracket(3, 3, None).build(), UNKNOWN
    ),
    Case(
        "reads of another platform's queue do not bracket it",
        QueueDepthAccurate("jamf"),
        queue_bracket(3, 3, 3, platform="intune").build(),
        UNKNOWN,
    ),
]


def dead_letters(h: H, t: float, *keys: str) -> H:
    return h.op("dead_letters", t, value=list(keys), detail={"platform": "jamf"})


FOUR_ATTEMPTS = (10.0, 10.5, 11.5, 13.5)

CASES[DeadLettered] = [
    Case(
        "dead-lettered after exactly the maximum attempts",
        DeadLettered("jamf", ["k1"], 4),
        dead_letters(attempts(H(), "jamf", "k1", *FOUR_ATTEMPTS), 15.0, "k1").build(),
        PASS,
        measured({"dead_lettered": 1, "attempts": [4]}),
    ),
    Case(
        "an intent missing from the dead-letter queue",
        DeadLettered("jamf", ["k1"], 4),
        dead_letters(attempts(H(), "jamf", "k1", *FOUR_ATTEMPTS), 15.0).build(),
        FAIL,
    ),
    Case(
        "dead-lettered after 3 attempts",
        DeadLettered("jamf", ["k1"], 4),
        dead_letters(attempts(H(), "jamf", "k1", *FOUR_ATTEMPTS[:3]), 15.0, "k1").build(),
        FAIL,
        measured_has(attempts=[3]),
    ),
    Case(
        "arrivals after the dead-letter read do not count",
        DeadLettered("jamf", ["k1"], 4),
        attempts(
            dead_letters(attempts(H(), "jamf", "k1", *FOUR_ATTEMPTS), 15.0, "k1").op(
                "requeue", 16.0, detail={"platform": "jamf"}
            ),
            "jamf",
            "k1",
            17.0,
            status=200,
        ).build(),
        PASS,
    ),
    Case(
        "the dead-letter queue was read only after the requeue",
        DeadLettered("jamf", ["k1"], 4),
        dead_letters(
            attempts(H(), "jamf", "k1", *FOUR_ATTEMPTS).op("requeue", 14.0, detail={"platform": "jamf"}), 15.0, "k1"
        ).build(),
        UNKNOWN,
    ),
    Case("no intent was published", DeadLettered("jamf", [], 4), dead_letters(H(), 15.0).build(), UNKNOWN),
    Case(
        "the configured maximum attempts is not known (an external plan that does not state it)",
        DeadLettered("jamf", ["k1"], None),
        dead_letters(attempts(H(), "jamf", "k1", *FOUR_ATTEMPTS), 15.0, "k1").build(),
        UNKNOWN,
        says("targets.connector_backoff"),
    ),
]


def requeued(ok: bool = True) -> H:
    return H().op("requeue", 20.0, ok=ok, status=200 if ok else 500, detail={"platform": "jamf"})


CASES[RequeueConfirmed] = [
    Case(
        "the dead-letter queue emptied of them after the requeue",
        RequeueConfirmed("jamf", ["k1"]),
        dead_letters(requeued(), 21.0).build(),
        PASS,
    ),
    Case(
        "only the read after the requeue counts",
        RequeueConfirmed("jamf", ["k1"]),
        dead_letters(dead_letters(H(), 19.0, "k1").op("requeue", 20.0, detail={"platform": "jamf"}), 21.0).build(),
        PASS,
    ),
    Case(
        "an intent still dead-lettered",
        RequeueConfirmed("jamf", ["k1"]),
        dead_letters(requeued(), 21.0, "k1").build(),
        FAIL,
        measured_has(still_dead_lettered=1),
    ),
    Case(
        "the requeue was refused",
        RequeueConfirmed("jamf", ["k1"]),
        dead_letters(requeued(ok=False), 21.0).build(),
        FAIL,
    ),
    Case("no requeue made", RequeueConfirmed("jamf", ["k1"]), dead_letters(H(), 21.0).build(), UNKNOWN),
    Case(
        "the dead-letter queue not read after the requeue",
        RequeueConfirmed("jamf", ["k1"]),
        dead_letters(H(), 19.0).op("requeue", 20.0, detail={"platform": "jamf"}).build(),
        UNKNOWN,
    ),
]


def published(h: H, t: float, key: str, ring: str, platform: str = "intune") -> H:
    return h.op("publish", t, value=key, status=202, detail={"platform": platform, "ring": ring, "intent_id": 1})


CASES[NoCriticalBacklog] = [
    Case(
        "a critical intent applied seconds after its publish",
        NoCriticalBacklog(),
        published(H(), 10.0, "k1", "ring1").platform_request("intune", 15.0, key="k1", status=200).build(),
        PASS,
        measured({"oldest_critical_s": 4.9, "intents": 1}),
    ),
    Case(
        "an intent waiting 15 minutes on the Control Plane's clock",
        NoCriticalBacklog(),
        published(H(), 10.0, "k1", "ring1")
        .clock(12.0, 900)
        .platform_request("intune", 15.0, key="k1", status=200)
        .build(),
        FAIL,
        measured_has(oldest_critical_s=904.9),
    ),
    Case(
        "an intent never applied counts its age until the end",
        NoCriticalBacklog(),
        published(H(), 10.0, "k1", "ring0").clock(20.0, 700).checkpoint("end", 21.0).build(),
        FAIL,
        measured_has(oldest_critical_s=710.9),
    ),
    Case(
        "a promotion to a critical ring counts from its acceptance",
        NoCriticalBacklog(),
        promote(H(), 10.0, "jamf", to_ring="ring1")
        .clock(11.0, 700)
        .platform_request("jamf", 12.0, key="k1@ring1", status=200)
        .build(),
        FAIL,
    ),
    Case(
        "a non-critical ring may wait",
        NoCriticalBacklog(),
        published(published(H(), 10.0, "k1", "ring1"), 10.0, "k2", "ring3")
        .platform_request("intune", 15.0, key="k1", status=200)
        .clock(16.0, 900)
        .checkpoint("end", 17.0)
        .build(),
        PASS,
    ),
    Case(
        "no intent of a critical ring published",
        NoCriticalBacklog(),
        published(H(), 10.0, "k2", "ring3").build(),
        UNKNOWN,
    ),
]


def site_down() -> H:
    """sccm killed at 10; the Control Plane's SiteOutageRecorded read at 12."""
    return read_events(
        H().inject("down:sccm", 10.0), 12.0, "SiteOutageRecorded", stored("SiteOutageRecorded", "sccm", 11.0)
    )


CASES[SiteOutageRecorded] = [
    Case(
        "the outage recorded and no fallback offered yet",
        SiteOutageRecorded("sccm"),
        read_events(site_down(), 12.5, "ManualImportOffered").clock(20.0, 86400).build(),
        PASS,
        measured({"events": 1, "fallback_offered": False}),
    ),
    Case(
        "a fallback offered at once",
        SiteOutageRecorded("sccm"),
        read_events(site_down(), 12.5, "ManualImportOffered", stored("ManualImportOffered", "sccm", 12.2)).build(),
        FAIL,
    ),
    Case(
        "the outage not recorded",
        SiteOutageRecorded("sccm"),
        read_events(
            read_events(
                H().inject("down:sccm", 10.0), 12.0, "SiteOutageRecorded", stored("SiteOutageRecorded", "jamf", 11.0)
            ),
            12.5,
            "ManualImportOffered",
        ).build(),
        FAIL,
    ),
    Case(
        "an offer read after the clock moved on is not judged here",
        SiteOutageRecorded("sccm"),
        read_events(
            read_events(site_down(), 12.5, "ManualImportOffered").clock(20.0, 86400),
            22.0,
            "ManualImportOffered",
            stored("ManualImportOffered", "sccm", 21.0),
        ).build(),
        PASS,
    ),
    Case(
        "the offers were read only after the clock moved",
        SiteOutageRecorded("sccm"),
        read_events(
            site_down().clock(20.0, 86400), 22.0, "ManualImportOffered", stored("ManualImportOffered", "sccm", 21.0)
        ).build(),
        UNKNOWN,
    ),
    Case(
        "SiteOutageRecorded events were not read",
        SiteOutageRecorded("sccm"),
        read_events(H().inject("down:sccm", 10.0), 12.5, "ManualImportOffered").build(),
        UNKNOWN,
    ),
    Case(
        "no fault on the platform",
        SiteOutageRecorded("sccm"),
        read_events(
            read_events(H(), 12.0, "SiteOutageRecorded", stored("SiteOutageRecorded", "sccm", 11.0)),
            12.5,
            "ManualImportOffered",
        ).build(),
        UNKNOWN,
    ),
]


def offered(clock_s: float, *at: float) -> H:
    h = H().inject("down:sccm", 10.0).clock(20.0, clock_s)
    return read_events(h, 30.0, "ManualImportOffered", *(stored("ManualImportOffered", "sccm", t) for t in at))


CASES[ManualImportOffered] = [
    Case(
        "offered once after more than 24 h on the Control Plane's clock",
        ManualImportOffered("sccm"),
        offered(86400, 21.0).build(),
        PASS,
        measured({"offers": 1, "down_for_s": [86411.0]}),
    ),
    Case(
        "offered 5 s before 24 h on the Control Plane's clock",
        ManualImportOffered("sccm"),
        offered(86380, 25.0).build(),
        FAIL,
        measured_has(down_for_s=[86395.0]),
    ),
    Case("offered twice", ManualImportOffered("sccm"), offered(86400, 21.0, 22.0).build(), FAIL),
    Case(
        "the offers were not read",
        ManualImportOffered("sccm"),
        H().inject("down:sccm", 10.0).clock(20.0, 86400).build(),
        UNKNOWN,
    ),
    Case(
        "no fault on the platform",
        ManualImportOffered("sccm"),
        read_events(
            H().clock(20.0, 86400), 30.0, "ManualImportOffered", stored("ManualImportOffered", "sccm", 21.0)
        ).build(),
        UNKNOWN,
    ),
    Case(
        "no clock control, site down 20 s, no offer yet: unknown",
        ManualImportOffered("sccm"),
        read_events(H().inject("down:sccm", 10.0), 30.0, "ManualImportOffered").build(),
        UNKNOWN,
        says("needs 24 h of real time or clock control"),
    ),
    Case(
        "the clock moved 23 h only before the offers were read: unknown",
        ManualImportOffered("sccm"),
        offered(23 * 3600).build(),
        UNKNOWN,
    ),
]

FAILED_OVER = "connectors-failover"
RB_PLATFORMS = ("intune", "jamf")


def rollback_requested(h: H | None = None, replaced_at: float = 11.0, ok: bool = True) -> H:
    """The connector workers lost at t=10, their replacements logged, a ring0 rollback answered."""
    h = (h or H()).inject(FAILED_OVER, 10.0)
    for platform in RB_PLATFORMS:
        h.event("worker_replaced", "asg", replaced_at, source="asg", platform=platform)
    value = {"rollback_id": "r1", "dispatched": {p: f"rollback:ring0:r1:{p}" for p in RB_PLATFORMS}}
    return h.op("ring_rollback", 12.0, ok=ok, value=value if ok else None, status=200 if ok else 503)


def rolled_back(h: H, platform: str, t: float, tested: bool = True, action: str | None = "rollback") -> H:
    key = f"rollback:ring0:r1:{platform}"
    if tested:
        h.platform_request(platform, t - 0.1, key=key, status=404, outcome="tested", path="/applied")
    fields = {"action": action} if action else {}
    return h.platform_request(platform, t, key=key, status=200, ring="ring0", **fields)


CASES[RingRollbackApplied] = [
    Case(
        "every platform applied the rollback once, key tested, after its worker was replaced",
        RingRollbackApplied("ring0", FAILED_OVER, RB_PLATFORMS),
        rolled_back(rolled_back(rollback_requested(), "intune", 13.0), "jamf", 14.0).build(),
        PASS,
        measured({"platforms": 2, "rollback_id": "r1"}),
    ),
    Case(
        "a platform never got its rollback",
        RingRollbackApplied("ring0", FAILED_OVER, RB_PLATFORMS),
        rolled_back(rollback_requested(), "intune", 13.0).build(),
        FAIL,
        measured_has(missing=["jamf"]),
    ),
    Case(
        "a platform applied the rollback twice",
        RingRollbackApplied("ring0", FAILED_OVER, RB_PLATFORMS),
        rolled_back(rolled_back(rolled_back(rollback_requested(), "intune", 13.0), "jamf", 14.0), "jamf", 15.0).build(),
        FAIL,
        measured_has(twice=["jamf"]),
    ),
    Case(
        "an apply without the connector testing its key first",
        RingRollbackApplied("ring0", FAILED_OVER, RB_PLATFORMS),
        rolled_back(rolled_back(rollback_requested(), "intune", 13.0), "jamf", 14.0, tested=False).build(),
        FAIL,
        measured_has(untested=["jamf"]),
    ),
    Case(
        "the key arrived as a plain deployment, not a rollback",
        RingRollbackApplied("ring0", FAILED_OVER, RB_PLATFORMS),
        rolled_back(rolled_back(rollback_requested(), "intune", 13.0), "jamf", 14.0, action=None).build(),
        FAIL,
        measured_has(not_a_rollback=["jamf"]),
    ),
    Case(
        "applied before any replacement worker ran: the connectors never failed over",
        RingRollbackApplied("ring0", FAILED_OVER, RB_PLATFORMS),
        rolled_back(rolled_back(rollback_requested(replaced_at=20.0), "intune", 13.0), "jamf", 14.0).build(),
        FAIL,
        measured_has(not_by_a_replacement=["intune", "jamf"]),
    ),
    Case(
        "the Control Plane refused the rollback",
        RingRollbackApplied("ring0", FAILED_OVER, RB_PLATFORMS),
        rollback_requested(ok=False).build(),
        FAIL,
    ),
    Case(
        "the connectors were not failed over",
        RingRollbackApplied("ring0", FAILED_OVER, RB_PLATFORMS),
        rolled_back(H().op("ring_rollback", 12.0, value={"dispatched": {}}), "intune", 13.0).build(),
        UNKNOWN,
    ),
    Case(
        "no rollback was requested",
        RingRollbackApplied("ring0", FAILED_OVER, RB_PLATFORMS),
        H().inject(FAILED_OVER, 10.0).build(),
        UNKNOWN,
    ),
]
