"""One Control Plane client (harness.workload.client): each operation of ControlPlane maps to the
request the runner's sites used to build by hand, and that is what goes on the wire (a real HTTP
server on 127.0.0.1 records it); Scenario.call sends and records it under its OpKind; a kind that is
not an OpKind is refused before anything is sent."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from harness.model import OpKind
from harness.runner.scenario import DrillRun
from harness.workload import ApiClient, ControlPlane, Recorder


class Seen(BaseHTTPRequestHandler):
    """Records every request (method, path with query, the headers a drill sets, JSON body)."""

    log: list[dict[str, Any]] = []

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        self.log.append(
            {
                "method": self.command,
                "path": self.path,
                "key": self.headers.get("Idempotency-Key"),
                "cid": self.headers.get("X-Correlation-Id"),
                "token": self.headers.get("Authorization"),
                "body": json.loads(raw) if raw else None,
            }
        )
        body = json.dumps({"id": 41, "ServiceHealth": "Healthy"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    Seen.log = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Seen)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(10)


# what each operation sends: (method, path and query, Idempotency-Key, JSON body), as the hand-built
# calls of runner/*.py and workload/*.py sent them before there was one client
WIRE = [
    (
        ControlPlane.create_intent("k1"),
        ("POST", "/intents", "k1", {"ring": "ring0", "platform": "intune", "payload": {"key": "k1"}}),
    ),
    (
        ControlPlane.create_intent("k2", "ring1", "jamf"),
        ("POST", "/intents", "k2", {"ring": "ring1", "platform": "jamf", "payload": {"key": "k2"}}),
    ),
    (ControlPlane.evidence(7, "evidence of k1"), ("POST", "/intents/7/evidence", None, {"content": "evidence of k1"})),
    (ControlPlane.approve(7), ("POST", "/intents/7/approve", None, {"approver": "drill-cab"})),
    (ControlPlane.publish(7), ("POST", "/intents/7/publish", None, {})),
    (ControlPlane.promote(7, "ring1"), ("POST", "/intents/7/promote", None, {"to_ring": "ring1"})),
    (ControlPlane.read_intent(7), ("GET", "/intents/7", None, None)),
    (ControlPlane.intents("drill-ab"), ("GET", "/intents?key_prefix=drill-ab", None, None)),
    (ControlPlane.health(), ("GET", "/health", None, None)),
    (ControlPlane.live(), ("GET", "/health/live", None, None)),  # the labs' readiness check
    (
        ControlPlane.events(limit=1000, type="DrillEvent", after=5),
        ("GET", "/events?limit=1000&type=DrillEvent&after=5", None, None),
    ),
    (ControlPlane.operational_event({"event_id": "e1"}), ("POST", "/events/operational", None, {"event_id": "e1"})),
    (ControlPlane.platforms(), ("GET", "/platforms", None, None)),
    (ControlPlane.platform("jamf"), ("GET", "/platforms/jamf", None, None)),
    (ControlPlane.lift_pause("jamf"), ("POST", "/platforms/jamf/resume", None, {"approver": "drill-cab"})),
    (ControlPlane.requeue("jamf"), ("POST", "/platforms/jamf/requeue", None, {"operator": "drill-runbook"})),
    (ControlPlane.queue_metrics(), ("GET", "/metrics/queues", None, None)),
    (
        ControlPlane.ring_rollback("ring0", "cid/rollback-ring0"),
        ("POST", "/rings/ring0/rollback", "cid/rollback-ring0", {"approver": "drill-cab"}),
    ),
    (
        ControlPlane.advance_clock(3600, {"Authorization": "Bearer t"}),
        ("POST", "/_clock/advance", None, {"seconds": 3600}),
    ),
]


@pytest.mark.parametrize(("request_", "expected"), WIRE, ids=[f"{r.method} {r.path}" for r, _ in WIRE])
def test_each_operation_sends_its_request(server: str, request_: Any, expected: tuple) -> None:
    client = ApiClient(server, timeout=5)
    try:
        reply = client.send(request_, "cid-1")
    finally:
        client.close()
    assert reply.status == 200
    [seen] = Seen.log
    assert (seen["method"], seen["path"], seen["key"], seen["body"]) == expected
    assert seen["cid"] == "cid-1"


def test_the_clock_request_carries_the_labs_control_headers(server: str) -> None:
    client = ApiClient(server)
    try:
        client.send(ControlPlane.advance_clock(60, {"Authorization": "Bearer t"}))
    finally:
        client.close()
    assert Seen.log[0]["token"] == "Bearer t" and Seen.log[0]["cid"]  # a fresh correlation id


class Lab:
    def __init__(self, url: str):
        self.api_url = url


def test_a_scenario_call_sends_the_operation_and_records_its_kind(server: str) -> None:
    scn = DrillRun(drill="d", lab=Lab(server), targets={}).begin("s", "f", [])  # type: ignore[arg-type]
    op = scn.call(OpKind.CREATE_INTENT, ControlPlane.create_intent("k9"), value="k9", read=lambda body: body["id"])
    assert op.ok and op.value == 41 and op.kind == "create_intent" and type(op.kind) is str
    assert Seen.log[0]["cid"] == scn.correlation_id and Seen.log[0]["key"] == "k9"
    assert [o.id for o in scn.recorder.ops(OpKind.CREATE_INTENT)] == [op.id]


def test_a_kind_that_is_not_an_opkind_is_refused_before_the_call() -> None:
    called: list[int] = []
    with pytest.raises(ValueError, match="pubilsh"):
        Recorder().invoke("pubilsh", lambda: called.append(1))  # type: ignore[arg-type]
    assert called == []
