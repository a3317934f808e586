"""The reference Control Plane as real processes: API rules, event store, evidence store, outages."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
import uuid

import boto3
import psycopg
import pytest
import requests
from botocore.exceptions import ClientError

import controlplane
from harness.lab.postgres import free_port
from tests.controlplane.cplab import BUCKET, REPLICA_BUCKET, app_conninfo, poll

pytestmark = pytest.mark.timeout(120)  # integration: tests/conftest.py, by folder

HTTP_TIMEOUT = 15.0


# ---- helpers -----------------------------------------------------------------------


def call(
    instance, method: str, path: str, *, key: str | None = None, cid: str | None = None, body: dict | None = None
) -> requests.Response:
    headers = {}
    if key:
        headers["Idempotency-Key"] = key
    if cid:
        headers["X-Correlation-Id"] = cid
    return requests.request(method, instance.url + path, json=body, headers=headers, timeout=HTTP_TIMEOUT)


def new_intent(instance, key: str | None = None, cid: str | None = None) -> dict:
    response = call(
        instance,
        "POST",
        "/intents",
        key=key or f"t-{uuid.uuid4()}",
        cid=cid,
        body={"ring": "ring0", "platform": "intune", "payload": {"app": "drill"}},
    )
    assert response.status_code == 201, response.text
    return response.json()


def commit_evidence(instance, intent_id: int, content: str = '{"checks": "passed"}') -> dict:
    response = call(instance, "POST", f"/intents/{intent_id}/evidence", body={"content": content})
    assert response.status_code == 201, response.text
    return response.json()


def approve(instance, intent_id: int) -> requests.Response:
    return call(instance, "POST", f"/intents/{intent_id}/approve", body={"approver": "cab-chair"})


def sql(cplab, statement: str, params=()) -> list[tuple]:
    with psycopg.connect(cplab.pg.primary.dsn, autocommit=True) as conn:
        return conn.execute(statement, params).fetchall()


def table_counts(cplab) -> dict[str, int]:
    return {
        t: sql(cplab, f"SELECT count(*) FROM {t}")[0][0]
        for t in ("intents", "evidence_packs", "approvals", "publishes", "events")
    }


def s3(cplab):
    return boto3.client(
        "s3",
        endpoint_url=cplab.moto.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id=cplab.env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=cplab.env["AWS_SECRET_ACCESS_KEY"],
    )


# ---- health, intents ---------------------------------------------------------------


def test_every_instance_reports_service_health_healthy(cplab):
    for instance in cplab.instances.values():
        live = call(instance, "GET", "/health/live")
        assert live.json() == {"instance": instance.name, "status": "alive", "version": controlplane.__version__}
        health = call(instance, "GET", "/health")
        body = health.json()
        assert health.status_code == 200, body
        assert body["ServiceHealth"] == "Healthy" and body["instance"] == instance.name
        assert {k: v["status"] for k, v in body["components"].items()} == {
            "database": "up",
            "event_store": "up",
            "evidence_store": "up",
            "api_tier": "up",
        }
        assert list(body["components"]) == ["database", "event_store", "evidence_store", "api_tier"]
        assert body["components"]["api_tier"]["detail"].endswith(" instances serving (az1, az2); minimum 2"), body


def test_correlation_id_is_echoed_or_generated(cplab):
    az1 = cplab.instances["az1"]
    assert call(az1, "GET", "/health/live", cid="drill-cid-1").headers["X-Correlation-Id"] == "drill-cid-1"
    uuid.UUID(call(az1, "GET", "/health/live").headers["X-Correlation-Id"])


def test_intent_creation_requires_the_idempotency_key_header(cplab):
    response = requests.post(
        cplab.instances["az1"].url + "/intents", json={"ring": "r", "platform": "p"}, timeout=HTTP_TIMEOUT
    )
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["error"]


def test_replayed_idempotency_key_returns_the_original_intent_and_no_new_event(cplab):
    az1 = cplab.instances["az1"]
    key = f"idem-{uuid.uuid4()}"
    first = new_intent(az1, key=key)
    assert first["state"] == "Draft" and first["idempotency_key"] == key
    replay = call(az1, "POST", "/intents", key=key, body={"ring": "ring0", "platform": "intune", "payload": {}})
    assert replay.status_code == 200
    assert replay.json()["id"] == first["id"]
    assert sql(
        cplab, "SELECT count(*) FROM events WHERE type = 'IntentCreated' AND intent_id = %s", (first["id"],)
    ) == [(1,)]
    listed = call(az1, "GET", f"/intents?key_prefix={key}").json()["intents"]
    assert listed == [{"id": first["id"], "idempotency_key": key, "state": "Draft"}]
    assert call(az1, "GET", "/intents/999999999").status_code == 404


def test_a_second_instance_sees_the_first_instances_writes(cplab):
    az1, az2 = cplab.instances["az1"], cplab.instances["az2"]
    intent = new_intent(az1)
    seen = call(az2, "GET", f"/intents/{intent['id']}")
    assert seen.status_code == 200 and seen.json()["idempotency_key"] == intent["idempotency_key"]
    replay = call(az2, "POST", "/intents", key=intent["idempotency_key"], body={"ring": "ring0", "platform": "intune"})
    assert replay.status_code == 200 and replay.json()["id"] == intent["id"]


# ---- gates ---------------------------------------------------------------------------


def test_approval_is_refused_until_the_evidence_pack_is_committed(cplab):
    az1 = cplab.instances["az1"]
    intent = new_intent(az1)
    refused = approve(az1, intent["id"])
    assert refused.status_code == 409
    assert refused.json() == {
        "gate": "EvidencePackState",
        "error": "approval refused: EvidencePackState = Pending (evidence pack not committed)",
    }
    assert sql(cplab, "SELECT count(*) FROM approvals WHERE intent_id = %s", (intent["id"],)) == [(0,)]
    pack = commit_evidence(az1, intent["id"])
    assert pack["EvidencePackState"] == "Committed" and pack["version_id"]
    before = call(az1, "GET", "/events/count?type=ApprovalRecorded").json()["count"]
    accepted = approve(az1, intent["id"])
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["state"] == "Approved"
    assert approve(az1, intent["id"]).status_code == 200  # a replay records nothing new
    assert call(az1, "GET", "/events/count?type=ApprovalRecorded").json()["count"] == before + 1


def test_publish_is_refused_without_approval_and_allowed_when_healthy(cplab):
    az2 = cplab.instances["az2"]
    intent = new_intent(az2)
    commit_evidence(az2, intent["id"])
    refused = call(az2, "POST", f"/intents/{intent['id']}/publish")
    assert refused.status_code == 409 and refused.json()["gate"] == "Approval"
    assert approve(az2, intent["id"]).status_code == 200
    published = call(az2, "POST", f"/intents/{intent['id']}/publish")
    assert published.status_code == 200, published.text
    assert published.json() == {
        "intent_id": intent["id"],
        "state": "Published",
        "instance": "az2",
        "evidence_source": "primary",
        "platform": "intune",
        "ring": "ring0",
        "idempotency_key": intent["idempotency_key"],
    }
    assert call(az2, "GET", f"/intents/{intent['id']}").json()["state"] == "Published"


# ---- event store -----------------------------------------------------------------------


def test_concurrent_appends_from_two_instances_keep_one_valid_chain(cplab):
    instances = [cplab.instances["az1"], cplab.instances["az2"]]
    errors: list[str] = []

    def create(i: int) -> None:
        try:
            new_intent(instances[i % 2])
        except AssertionError as exc:
            errors.append(str(exc))

    threads = [threading.Thread(target=create, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(HTTP_TIMEOUT)
    assert not errors
    verify = call(instances[1], "GET", "/events/verify").json()
    assert verify == {"ok": True, "count": table_counts(cplab)["events"], "first_bad_seq": None}
    page = call(instances[0], "GET", "/events?after=0&limit=3").json()["events"]
    assert [e["prev_hash"] for e in page[:1]] == ["0" * 64]
    assert page[1]["prev_hash"] == page[0]["hash"]


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE events SET type = 'Forged' WHERE seq = (SELECT min(seq) FROM events)",
        "DELETE FROM events WHERE seq = (SELECT min(seq) FROM events)",
        "TRUNCATE events",
    ],
    ids=["update", "delete", "truncate"],
)
def test_the_database_refuses_to_change_events(cplab, statement):
    new_intent(cplab.instances["az1"])
    with pytest.raises(psycopg.Error, match="events is append-only"):
        sql(cplab, statement)
    assert call(cplab.instances["az1"], "GET", "/events/verify").json()["ok"] is True


# ---- evidence store ----------------------------------------------------------------------


def test_evidence_object_is_locked_and_its_version_cannot_be_deleted(cplab):
    az1 = cplab.instances["az1"]
    intent = new_intent(az1)
    pack = commit_evidence(az1, intent["id"], content='{"scan": "clean"}')
    key = f"evidence/{intent['id']}/{pack['sha256']}.json"
    client = s3(cplab)
    head = client.head_object(Bucket=BUCKET, Key=key, VersionId=pack["version_id"])
    # spec 1.3 and 3: WORM, kept >= 7 years (2557 days hold any 7 calendar years)
    assert head["ObjectLockMode"] == "COMPLIANCE"
    assert head["ObjectLockRetainUntilDate"] >= dt.datetime.now(dt.UTC) + dt.timedelta(days=2557, minutes=-5)
    with pytest.raises(ClientError, match="AccessDenied"):
        client.delete_object(Bucket=BUCKET, Key=key, VersionId=pack["version_id"])
    body = client.get_object(Bucket=BUCKET, Key=key, VersionId=pack["version_id"])["Body"].read()
    assert body == b'{"scan": "clean"}'
    for bucket in (BUCKET, REPLICA_BUCKET):
        assert client.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
        assert (
            client.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]["ObjectLockEnabled"]
            == "Enabled"
        )


def test_evidence_store_outage_answers_503_and_blocks_publish(cplab):
    dead_s3 = f"http://127.0.0.1:{free_port()}"
    az3 = cplab.serve("az3-no-s3", s3=dead_s3)
    try:
        intent = new_intent(az3)
        started = time.monotonic()
        response = call(az3, "POST", f"/intents/{intent['id']}/evidence", body={"content": "x"})
        assert time.monotonic() - started < 8.0
        assert response.status_code == 503
        assert response.json()["cause"] == "evidence_store"
        assert response.json()["error"].startswith("evidence store unavailable: ")
        health = call(az3, "GET", "/health")
        assert health.status_code == 503 and health.json()["components"]["evidence_store"]["status"] == "down"
        refused = call(az3, "POST", f"/intents/{intent['id']}/publish")
        assert refused.status_code == 503
        assert refused.json()["gate"] == "ServiceHealth" and refused.json()["cause"] == "evidence_store"
    finally:
        cplab.stop("az3-no-s3")


def test_an_instance_on_a_read_only_replica_is_unhealthy_and_refuses_writes(cplab):
    before = table_counts(cplab)
    ro = cplab.serve("az3-replica", conninfo=app_conninfo(cplab.pg["replica"].port))
    try:
        health = call(ro, "GET", "/health")
        assert health.status_code == 503
        assert health.json()["components"]["database"] == {
            "status": "down",
            "detail": "read-only: in recovery (a replica cannot take writes)",
        }
        created = call(ro, "POST", "/intents", key=f"t-{uuid.uuid4()}", body={"ring": "r", "platform": "p"})
        assert created.status_code == 503 and created.json()["cause"] == "database"
        assert "read-only" in created.json()["error"]
    finally:
        cplab.stop("az3-replica")
    assert table_counts(cplab) == before


# ---- SIEM, secrets -----------------------------------------------------------------------


def test_siem_has_one_line_per_event_with_the_correlation_id_and_no_secret(cplab):
    cid = f"drill-{uuid.uuid4()}"
    intent = new_intent(cplab.instances["az2"], cid=cid)
    lines = [json.loads(line) for line in cplab.siem.read_text().splitlines()]
    events = sql(cplab, "SELECT seq, type, correlation_id, hash FROM events ORDER BY seq")
    assert sorted(line["seq"] for line in lines) == [seq for seq, *_ in events]
    mine = [line for line in lines if line["correlation_id"] == cid]
    assert [(m["type"], m["intent_id"], m["instance"]) for m in mine] == [("IntentCreated", intent["id"], "az2")]
    assert set(mine[0]) == {"at", "instance", "type", "intent_id", "correlation_id", "seq", "hash"}
    secrets_ = [cplab.pg.password, cplab.env["AWS_SECRET_ACCESS_KEY"]]
    texts = [cplab.siem.read_text()] + [i.log_text() for i in cplab.instances.values()]
    assert not [s for s in secrets_ for text in texts if s in text]
    assert f"correlation_id={cid}" in cplab.instances["az2"].log_text()


def siem_lines(cplab) -> list[dict]:
    return [json.loads(line) for line in cplab.siem.read_text().splitlines()] if cplab.siem.exists() else []


def drill_event(instance, event_id: str, cid: str) -> requests.Response:
    return call(
        instance,
        "POST",
        "/events/operational",
        cid=cid,
        body={
            "event_id": event_id,
            "kind": "fault",
            "name": "kill_az2",
            "at": "2024-01-01T00:00:00Z",
            "detail": {"target": "az2"},
        },
    )


def test_a_drill_event_reaches_the_siem_with_its_event_id(cplab):
    event_id, cid = f"ev-{uuid.uuid4()}", f"drill-{uuid.uuid4()}"
    recorded = drill_event(cplab.instances["az1"], event_id, cid)
    assert recorded.status_code == 201, recorded.text
    mine = [line for line in siem_lines(cplab) if line["correlation_id"] == cid]
    assert len(mine) == 1, mine
    assert set(mine[0]) == {
        "at",
        "instance",
        "type",
        "intent_id",
        "correlation_id",
        "seq",
        "hash",
        "event_id",
        "kind",
        "name",
    }
    assert (
        mine[0]["type"],
        mine[0]["event_id"],
        mine[0]["kind"],
        mine[0]["name"],
        mine[0]["instance"],
        mine[0]["seq"],
    ) == ("DrillEvent", event_id, "fault", "kill_az2", "az1", recorded.json()["seq"])
    assert drill_event(cplab.instances["az2"], event_id, cid).json() == {"event_id": event_id, "recorded": False}
    # a replay appends nothing to the store, and gives the SIEM its line again (at least once: the
    # first attempt's line is never written when its commit goes unconfirmed)
    assert [line["event_id"] for line in siem_lines(cplab) if line.get("event_id") == event_id] == [event_id] * 2
    stored = call(cplab.instances["az1"], "GET", f"/events?correlation_id={cid}").json()["events"]
    assert len(stored) == 1


def test_a_drill_event_keeps_who_posted_it_and_refuses_an_empty_emitter(cplab):
    """The emitter (the deployment's failover manager, or the harness's forwarder) is kept in the
    stored payload as said; one that is not a non-empty string is refused, nothing appended."""
    cid, az1 = f"drill-{uuid.uuid4()}", cplab.instances["az1"]
    body = {
        "event_id": f"ev-{uuid.uuid4()}",
        "kind": "promote",
        "name": "pg-b",
        "at": 1.0,
        "emitter": "failover-manager",
    }
    assert call(az1, "POST", "/events/operational", cid=cid, body=body).status_code == 201
    refused = call(az1, "POST", "/events/operational", cid=cid, body={**body, "event_id": "ev-x", "emitter": ""})
    assert refused.status_code == 400 and "emitter" in refused.text
    stored = call(az1, "GET", f"/events?correlation_id={cid}").json()["events"]
    assert [e["payload"].get("emitter") for e in stored] == ["failover-manager"]


def test_unsafe_skip_siem_writes_no_siem_line_but_every_event(cplab):
    quiet = cplab.serve("nosiem", extra=("--unsafe-skip-siem",))
    try:
        before = siem_lines(cplab)
        event_id, cid = f"ev-{uuid.uuid4()}", f"drill-{uuid.uuid4()}"
        recorded = drill_event(quiet, event_id, cid)
        assert recorded.status_code == 201, recorded.text
        intent = new_intent(quiet, cid=cid)
        # The SIEM line is written after the commit and before the answer: none came.
        assert siem_lines(cplab) == before
        stored = call(quiet, "GET", f"/events?correlation_id={cid}").json()["events"]
        assert [(e["type"], e["payload"].get("event_id"), e["intent_id"]) for e in stored] == [
            ("DrillEvent", event_id, None),
            ("IntentCreated", None, intent["id"]),
        ]
        # The other instances still feed the SIEM.
        other = f"drill-{uuid.uuid4()}"
        new_intent(cplab.instances["az1"], cid=other)
        assert [line["correlation_id"] for line in siem_lines(cplab)[len(before) :]] == [other]
        assert "WARNING UNSAFE: --unsafe-skip-siem" in quiet.log_text()
        assert "UNSAFE" not in cplab.instances["az1"].log_text()
    finally:
        cplab.stop("nosiem")


# ---- migrate -------------------------------------------------------------------------------


def test_migrate_twice_is_fine_and_keeps_the_data(cplab):
    before = table_counts(cplab)
    result = cplab.migrate()
    assert result.returncode == 0, result.stderr
    assert table_counts(cplab) == before
    assert call(cplab.instances["az1"], "GET", "/events/verify").json()["ok"] is True


def test_migrate_against_an_unreachable_database_exits_2_with_one_message(cplab):
    result = cplab.migrate(conninfo=app_conninfo(free_port()))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0
    assert result.stderr.startswith("controlplane migrate: database unreachable")


def test_migrate_against_an_unreachable_evidence_store_exits_2_with_one_message(cplab):
    result = cplab.migrate(s3=f"http://127.0.0.1:{free_port()}")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and result.stderr.strip().count("\n") == 0
    assert result.stderr.startswith("controlplane migrate: evidence store unreachable at http://127.0.0.1:")


def test_a_password_on_the_command_line_is_refused(cplab):
    result = cplab.migrate(conninfo=app_conninfo(cplab.pg.primary.port) + " password=oops-secret")
    assert result.returncode == 2 and "PGPASSWORD" in result.stderr
    assert "oops-secret" not in result.stderr


# ---- database outage (last: it stops the primary and starts it again) ---------------------


def test_database_outage_answers_503_writes_nothing_and_recovers_without_restart(cplab):
    az1 = cplab.instances["az1"]
    to_approve = new_intent(az1)
    commit_evidence(az1, to_approve["id"])
    to_publish = new_intent(az1)
    commit_evidence(az1, to_publish["id"])
    assert approve(az1, to_publish["id"]).status_code == 200
    before = table_counts(cplab)

    cplab.pg.primary.stop()
    try:
        for path, body in [
            (f"/intents/{to_approve['id']}/approve", {"approver": "cab-chair"}),
            (f"/intents/{to_publish['id']}/publish", None),
        ]:
            started = time.monotonic()
            response = call(az1, "POST", path, body=body)
            assert time.monotonic() - started < 6.0, path
            assert response.status_code == 503, response.text
            assert response.json()["cause"] == "database"
        created = call(az1, "POST", "/intents", key=f"t-{uuid.uuid4()}", body={"ring": "r", "platform": "p"})
        assert created.status_code == 503
        assert created.json()["error"].startswith("database unavailable: ")
        health = call(az1, "GET", "/health")
        assert health.status_code == 503 and health.json()["ServiceHealth"] == "Unhealthy"
        assert health.json()["components"]["database"]["status"] == "down"
    finally:
        cplab.pg.primary.start()

    assert table_counts(cplab) == before
    # The same instance, not restarted: its pooled connections are dead and are replaced.
    assert approve(az1, to_approve["id"]).status_code == 200
    # Healthy again once the instances' heartbeats land on the restarted primary (api_tier).
    poll(lambda: call(az1, "GET", "/health").status_code == 200, 10.0, "az1 /health Healthy after the restart")
    published = call(az1, "POST", f"/intents/{to_publish['id']}/publish")
    assert published.status_code == 200, published.text
    assert call(az1, "GET", "/health").json()["ServiceHealth"] == "Healthy"
    assert call(cplab.instances["az2"], "GET", "/events/verify").json()["ok"] is True


def test_platform_routes_refuse_bad_input_and_the_clock_moves_only_in_a_lab(cplab):
    az1 = cplab.instances["az1"]
    assert call(az1, "POST", "/_clock/advance", body={"seconds": 60}).status_code == 403
    unknown = call(az1, "GET", "/platforms/solaris")
    assert unknown.status_code == 404 and "known: intune" in unknown.json()["error"]
    bad = call(az1, "POST", "/platforms/jamf/observations", body={"outcome": "sideways"})
    assert bad.status_code == 400 and bad.json()["field"] == "outcome"
    assert (
        call(az1, "POST", "/platforms/jamf/observations", body={"outcome": "ok", "wait_s": "soon"}).json()["field"]
        == "wait_s"
    )
    intent = new_intent(az1)
    draft = call(az1, "POST", f"/intents/{intent['id']}/promote", body={"to_ring": "ring2"})
    assert draft.status_code == 409 and draft.json()["gate"] == "Published"
    assert call(az1, "POST", f"/intents/{intent['id']}/promote", body={}).status_code == 400


def test_a_platform_observed_down_pauses_its_promotions_and_recovers_on_an_ok(cplab):
    az1 = cplab.instances["az1"]
    down = call(az1, "POST", "/platforms/landscape/observations", body={"outcome": "unreachable", "op": "probe"})
    assert down.status_code == 201 and down.json()["PromotionsPaused"] and down.json()["health"] == "Down"
    intent = new_intent(az1)
    commit_evidence(az1, intent["id"])
    approve(az1, intent["id"])
    # intents default to intune here; the landscape pause does not touch them
    assert call(az1, "POST", f"/intents/{intent['id']}/publish").status_code == 200
    assert call(az1, "POST", f"/intents/{intent['id']}/promote", body={"to_ring": "ring2"}).status_code == 200
    up = call(az1, "POST", "/platforms/landscape/observations", body={"outcome": "ok", "op": "probe"})
    assert up.json()["health"] == "Healthy" and not up.json()["PromotionsPaused"]
    kinds = [e["type"] for e in call(az1, "GET", "/events?type=PlatformRecovered&limit=1000").json()["events"]]
    assert kinds and set(kinds) == {"PlatformRecovered"}
