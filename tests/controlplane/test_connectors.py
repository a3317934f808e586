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
import urllib.parse
import uuid
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import boto3
import pytest
import requests

from controlplane.control_auth import CONTROL_TOKEN_ENV
from harness.lab import proc, reaper
from harness.lab.moto import MotoServer
from harness.net import free_port
from tests.controlplane.cplab import REPO
from tests.support import wait_for as support_wait_for

pytestmark = pytest.mark.timeout(90)  # integration: tests/conftest.py, by folder

DEADLINE = 20.0
CONTROL_TOKEN = "test-control-" + secrets.token_hex(8)
CONTROL = {"Authorization": f"Bearer {CONTROL_TOKEN}"}


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "AWS_"))}
    env.update(
        AWS_ACCESS_KEY_ID="drill-access-key",
        AWS_SECRET_ACCESS_KEY="drill-secret-" + secrets.token_hex(8),
        AWS_DEFAULT_REGION="us-east-1",
        PYTHONPATH=str(REPO),
        PYTHONUNBUFFERED="1",
    )
    env[CONTROL_TOKEN_ENV] = CONTROL_TOKEN  # the stand-ins' /_control needs it (CONTROL)
    return env


def wait_for(predicate, timeout: float = DEADLINE, what: str = "condition", on_fail=lambda: ""):
    return support_wait_for(predicate, timeout, 0.05, what, on_fail)


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
        self.sqs = boto3.client(
            "sqs",
            endpoint_url=moto.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id="k",
            aws_secret_access_key="s",
        )

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "controlplane", *args],
            env=self.env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )

    def start(self, name: str, *args: str) -> Proc:
        log = self.workdir / f"{name}.log"
        with open(log, "wb") as out:
            # The tag rides in the log path (in argv via --metrics-file or not at all): register the pid.
            process = subprocess.Popen(
                [sys.executable, "-m", "controlplane", *args],
                env=self.env,
                cwd=REPO,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.registration.add_pid(process.pid)
        p = Proc(name, process, log)
        self.procs.append(p)
        return p

    def queues(self, platform: str, max_receive_count: int = 5) -> dict[str, str]:
        prefix = "drill-" + secrets.token_hex(3)
        result = self.cli(
            "queues",
            "--sqs-endpoint",
            self.moto.endpoint_url,
            "--prefix",
            prefix,
            "--platforms",
            platform,
            "--max-receive-count",
            str(max_receive_count),
        )
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)[platform]

    def platform_mock(self, platform: str, *extra: str, port: int | None = None) -> tuple[Proc, str]:
        port = port or free_port()
        p = self.start(
            f"mock-{platform}-{port}",
            "platform-mock",
            "--platform",
            platform,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            *extra,
        )
        url = f"http://127.0.0.1:{port}"

        def up():
            assert p.process.poll() is None, f"mock exited:\n{p.text()}"
            try:
                return requests.get(url + "/_control", headers=CONTROL, timeout=1).status_code == 200
            except requests.RequestException:
                return False

        wait_for(up, what="platform mock answering", on_fail=p.text)
        return p, url

    def connector(self, platform: str, q: dict, platform_url: str, *extra: str) -> tuple[Proc, Path]:
        metrics = self.workdir / f"metrics-{platform}-{secrets.token_hex(3)}.json"
        p = self.start(
            f"connector-{metrics.stem}",
            "connector",
            "--platform",
            platform,
            "--queue-url",
            q["queue_url"],
            "--dlq-url",
            q["dlq_url"],
            "--sqs-endpoint",
            self.moto.endpoint_url,
            "--platform-url",
            platform_url,
            "--wait-time",
            "1",
            "--request-timeout",
            "1",
            "--metrics-file",
            str(metrics),
            *extra,
        )
        wait_for(lambda: metrics.exists() or p.process.poll() is not None, what="connector metrics file")
        assert p.process.poll() is None, f"connector exited:\n{p.text()}"
        return p, metrics

    def stop_all(self) -> None:
        """SIGTERM to every process at once, then wait for each (a connector ends its long poll
        first, about 1 s: one after another those waits added up); killed past 10 s in all."""
        running = [p for p in self.procs if p.process.poll() is None]
        for p in running:
            p.process.terminate()
        deadline = time.monotonic() + 10
        for p in running:
            try:
                p.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill_tree([p.process.pid])
                p.process.wait(timeout=5)
        for p in self.procs:
            self.registration.remove_pid(p.process.pid)
        self.procs.clear()


LATENCY_S = 0.3  # a retry reaches the platform its wait after the failed answer, plus at most this


