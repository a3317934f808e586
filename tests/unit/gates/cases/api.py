"""The API tier (matrix row 1; harness/gates/api.py)."""

from __future__ import annotations

from harness.gates import Gate
from harness.gates.api import (
    ConnectorsServeQueuedWork,
    IntentsAndApprovalsBlocked,
    PublishAcceptedWhenHealthy,
    PublishRefusedWhileUnhealthy,
)

from ..builder import H
from .common import FAIL, PASS, UNKNOWN, Case, measured, measured_has, says

CASES: dict[type[Gate], list[Case]] = {}


ALL = "kill-api:all"
API_DOWN = {"error": "Service Unavailable", "cause": "api"}


def tier_killed() -> H:
    return H().op("health", 5.0, detail={"ServiceHealth": "Healthy"}).inject(ALL, 10.0)


def health(h: H, t: float, said: str) -> H:
    return h.op("health", t, status=200 if said == "Healthy" else 503, detail={"ServiceHealth": said})


CASES[IntentsAndApprovalsBlocked] = [
    Case(
        "a new intent and an approval refused with an error and a cause",
        IntentsAndApprovalsBlocked(ALL),
        tier_killed()
        .op("create_intent", 11.0, ok=False, status=503, detail=API_DOWN)
        .op("approve", 12.0, ok=False, status=503, detail=API_DOWN)
        .heal(ALL, 20.0)
        .build(),
        PASS,
    ),
    Case(
        "a new intent accepted while the tier is down",
        IntentsAndApprovalsBlocked(ALL),
        tier_killed()
        .op("create_intent", 11.0, status=201)
        .op("approve", 12.0, ok=False, status=503, detail=API_DOWN)
        .heal(ALL, 20.0)
        .build(),
        FAIL,
    ),
    Case(
        "a refusal without a cause is not a clear error",
        IntentsAndApprovalsBlocked(ALL),
        tier_killed()
        .op("create_intent", 11.0, ok=False, status=503, detail={"error": "Service Unavailable"})
        .op("approve", 12.0, ok=False, status=503, detail=API_DOWN)
        .heal(ALL, 20.0)
        .build(),
        FAIL,
        says("without an error and a cause"),
    ),
    Case(
        "the outage ends when the first instance comes back",
        IntentsAndApprovalsBlocked(ALL),
        tier_killed()
        .op("create_intent", 11.0, ok=False, status=503, detail=API_DOWN)
        .op("approve", 12.0, ok=False, status=503, detail=API_DOWN)
        .heal("kill-api:b", 15.0)
        .op("approve", 16.0, status=200)
        .heal(ALL, 20.0)
        .build(),
        PASS,
    ),
    Case(
        "an approval served while the kills were still landing, before the harness saw the tier dead",
        IntentsAndApprovalsBlocked(ALL),
        tier_killed()
        .op("approve", 10.1, status=200)
        .event("checkpoint", f"{ALL}:down", 10.4)
        .op("create_intent", 11.0, ok=False, status=503, detail=API_DOWN)
        .op("approve", 12.0, ok=False, status=503, detail=API_DOWN)
        .heal(ALL, 20.0)
        .build(),
        PASS,
    ),
    Case(
        "an approval served after the harness saw every instance dead",
        IntentsAndApprovalsBlocked(ALL),
        tier_killed()
        .event("checkpoint", f"{ALL}:down", 10.4)
        .op("create_intent", 11.0, ok=False, status=503, detail=API_DOWN)
        .op("approve", 12.0, status=200)
        .heal(ALL, 20.0)
        .build(),
        FAIL,
    ),
    Case(
        "no approval attempted while every instance was down",
        IntentsAndApprovalsBlocked(ALL),
        tier_killed()
        .op("create_intent", 11.0, ok=False, status=503, detail=API_DOWN)
        .heal(ALL, 20.0)
        .op("approve", 21.0, status=200)
        .build(),
        UNKNOWN,
    ),
    Case(
        "no inject event",
        IntentsAndApprovalsBlocked(ALL),
        H().op("create_intent", 11.0, ok=False, status=503, detail=API_DOWN).build(),
        UNKNOWN,
    ),
]

