"""ServiceHealth counts the API tier (spec: the stateless front end runs in at least three
availability zones): real instances heartbeat into the database, two of three are SIGKILLed,
and publishing through the survivor is refused until they are back. Also the negative-drill
switch --unsafe-publish-while-unhealthy, and heartbeats that never wait for the synchronous
standby (the standby is really stopped while commits wait for it).

This module has its own lab (a primary with a synchronous standby, moto, az1..az3), so that
no other module's instance counts in its tier.
"""

from __future__ import annotations

import json
import threading
import time
import uuid

import pytest

import controlplane
from harness.lab.postgres import PgBinariesMissing, PgCluster, check_binaries, pg_bin_dir
from tests.controlplane.cplab import control_plane_lab, health, poll
from tests.controlplane.test_controlplane import approve, call, commit_evidence, new_intent, sql

pytestmark = pytest.mark.timeout(180)  # integration: tests/conftest.py, by folder

ZONES = ("az1", "az2", "az3")
LIVE_WINDOW_S = 3.0  # controlplane.health.LIVE_WINDOW_S (the tests see the service from outside)
DOWN_DEADLINE = 10.0  # the window, plus a heartbeat, plus a slow machine


@pytest.fixture(scope="module")
def tier(tmp_path_factory):
    try:
        check_binaries(pg_bin_dir())
    except PgBinariesMissing as exc:  # pragma: no cover - depends on the machine
        pytest.skip(str(exc))
    with (
        PgCluster().with_replica("standby", synchronous=True) as pg,
        control_plane_lab(pg, tmp_path_factory, names=ZONES) as lab,
    ):
        yield lab


@pytest.fixture
def zones(tier):
    """az1..az3 serving (restarted if a previous test killed them), az1 seeing all three."""
    for name in ZONES:
        if name not in tier.instances:
            tier.serve(name)
    tier.wait_tier(tier.instances["az1"], len(ZONES))
    return tier


def approved_intent(instance) -> dict:
    intent = new_intent(instance)
    commit_evidence(instance, intent["id"])
    assert approve(instance, intent["id"]).status_code == 200
    return intent


def published_events(lab, intent_id: int) -> int:
    return sql(lab, "SELECT count(*) FROM events WHERE type = 'Published' AND intent_id = %s", (intent_id,))[0][0]


def unhealthy_by_tier(instance) -> dict | None:
    status, body = health(instance)
    return body if status == 503 and body["components"]["api_tier"]["status"] == "down" else None


def test_three_zones_healthy_then_two_killed_refuses_publish_until_they_are_back(zones):
    az1 = zones.instances["az1"]
    for instance in zones.instances.values():
        status, body = health(instance)
        assert status == 200 and body["ServiceHealth"] == "Healthy", body
        tier_part = body["components"]["api_tier"]
        assert tier_part["status"] == "up" and tier_part["detail"].endswith(
            " instances serving (az1, az2, az3); minimum 2"
        ), tier_part
        assert tier_part["detail"].startswith("3 of "), tier_part
    intent = approved_intent(az1)

    killed_at = time.monotonic()
    zones.kill("az2")
    zones.kill("az3")
    body = poll(lambda: unhealthy_by_tier(az1), DOWN_DEADLINE, "az1 /health 503 with api_tier down")
    took = time.monotonic() - killed_at
    assert took >= LIVE_WINDOW_S - 1.0, took  # the killed instances' last beats still counted a while
    assert body["ServiceHealth"] == "Unhealthy" and body["instance"] == "az1"
    assert body["components"]["api_tier"] == {"status": "down", "detail": "1 instance serving (az1); minimum 2"}
    assert {k: v["status"] for k, v in body["components"].items()} == {
        "database": "up",
        "event_store": "up",
        "evidence_store": "up",
        "api_tier": "down",
    }
    live = call(az1, "GET", "/health/live")  # the load balancer's probe does not care
    assert live.status_code == 200
    assert live.json() == {"instance": "az1", "status": "alive", "version": controlplane.__version__}

    refused = call(az1, "POST", f"/intents/{intent['id']}/publish")
    assert refused.status_code == 503, refused.text
    assert refused.json()["gate"] == "ServiceHealth" and refused.json()["cause"] == "api_tier"
    assert refused.json()["error"] == (
        "publish refused: ServiceHealth = Unhealthy (api_tier: 1 instance serving (az1); minimum 2)"
    )
    assert call(az1, "GET", f"/intents/{intent['id']}").json()["state"] == "Approved"
    assert published_events(zones, intent["id"]) == 0

    zones.serve("az2")
    zones.serve("az3")
    zones.wait_tier(az1, 3)
    status, body = health(az1)
    assert status == 200 and body["ServiceHealth"] == "Healthy", body
    published = call(az1, "POST", f"/intents/{intent['id']}/publish")
    assert published.status_code == 200, published.text
    assert published.json()["state"] == "Published" and published.json()["instance"] == "az1"
    assert published_events(zones, intent["id"]) == 1


