"""Shared fixtures: one embedded fault server per test module, driven over HTTP only."""

from __future__ import annotations

import pytest
import requests
from toxiproxy import Toxiproxy

from harness.toxiproxy.launcher import start_embedded
from tests.support import TcpServer, echo


@pytest.fixture(scope="module")
def toxiproxy_server():
    server = start_embedded()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def toxi(toxiproxy_server):
    """toxiproxy-python pointed at the module's server, with a clean state for each test."""
    client = Toxiproxy()
    client.update_api_consumer(toxiproxy_server.host, toxiproxy_server.port)
    client.destroy_all()
    yield client
    client.destroy_all()


@pytest.fixture
def api(toxiproxy_server):
    """Raw HTTP to the module's server: api("get", "/proxies") -> requests.Response."""
    session = requests.Session()

    def call(method: str, path: str, **kwargs) -> requests.Response:
        return session.request(method, toxiproxy_server.url + path, timeout=10, **kwargs)

    yield call
    session.close()


@pytest.fixture(scope="module")
def echo_server():
    """A TCP echo server on loopback."""
    with TcpServer(echo) as server:
        yield server
