"""Ring rollback (spec section 4: "Rollback validation: Ring 0 test ensures rollback pipeline works
even if connectors were in failover") against real processes: a Control Plane instance with the
connector queues (--sqs-endpoint), the lab's connector tier (moto SQS, one platform stand-in and
one connector worker per platform, the auto-scaling group replacing a killed worker), and
POST /rings/{ring}/rollback.

Own lab (PostgreSQL, moto, az1 and az2 without queues, rb with them). What reached each
platform is read from its stand-in's request log.
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
from types import SimpleNamespace

import pytest

from harness.lab import proc, reaper
from harness.lab.connectors import ConnectorTier, ProcessLauncher
from harness.lab.postgres import PgBinariesMissing, PgCluster, check_binaries, pg_bin_dir
from tests.controlplane.cplab import control_plane_lab, poll
from tests.controlplane.test_controlplane import approve, call, commit_evidence, sql

pytestmark = pytest.mark.timeout(150)  # integration: tests/conftest.py, by folder

PLATFORMS = ("intune", "jamf", "sccm", "landscape", "ansible")
# A message a worker received just as it was killed comes back after the queue's visibility
# timeout (30 s): the deadline covers that redelivery.
DEADLINE = 60.0
LONG_POLL_S = 1.0  # harness.lab.connectors.CONNECTOR_ARGS --wait-time


@pytest.fixture(scope="module")
def rb(tmp_path_factory):
    try:
        check_binaries(pg_bin_dir())
    except PgBinariesMissing as exc:  # pragma: no cover - depends on the machine
        pytest.skip(str(exc))
    with PgCluster() as pg, control_plane_lab(pg, tmp_path_factory) as lab:
        tag = "drillrb-" + secrets.token_hex(4)
        registration = reaper.Registration(tag, "connectors", tag=tag)
        root = tmp_path_factory.mktemp(tag)
        tier = ConnectorTier(
            root,
            tag,
            ProcessLauncher(root, registration, lab.env),
            proxy=lambda name, upstream: upstream,
            sqs_endpoint=lab.moto.endpoint_url,
        )
        try:
            tier.start_queues_and_mocks()
            instance = lab.serve("rb", extra=("--sqs-endpoint", lab.moto.endpoint_url, "--queue-prefix", tier.prefix))
            tier.start_workers(instance.url)
            yield SimpleNamespace(lab=lab, tier=tier, cp=instance)
        finally:
            pids = [p.pid for p in [*tier.workers.values(), *tier.mocks.values()]]
            tier.stop()
            registration.close()
            assert proc.wait_gone(pids, timeout=10) == []


def published(rb, ring: str, platform: str) -> dict:
    """An intent created, evidenced, approved and published through rb: its publish answer."""
    key = f"rb-{uuid.uuid4()}"
    created = call(rb.cp, "POST", "/intents", key=key, body={"ring": ring, "platform": platform})
    assert created.status_code == 201, created.text
    iid = created.json()["id"]
    commit_evidence(rb.cp, iid)
    assert approve(rb.cp, iid).status_code == 200
    answer = call(rb.cp, "POST", f"/intents/{iid}/publish")
    assert answer.status_code == 200 and answer.json()["dispatch"] == "enqueued", answer.text
    return answer.json()


def metrics(rb, platform: str) -> dict:
    try:
        return json.loads((rb.tier.root / f"connector-{platform}.json").read_text())
    except (OSError, ValueError):
        return {}


def applies(rb, platform: str, key: str) -> list[dict]:
    """The POST /apply arrivals of one key at the platform's stand-in (not the /applied tests)."""
    return [x for x in rb.tier.platform_requests(platform) if x["path"] == "/apply" and x["idempotency_key"] == key]


def wait_applied(rb, platform: str, key: str) -> None:
    poll(
        lambda: any(x["outcome"] == "applied" for x in applies(rb, platform, key)),
        DEADLINE,
        f"{key} applied at {platform}",
    )


def rollback(rb, ring: str, approver: str = "cab-chair", key: str | None = None, instance=None):
    return call(
        instance or rb.cp,
        "POST",
        f"/rings/{ring}/rollback",
        key=key,
        body={"approver": approver},
        cid=f"rollback-{uuid.uuid4()}",
    )


def rollback_events(rb, rollback_id: str) -> list[dict]:
    events = call(rb.cp, "GET", "/events?type=RingRolledBack&limit=1000").json()["events"]
    return [e for e in events if e["payload"]["rollback_id"] == rollback_id]


def dispatch_states(rb, rollback_id: str) -> dict[str, str]:
    return dict(
        sql(
            rb.lab,
            "SELECT platform, state FROM dispatches WHERE kind = 'rollback' AND rollback_id = %s",
            (rollback_id,),
        )
    )


def wait_rolled_back(rb, body: dict) -> None:
    """Every platform's stand-in applied its rollback key, and every connector reported it."""
    for platform, key in body["dispatched"].items():
        wait_applied(rb, platform, key)
    poll(
        lambda: set(dispatch_states(rb, body["rollback_id"]).values()) == {"applied"},
        DEADLINE,
        "the rollback's dispatches recorded applied (the connectors' reports)",
    )