def test_heartbeats_do_not_wait_for_a_cut_synchronous_standby(zones):
    """The standby is stopped: every commit waits for it (a write answers 504, unconfirmed),
    yet every instance's heartbeat lands at once and /health stays Healthy throughout."""
    standby, primary = zones.pg["standby"], zones.pg.primary
    assert sql(zones, "SELECT current_setting('synchronous_standby_names')") != [("",)]
    writes: list = []
    standby.stop(mode="immediate")
    try:
        cut_at = time.monotonic()
        writer = threading.Thread(
            target=lambda: writes.append(
                call(
                    zones.instances["az2"],
                    "POST",
                    "/intents",
                    key=f"t-{uuid.uuid4()}",
                    body={"ring": "ring0", "platform": "intune"},
                )
            )
        )
        writer.start()
        answers, ages = [], []
        # Two live windows: heartbeats that waited for the standby would be seen late (or never).
        while time.monotonic() - cut_at < 2 * LIVE_WINDOW_S or writer.is_alive():
            for instance in zones.instances.values():
                answers.append(health(instance))
            ages.append(
                max(
                    age
                    for _, age in sql(
                        zones,
                        "SELECT instance, extract(epoch FROM clock_timestamp() - last_seen)::float8"
                        " FROM api_instances WHERE instance = ANY(%s)",
                        (list(ZONES),),
                    )
                )
            )
            time.sleep(0.1)
        writer.join()
    finally:
        standby.start()
    poll(
        lambda: primary.query(
            "SELECT 1 FROM pg_stat_replication WHERE application_name = 'standby' AND state = 'streaming'"
        ),
        20,
        "standby streaming again",
    )

    assert len(writes) == 1 and writes[0].status_code == 504, writes[0].text  # commits did hang
    assert writes[0].json()["outcome"] == "unknown"
    bad = [
        (status, body) for status, body in answers if status != 200 or body["components"]["api_tier"]["status"] != "up"
    ]
    assert not bad, bad[:3]
    assert len(answers) >= 3 * 2 * LIVE_WINDOW_S / 0.5, len(answers)
    assert max(ages) < 1.5, ages  # beats every 0.5 s, none held back by the standby


