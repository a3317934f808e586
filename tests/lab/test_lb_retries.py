"""The lab's HAProxy never sends a request twice: a POST that reached an instance which then closed
without answering may have been applied there (an approval committed, then the instance died), so
re-sending it to another instance would let that one's answer (a 503 "nothing written") stand for a
write that was in fact made. Only a connection that failed before the request was sent is retried
(`retry-on conn-failure`), and that one still costs a client nothing when an instance is dead.

Real HAProxy in front of real sockets: one instance that reads the request and closes without an
answer (a crash after the commit), one that answers 503 naming its cause (a database refusal)."""

from __future__ import annotations

import json
import socket
import threading

import pytest
import requests

from harness.lab.haproxy import HAProxyMissing, LoadBalancer
from harness.model import Outcome
from harness.net import free_port
from harness.workload import ApiClient
from tests.support import TcpServer


class Instance:
    """A stand-in API instance on a TcpServer: records each request line it received in full,
    then closes without an answer (answer None) or answers `answer` (status, JSON body)."""

    def __init__(self, answer: tuple[int, dict] | None):
        self.answer = answer
        self.received: list[str] = []
        self._lock = threading.Lock()
        self.server = TcpServer(self.handle)
        self.address = self.server.address

    def handle(self, sock: socket.socket) -> None:
        sock.settimeout(10)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                return
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = next(
            (
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            ),
            0,
        )
        while len(body) < length:
            chunk = sock.recv(65536)
            if not chunk:
                return
            body += chunk
        with self._lock:
            self.received.append(head.split(b"\r\n", 1)[0].decode())
        if self.answer is None:
            sock.shutdown(socket.SHUT_RDWR)  # the request arrived whole; no byte of an answer
            return
        status, payload = self.answer
        content = json.dumps(payload).encode()
        sock.sendall(
            f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {len(content)}"
            f"\r\nConnection: close\r\n\r\n".encode()
            + content
        )

    def close(self) -> None:
        self.server.close()


@pytest.fixture
def instances():
    made: list[Instance] = []

    def make(answer):
        made.append(Instance(answer))
        return made[-1]

    yield make
    for instance in made:
        instance.close()


@pytest.fixture
def balancer(tmp_path):
    started: list[LoadBalancer] = []

    def start(backends: dict[str, str]) -> LoadBalancer:
        try:
            lb = LoadBalancer(tmp_path, backends, free_port(), checks=False)
        except HAProxyMissing as why:
            pytest.skip(str(why))
        started.append(lb)
        lb.start()
        return lb

    yield start
    for lb in started:
        lb.stop()


def approve_through(lb):
    """One approval POSTed through the balancer by the harness's own client: its Reply."""
    client = ApiClient(lb.url, timeout=15)
    try:
        return client.call("POST", "/intents/7/approve", json={"approver": "drill-cab"})
    finally:
        client.close()


def test_a_post_the_instance_took_and_closed_on_is_never_sent_to_another(instances, balancer):
    # each takes the POST, then dies without answering (whichever the balancer picks first); before,
    # HAProxy sent it again to the same one, then to the other: three deliveries of one approval
    a, b = instances(None), instances(None)
    lb = balancer({"a": a.address, "b": b.address})
    reply = approve_through(lb)
    sent = a.received + b.received
    assert sent == ["POST /intents/7/approve HTTP/1.1"], f"the POST reached the instances {len(sent)} times: {sent}"
    # the instance that took it never answered: the outcome is unknown, never a refusal
    assert reply.outcome is Outcome.INFO and reply.status == 502, reply


def test_another_instances_refusal_never_answers_for_a_post_one_took(instances, balancer):
    """The drill's failure: an approval taken by one instance (committed, then no answer), answered
    503 "database unavailable" (definite) by the instance it was sent to again. Round robin sends
    the first request to the first server; whichever answers, the refusal may only come from an
    instance that was the only one to get the POST."""
    took = instances(None)
    refuses = instances((503, {"error": "database unavailable", "cause": "database"}))
    lb = balancer({"a": took.address, "b": refuses.address})
    reply = approve_through(lb)
    if reply.outcome is Outcome.FAIL:  # a definite refusal: nobody else may have had the POST
        assert took.received == [], f"refused 503 after an instance took it: {took.received}"
    assert len(took.received) + len(refuses.received) == 1


def test_a_refused_connection_is_still_retried_on_another_instance(instances, balancer):
    dead_port = free_port()  # nothing listens there: connection refused
    alive = instances((200, {"intent_id": 7, "state": "Approved"}))
    lb = balancer({"dead": f"127.0.0.1:{dead_port}", "alive": alive.address})
    for _ in range(4):  # round robin: the dead one gets its turns
        answer = requests.post(lb.url + "/intents/7/approve", json={"approver": "drill-cab"}, timeout=15)
        assert answer.status_code == 200, answer.text
    assert len(alive.received) == 4