def test_ring0_rollback_reaches_every_platform_once_with_a_connector_in_failover(rb):
    killed = rb.tier.kill_worker("sccm")  # a connector failed over: the auto-scaling group replaces it
    killed_at = time.monotonic()
    first = published(rb, "ring0", "intune")
    wait_applied(rb, "intune", first["idempotency_key"])
    promoted_intent = published(rb, "ring1", "jamf")
    promoted = call(rb.cp, "POST", f"/intents/{promoted_intent['intent_id']}/promote", body={"to_ring": "ring0"})
    assert promoted.status_code == 200 and promoted.json()["dispatch"] == "enqueued", promoted.text
    wait_applied(rb, "jamf", promoted.json()["idempotency_key"])

    replaced = poll(
        lambda: next((r for r in rb.tier.replacements() if r["old_pid"] == killed), None),
        DEADLINE,
        "the killed sccm worker replaced",
    )
    poll(lambda: (metrics(rb, "sccm").get("updated") or 0) > replaced["at"], DEADLINE, "the new sccm worker running")
    # SQS hands a message to a long poll the killed worker left open until that poll's wait time
    # (1 s) is over; such a message comes back only after the visibility timeout (30 s; covered by
    # test_connectors' killed-worker test). The publishes above normally outlast that window.
    poll(lambda: time.monotonic() - killed_at > LONG_POLL_S + 0.5, DEADLINE, "the killed worker's long poll over")
    answer = rollback(rb, "ring0")
    body = answer.json()
    assert answer.status_code == 200, body
    rid = body["rollback_id"]
    assert len(rid) == 32 and int(rid, 16) >= 0 and body["ring"] == "ring0"
    assert body["dispatched"] == {p: f"rollback:ring0:{rid}:{p}" for p in PLATFORMS}
    assert body["dispatch"] == {p: "enqueued" for p in PLATFORMS}
    assert body["intent_ids"] == {
        "intune": str(first["intent_id"]),
        "jamf": str(promoted_intent["intent_id"]),
        "sccm": "ring:ring0",
        "landscape": "ring:ring0",
        "ansible": "ring:ring0",
    }

    wait_rolled_back(rb, body)
    for platform, key in body["dispatched"].items():
        seen = applies(rb, platform, key)
        assert [(x["outcome"], x["count"], x["action"], x["intent_id"], x["ring"]) for x in seen] == [
            ("applied", 1, "rollback", body["intent_ids"][platform], "ring0")
        ], (platform, seen)
    assert rb.tier.worker_pid("sccm") == replaced["new_pid"]
    (event,) = rollback_events(rb, rid)
    assert event["payload"]["platforms"] == body["dispatched"] and event["payload"]["approver"] == "cab-chair"
    assert event["payload"]["ring"] == "ring0" and event["intent_id"] is None
    assert event["correlation_id"] == answer.headers["X-Correlation-Id"]
    # the intents rolled back stay as they were: a rollback reverts at the platforms
    assert sql(rb.lab, "SELECT state FROM intents WHERE id = %s", (first["intent_id"],)) == [("Published",)]


def test_a_replayed_rollback_is_a_new_one_unless_it_carries_an_idempotency_key(rb):
    one, two = rollback(rb, "ring2"), rollback(rb, "ring2")  # the same body twice, no header
    assert one.status_code == two.status_code == 200, (one.text, two.text)
    assert one.json()["rollback_id"] != two.json()["rollback_id"]
    for body in (one.json(), two.json()):
        wait_rolled_back(rb, body)
        assert len(rollback_events(rb, body["rollback_id"])) == 1
        for platform, key in body["dispatched"].items():
            assert len(applies(rb, platform, key)) == 1

    key = f"rollback-request-{uuid.uuid4()}"
    first = rollback(rb, "ring3", key=key)
    replay = rollback(rb, "ring3", key=key, approver="someone-else")
    assert first.status_code == replay.status_code == 200, (first.text, replay.text)
    assert "replayed" not in first.json() and replay.json()["replayed"] is True
    assert replay.json()["rollback_id"] == first.json()["rollback_id"]
    assert replay.json()["dispatched"] == first.json()["dispatched"]
    assert set(replay.json()["dispatch"].values()) <= {"pending", "enqueued", "applied"}
    wait_rolled_back(rb, first.json())
    assert len(rollback_events(rb, first.json()["rollback_id"])) == 1
    assert sql(rb.lab, "SELECT count(*) FROM dispatches WHERE rollback_id = %s", (first.json()["rollback_id"],)) == [
        (5,)
    ]
    other_ring = rollback(rb, "ring4", key=key)
    assert other_ring.status_code == 409 and other_ring.json()["gate"] == "Idempotency-Key", other_ring.text
    for platform, k in first.json()["dispatched"].items():
        assert len(applies(rb, platform, k)) == 1


def test_rollback_refusals(rb):
    before = call(rb.cp, "GET", "/events/count?type=RingRolledBack").json()["count"]
    no_approver = call(rb.cp, "POST", "/rings/ring0/rollback", body={})
    assert no_approver.status_code == 400 and no_approver.json()["field"] == "approver"
    assert call(rb.cp, "POST", "/rings/ring0/rollback", body={"approver": "  "}).status_code == 400
    no_queues = rollback(rb, "ring0", instance=rb.lab.instances["az1"])  # serve without --sqs-endpoint
    assert no_queues.status_code == 503 and no_queues.json()["cause"] == "queue", no_queues.text
    assert call(rb.cp, "GET", "/events/count?type=RingRolledBack").json()["count"] == before
