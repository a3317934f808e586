"""The HTTP fault gateway as a real process: its request log, and a fault's time limit."""

from __future__ import annotations

import http.server
import os
import secrets
import subprocess
import sys
import threading
import time

import pytest
import requests

from controlplane.control_auth import CONTROL_TOKEN_ENV
from harness.faults import FaultContext, build
from harness.lab import proc
from harness.lab.capabilities import EvidenceStore
from harness.lab.embedded import EmbeddedLab
from harness.model import FaultSpec
from tests.support import wait_for

pytestmark = pytest.mark.timeout(60)  # integration: tests/conftest.py, by folder


class _Upstream(http.server.BaseHTTPRequestHandler):
    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        body = f"upstream {self.command} {self.path}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_PUT = do_POST = do_DELETE = _answer

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def upstream():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


TOKEN = "test-control-" + secrets.token_hex(8)
AUTH = {"Authorization": f"Bearer {TOKEN}"}  # the control paths need the lab's bearer token


@pytest.fixture
def gateway(upstream):
    """A fresh gateway process per test (its request log starts empty)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "harness.lab.httpfault", "--port", "0", "--upstream", upstream],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        text=True,
        env={**os.environ, CONTROL_TOKEN_ENV: TOKEN},
    )
    try:
        line = process.stdout.readline().strip()
        assert line.startswith("listening "), line
        yield f"http://{line.split()[1]}"
    finally:
        proc.stop_process(process)
        process.stdout.close()


def fault(gateway: str, **body) -> requests.Response:
    return requests.post(f"{gateway}/_drill/fault", json=body, headers=AUTH, timeout=5)


def logged(gateway: str, after: int | None = None) -> list[dict]:
    params = {} if after is None else {"after": after}
    reply = requests.get(f"{gateway}/_drill/requests", params=params, headers=AUTH, timeout=5)
    assert reply.status_code == 200
    return reply.json()["requests"]


def test_every_request_is_recorded_with_its_status_and_whether_it_was_injected(gateway):
    start = time.time()
    assert requests.get(f"{gateway}/bucket/a?versionId=1", timeout=5).status_code == 200
    assert fault(gateway, status=503, count=1).status_code == 200
    assert requests.put(f"{gateway}/bucket/b", data=b"x", timeout=5).status_code == 503
    assert requests.get(f"{gateway}/bucket/c", timeout=5).status_code == 200  # count 1: forwarding again
    requests.get(f"{gateway}/_drill/fault", headers=AUTH, timeout=5)  # control: not recorded
    seen = logged(gateway)
    assert [(r["n"], r["method"], r["path"], r["status"], r["injected"]) for r in seen] == [
        (1, "GET", "/bucket/a", 200, False),
        (2, "PUT", "/bucket/b", 503, True),
        (3, "GET", "/bucket/c", 200, False),
    ]
    assert start <= seen[0]["at"] <= seen[1]["at"] <= seen[2]["at"] <= time.time()
    assert [r["n"] for r in logged(gateway, after=1)] == [2, 3]
    assert logged(gateway, after=3) == []
    assert requests.get(f"{gateway}/_drill/requests?after=soon", headers=AUTH, timeout=5).status_code == 400


def test_a_fault_with_for_s_heals_by_itself(gateway):
    before = time.time()
    state = fault(gateway, status=503, for_s=0.5).json()
    assert state["status"] == 503 and before + 0.5 <= state["until"] <= time.time() + 0.5 + 0.01
    assert requests.get(f"{gateway}/x", timeout=5).status_code == 503
    wait_for(lambda: requests.get(f"{gateway}/x", timeout=5).status_code == 200, timeout=15)
    state = requests.get(f"{gateway}/_drill/fault", headers=AUTH, timeout=5).json()
    assert state["status"] is None and state["until"] is None
    statuses = [(r["status"], r["injected"]) for r in logged(gateway)]
    assert statuses[0] == (503, True) and statuses[-1] == (200, False)


def test_healing_or_changing_the_fault_cancels_its_time_limit(gateway):
    fault(gateway, status=503, for_s=30)
    assert requests.delete(f"{gateway}/_drill/fault", headers=AUTH, timeout=5).json()["until"] is None
    fault(gateway, status=503, for_s=30)
    assert fault(gateway, status=500).json()["until"] is None


@pytest.mark.parametrize("for_s", ["0", "-1", "NaN", "Infinity", '"soon"', "true"])
def test_a_bad_for_s_is_400_and_changes_nothing(gateway, for_s):
    reply = requests.post(
        f"{gateway}/_drill/fault",
        data=f'{{"status": 503, "for_s": {for_s}}}',
        headers={**AUTH, "Content-Type": "application/json"},
        timeout=5,
    )
    assert reply.status_code == 400 and "for_s" in reply.json()["error"]
    assert requests.get(f"{gateway}/_drill/fault", headers=AUTH, timeout=5).json()["status"] is None
    assert requests.get(f"{gateway}/y", timeout=5).status_code == 200


def test_the_http_error_fault_passes_its_time_limit(gateway):
    class Store:  # the EvidenceStore the fault acts through: the gateway's address and its control token
        def http_gateway(self, name: str) -> str:
            assert name == "s3"
            return gateway

        def gateway_headers(self, name: str) -> dict[str, str]:
            assert name == "s3"
            return AUTH

        def read_object(self, region: str, key: str) -> bytes | None:
            raise AssertionError("the http_error fault does not read the store")

        def object_lock(self, region: str, key: str, version_id: str | None = None) -> dict | None:
            raise AssertionError("the http_error fault does not read the store")

        def gateway_requests(self, name: str = "s3") -> list[dict]:
            raise AssertionError("the http_error fault does not read what the gateway received")

    assert isinstance(Store(), EvidenceStore)

    f = build(FaultSpec("http_error", "s3", {"status": 503}, time_limit_s=0.5))
    f.inject(FaultContext(lab=Store()))  # type: ignore[arg-type]  # the protocol it uses, not a whole Lab
    assert requests.get(f"{gateway}/_drill/fault", headers=AUTH, timeout=5).json()["until"] is not None
    assert requests.get(f"{gateway}/z", timeout=5).status_code == 503
    wait_for(lambda: requests.get(f"{gateway}/z", timeout=5).status_code == 200, timeout=15)
    f.heal(FaultContext(lab=Store()))  # type: ignore[arg-type]


def test_embedded_lab_reads_its_gateway_requests(gateway):
    lab = EmbeddedLab()  # not started: only its gateway address (and token) is set
    lab.gateway_url, lab.control_token = gateway, TOKEN
    requests.get(f"{gateway}/bucket/k", timeout=5)
    assert [(r["method"], r["path"], r["status"]) for r in lab.capability(EvidenceStore).gateway_requests()] == [
        ("GET", "/bucket/k", 200)
    ]
    with pytest.raises(KeyError, match="no HTTP fault gateway named 'db'; known: s3"):
        lab.capability(EvidenceStore).gateway_requests("db")


@pytest.mark.parametrize(
    "method, path",
    [("GET", "/_drill/fault"), ("POST", "/_drill/fault"), ("DELETE", "/_drill/fault"), ("GET", "/_drill/requests")],
)
def test_the_control_paths_need_the_labs_bearer_token(gateway, method, path):
    """Loopback is open to every local user: a control call without the token is refused (401)
    and changes nothing; with it, it is answered; what is forwarded needs no token."""
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        reply = requests.request(method, gateway + path, json={"status": 500}, headers=headers, timeout=5)
        assert reply.status_code == 401 and reply.headers["WWW-Authenticate"].startswith("Bearer")
    assert requests.get(f"{gateway}/_drill/fault", headers=AUTH, timeout=5).json()["status"] is None
    assert requests.request(method, gateway + path, json={"status": 500}, headers=AUTH, timeout=5).status_code == 200
    requests.delete(f"{gateway}/_drill/fault", headers=AUTH, timeout=5)
    assert requests.get(f"{gateway}/anything", timeout=5).status_code == 200


def test_a_gateway_started_without_a_token_refuses_every_control_call(upstream):
    env = {k: v for k, v in os.environ.items() if k != CONTROL_TOKEN_ENV}
    process = subprocess.Popen(
        [sys.executable, "-m", "harness.lab.httpfault", "--port", "0", "--upstream", upstream],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        url = "http://" + process.stdout.readline().split()[1]
        for headers in ({}, {"Authorization": "Bearer "}, AUTH):
            assert (
                requests.post(f"{url}/_drill/fault", json={"status": 503}, headers=headers, timeout=5).status_code
                == 401
            )
        assert requests.get(f"{url}/x", timeout=5).status_code == 200  # forwarded, never faulted
    finally:
        proc.stop_process(process)
        process.stdout.close()
