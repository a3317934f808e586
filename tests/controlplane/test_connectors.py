"""Connector tier with real processes: moto (SQS), `queues`, `platform-mock` and `connector`.

Each test gets its own queues (a fresh prefix), platform mock and connector; readiness and
outcomes are polled with deadlines. Every process started here is stopped (and registered
with the reaper while it runs).
"""

from __future__ import annotations

import http.server
import json
import os
import secrets
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
import requests

from harness.lab import proc, reaper
from harness.lab.moto import MotoServer
from harness.net import free_port
from tests.controlplane.cplab import REPO

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

DEADLINE = 20.0


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "AWS_"))}
    env.update(AWS_ACCESS_KEY_ID="drill-access-key", AWS_SECRET_ACCESS_KEY="drill-secret-" + secrets.token_hex(8),
               AWS_DEFAULT_REGION="us-east-1", PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
    return env


def wait_for(predicate, timeout: float = DEADLINE, what: str = "condition", on_fail=lambda: ""):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} not reached within {timeout} s\n{on_fail()}")
        time.sleep(0.05)


@dataclass
class Proc:
    name: str
    process: subprocess.Popen
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def json_lines(self) -> list[dict]:
        out = []
        for line in self.text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
        return out


class ConnectorLab:
    def __init__(self, moto: MotoServer, workdir: Path, tag: str) -> None:
        self.moto, self.workdir, self.tag = moto, workdir, tag
        self.env = _env()
        self.registration = reaper.Registration(tag, "connectors", tag=tag)
        self.procs: list[Proc] = []
        self.sqs = boto3.client("sqs", endpoint_url=moto.endpoint_url, region_name="us-east-1",
                                aws_access_key_id="k", aws_secret_access_key="s")

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "controlplane", *args], env=self.env, cwd=REPO,
                              capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)

    def start(self, name: str, *args: str) -> Proc:
        log = self.workdir / f"{name}.log"
        with open(log, "wb") as out:
            # The tag rides in the log path (in argv via --metrics-file or not at all): register the pid.
            process = subprocess.Popen([sys.executable, "-m", "controlplane", *args], env=self.env, cwd=REPO,
                                       stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                       start_new_session=True)
        self.registration.add_pid(process.pid)
        p = Proc(name, process, log)
        self.procs.append(p)
        return p

    def queues(self, platform: str, max_receive_count: int = 5) -> dict[str, str]:
        prefix = "drill-" + secrets.token_hex(3)
        result = self.cli("queues", "--sqs-endpoint", self.moto.endpoint_url, "--prefix", prefix,
                          "--platforms", platform, "--max-receive-count", str(max_receive_count))
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)[platform]

    def platform_mock(self, platform: str) -> tuple[Proc, str]:
        port = free_port()
        p = self.start(f"mock-{platform}-{port}", "platform-mock", "--platform", platform,
                       "--host", "127.0.0.1", "--port", str(port))
        url = f"http://127.0.0.1:{port}"

        def up():
            assert p.process.poll() is None, f"mock exited:\n{p.text()}"
            try:
                return requests.get(url + "/_control", timeout=1).status_code == 200
            except requests.RequestException:
                return False
        wait_for(up, what="platform mock answering", on_fail=p.text)
        return p, url

    def connector(self, platform: str, q: dict, platform_url: str, *extra: str) -> tuple[Proc, Path]:
        metrics = self.workdir / f"metrics-{platform}-{secrets.token_hex(3)}.json"
        p = self.start(f"connector-{metrics.stem}", "connector", "--platform", platform,
                       "--queue-url", q["queue_url"], "--dlq-url", q["dlq_url"],
                       "--sqs-endpoint", self.moto.endpoint_url, "--platform-url", platform_url,
                       "--wait-time", "1", "--request-timeout", "1", "--metrics-file", str(metrics), *extra)
        wait_for(lambda: metrics.exists() or p.process.poll() is not None, what="connector metrics file")
        assert p.process.poll() is None, f"connector exited:\n{p.text()}"
        return p, metrics

    def stop_all(self) -> None:
        for p in self.procs:
            if p.process.poll() is None:
                p.process.terminate()
                try:
                    p.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill_tree([p.process.pid])
                    p.process.wait(timeout=5)
            self.registration.remove_pid(p.process.pid)
        self.procs.clear()