def test_a_replay_is_acknowledged_only_once_what_it_found_is_durable(zones):
    """With the synchronous standby down, a write's commit is unconfirmed (504) but visible on the
    primary; its replay must not answer 200 (the row would be lost with the primary) until the
    standby confirms it. Also for a drill's operational event, whose replay then writes its SIEM
    line (the first attempt's was never written)."""
    standby, primary = zones.pg["standby"], zones.pg.primary
    az1 = zones.instances["az1"]
    key, event_id = f"t-{uuid.uuid4()}", f"ev-{uuid.uuid4()}"
    operational = {"event_id": event_id, "kind": "inject", "name": "kill-primary:pg-a", "at": time.time()}
    standby.stop(mode="immediate")
    try:
        first_write = call(az1, "POST", "/intents", key=key, body={"ring": "ring0", "platform": "intune"})
        first_event = call(az1, "POST", "/events/operational", cid="drill-x/1", body=operational)
        replay_write = call(az1, "POST", "/intents", key=key, body={"ring": "ring0", "platform": "intune"})
        replay_event = call(az1, "POST", "/events/operational", cid="drill-x/1", body=operational)
        locally = sql(zones, "SELECT count(*) FROM events WHERE payload->>'event_id' = %s", (event_id,))[0][0]
    finally:
        standby.start()
    poll(
        lambda: primary.query(
            "SELECT 1 FROM pg_stat_replication WHERE application_name = 'standby' AND state = 'streaming'"
        ),
        20,
        "standby streaming again",
    )
    assert (first_write.status_code, first_event.status_code) == (504, 504), (first_write.text, first_event.text)
    assert locally == 1  # committed on the primary, not confirmed
    assert replay_write.status_code == 504, replay_write.text  # not "200, already there"
    assert replay_event.status_code == 504, replay_event.text
    siem = zones.siem.read_text() if zones.siem.exists() else ""
    assert event_id not in siem
    # once the standby confirms, the replays are acknowledged, and the SIEM gets its line
    again = call(az1, "POST", "/events/operational", cid="drill-x/1", body=operational)
    assert again.status_code == 200 and again.json()["recorded"] is False, again.text
    assert call(az1, "POST", "/intents", key=key, body={"ring": "ring0", "platform": "intune"}).status_code == 200
    lines = [json.loads(line) for line in zones.siem.read_text().splitlines() if event_id in line]
    assert len(lines) == 1 and lines[0]["correlation_id"] == "drill-x/1" and lines[0]["event_id"] == event_id


def test_unsafe_publish_while_unhealthy_publishes_but_keeps_the_other_gates(zones):
    az1 = zones.instances["az1"]
    unsafe = zones.serve("unsafe", extra=("--unsafe-publish-while-unhealthy",))
    try:
        intent = approved_intent(az1)
        unapproved = new_intent(az1)
        commit_evidence(az1, unapproved["id"])
        # Approved, but its evidence object is not in the store: the evidence gate must refuse.
        missing = new_intent(az1)
        sql(
            zones,
            "INSERT INTO evidence_packs (intent_id, bucket, object_key, version_id, sha256, state,"
            " correlation_id) VALUES (%s, 'drill-evidence', %s, NULL, %s, 'Committed', 'test') RETURNING id",
            (missing["id"], f"evidence/{missing['id']}/absent.json", "0" * 64),
        )
        assert approve(az1, missing["id"]).status_code == 200

        for name in ZONES:
            zones.kill(name)
        body = poll(lambda: unhealthy_by_tier(unsafe), DOWN_DEADLINE, "unsafe /health 503 with api_tier down")
        assert body["components"]["api_tier"] == {"status": "down", "detail": "1 instance serving (unsafe); minimum 2"}

        published = call(unsafe, "POST", f"/intents/{intent['id']}/publish")
        assert published.status_code == 200, published.text  # the misbehaviour a drill must catch
        assert published.json()["state"] == "Published" and published.json()["instance"] == "unsafe"
        assert published_events(zones, intent["id"]) == 1
        assert health(unsafe)[1]["ServiceHealth"] == "Unhealthy"  # it was unhealthy all along

        no_approval = call(unsafe, "POST", f"/intents/{unapproved['id']}/publish")
        assert no_approval.status_code == 409 and no_approval.json()["gate"] == "Approval", no_approval.text
        no_object = call(unsafe, "POST", f"/intents/{missing['id']}/publish")
        assert no_object.status_code == 503, no_object.text
        assert no_object.json()["gate"] == "EvidencePackReadable" and no_object.json()["cause"] == "evidence_store"
        assert published_events(zones, unapproved["id"]) == published_events(zones, missing["id"]) == 0

        log = unsafe.log_text()
        assert "WARNING UNSAFE: --unsafe-publish-while-unhealthy" in log
        assert f"UNSAFE: intent {intent['id']}: ServiceHealth gate skipped" in log
    finally:
        zones.stop("unsafe")