CASES[PublishRefusedWhileUnhealthy] = [
    Case(
        "a publish between two Unhealthy answers refused",
        PublishRefusedWhileUnhealthy(ALL),
        health(
            health(tier_killed(), 11.0, "Unhealthy").op("publish", 12.0, ok=False, status=503), 13.0, "Unhealthy"
        ).build(),
        PASS,
        measured_has(attempted_while_unhealthy=1, accepted=0),
    ),
    Case(
        "a publish accepted between two Unhealthy answers",
        PublishRefusedWhileUnhealthy(ALL),
        health(health(tier_killed(), 11.0, "Unhealthy").op("publish", 12.0, status=200), 13.0, "Unhealthy").build(),
        FAIL,
        measured_has(accepted=1),
    ),
    Case(
        "a publish between an Unhealthy and a Healthy answer is not judged",
        PublishRefusedWhileUnhealthy(ALL),
        health(health(tier_killed(), 11.0, "Unhealthy").op("publish", 12.0, status=200), 13.0, "Healthy").build(),
        UNKNOWN,
    ),
    Case(
        "a health answer overlapping the publish does not bracket it",
        PublishRefusedWhileUnhealthy(ALL),
        health(tier_killed(), 11.0, "Unhealthy")
        .op("publish", 12.0, status=200)
        .op("health", 12.05, status=503, detail={"ServiceHealth": "Unhealthy"})
        .build(),
        UNKNOWN,
    ),
    Case(
        "no inject event",
        PublishRefusedWhileUnhealthy(ALL),
        health(health(H(), 11.0, "Unhealthy").op("publish", 12.0, status=200), 13.0, "Unhealthy").build(),
        UNKNOWN,
    ),
]

CASES[PublishAcceptedWhenHealthy] = [
    Case(
        "the first publish after a Healthy answer accepted",
        PublishAcceptedWhenHealthy(ALL),
        health(tier_killed().heal(ALL, 20.0), 21.0, "Healthy").op("publish", 22.0, status=200).build(),
        PASS,
        measured_has(after_redeploy_s=2.0),
    ),
    Case(
        "the first publish after a Healthy answer refused",
        PublishAcceptedWhenHealthy(ALL),
        health(tier_killed().heal(ALL, 20.0), 21.0, "Healthy")
        .op("publish", 22.0, ok=False, status=503)
        .op("publish", 23.0, status=200)
        .build(),
        FAIL,
    ),
    Case(
        "a publish before the first Healthy answer is not judged",
        PublishAcceptedWhenHealthy(ALL),
        health(
            health(tier_killed().heal(ALL, 20.0), 20.5, "Unhealthy").op("publish", 21.0, ok=False, status=503),
            22.0,
            "Healthy",
        )
        .op("publish", 23.0, status=200)
        .build(),
        PASS,
    ),
    Case(
        "the fault was never healed",
        PublishAcceptedWhenHealthy(ALL),
        health(tier_killed(), 21.0, "Healthy").op("publish", 22.0, status=200).build(),
        UNKNOWN,
    ),
    Case(
        "no publish after a Healthy answer",
        PublishAcceptedWhenHealthy(ALL),
        health(tier_killed().heal(ALL, 20.0), 21.0, "Unhealthy").op("publish", 22.0, ok=False, status=503).build(),
        UNKNOWN,
    ),
]

CASES[ConnectorsServeQueuedWork] = [
    Case(
        "queued intents applied once while the tier is down",
        ConnectorsServeQueuedWork(ALL, "intune", ["k1", "k2"]),
        tier_killed()
        .platform_request("intune", 12.0, key="k1", status=200)
        .platform_request("intune", 12.0, key="k2", status=429)
        .platform_request("intune", 14.0, key="k2", status=200)
        .heal(ALL, 20.0)
        .build(),
        PASS,
        measured({"queued": 2, "applied_once_while_down": 2}),
    ),
    Case(
        "an intent applied only after the tier came back",
        ConnectorsServeQueuedWork(ALL, "intune", ["k1", "k2"]),
        tier_killed()
        .platform_request("intune", 12.0, key="k1", status=200)
        .heal(ALL, 20.0)
        .platform_request("intune", 25.0, key="k2", status=200)
        .build(),
        FAIL,
    ),
    Case(
        "an intent applied twice while the tier is down",
        ConnectorsServeQueuedWork(ALL, "intune", ["k1"]),
        tier_killed()
        .platform_request("intune", 12.0, key="k1", status=200)
        .platform_request("intune", 13.0, key="k1", status=200)
        .heal(ALL, 20.0)
        .build(),
        FAIL,
    ),
    Case(
        "no intent was queued before the outage",
        ConnectorsServeQueuedWork(ALL, "intune", []),
        tier_killed().heal(ALL, 20.0).build(),
        UNKNOWN,
    ),
    Case(
        "no inject event",
        ConnectorsServeQueuedWork(ALL, "intune", ["k1"]),
        H().platform_request("intune", 12.0, key="k1", status=200).build(),
        UNKNOWN,
    ),
]