def metrics_of(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def intent(ring: str = "ring1", key: str | None = None) -> dict:
    return {"intent_id": "intent-" + uuid.uuid4().hex[:8], "idempotency_key": key or "key-" + uuid.uuid4().hex,
            "correlation_id": "corr-" + uuid.uuid4().hex, "ring": ring}


@pytest.fixture(scope="module")
def moto():
    with MotoServer() as server:
        yield server


@pytest.fixture
def lab(moto, tmp_path):
    tag = "drillconn-" + secrets.token_hex(4)
    lab = ConnectorLab(moto, tmp_path, tag)
    try:
        yield lab
    finally:
        pids = [p.process.pid for p in lab.procs]
        lab.stop_all()
        lab.registration.close()
        assert proc.wait_gone(pids, timeout=5) == []


def test_queues_are_created_idempotently_with_redrive(lab):
    first = lab.cli("queues", "--sqs-endpoint", lab.moto.endpoint_url, "--prefix", "drill-idem")
    again = lab.cli("queues", "--sqs-endpoint", lab.moto.endpoint_url, "--prefix", "drill-idem")
    assert first.returncode == 0 and again.returncode == 0, first.stderr + again.stderr
    urls, urls_again = json.loads(first.stdout), json.loads(again.stdout)
    assert set(urls) == {"intune", "jamf", "sccm", "landscape", "ansible"}
    assert urls == urls_again
    jamf = urls["jamf"]
    assert jamf["queue_url"].endswith("/drill-idem-jamf") and jamf["dlq_url"].endswith("/drill-idem-jamf-dlq")
    attrs = lab.sqs.get_queue_attributes(QueueUrl=jamf["queue_url"], AttributeNames=["All"])["Attributes"]
    redrive = json.loads(attrs["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"] == jamf["dlq_arn"] and int(redrive["maxReceiveCount"]) == 5


def test_platform_mock_control_switches_modes(lab):
    mock, url = lab.platform_mock("jamf")
    body = intent()
    first = requests.post(url + "/apply", json=body, timeout=2)
    second = requests.post(url + "/apply", json=body, timeout=2)
    assert (first.status_code, first.json()["applied"]) == (200, True)
    assert (second.status_code, second.json()["applied"]) == (200, False)

    assert requests.post(url + "/_control", json={"mode": "throttle", "retry_after": 2, "requests": 1},
                         timeout=2).json()["mode"] == "throttle"
    throttled = requests.post(url + "/apply", json=intent(), timeout=2)
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "2"
    assert requests.get(url + "/_control", timeout=2).json()["mode"] == "ok"  # n requests, then back to ok
    assert requests.post(url + "/apply", json=intent(), timeout=2).status_code == 200

    requests.post(url + "/_control", json={"mode": "error"}, timeout=2)  # until changed
    assert [requests.post(url + "/apply", json=intent(), timeout=2).status_code for _ in range(2)] == [503, 503]

    requests.post(url + "/_control", json={"mode": "hang", "requests": 1}, timeout=2)
    with pytest.raises(requests.Timeout):
        requests.post(url + "/apply", json=intent(), timeout=0.5)

    assert requests.post(url + "/_control", json={"mode": "sideways"}, timeout=2).status_code == 400
    state = requests.get(url + "/_control", timeout=2).json()
    assert state["mode"] == "ok"
    assert (state["requests"], state["applied"], state["duplicates"], state["throttled_sent"],
            state["errors_sent"], state["hung"]) == (7, 2, 1, 1, 2, 1)
    applied = requests.get(url + "/applied", timeout=2).json()["applied"]
    record = next(r for r in applied if r["idempotency_key"] == body["idempotency_key"])
    assert (record["intent_id"], record["correlation_id"], record["count"]) == \
        (body["intent_id"], body["correlation_id"], 2)


def test_same_intent_enqueued_twice_is_applied_once_and_correlated(lab):
    q = lab.queues("intune")
    mock, url = lab.platform_mock("intune")
    connector, metrics = lab.connector("intune", q, url)
    body = intent("ring0")
    for _ in range(2):
        lab.sqs.send_message(QueueUrl=q["queue_url"], MessageBody=json.dumps(body))

    m = wait_for(lambda: (m := metrics_of(metrics)).get("processed") == 2 and m, what="two messages processed",
                 on_fail=connector.text)
    assert (m["platform"], m["applied"], m["duplicates_skipped"], m["dead_lettered"]) == ("intune", 1, 1, 0)
    record, = requests.get(url + "/applied", timeout=2).json()["applied"]
    assert (record["idempotency_key"], record["correlation_id"], record["count"]) == \
        (body["idempotency_key"], body["correlation_id"], 2)
    assert requests.get(url + "/_control", timeout=2).json()["applied"] == 1  # applied exactly once
    lines = [line for line in connector.json_lines() if line.get("op") == "apply"]
    assert sorted(line["outcome"] for line in lines) == ["applied", "duplicate"]
    for line in lines:
        assert (line["correlation_id"], line["intent_id"], line["platform"]) == \
            (body["correlation_id"], body["intent_id"], "intune")
        assert line["attempt"] == 1 and "wait_s" in line
    assert body["correlation_id"] in mock.text()
    wait_for(lambda: lab.sqs.receive_message(QueueUrl=q["queue_url"], WaitTimeSeconds=0).get("Messages") is None
             and int(lab.sqs.get_queue_attributes(QueueUrl=q["queue_url"], AttributeNames=["All"])["Attributes"]
                     ["ApproximateNumberOfMessagesNotVisible"]) == 0, what="intent queue drained")


def test_throttled_connector_backs_off_respecting_retry_after_then_applies(lab):
    q = lab.queues("intune")
    mock, url = lab.platform_mock("intune")
    requests.post(url + "/_control", json={"mode": "throttle", "retry_after": 1, "requests": 3}, timeout=2)
    connector, metrics = lab.connector("intune", q, url, "--base-interval", "0.4", "--max-attempts", "5")
    body = intent("ring1")
    lab.sqs.send_message(QueueUrl=q["queue_url"], MessageBody=json.dumps(body))

    m = wait_for(lambda: (m := metrics_of(metrics)).get("applied") == 1 and m, what="applied after throttling",
                 on_fail=connector.text)
    assert (m["throttled"], m["errors"], m["dead_lettered"]) == (3, 0, 0)
    assert m["last_backoff_s"] == 1.6
    lines = [line for line in connector.json_lines() if line.get("op") == "apply"]
    assert [line["outcome"] for line in lines] == ["throttled"] * 3 + ["applied"]
    assert [line["attempt"] for line in lines] == [1, 2, 3, 4]
    waits = [line["wait_s"] for line in lines[:3]]
    # base x 2^(attempt-1) = 0.4, 0.8, 1.6; Retry-After (1 s) wins while it is larger.
    assert waits == [1.0, 1.0, 1.6]
    assert all(w >= line["retry_after"] == 1 for w, line in zip(waits, lines))
    for earlier, later in zip(lines, lines[1:]):  # the next attempt came no sooner than the wait
        assert later["ts"] - earlier["ts"] >= earlier["wait_s"] - 0.05
    assert all(line["correlation_id"] == body["correlation_id"] for line in lines)
    state = requests.get(url + "/_control", timeout=2).json()
    assert (state["throttled_sent"], state["applied"], state["mode"]) == (3, 1, "ok")


@pytest.mark.parametrize("mode", ["error", "hang"])
def test_always_failing_intent_ends_in_the_dead_letter_queue(lab, mode):
    q = lab.queues("sccm")
    mock, url = lab.platform_mock("sccm")
    requests.post(url + "/_control", json={"mode": mode}, timeout=2)
    connector, metrics = lab.connector("sccm", q, url, "--base-interval", "0.2", "--max-attempts", "3")
    body = intent("ring2")
    lab.sqs.send_message(QueueUrl=q["queue_url"], MessageBody=json.dumps(body))
    lab.sqs.send_message(QueueUrl=q["queue_url"], MessageBody="not an intent")  # poison: straight to the DLQ

    m = wait_for(lambda: (m := metrics_of(metrics)).get("dead_lettered") == 2 and m, what="dead-lettered",
                 on_fail=connector.text)
    assert (m["applied"], m["errors"], m["consecutive_failures"]) == (0, 3, 3)
    dead = []
    wait_for(lambda: dead.extend(lab.sqs.receive_message(
        QueueUrl=q["dlq_url"], MaxNumberOfMessages=10, WaitTimeSeconds=0,
        MessageAttributeNames=["All"]).get("Messages", [])) or len(dead) >= 2, what="two DLQ messages")
    by_body = {d["Body"]: d for d in dead}
    failed = by_body[json.dumps(body)]
    assert failed["MessageAttributes"]["attempts"]["StringValue"] == "3"
    assert failed["MessageAttributes"]["correlation_id"]["StringValue"] == body["correlation_id"]
    assert by_body["not an intent"]["MessageAttributes"]["reason"]["StringValue"] == "malformed intent"
    assert lab.sqs.receive_message(QueueUrl=q["queue_url"], WaitTimeSeconds=0).get("Messages") is None

    lines = [line for line in connector.json_lines() if line.get("correlation_id") == body["correlation_id"]]
    expected = "error" if mode == "error" else "timeout"
    assert [(line["op"], line["outcome"], line["attempt"]) for line in lines] == \
        [("apply", expected, 1), ("apply", expected, 2), ("apply", expected, 3), ("dead_letter", "dead_lettered", 3)]
    assert [line["wait_s"] for line in lines[:2]] == [0.2, 0.4]
    assert requests.get(url + "/applied", timeout=2).json()["applied"] == []


class _Reports(threading.Thread):
    """A real HTTP server on a fixed port taking the connector's reports, started late."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        received = self.received = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append((self.path, json.loads(body)))
                self.send_response(201)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)

    def run(self) -> None:
        self.server.serve_forever(poll_interval=0.1)


def test_reports_the_control_plane_could_not_take_are_sent_later_in_order(lab):
    q = lab.queues("landscape")
    _, url = lab.platform_mock("landscape")
    port = free_port()
    _, metrics = lab.connector("landscape", q, url, "--report-url", f"http://127.0.0.1:{port}",
                               "--probe-interval", "0.5")
    body = intent()
    lab.sqs.send_message(QueueUrl=q["queue_url"], MessageBody=json.dumps(body))
    wait_for(lambda: metrics_of(metrics).get("applied") == 1, what="intent applied while the Control Plane is down")
    reports = _Reports(port)
    reports.start()
    try:
        wait_for(lambda: any(r[1].get("intent_id") == body["intent_id"] for r in reports.received),
                 what="the deferred report delivered")
        applies = [r for path, r in reports.received if r["op"] == "apply"]
        assert reports.received[0][0] == "/platforms/landscape/observations"
        assert applies[0]["outcome"] == "ok" and applies[0]["intent_id"] == body["intent_id"]
    finally:
        reports.server.shutdown()
        reports.server.server_close()
