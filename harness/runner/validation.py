"""Post-failover validation: the reads `drill validate --after-failover` and the drills' last step
make (the API's health and the lab's checks, event appends in a window, both database copies'
metadata tables and approval counts, the failover events in the store and the SIEM), recorded as
ops; the verdicts are the gates of harness.gates.validation."""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING

from ..gates.validation import (
    ApprovalCountOnDr,
    EventCountGrowth,
    FailoverEventsInSiem,
    MetadataTablesInSync,
    ServicesReady,
)
from ..lab.capabilities import DatabaseNodes, Siem
from ..model import OpKind, Outcome
from ..wait import poll
from ..workload import ApiClient, ControlPlane, Recorder

if TYPE_CHECKING:
    from ..lab.base import Lab

METADATA_TABLES = ("intents", "evidence_packs", "approvals", "publishes", "events", "event_chain_head")
CATCH_UP_S = 30.0
PAGE = 1000


def checks(threshold: int) -> list:
    return [
        ServicesReady(),
        MetadataTablesInSync(),
        EventCountGrowth(threshold),
        ApprovalCountOnDr(),
        FailoverEventsInSiem(),
    ]


def _checksums(lab: Lab, node: str) -> dict[str, list]:
    out = {}
    for table in METADATA_TABLES:
        count, digest = lab.part(DatabaseNodes).node_query(
            node, f"SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {table} t"
        )[0]
        out[table] = [count, digest]
    return out


def _last_seq(client: ApiClient, cid: str) -> int:
    seq, after = 0, 0
    while True:
        reply = client.send(ControlPlane.events(after=after, limit=PAGE), cid)
        if reply.outcome is not Outcome.OK:
            raise RuntimeError(f"the event store cannot be read: {reply.error}")
        page = reply.body["events"]
        if page:
            seq = page[-1]["seq"]
        if len(page) < PAGE:
            return seq
        after = page[-1]["seq"]


def collect(lab: Lab, recorder: Recorder, cid: str, writes: int = 5, window: float = 3.0) -> None:
    """Make every read the validation judges, each recorded as one op of `recorder`."""
    client = ApiClient(lab.api_url, timeout=10)
    try:

        def services():
            health = client.health()
            body = health.body if isinstance(health.body, dict) else {}
            parts = {k: v.get("status") for k, v in (body.get("components") or {}).items()}
            lab_checks = {k: [ok, detail] for k, (ok, detail) in lab.steady_state_checks().items()}
            return (
                Outcome.OK,
                {"ServiceHealth": body.get("ServiceHealth"), "components": parts, "lab_checks": lab_checks},
                health.error,
            )

        poll(
            lambda: recorder.invoke(OpKind.SERVICES, services, correlation_id=cid),
            until=lambda op: op.ok and op.value.get("ServiceHealth") == "Healthy",
            timeout=30,
            interval=0.5,
        )

        def growth():
            before = _last_seq(client, cid)
            started = time.monotonic()
            for i in range(writes):
                key = f"validate-{uuid.uuid4().hex[:12]}"
                client.create_intent(key, cid)
                time.sleep(max(0.0, started + (i + 1) * window / writes - time.monotonic()))  # spread over the window
            return (
                Outcome.OK,
                {"before": before, "after": _last_seq(client, cid), "window_s": round(time.monotonic() - started, 3)},
                "",
            )

        recorder.invoke(OpKind.EVENT_GROWTH, growth, correlation_id=cid)

        db = lab.part(DatabaseNodes)
        primary, dr = db.database_primary(), lab.observer.candidate
        poll(lambda: db.replica_caught_up(dr), timeout=CATCH_UP_S, interval=0.2)

        def tables():
            return Outcome.OK, {"primary": _checksums(lab, primary), "dr": _checksums(lab, dr)}, ""

        poll(
            lambda: recorder.invoke(
                OpKind.TABLE_CHECKSUMS, tables, correlation_id=cid, detail={"primary_node": primary, "dr_node": dr}
            ),
            until=lambda op: op.ok and op.value["primary"] == op.value["dr"],
            timeout=CATCH_UP_S,
            interval=0.5,
        )

        def approvals():
            sql = "SELECT count(*) FROM events WHERE type = 'ApprovalRecorded'"
            return Outcome.OK, {"primary": db.node_query(primary, sql)[0][0], "dr": db.node_query(dr, sql)[0][0]}, ""

        recorder.invoke(OpKind.APPROVAL_COUNTS, approvals, correlation_id=cid)

        def drill_events():
            rows, after = [], 0
            while True:
                reply = client.send(ControlPlane.events(after=after, limit=PAGE, type="DrillEvent"), cid)
                if reply.outcome is not Outcome.OK:
                    return reply.outcome, None, reply.error
                rows += reply.body["events"]
                if len(reply.body["events"]) < PAGE:
                    return Outcome.OK, rows, ""
                after = rows[-1]["seq"]

        recorder.invoke(OpKind.VALIDATE_DRILL_EVENTS, drill_events, correlation_id=cid)

        def siem():
            records = lab.part(Siem).siem_records()
            if records is None:
                return Outcome.INFO, None, "the SIEM sink is not readable by this provider"
            return Outcome.OK, records, ""

        recorder.invoke(OpKind.VALIDATE_SIEM, siem, correlation_id=cid)
    finally:
        client.close()
