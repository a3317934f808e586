"""Post-failover validation (harness/gates/validation.py)."""

from __future__ import annotations

from harness.gates import Gate
from harness.gates.validation import (
    ApprovalCountOnDr,
    EventCountGrowth,
    FailoverEventsInSiem,
    MetadataTablesInSync,
    ServicesReady,
)

from ..builder import CID, H
from .common import FAIL, PASS, UNKNOWN, Case, measured, measured_has

CASES: dict[type[Gate], list[Case]] = {}


UP = {"database": "up", "event_store": "up", "evidence_store": "up", "api_tier": "up"}


def services(
    t: float, said: str = "Healthy", parts: dict | None = None, checks: dict | None = None, ok: bool = True
) -> H:
    return H().op(
        "services",
        t,
        ok=ok,
        value={
            "ServiceHealth": said,
            "components": parts or UP,
            "lab_checks": checks or {"replication": [True, "streaming"]},
        },
    )


TABLES = {"intents": [10, "a1"], "events": [40, "b2"]}

CASES[ServicesReady] = [
    Case("Healthy, every part up, the lab's checks green", ServicesReady(), services(1.0).build(), PASS),
    Case(
        "an evidence store answering from the alternate region only still serves",
        ServicesReady(),
        services(1.0, parts={**UP, "evidence_store": "degraded"}).build(),
        PASS,
    ),
    Case(
        "ServiceHealth Unhealthy after the failover",
        ServicesReady(),
        services(1.0, "Unhealthy", {**UP, "database": "down"}).build(),
        FAIL,
        measured_has(parts_down={"database": "down"}),
    ),
    Case(
        "the replica not streaming again",
        ServicesReady(),
        services(1.0, checks={"replication": [False, "pg-b: not connected"]}).build(),
        FAIL,
    ),
    Case("the services were not read", ServicesReady(), H().build(), UNKNOWN),
]

CASES[MetadataTablesInSync] = [
    Case(
        "every table equal on both copies",
        MetadataTablesInSync(),
        H()
        .op(
            "table_checksums",
            1.0,
            value={"primary": TABLES, "dr": dict(TABLES)},
            detail={"primary_node": "pg-a", "dr_node": "pg-b"},
        )
        .build(),
        PASS,
    ),
    Case(
        "one table differs on the DR copy",
        MetadataTablesInSync(),
        H().op("table_checksums", 1.0, value={"primary": TABLES, "dr": {**TABLES, "events": [39, "ff"]}}).build(),
        FAIL,
        measured_has(differ=["events"]),
    ),
    Case(
        "a table missing on the DR copy",
        MetadataTablesInSync(),
        H().op("table_checksums", 1.0, value={"primary": TABLES, "dr": {"intents": [10, "a1"]}}).build(),
        FAIL,
    ),
    Case(
        "the DR copy could not be read",
        MetadataTablesInSync(),
        H().op("table_checksums", 1.0, ok=None, error="pg-b: connection refused").build(),
        UNKNOWN,
    ),
]

CASES[EventCountGrowth] = [
    Case(
        "the probe writes' events appended",
        EventCountGrowth(5),
        H().op("event_growth", 1.0, value={"before": 100, "after": 105, "window_s": 3.0}).build(),
        PASS,
        measured({"appended": 5, "window_s": 3.0}),
    ),
    Case(
        "fewer events than the threshold after the failover",
        EventCountGrowth(5),
        H().op("event_growth", 1.0, value={"before": 100, "after": 102, "window_s": 3.0}).build(),
        FAIL,
    ),
    Case("the event store was not read", EventCountGrowth(5), H().build(), UNKNOWN),
]

CASES[ApprovalCountOnDr] = [
    Case(
        "equal on both copies",
        ApprovalCountOnDr(),
        H().op("approval_counts", 1.0, value={"primary": 12, "dr": 12}).build(),
        PASS,
    ),
    Case(
        "the DR copy misses an approval",
        ApprovalCountOnDr(),
        H().op("approval_counts", 1.0, value={"primary": 12, "dr": 11}).build(),
        FAIL,
    ),
    Case("not read", ApprovalCountOnDr(), H().op("approval_counts", 1.0, ok=None, error="timeout").build(), UNKNOWN),
]


def drill_event_rows(*ids: str) -> list[dict]:
    return [
        {"seq": n, "correlation_id": CID, "payload": {"event_id": i, "kind": "inject", "name": f"f{n}"}}
        for n, i in enumerate(ids, start=1)
    ]


CASES[FailoverEventsInSiem] = [
    Case(
        "every failover event of the store in the SIEM",
        FailoverEventsInSiem(),
        H()
        .op("validate_drill_events", 1.0, value=drill_event_rows("e1", "e2"))
        .op(
            "validate_siem",
            2.0,
            value=[{"event_id": "e1", "correlation_id": CID}, {"event_id": "e2", "correlation_id": CID}],
        )
        .build(),
        PASS,
    ),
    Case(
        "one missing in the SIEM",
        FailoverEventsInSiem(),
        H()
        .op("validate_drill_events", 1.0, value=drill_event_rows("e1", "e2"))
        .op("validate_siem", 2.0, value=[{"event_id": "e1", "correlation_id": CID}])
        .build(),
        FAIL,
        measured_has(missing_in_siem=["inject:f2"]),
    ),
    Case(
        "the SIEM not readable",
        FailoverEventsInSiem(),
        H()
        .op("validate_drill_events", 1.0, value=drill_event_rows("e1"))
        .op("validate_siem", 2.0, ok=None, error="no SIEM")
        .build(),
        UNKNOWN,
    ),
    Case(
        "no failover event in the store proves nothing",
        FailoverEventsInSiem(),
        H().op("validate_drill_events", 1.0, value=[]).op("validate_siem", 2.0, value=[]).build(),
        UNKNOWN,
    ),
]
