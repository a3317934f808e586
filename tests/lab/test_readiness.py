"""The labs' readiness checks of the Control Plane go through the one Control Plane client
(harness.workload.client: ControlPlane.live / ControlPlane.health sent by ApiClient), not raw
requests: each is seen on the wire with the client's correlation id header, against a real HTTP
server on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from harness.errors import PlanError
from harness.lab.capabilities import ApiTier
from harness.lab.containers import ContainerLab
from harness.lab.embedded import EmbeddedLab
from harness.lab.external import ExternalConfig, ExternalLab
from harness.lab.external.observer import ExternalFailover


class Instance(BaseHTTPRequestHandler):
    """A Control Plane instance's health endpoints: live, and a health whose database part is up."""

    seen: list[tuple[str, str | None]]

    def do_GET(self) -> None:  # noqa: N802 - the http.server hook's name
        self.seen.append((self.path, self.headers.get("X-Correlation-Id")))
        body = json.dumps({"components": {"database": {"status": "up"}}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def instance() -> Iterator[tuple[str, int, list[tuple[str, str | None]]]]:
    seen: list[tuple[str, str | None]] = []
    handler = type("Recording", (Instance,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", server.server_address[1], seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


class Running:
    """An instance's process handle that never exited."""

    def poll(self) -> int | None:
        return None


def through_the_client(seen: list[tuple[str, str | None]], path: str) -> bool:
    return any(p == path and correlation for p, correlation in seen)


@pytest.mark.parametrize("make", [EmbeddedLab, ContainerLab], ids=["embedded", "testcontainers"])
def test_a_lab_waits_for_an_instance_through_the_control_plane_client(make, instance):
    _, port, seen = instance
    lab = make()
    lab.instance_ports["az1"], lab.instances["az1"] = port, Running()
    lab._wait_instance("az1", time.monotonic() + 20)
    assert through_the_client(seen, "/health/live"), seen


def external_lab(url: str) -> ExternalLab:
    data = {
        "provider": "external",
        "api_url": url,
        "toxiproxy_url": "http://toxi:8474",
        "database": {"failover_target": "pg-b", "nodes": {"pg-a": {"dsn": "host=pg-a"}, "pg-b": {"dsn": "host=pg-b"}}},
        "api_tier": {"instances": {"az1": url}, "probe_window_s": 1.5},
    }
    config = ExternalConfig.parse(data, lambda key, message: PlanError(f"key '{key}': {message}"))
    return ExternalLab(config, confirmed=False)


def test_the_external_lab_reads_an_instance_and_the_api_health_through_the_client(instance):
    url, _, seen = instance
    lab = external_lab(url)
    assert lab.part(ApiTier).api_instance_alive("az1")
    assert through_the_client(seen, "/health/live"), seen
    assert ExternalFailover(lab)._reconnected()
    assert through_the_client(seen, "/health"), seen
