"""Matrix row 3, evidence store outage, against real processes: retry with exponential backoff,
the validated alternate-region copy (ValidatedCopyExists), failover or "publish blocked".

The primary store of the instances under test is reached through things this module controls:
a TCP forwarder to moto that can be switched to close every connection, or a tiny HTTP server
that answers one status (503, 403) to everything. The replica endpoint is moto itself.
"""

from __future__ import annotations

import hashlib
import http.server
import socket
import threading
import time
import uuid
from itertools import pairwise
from types import SimpleNamespace

import pytest

from harness.lab.postgres import free_port
from harness.wait import poll
from tests.controlplane.cplab import REPLICA_BUCKET
from tests.controlplane.test_controlplane import approve, call, commit_evidence, new_intent, s3, sql

pytestmark = pytest.mark.timeout(120)  # integration: tests/conftest.py, by folder

BACKOFF = 0.1  # seconds: waits 0.1, 0.2, 0.4 between the 4 attempts


class Forwarder:
    """127.0.0.1 TCP forwarder to one port; mode "forward" pipes, "close" closes every new
    connection at once, "hold" keeps it open and never answers (the client's read times out).
    Switching mode drops the connections already piped or held. ``accepted`` counts connections."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.mode = "forward"
        self.accepted = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def set_mode(self, mode: str) -> None:
        self.mode = mode
        with self._lock:
            for sock in self._open:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()
            self._open.clear()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.listener.close()
        self.set_mode("close")

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self.listener.accept()
            except (TimeoutError, OSError):
                continue
            self.accepted += 1
            if self.mode == "hold":
                with self._lock:
                    self._open.add(client)
                continue
            if self.mode != "forward":
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=2)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open.update((client, upstream))
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


class StatusServer(http.server.ThreadingHTTPServer):
    """Answers ``status`` (503 unless changed) with an empty body to every request."""

    daemon_threads = True

    def __init__(self) -> None:
        self.status = 503
        self.requests = 0

        class Handler(http.server.BaseHTTPRequestHandler):
            def answer(self) -> None:
                if self.headers.get("Expect", "").lower() != "100-continue":  # else: answer, no body
                    self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.server.requests += 1
                self.send_response(self.server.status)
                self.send_header("Content-Length", "0")
                self.send_header("Connection", "close")
                self.end_headers()

            do_GET = do_PUT = do_HEAD = do_POST = do_DELETE = answer

            def log_message(self, *args) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        threading.Thread(target=self.serve_forever, daemon=True).start()


def replica_args(endpoint: str, *more: str) -> tuple[str, ...]:
    return (
        "--evidence-replica-bucket",
        REPLICA_BUCKET,
        "--s3-replica-endpoint",
        endpoint,
        "--s3-backoff-base",
        str(BACKOFF),
        "--s3-timeout",
        "1.0",
        *more,
    )


@pytest.fixture(scope="module")
def outage(cplab):
    """Instances whose primary evidence store this module can break, replica on moto."""
    forwarder, status = Forwarder(cplab.moto.port), StatusServer()
    dead = f"http://127.0.0.1:{free_port()}"
    moto = cplab.moto.endpoint_url
    started = []
    try:
        lab = SimpleNamespace(forwarder=forwarder, status=status, dead=dead)
        for attr, name, endpoint, extra in [
            ("eo", "eo-forwarded", forwarder.url, replica_args(moto)),
            ("eo503", "eo-5xx", status.url, replica_args(moto)),
            ("dead", "eo-dead", dead, replica_args(dead)),
            ("unsafe", "eo-unsafe", dead, replica_args(dead, "--unsafe-skip-evidence-check")),
            ("unsafe_approve", "eo-unsafe-approve", moto, replica_args(moto, "--unsafe-approve-without-evidence")),
        ]:
            setattr(lab, attr, cplab.serve(name, s3=endpoint, extra=extra))
            started.append(name)
        yield lab
    finally:
        for name in started:
            cplab.stop(name)
        forwarder.close()
        status.shutdown()
        status.server_close()


@pytest.fixture
def broken_primary(outage):
    """The forwarded instance's primary store closes every connection for the test's duration."""
    outage.forwarder.set_mode("close")
    try:
        yield outage.eo
    finally:
        outage.forwarder.set_mode("forward")


# ---- helpers -----------------------------------------------------------------------------


def approved_intent(instance) -> tuple[dict, dict]:
    intent = new_intent(instance)
    pack = commit_evidence(instance, intent["id"], content=f'{{"checks": "passed", "n": "{uuid.uuid4()}"}}')
    assert approve(instance, intent["id"]).status_code == 200
    return intent, pack


def events_of(instance, cid: str) -> list[dict]:
    return call(instance, "GET", f"/events?correlation_id={cid}").json()["events"]


def assert_exponential_backoff(attempts: list[dict], n: int = 4) -> None:
    """n attempts; the k-th gap is at least base x 2^k, and not far past it.

    A loaded machine makes a wait end late, never early, so the lower bounds are firm and are
    what proves the doubling (a constant or linear backoff misses the last one); the upper bounds
    only catch a wait far too long, with room for the load of a two-worker run (CI once saw the
    first gap 71 ms late: 171, 214, 430 ms)."""
    assert len(attempts) == n, attempts
    assert all(set(a) == {"at_ms", "error"} and a["error"] for a in attempts), attempts
    at = [a["at_ms"] for a in attempts]
    assert at[0] == 0
    gaps = [b - a for a, b in pairwise(at)]
    for k, gap in enumerate(gaps):
        nominal = BACKOFF * 1000 * 2**k
        assert nominal * 0.95 <= gap <= nominal * 1.5 + 400, (k, gaps)


def assert_publish_blocked(response, gate: str) -> dict:
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["gate"] == gate and body["cause"] == "evidence_store"
    assert body["Impact"] == "publish blocked"
    return body


def assert_impact_recorded(instance, cid: str, intent_id: int) -> None:
    impacts = [e for e in events_of(instance, cid) if e["type"] == "ImpactRecorded"]
    assert [(e["intent_id"], e["payload"]) for e in impacts] == [
        (intent_id, {"Impact": "publish blocked", "cause": "evidence_store"})
    ]


# ---- tests -------------------------------------------------------------------------------


def test_evidence_commit_writes_a_validated_replica_copy(cplab, outage):
    eo = outage.eo
    assert call(eo, "GET", "/health").json()["components"]["evidence_store"]["status"] == "up"
    content = '{"scan": "clean", "replica": true}'
    intent = new_intent(eo)
    pack = commit_evidence(eo, intent["id"], content=content)
    assert pack["ValidatedCopyExists"] is True and pack["replica_version_id"]
    replica = s3(cplab).get_object(Bucket=REPLICA_BUCKET, Key=pack["object_key"], VersionId=pack["replica_version_id"])
    assert replica["Body"].read() == content.encode() and replica["ObjectLockMode"] == "COMPLIANCE"
    assert pack["sha256"] == hashlib.sha256(content.encode()).hexdigest()
    assert sql(
        cplab,
        "SELECT replica_validated, replica_version_id, replica_bucket FROM evidence_packs WHERE intent_id = %s",
        (intent["id"],),
    ) == [(True, pack["replica_version_id"], REPLICA_BUCKET)]
    # An instance without a replica bucket says so, and the pack is Committed all the same.
    other = new_intent(cplab.instances["az1"])
    assert commit_evidence(cplab.instances["az1"], other["id"])["ValidatedCopyExists"] is False


def test_primary_unreachable_publish_fails_over_to_the_validated_copy(outage):
    intent, pack = approved_intent(outage.eo)
    assert pack["ValidatedCopyExists"] is True
    outage.forwarder.set_mode("close")
    try:
        health = call(outage.eo, "GET", "/health")
        assert health.status_code == 200, health.text
        assert health.json()["ServiceHealth"] == "Healthy"
        assert health.json()["components"]["evidence_store"]["status"] == "degraded"
        cid = f"eo-{uuid.uuid4()}"
        published = call(outage.eo, "POST", f"/intents/{intent['id']}/publish", cid=cid)
    finally:
        outage.forwarder.set_mode("forward")
    assert published.status_code == 200, published.text
    body = published.json()
    assert body["state"] == "Published" and body["evidence_source"] == "alternate-region"
    assert_exponential_backoff(body["attempts"])
    assert [e["type"] for e in events_of(outage.eo, cid)] == ["EvidenceFailover", "Published"]


def test_primary_unreachable_without_validated_copy_blocks_publish(cplab, outage, broken_primary):
    az1 = cplab.instances["az1"]  # no replica bucket: its packs have no alternate-region copy
    intent, pack = approved_intent(az1)
    assert pack["ValidatedCopyExists"] is False
    publishes = sql(cplab, "SELECT count(*) FROM publishes")

    cid = f"eo-{uuid.uuid4()}"
    started = time.monotonic()
    response = call(broken_primary, "POST", f"/intents/{intent['id']}/publish", cid=cid)
    assert time.monotonic() - started < 5.0
    body = assert_publish_blocked(response, "ValidatedCopyExists")
    assert body["error"].startswith("publish blocked: evidence store unavailable (")
    assert body["ValidatedCopyExists"] is False
    assert_exponential_backoff(body["attempts"])
    assert_impact_recorded(broken_primary, cid, intent["id"])
    assert sql(cplab, "SELECT count(*) FROM publishes") == publishes
    assert call(az1, "GET", f"/intents/{intent['id']}").json()["state"] == "Approved"

    # A new pack cannot be committed either: 503 after the same backoff, nothing recorded.
    other = new_intent(broken_primary)
    refused = call(broken_primary, "POST", f"/intents/{other['id']}/evidence", body={"content": "x"})
    assert refused.status_code == 503 and refused.json()["Impact"] == "publish blocked"
    assert refused.json()["error"].startswith("evidence store unavailable: ")
    assert_exponential_backoff(refused.json()["attempts"])
    assert sql(cplab, "SELECT count(*) FROM evidence_packs WHERE intent_id = %s", (other["id"],)) == [(0,)]

    # The primary is back: the same publish goes through from the primary.
    outage.forwarder.set_mode("forward")
    published = call(broken_primary, "POST", f"/intents/{intent['id']}/publish")
    assert published.status_code == 200, published.text
    assert published.json()["evidence_source"] == "primary"


def test_5xx_from_the_store_is_retried_with_the_same_backoff_and_4xx_is_not(cplab, outage):
    eo503, status = outage.eo503, outage.status
    intent = new_intent(eo503)
    response = call(eo503, "POST", f"/intents/{intent['id']}/evidence", body={"content": "y"})
    assert response.status_code == 503 and response.json()["cause"] == "evidence_store"
    assert_exponential_backoff(response.json()["attempts"])
    assert "503" in response.json()["attempts"][0]["error"]

    health = call(eo503, "GET", "/health").json()
    assert health["ServiceHealth"] == "Healthy" and health["components"]["evidence_store"]["status"] == "degraded"
    validated, _ = approved_intent(outage.eo)  # committed with a validated copy, primary was fine
    published = call(eo503, "POST", f"/intents/{validated['id']}/publish")
    assert published.status_code == 200 and published.json()["evidence_source"] == "alternate-region"
    unvalidated, _ = approved_intent(cplab.instances["az1"])
    cid = f"eo-{uuid.uuid4()}"
    body = assert_publish_blocked(
        call(eo503, "POST", f"/intents/{unvalidated['id']}/publish", cid=cid), "ValidatedCopyExists"
    )
    assert_exponential_backoff(body["attempts"])
    assert_impact_recorded(eo503, cid, unvalidated["id"])

    status.status = 403
    try:
        before = status.requests
        refused = call(eo503, "POST", f"/intents/{intent['id']}/evidence", body={"content": "z"})
        assert refused.status_code == 503 and len(refused.json()["attempts"]) == 1
        assert status.requests - before == 1
    finally:
        status.status = 503


def test_whole_evidence_store_down_refuses_publish_at_service_health_with_impact(cplab, outage):
    dead = outage.dead
    intent, _ = approved_intent(cplab.instances["az1"])
    started = time.monotonic()
    health = call(dead, "GET", "/health")
    assert time.monotonic() - started < 3.0
    assert health.status_code == 503 and health.json()["components"]["evidence_store"]["status"] == "down"
    cid = f"eo-{uuid.uuid4()}"
    body = assert_publish_blocked(call(dead, "POST", f"/intents/{intent['id']}/publish", cid=cid), "ServiceHealth")
    assert body["error"].startswith("publish refused: ServiceHealth = Unhealthy")
    assert_impact_recorded(dead, cid, intent["id"])


def test_unsafe_skip_evidence_check_publishes_with_the_store_down(cplab, outage):
    unsafe = outage.unsafe
    intent, pack = approved_intent(cplab.instances["az1"])
    assert pack["ValidatedCopyExists"] is False
    assert call(unsafe, "GET", "/health").json()["components"]["evidence_store"]["status"] == "down"
    published = call(unsafe, "POST", f"/intents/{intent['id']}/publish")
    assert published.status_code == 200, published.text
    assert published.json()["evidence_source"] == "unchecked"
    assert "UNSAFE: --unsafe-skip-evidence-check" in unsafe.log_text()


def test_approval_is_refused_while_the_evidence_upload_is_in_flight_and_after_it_failed(cplab, outage):
    """Spec rule 1: EvidencePackState = Committed before approval. The store holds every
    connection unanswered, so the upload retries for seconds; both approvals (during the upload and
    after its 503) are refused 409 naming EvidencePackState, and nothing is recorded."""
    eo, forwarder = outage.eo, outage.forwarder
    intent = new_intent(eo)
    cid = f"eo-{uuid.uuid4()}"
    upload: dict = {}
    forwarder.set_mode("hold")
    try:
        before = forwarder.accepted
        thread = threading.Thread(
            target=lambda: upload.update(
                response=call(eo, "POST", f"/intents/{intent['id']}/evidence", cid=cid, body={"content": "held"})
            ),
            daemon=True,
        )
        thread.start()
        reached = poll(lambda: forwarder.accepted > before, timeout=10, interval=0.02)
        assert reached.ok, "the upload never reached the store"
        during = call(eo, "POST", f"/intents/{intent['id']}/approve", cid=cid, body={"approver": "cab-chair"})
        assert thread.is_alive(), "the upload was answered before the approval: not in flight"
        thread.join(30)
    finally:
        forwarder.set_mode("forward")
    assert not thread.is_alive()
    assert upload["response"].status_code == 503 and upload["response"].json()["cause"] == "evidence_store"
    after = call(eo, "POST", f"/intents/{intent['id']}/approve", cid=cid, body={"approver": "cab-chair"})
    for refused in (during, after):
        assert refused.status_code == 409, refused.text
        assert refused.json()["gate"] == "EvidencePackState"
        assert "EvidencePackState = Pending" in refused.json()["error"]
    assert sql(cplab, "SELECT count(*) FROM approvals WHERE intent_id = %s", (intent["id"],)) == [(0,)]
    read = call(eo, "GET", f"/intents/{intent['id']}").json()
    assert (read["state"], read["EvidencePackState"]) == ("Draft", "Pending")
    assert [e["type"] for e in events_of(eo, cid) if e["type"] == "ApprovalRecorded"] == []


def test_unsafe_approve_without_evidence_approves_an_intent_with_no_committed_pack(cplab, outage):
    unsafe = outage.unsafe_approve
    intent = new_intent(unsafe)
    cid = f"eo-{uuid.uuid4()}"
    approved = call(unsafe, "POST", f"/intents/{intent['id']}/approve", cid=cid, body={"approver": "cab-chair"})
    assert approved.status_code == 200, approved.text
    assert approved.json()["state"] == "Approved"
    assert call(unsafe, "GET", f"/intents/{intent['id']}").json()["EvidencePackState"] == "Pending"
    assert [e["type"] for e in events_of(unsafe, cid)] == ["ApprovalRecorded"]
    log = unsafe.log_text()
    assert "UNSAFE: --unsafe-approve-without-evidence" in log
    assert f"UNSAFE: intent {intent['id']} approved without a Committed evidence pack" in log