def metrics_of(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def intent(ring: str = "ring1", key: str | None = None) -> dict:
    return {
        "intent_id": "intent-" + uuid.uuid4().hex[:8],
        "idempotency_key": key or "key-" + uuid.uuid4().hex,
        "correlation_id": "corr-" + uuid.uuid4().hex,
        "ring": ring,
    }


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

    assert (
        requests.post(
            url + "/_control", headers=CONTROL, json={"mode": "throttle", "retry_after": 2, "requests": 1}, timeout=2
        ).json()["mode"]
        == "throttle"
    )
    throttled = requests.post(url + "/apply", json=intent(), timeout=2)
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "2"
    # n requests, then back to ok
    assert requests.get(url + "/_control", headers=CONTROL, timeout=2).json()["mode"] == "ok"
    assert requests.post(url + "/apply", json=intent(), timeout=2).status_code == 200

    requests.post(url + "/_control", headers=CONTROL, json={"mode": "error"}, timeout=2)  # until changed
    assert [requests.post(url + "/apply", json=intent(), timeout=2).status_code for _ in range(2)] == [503, 503]

    requests.post(url + "/_control", headers=CONTROL, json={"mode": "hang", "requests": 1}, timeout=2)
    with pytest.raises(requests.Timeout):
        requests.post(url + "/apply", json=intent(), timeout=0.5)

    assert requests.post(url + "/_control", headers=CONTROL, json={"mode": "sideways"}, timeout=2).status_code == 400
    state = requests.get(url + "/_control", headers=CONTROL, timeout=2).json()
    assert state["mode"] == "ok"
    assert (
        state["requests"],
        state["applied"],
        state["duplicates"],
        state["throttled_sent"],
        state["errors_sent"],
        state["hung"],
    ) == (7, 2, 1, 1, 2, 1)
    applied = requests.get(url + "/applied", timeout=2).json()["applied"]
    record = next(r for r in applied if r["idempotency_key"] == body["idempotency_key"])
    assert (record["intent_id"], record["correlation_id"], record["count"]) == (
        body["intent_id"],
        body["correlation_id"],
        2,
    )


def test_same_intent_enqueued_twice_is_applied_once_and_correlated(lab, tmp_path):
    """Test-IdempotencyKey (spec rule 4): the redelivered message is tested, found applied and
    skipped; the platform sees one /apply and two /applied tests (404, then 200), never two applies."""
    q = lab.queues("intune")
    log = tmp_path / "intune.requests.jsonl"
    mock, url = lab.platform_mock("intune", "--request-log", str(log))
    connector, metrics = lab.connector("intune", q, url)
    body = intent("ring0")
    for _ in range(2):
        lab.sqs.send_message(QueueUrl=q["queue_url"], MessageBody=json.dumps(body))

    m = wait_for(
        lambda: (m := metrics_of(metrics)).get("processed") == 2 and m,
        what="two messages processed",
        on_fail=connector.text,
    )
    assert (m["platform"], m["applied"], m["duplicates_skipped"], m["dead_lettered"]) == ("intune", 1, 1, 0)
    assert m["key_tests"] == 2
    (record,) = requests.get(url + "/applied", timeout=2).json()["applied"]
    assert (record["idempotency_key"], record["correlation_id"], record["count"]) == (
        body["idempotency_key"],
        body["correlation_id"],
        1,
    )  # one POST /apply, ever
    state = requests.get(url + "/_control", headers=CONTROL, timeout=2).json()
    assert (state["applied"], state["duplicates"], state["requests"], state["key_tests"]) == (1, 0, 1, 2)
    assert [(x["path"], x["status"], x["outcome"]) for x in log_lines(log)] == [
        ("/applied", 404, "tested"),
        ("/apply", 200, "applied"),
        ("/applied", 200, "tested"),
    ]
    assert all(
        x["idempotency_key"] == body["idempotency_key"] and x["correlation_id"] == body["correlation_id"]
        for x in log_lines(log)
    )
    lines = [line for line in connector.json_lines() if line.get("op") == "apply"]
    assert [(line["outcome"], line["key_test"]) for line in lines] == [
        ("applied", "not_applied"),
        ("duplicate", "applied"),
    ]
    for line in lines:
        assert (line["correlation_id"], line["intent_id"], line["platform"]) == (
            body["correlation_id"],
            body["intent_id"],
            "intune",
        )
        assert line["attempt"] == 1 and "wait_s" in line
    assert body["correlation_id"] in mock.text()
    wait_for(
        lambda: (
            lab.sqs.receive_message(QueueUrl=q["queue_url"], WaitTimeSeconds=0).get("Messages") is None
            and int(
                lab.sqs.get_queue_attributes(QueueUrl=q["queue_url"], AttributeNames=["All"])["Attributes"][
                    "ApproximateNumberOfMessagesNotVisible"
                ]
            )
            == 0
        ),
        what="intent queue drained",
    )


def test_throttled_connector_backs_off_respecting_retry_after_then_applies(lab, tmp_path):
    q = lab.queues("intune")
    log = tmp_path / "intune.requests.jsonl"
    mock, url = lab.platform_mock("intune", "--request-log", str(log))
    requests.post(
        url + "/_control", headers=CONTROL, json={"mode": "throttle", "retry_after": 1, "requests": 3}, timeout=2
    )
    connector, metrics = lab.connector("intune", q, url, "--base-interval", "0.4", "--max-attempts", "5")
    body = intent("ring1")
    lab.sqs.send_message(QueueUrl=q["queue_url"], MessageBody=json.dumps(body))

    m = wait_for(
        lambda: (m := metrics_of(metrics)).get("applied") == 1 and m,
        what="applied after throttling",
        on_fail=connector.text,
    )
    assert (m["throttled"], m["errors"], m["dead_lettered"]) == (3, 0, 0)
    assert m["last_backoff_s"] == 1.6
    lines = [line for line in connector.json_lines() if line.get("op") == "apply"]
    assert [line["outcome"] for line in lines] == ["throttled"] * 3 + ["applied"]
    assert [line["attempt"] for line in lines] == [1, 2, 3, 4]
    waits = [line["wait_s"] for line in lines[:3]]
    # base x 2^(attempt-1) = 0.4, 0.8, 1.6; Retry-After (1 s) wins while it is larger.
    assert waits == [1.0, 1.0, 1.6]
    assert all(w >= line["retry_after"] == 1 for w, line in zip(waits, lines, strict=False))  # the failed attempts
    for earlier, later in pairwise(lines):  # the next attempt came no sooner than the wait
        assert later["ts"] - earlier["ts"] >= earlier["wait_s"] - 0.05
    # Held in-process for its retry: invisible for ceil(wait + request timeout (1 s) + 2 s), no
    # longer ceil(wait) (which let it come back only through a later receive, late).
    assert [line["visibility_s"] for line in lines[:3]] == [4, 4, 5]
    assert all(line["held"] is True for line in lines[:3])
    # as the platform saw it: each retry arrived its wait after the previous one, to within latency
    seen = arrivals_of(log, body["idempotency_key"])
    assert [x["outcome"] for x in seen] == ["throttled"] * 3 + ["applied"]
    platform_gaps = gaps_of(seen)
    assert all(w - 0.01 <= g <= w + LATENCY_S for g, w in zip(platform_gaps, waits, strict=True)), (
        platform_gaps,
        waits,
    )
    assert all(line["correlation_id"] == body["correlation_id"] for line in lines)
    state = requests.get(url + "/_control", headers=CONTROL, timeout=2).json()
    assert (state["throttled_sent"], state["applied"], state["mode"]) == (3, 1, "ok")


@pytest.mark.parametrize("mode", ["error", "hang"])
def test_always_failing_intent_ends_in_the_dead_letter_queue(lab, mode):
    q = lab.queues("sccm")
    mock, url = lab.platform_mock("sccm")
    requests.post(url + "/_control", headers=CONTROL, json={"mode": mode}, timeout=2)
    connector, metrics = lab.connector("sccm", q, url, "--base-interval", "0.2", "--max-attempts", "3")
    body = intent("ring2")
    lab.sqs.send_message(QueueUrl=q["queue_url"], MessageBody=json.dumps(body))
    lab.sqs.send_message(QueueUrl=q["queue_url"], MessageBody="not an intent")  # poison: straight to the DLQ

    m = wait_for(
        lambda: (m := metrics_of(metrics)).get("dead_lettered") == 2 and m, what="dead-lettered", on_fail=connector.text
    )
    assert (m["applied"], m["errors"], m["consecutive_failures"]) == (0, 3, 3)
    dead = []
    wait_for(
        lambda: (
            dead.extend(
                lab.sqs.receive_message(
                    QueueUrl=q["dlq_url"], MaxNumberOfMessages=10, WaitTimeSeconds=0, MessageAttributeNames=["All"]
                ).get("Messages", [])
            )
            or len(dead) >= 2
        ),
        what="two DLQ messages",
    )
    by_body = {d["Body"]: d for d in dead}
    failed = by_body[json.dumps(body)]
    assert failed["MessageAttributes"]["attempts"]["StringValue"] == "3"
    assert failed["MessageAttributes"]["correlation_id"]["StringValue"] == body["correlation_id"]
    assert by_body["not an intent"]["MessageAttributes"]["reason"]["StringValue"] == "malformed intent"
    assert lab.sqs.receive_message(QueueUrl=q["queue_url"], WaitTimeSeconds=0).get("Messages") is None

    lines = [line for line in connector.json_lines() if line.get("correlation_id") == body["correlation_id"]]
    expected = "error" if mode == "error" else "timeout"
    assert [(line["op"], line["outcome"], line["attempt"]) for line in lines] == [
        ("apply", expected, 1),
        ("apply", expected, 2),
        ("apply", expected, 3),
        ("dead_letter", "dead_lettered", 3),
    ]
    assert [line["wait_s"] for line in lines[:2]] == [0.2, 0.4]
    # held for the retry: ceil(wait + request timeout (1 s) + 2 s); the last attempt is not held
    assert [line.get("visibility_s") for line in lines[:3]] == [4, 4, None]
    assert requests.get(url + "/applied", timeout=2).json()["applied"] == []


class _Reports(threading.Thread):
    """A real HTTP server on a fixed port taking the connector's reports, started late; with
    `hold_s`, each report is held that long before it is answered (a Control Plane too slow)."""

    def __init__(self, port: int, hold_s: float = 0.0) -> None:
        super().__init__(daemon=True)
        received = self.received = []
        stopping = self.stopping = threading.Event()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append((self.path, json.loads(body)))
                stopping.wait(hold_s)
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
    _, metrics = lab.connector(
        "landscape", q, url, "--report-url", f"http://127.0.0.1:{port}", "--probe-interval", "0.5"
    )
    body = intent()
    lab.sqs.send_message(QueueUrl=q["queue_url"], MessageBody=json.dumps(body))
    wait_for(lambda: metrics_of(metrics).get("applied") == 1, what="intent applied while the Control Plane is down")
    reports = _Reports(port)
    reports.start()
    try:
        wait_for(
            lambda: any(r[1].get("intent_id") == body["intent_id"] for r in reports.received),
            what="the deferred report delivered",
        )
        applies = [r for path, r in reports.received if r["op"] == "apply"]
        assert reports.received[0][0] == "/platforms/landscape/observations"
        assert applies[0]["outcome"] == "ok" and applies[0]["intent_id"] == body["intent_id"]
    finally:
        reports.server.shutdown()
        reports.server.server_close()


# -- the stand-in's request log and the time limit of a degradation ------------------------------


def log_lines(path: Path) -> list[dict]:
    from harness.lab.connectors import read_request_log

    return read_request_log(path)


def test_platform_mock_logs_one_line_per_apply_with_outcome_and_status(lab, tmp_path):
    log = tmp_path / "jamf.requests.jsonl"
    mock, url = lab.platform_mock("jamf", "--request-log", str(log))
    start = time.time()
    body = intent("ring0")
    assert requests.post(url + "/apply", json=body, timeout=2).status_code == 200  # applied
    assert requests.post(url + "/apply", json=body, headers={"X-Correlation-ID": "h"}, timeout=2).status_code == 200
    requests.post(
        url + "/_control", headers=CONTROL, json={"mode": "throttle", "retry_after": 2, "requests": 1}, timeout=2
    )
    throttled = intent()
    assert requests.post(url + "/apply", json=throttled, timeout=2).status_code == 429
    requests.post(url + "/_control", headers=CONTROL, json={"mode": "error", "requests": 1}, timeout=2)
    assert requests.post(url + "/apply", json=intent(), timeout=2).status_code == 503
    assert (
        requests.post(url + "/apply", data=b"{no json", headers={"X-Correlation-ID": "bad-cid"}, timeout=2).status_code
        == 400
    )
    requests.post(url + "/_control", headers=CONTROL, json={"mode": "hang", "requests": 1}, timeout=2)
    hung = intent()
    with pytest.raises(requests.Timeout):
        requests.post(url + "/apply", json=hung, timeout=0.5)
    lines = wait_for(lambda: len(log_lines(log)) == 6 and log_lines(log), what="six log lines", on_fail=mock.text)
    assert [(x["n"], x["outcome"], x["status"], x["count"]) for x in lines] == [
        (1, "applied", 200, 1),
        (2, "duplicate", 200, 2),
        (3, "throttled", 429, None),
        (4, "error", 503, None),
        (5, "bad_request", 400, None),
        (6, "hang", None, None),
    ]
    assert all(start <= x["at"] <= time.time() and x["platform"] == "jamf" for x in lines)
    assert [x["at"] for x in lines] == sorted(x["at"] for x in lines)
    first = lines[0]
    assert (first["idempotency_key"], first["intent_id"], first["ring"], first["correlation_id"]) == (
        body["idempotency_key"],
        body["intent_id"],
        "ring0",
        body["correlation_id"],
    )
    assert lines[2]["idempotency_key"] == throttled["idempotency_key"]  # a degraded answer names its key
    assert (lines[4]["idempotency_key"], lines[4]["intent_id"], lines[4]["correlation_id"]) == (None, None, "bad-cid")
    assert lines[5]["idempotency_key"] == hung["idempotency_key"]  # logged when it arrived
    assert set(first) == {
        "n",
        "at",
        "platform",
        "path",
        "idempotency_key",
        "intent_id",
        "ring",
        "correlation_id",
        "status",
        "outcome",
        "count",
    }
    assert {x["path"] for x in lines} == {"/apply"}
    assert log.read_bytes().endswith(b"\n") and len(log.read_bytes().splitlines()) == 6


def test_platform_mock_logs_a_health_answer_that_is_not_ok(lab, tmp_path):
    """A connector's idle probe counts a 429 on /health as a throttle: the platform's log shows it."""
    log = tmp_path / "intune.requests.jsonl"
    mock, url = lab.platform_mock("intune", "--request-log", str(log))
    assert requests.get(url + "/health", timeout=2).status_code == 200  # ok: not logged
    requests.post(
        url + "/_control", headers=CONTROL, json={"mode": "throttle", "retry_after": 1, "requests": 3}, timeout=2
    )
    assert requests.get(url + "/health", headers={"X-Correlation-ID": "probe"}, timeout=2).status_code == 429
    lines = wait_for(lambda: log_lines(log), what="a log line", on_fail=mock.text)
    assert [(x["path"], x["status"], x["outcome"], x["correlation_id"], x["idempotency_key"]) for x in lines] == [
        ("/health", 429, "throttled", "probe", None)
    ]
    # nothing consumed
    assert requests.get(url + "/_control", headers=CONTROL, timeout=2).json()["requests_remaining"] == 3


def test_every_429_an_idle_probe_gets_is_reported(lab, tmp_path):
    """The Control Plane's ThrottleCount is the 429s its connectors report: an idle worker probing
    a throttled platform reports each 429 (not only the first), then the return to ok once."""
    log = tmp_path / "ansible.requests.jsonl"
    _, url = lab.platform_mock("ansible", "--request-log", str(log))
    port = free_port()
    reports = _Reports(port)
    reports.start()
    try:

        def probes(outcome: str) -> int:
            return sum(1 for _, r in reports.received if r["op"] == "probe" and r["outcome"] == outcome)

        connector, _ = lab.connector(
            "ansible", lab.queues("ansible"), url, "--report-url", f"http://127.0.0.1:{port}", "--probe-interval", "0.2"
        )
        wait_for(lambda: probes("ok") == 1, what="the first probe reported", on_fail=connector.text)
        degrade(url, "throttle", 0, 0)  # every request, until changed
        wait_for(lambda: len(log_lines(log)) >= 3, what="three probes throttled", on_fail=connector.text)
        degrade(url, "ok", None, 0)
        wait_for(lambda: probes("ok") == 2, what="the return to ok reported", on_fail=connector.text)
        sent = [x for x in log_lines(log) if x["path"] == "/health"]
        assert all(x["status"] == 429 for x in sent) and len(sent) >= 3
        assert probes("throttled") == len(sent)
    finally:
        reports.server.shutdown()
        reports.server.server_close()


def test_platform_mock_restarted_with_its_log_keeps_counting(lab, tmp_path):
    log = tmp_path / "sccm.requests.jsonl"
    first, url = lab.platform_mock("sccm", "--request-log", str(log))
    body = intent()
    assert requests.post(url + "/apply", json=body, timeout=2).json()["applied"] is True
    requests.post(url + "/_control", headers=CONTROL, json={"mode": "error", "requests": 1}, timeout=2)
    requests.post(url + "/apply", json=intent(), timeout=2)
    first.process.kill()  # a site server going down, mid-life
    first.process.wait(timeout=10)
    with open(log, "ab") as f:  # what a write cut short by the kill would leave
        f.write(b'{"n": 3, "at": 1')
    assert [x["n"] for x in log_lines(log)] == [1, 2]  # the reader skips the torn last line

    second, url = lab.platform_mock("sccm", "--request-log", str(log))
    (record,) = requests.get(url + "/applied", timeout=2).json()["applied"]
    assert (record["idempotency_key"], record["count"]) == (body["idempotency_key"], 1)
    again = requests.post(url + "/apply", json=body, timeout=2).json()
    assert (again["applied"], again["count"]) == (False, 2)  # a duplicate, as a real platform sees it
    assert requests.post(url + "/apply", json=intent(), timeout=2).json()["applied"] is True
    lines = log_lines(log)
    assert [(x["n"], x["outcome"], x["count"]) for x in lines] == [
        (1, "applied", 1),
        (2, "error", None),
        (3, "duplicate", 2),
        (4, "applied", 1),
    ]
    assert log.read_bytes().count(b"\n") == 4  # the torn bytes are gone
    assert requests.get(url + "/applied", timeout=2).json()["applied"][0]["count"] == 2


def test_platform_mock_without_a_log_keeps_memory_only(lab, tmp_path):
    mock, url = lab.platform_mock("ansible")
    requests.post(url + "/apply", json=intent(), timeout=2)
    assert list(tmp_path.glob("*.jsonl")) == []
    assert requests.get(url + "/_control", headers=CONTROL, timeout=2).json()["until"] is None


def test_platform_mock_degradation_for_s_reverts_by_itself(lab):
    mock, url = lab.platform_mock("intune")
    before = time.time()
    state = requests.post(url + "/_control", headers=CONTROL, json={"mode": "error", "for_s": 0.5}, timeout=2).json()
    assert state["mode"] == "error" and before + 0.5 <= state["until"] <= time.time() + 0.51
    assert requests.get(url + "/_control", headers=CONTROL, timeout=2).json()["until"] == state["until"]
    assert requests.post(url + "/apply", json=intent(), timeout=2).status_code == 503
    wait_for(
        lambda: requests.get(url + "/_control", headers=CONTROL, timeout=2).json()["mode"] == "ok",
        timeout=30,
        what="mode back to ok by itself",
        on_fail=mock.text,
    )
    assert requests.get(url + "/_control", headers=CONTROL, timeout=2).json()["until"] is None
    assert requests.post(url + "/apply", json=intent(), timeout=2).status_code == 200
    # changed meanwhile: the newer mode has no pending limit
    requests.post(url + "/_control", headers=CONTROL, json={"mode": "throttle", "for_s": 60}, timeout=2)
    assert requests.post(url + "/_control", headers=CONTROL, json={"mode": "error"}, timeout=2).json()["until"] is None


@pytest.mark.parametrize("for_s", ["0", "-1", "NaN", "Infinity", '"soon"', "true"])
def test_platform_mock_bad_for_s_is_400(lab, for_s):
    mock, url = lab.platform_mock("landscape")
    reply = requests.post(
        url + "/_control",
        data=f'{{"mode": "error", "for_s": {for_s}}}',
        headers={**CONTROL, "Content-Type": "application/json"},
        timeout=2,
    )
    assert reply.status_code == 400 and "for_s" in reply.json()["error"]
    assert requests.get(url + "/_control", headers=CONTROL, timeout=2).json()["mode"] == "ok"


def test_platform_degrade_fault_passes_its_time_limit(lab):
    from harness.faults import FaultContext, build
    from harness.lab.capabilities import PlatformStandIns
    from harness.model import FaultSpec

    mock, url = lab.platform_mock("jamf")

    class StandIn:  # the PlatformStandIns the fault acts through: this stand-in's control endpoint
        def platform_control_url(self, platform: str) -> str:
            return url

        def set_platform_mode(self, platform: str, mode: dict) -> None:
            requests.post(f"{url}/_control", json=mode, headers=CONTROL, timeout=10).raise_for_status()

        def kill_platform(self, platform: str) -> None:
            raise AssertionError("platform_degrade does not kill the platform")

        def restart_platform(self, platform: str) -> None:
            raise AssertionError("platform_degrade does not restart the platform")

        def platform_requests(self, platform: str) -> list[dict]:
            raise AssertionError("platform_degrade does not read what the platform received")

    assert isinstance(StandIn(), PlatformStandIns)
    ctx = FaultContext(lab=StandIn())  # type: ignore[arg-type]  # the protocol it uses, not a whole Lab
    fault = build(FaultSpec("platform_degrade", "jamf", {"mode": "throttle"}, time_limit_s=0.5))
    fault.inject(ctx)
    state = requests.get(url + "/_control", headers=CONTROL, timeout=2).json()
    assert state["mode"] == "throttle" and state["until"] is not None
    wait_for(
        lambda: requests.get(url + "/_control", headers=CONTROL, timeout=2).json()["mode"] == "ok",
        timeout=30,
        what="the stand-in back to ok by itself",
        on_fail=mock.text,
    )
    fault.heal(ctx)


def test_connector_tier_gives_each_stand_in_a_request_log_kept_across_restarts(moto, tmp_path):
    from harness.lab.connectors import ConnectorTier, ProcessLauncher

    tag = "drillconn-" + secrets.token_hex(4)
    registration = reaper.Registration(tag, "connectors", tag=tag)
    tier = ConnectorTier(
        tmp_path,
        tag,
        ProcessLauncher(tmp_path, registration, _env()),
        proxy=lambda name, upstream: upstream,
        sqs_endpoint=moto.endpoint_url,
    )
    try:
        tier.start_platform("jamf", free_port())
        body = intent()
        requests.post(tier.control_url("jamf") + "/apply", json=body, timeout=2)
        assert (tmp_path / "platform-jamf.requests.jsonl").exists()
        assert [(x["outcome"], x["idempotency_key"]) for x in tier.platform_requests("jamf")] == [
            ("applied", body["idempotency_key"])
        ]
        tier.kill_platform("jamf")
        tier.mocks["jamf"].wait(timeout=10)
        tier.restart_platform("jamf")
        reply = requests.post(tier.control_url("jamf") + "/apply", json=body, timeout=2).json()
        assert (reply["applied"], reply["count"]) == (False, 2)
        assert [x["n"] for x in tier.platform_requests("jamf")] == [1, 2]
        assert tier.platform_requests("intune") == []  # never started: no log yet
        with pytest.raises(KeyError, match="known: intune, jamf"):
            tier.platform_requests("nope")
    finally:
        pids = [p.pid for p in tier.mocks.values()]
        tier.stop()
        registration.close()
        assert proc.wait_gone(pids, timeout=5) == []


# -- ConnectorBackoff as the platform saw it (its request log), and held retries ---------------

LAB_BACKOFF = ("--base-interval", "0.5", "--max-attempts", "4", "--max-backoff", "8")  # as the lab's
BASE_S = 0.5


def arrivals_of(log: Path, key: str) -> list[dict]:
    """The applies (POST /apply) carrying one idempotency key, in the order the platform received
    them (the connector's Test-IdempotencyKey lookups, path /applied, are not applies)."""
    return [x for x in applies_in(log) if x.get("idempotency_key") == key]


def applies_in(log: Path) -> list[dict]:
    return [x for x in log_lines(log) if x.get("path") == "/apply"]


def key_tests_of(log: Path, key: str) -> list[dict]:
    """The connector's Test-IdempotencyKey lookups of one key (GET /applied/<key>), in order."""
    return [x for x in log_lines(log) if x.get("path") == "/applied" and x.get("idempotency_key") == key]


def gaps_of(entries: list[dict]) -> list[float]:
    return [round(b["at"] - a["at"], 3) for a, b in pairwise(entries)]


def ratios_of(gaps: list[float]) -> list[float]:
    return [round(b / a, 2) for a, b in pairwise(gaps)]


def assert_doubles(gaps: list[float], what: str) -> None:
    """ConnectorBackoff as the evidence gate judges it: the first gap at least the base interval
    (0.45 s for 0.5 s), each gap 1.5-3 times the previous."""
    ratios = ratios_of(gaps)
    print(f"{what}: gaps {gaps} ratios {ratios}")
    assert len(gaps) >= 2 and gaps[0] >= 0.9 * BASE_S, f"{what}: gaps {gaps}"
    assert all(1.5 <= r <= 3.0 for r in ratios), f"{what}: gaps {gaps}, ratios {ratios}"


def degrade(url: str, mode: str, retry_after: float | None, n: int) -> None:
    body = {"mode": mode, "requests": n, **({"retry_after": retry_after} if retry_after is not None else {})}
    assert requests.post(url + "/_control", headers=CONTROL, json=body, timeout=2).status_code == 200


def queue_empty(lab: ConnectorLab, q: dict) -> bool:
    from harness.lab.connectors import queue_depth

    return queue_depth(lab.sqs, q["queue_url"]) == 0


DEGRADATIONS = [
    pytest.param("throttle", 0, id="429-retry-after-0"),
    pytest.param("throttle", 0.5, id="429-retry-after-0.5"),
    pytest.param("error", None, id="503"),
]


@pytest.mark.parametrize("mode, retry_after", DEGRADATIONS)
def test_platform_sees_one_intents_retries_spaced_by_doubling_waits(lab, tmp_path, mode, retry_after):
    q = lab.queues("jamf")
    log = tmp_path / "jamf.requests.jsonl"
    mock, url = lab.platform_mock("jamf", "--request-log", str(log))
    degrade(url, mode, retry_after, 3)
    connector, metrics = lab.connector("jamf", q, url, *LAB_BACKOFF)
    body = intent("ring1")
    lab.sqs.send_message(QueueUrl=q["queue_url"], MessageBody=json.dumps(body))

    wait_for(
        lambda: metrics_of(metrics).get("applied") == 1, what="applied after three failures", on_fail=connector.text
    )
    seen = arrivals_of(log, body["idempotency_key"])
    failed = "throttled" if mode == "throttle" else "error"
    assert [(x["outcome"], x["count"]) for x in seen] == [(failed, None)] * 3 + [("applied", 1)]
    gaps = gaps_of(seen)
    assert_doubles(gaps, f"one intent, {mode}")
    # the waits the rule says (0.5, 1, 2 s), to within request latency
    assert all(w - 0.01 <= g <= w + LATENCY_S for g, w in zip(gaps, (0.5, 1.0, 2.0), strict=True)), gaps
    (record,) = requests.get(url + "/applied", timeout=2).json()["applied"]
    assert (record["idempotency_key"], record["count"]) == (body["idempotency_key"], 1)  # applied once
    lines = [line for line in connector.json_lines() if line.get("op") == "apply"]
    assert [(line["attempt"], line["wait_s"], line.get("visibility_s")) for line in lines] == [
        (1, 0.5, 4),
        (2, 1.0, 4),
        (3, 2.0, 5),
        (4, None, None),
    ]
    wait_for(lambda: queue_empty(lab, q), what="intent queue drained")


def test_a_control_plane_slow_to_take_reports_delays_no_retry(lab, tmp_path):
    """Each failed attempt is reported; a Control Plane that holds every report past the
    connector's report timeout must not push the retries back: the platform still sees them
    spaced 0.5, 1, 2 s, and the reports still arrive."""
    q = lab.queues("sccm")
    log = tmp_path / "sccm.requests.jsonl"
    _, url = lab.platform_mock("sccm", "--request-log", str(log))
    port = free_port()
    reports = _Reports(port, hold_s=3.0)
    reports.start()
    try:
        degrade(url, "error", None, 3)
        connector, metrics = lab.connector("sccm", q, url, *LAB_BACKOFF, "--report-url", f"http://127.0.0.1:{port}")
        body = intent("ring1")
        lab.sqs.send_message(QueueUrl=q["queue_url"], MessageBody=json.dumps(body))
        wait_for(
            lambda: metrics_of(metrics).get("applied") == 1, what="applied after three failures", on_fail=connector.text
        )
        gaps = gaps_of(arrivals_of(log, body["idempotency_key"]))
        assert all(w - 0.01 <= g <= w + LATENCY_S for g, w in zip(gaps, (0.5, 1.0, 2.0), strict=True)), gaps
        wait_for(
            lambda: len([r for _, r in reports.received if r["op"] == "apply"]) >= 4,
            what="every attempt reported",
            on_fail=connector.text,
        )
    finally:
        reports.stopping.set()
        reports.server.shutdown()
        reports.server.server_close()


@pytest.mark.parametrize("mode, retry_after", [DEGRADATIONS[1], DEGRADATIONS[2]])
def test_two_intents_of_one_platform_back_off_in_lockstep_doubling(lab, tmp_path, mode, retry_after):
    """Both published together, the platform failing its next 6 requests (3 of each, as the lab's
    Intune drill): the platform-wide wait stacks the other intent's wait onto each gap."""
    q = lab.queues("intune")
    log = tmp_path / "intune.requests.jsonl"
    mock, url = lab.platform_mock("intune", "--request-log", str(log))
    degrade(url, mode, retry_after, 6)
    bodies = [intent("ring1"), intent("ring1")]
    for body in bodies:  # both queued before the worker starts: its first two receives get them
        lab.sqs.send_message(QueueUrl=q["queue_url"], MessageBody=json.dumps(body))
    connector, metrics = lab.connector("intune", q, url, *LAB_BACKOFF)

    wait_for(lambda: metrics_of(metrics).get("applied") == 2, timeout=30, what="both applied", on_fail=connector.text)
    entries = applies_in(log)
    keys = [b["idempotency_key"] for b in bodies]
    first_key = next(x["idempotency_key"] for x in entries if x["idempotency_key"] in keys)
    first, second = arrivals_of(log, first_key), arrivals_of(log, next(k for k in keys if k != first_key))
    failed = "throttled" if mode == "throttle" else "error"
    for seen in (first, second):  # each: 3 failed attempts, then applied exactly once
        assert [(x["outcome"], x["count"]) for x in seen] == [(failed, None)] * 3 + [("applied", 1)]
    assert [x["idempotency_key"] for x in entries[:6]] == [first_key, second[0]["idempotency_key"]] * 3
    # The intent the evidence gate judges (retried most; the first to arrive on a tie): every gap,
    # up to its applied arrival, is its own wait plus the other's, doubling (1, 2, 4 s).
    assert_doubles(gaps_of(first), f"two intents, {mode}, first")
    # The second: doubling while both failed (1.5, 3 s); its last retry came after the first's
    # success, which delays nobody, so that gap is its own wait (2 s) only.
    second_gaps = gaps_of(second)
    assert_doubles(second_gaps[:2], f"two intents, {mode}, second (while both failed)")
    assert 2.0 - 0.01 <= second_gaps[2] <= 2.0 + LATENCY_S, second_gaps
    assert sorted(r["count"] for r in requests.get(url + "/applied", timeout=2).json()["applied"]) == [1, 1]
    wait_for(lambda: queue_empty(lab, q), what="intent queue drained")


def test_intent_failing_every_time_arrives_max_attempts_times_then_is_dead_lettered(lab, tmp_path):
    from harness.lab.connectors import peek_messages

    q = lab.queues("sccm")
    log = tmp_path / "sccm.requests.jsonl"
    mock, url = lab.platform_mock("sccm", "--request-log", str(log))
    degrade(url, "error", None, 0)  # until changed
    connector, metrics = lab.connector("sccm", q, url, *LAB_BACKOFF)
    body = intent("ring2")
    lab.sqs.send_message(QueueUrl=q["queue_url"], MessageBody=json.dumps(body))

    dead = wait_for(
        lambda: peek_messages(lab.sqs, q["dlq_url"]), what="the intent in the dead-letter queue", on_fail=connector.text
    )
    assert dead == [body]
    seen = arrivals_of(log, body["idempotency_key"])
    assert [x["outcome"] for x in seen] == ["error"] * 4  # exactly --max-attempts arrivals
    assert_doubles(gaps_of(seen), "dead-lettered intent")
    assert queue_empty(lab, q)  # deleted from the intent queue...
    m = wait_for(lambda: (m := metrics_of(metrics)).get("dead_lettered") == 1 and m, what="metrics rewritten")
    assert (m["attempts"], m["errors"], m["applied"], m["retries_held"]) == (4, 4, 0, 0)
    assert len(arrivals_of(log, body["idempotency_key"])) == 4  # ...so it never arrives again
    assert peek_messages(lab.sqs, q["dlq_url"]) == [body]  # peeking did not consume it
    (final,) = [line for line in connector.json_lines() if line.get("op") == "dead_letter"]
    assert (final["attempt"], final["correlation_id"]) == (4, body["correlation_id"])


def test_worker_killed_while_holding_a_retry_loses_nothing(lab, tmp_path):
    """SIGKILL while the message is held for a retry: no retry comes from the dead worker; SQS
    delivers the message again once the visibility the worker set ran out, and another worker
    applies it once, counting from the new receive count."""
    q = lab.queues("landscape")
    log = tmp_path / "landscape.requests.jsonl"
    mock, url = lab.platform_mock("landscape", "--request-log", str(log))
    degrade(url, "error", None, 1)
    first, _ = lab.connector("landscape", q, url, "--base-interval", "3", "--max-attempts", "4")
    body = intent("ring1")
    lab.sqs.send_message(QueueUrl=q["queue_url"], MessageBody=json.dumps(body))

    held = wait_for(
        lambda: next((line for line in first.json_lines() if line.get("op") == "apply" and line.get("held")), None),
        what="the message held for a retry",
        on_fail=first.text,
    )
    assert (held["outcome"], held["attempt"], held["wait_s"], held["visibility_s"]) == ("error", 1, 3.0, 6)
    first.process.kill()
    first.process.wait(timeout=10)
    attributes = lab.sqs.get_queue_attributes(QueueUrl=q["queue_url"], AttributeNames=["All"])["Attributes"]
    assert (attributes["ApproximateNumberOfMessages"], attributes["ApproximateNumberOfMessagesNotVisible"]) == (
        "0",
        "1",
    )  # still invisible: the worker held it

    second, metrics = lab.connector("landscape", q, url, "--base-interval", "3", "--max-attempts", "4")
    wait_for(lambda: metrics_of(metrics).get("applied") == 1, what="applied by the other worker", on_fail=second.text)
    seen = arrivals_of(log, body["idempotency_key"])
    assert [x["outcome"] for x in seen] == ["error", "applied"]  # the dead worker's retry never came
    (gap,) = gaps_of(seen)
    assert gap >= held["visibility_s"] - 0.05, gap  # only once the visibility ran out
    print(f"killed worker: redelivered and applied {gap} s after the failed attempt (visibility 6 s)")
    (applied,) = [line for line in second.json_lines() if line.get("op") == "apply"]
    assert (applied["outcome"], applied["attempt"]) == ("applied", 2)  # its new receive count
    (record,) = requests.get(url + "/applied", timeout=2).json()["applied"]
    assert record["count"] == 1
    from harness.lab.connectors import peek_messages

    wait_for(lambda: queue_empty(lab, q), what="intent queue drained")
    assert peek_messages(lab.sqs, q["dlq_url"]) == []


# -- Test-IdempotencyKey (spec rule 4): GET /applied/<key> before every apply ----------------------


def test_platform_mock_answers_test_idempotency_key_whatever_its_mode_and_logs_it(lab, tmp_path):
    log = tmp_path / "jamf.requests.jsonl"
    mock, url = lab.platform_mock("jamf", "--request-log", str(log))
    body = intent("ring0", key="key with/slash?and%percent")
    quoted = url + "/applied/" + urllib.parse.quote(body["idempotency_key"], safe="")
    missing = requests.get(quoted, headers={"X-Correlation-ID": "t1"}, timeout=2)
    assert (missing.status_code, missing.json()) == (
        404,
        {"idempotency_key": body["idempotency_key"], "applied": False},
    )
    assert requests.post(url + "/apply", json=body, timeout=2).json()["applied"] is True
    for mode in ("throttle", "error", "hang"):  # the degradation modes do not touch it
        requests.post(url + "/_control", headers=CONTROL, json={"mode": mode, "requests": 1}, timeout=2)
        found = requests.get(quoted, headers={"X-Correlation-ID": f"t-{mode}"}, timeout=2)
        assert (found.status_code, found.json()) == (
            200,
            {"idempotency_key": body["idempotency_key"], "applied": True, "count": 1, "intent_id": body["intent_id"]},
        )
        # none consumed
        assert requests.get(url + "/_control", headers=CONTROL, timeout=2).json()["requests_remaining"] == 1
    state = requests.get(url + "/_control", headers=CONTROL, timeout=2).json()
    assert (state["key_tests"], state["requests"], state["applied"]) == (4, 1, 1)
    lines = log_lines(log)
    assert [(x["path"], x["status"], x["outcome"], x["count"], x["correlation_id"]) for x in lines] == [
        ("/applied", 404, "tested", None, "t1"),
        ("/apply", 200, "applied", 1, body["correlation_id"]),
        ("/applied", 200, "tested", 1, "t-throttle"),
        ("/applied", 200, "tested", 1, "t-error"),
        ("/applied", 200, "tested", 1, "t-hang"),
    ]
    assert {x["idempotency_key"] for x in lines} == {body["idempotency_key"]}
    assert (lines[2]["intent_id"], lines[2]["ring"]) == (body["intent_id"], "ring0")
    assert all(
        set(x)
        == {
            "n",
            "at",
            "platform",
            "path",
            "idempotency_key",
            "intent_id",
            "ring",
            "correlation_id",
            "status",
            "outcome",
            "count",
        }
        for x in lines
    )

    mock.process.kill()  # restarted: tests are not applies when the log is replayed
    mock.process.wait(timeout=10)
    _, url = lab.platform_mock("jamf", "--request-log", str(log))
    (record,) = requests.get(url + "/applied", timeout=2).json()["applied"]
    assert record["count"] == 1
    assert (
        requests.get(url + "/applied/" + urllib.parse.quote(body["idempotency_key"], safe=""), timeout=2).json()[
            "count"
        ]
        == 1
    )


def test_failed_key_test_is_a_failed_attempt_with_backoff_then_one_apply(lab, tmp_path):
    """The platform is unreachable when the connector tests the key: a failed attempt (backoff,
    held retry); once the platform is up the retry tests (404) and applies, exactly once."""
    q = lab.queues("ansible")
    port = free_port()
    connector, metrics = lab.connector(
        "ansible", q, f"http://127.0.0.1:{port}", "--base-interval", "1", "--max-attempts", "5"
    )
    body = intent("ring1")
    lab.sqs.send_message(QueueUrl=q["queue_url"], MessageBody=json.dumps(body))
    failed = wait_for(
        lambda: next((x for x in connector.json_lines() if x.get("op") == "apply"), None),
        what="the first attempt",
        on_fail=connector.text,
    )
    assert (failed["outcome"], failed["key_test"], failed["attempt"], failed["wait_s"], failed["held"]) == (
        "unreachable",
        "failed",
        1,
        1.0,
        True,
    ), failed
    assert failed["detail"].startswith("Test-IdempotencyKey: ")
    log = tmp_path / "ansible.requests.jsonl"
    lab.platform_mock("ansible", "--request-log", str(log), port=port)

    m = wait_for(
        lambda: (m := metrics_of(metrics)).get("applied") == 1 and m,
        what="applied once the platform is up",
        on_fail=connector.text,
    )
    assert m["errors"] >= 1 and m["dead_lettered"] == 0
    lines = [x for x in connector.json_lines() if x.get("op") == "apply"]
    assert all(x["key_test"] == "failed" and x["outcome"] == "unreachable" for x in lines[:-1])
    assert (lines[-1]["outcome"], lines[-1]["key_test"]) == ("applied", "not_applied")
    for earlier, later in pairwise(lines):  # the failed tests backed off, doubling
        assert later["ts"] - earlier["ts"] >= earlier["wait_s"] - 0.05
    assert [x["wait_s"] for x in lines[:-1]] == [1.0, 2.0, 4.0][: len(lines) - 1]
    assert [(x["path"], x["status"]) for x in log_lines(log)] == [("/applied", 404), ("/apply", 200)]
    wait_for(lambda: queue_empty(lab, q), what="intent queue drained")
