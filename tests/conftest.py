"""Shared fixtures: one embedded fault server per test module, driven over HTTP only."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import pytest
import requests
from toxiproxy import Toxiproxy

from harness.toxiproxy.launcher import start_embedded
from tests.support import TcpServer, echo

# Tests never write the user's CAB log or make the user's CAB key: every drill a test runs, in
# process or as a `drill` child, appends to a log and signs with a key of this session's own.
DEFAULT_CAB_LOG = Path(__file__).resolve().parents[1] / "reports" / "cab-log.jsonl"
_RECORD_DIR = Path(tempfile.mkdtemp(prefix="drill-tests-cab-"))
os.environ["DRILL_CAB_LOG"] = str(_RECORD_DIR / "cab-log.jsonl")
os.environ["DRILL_CAB_KEY"] = str(_RECORD_DIR / "cab.key")


def _digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


_DEFAULT_LOG_BEFORE = _digest(DEFAULT_CAB_LOG)


# the longest module first: `./run test` gives whole modules to two workers in collection order,
# and this one (every row on three providers, about 9 minutes) would otherwise start late and end last
LONGEST_FIRST = "tests/integration/test_provider_contract.py"


# The fast loop (`./run test -m "not integration"`) leaves out every test that starts real servers:
# whole folders (labs, Control Plane processes, containers, the Toxiproxy server process), and anywhere
# else a test using a fixture that starts a PostgreSQL, a moto server or a Toxiproxy server; and the
# modules too slow for the loop (SLOW_MODULES).
INTEGRATION_FOLDERS = {
    "integration": "drills on real labs",
    "lab": "the lab's servers: PostgreSQL, HAProxy, moto",
    "controlplane": "Control Plane processes on PostgreSQL",
    "toxiproxy": "the Toxiproxy server as a process",
    "packaging": "builds the wheel and installs it in a new virtual environment",
}
INTEGRATION_FIXTURES = {
    "toxiproxy_server",    # tests/conftest.py: a Toxiproxy server process (toxi, api use it)
    "pg",                  # tests/backup, tests/schedule: a PostgreSQL cluster
    "moto",                # a moto server process
}
# modules too slow for the fast loop (90 s on 2 cores), with the reason; measured with --durations
SLOW_MODULES = {
    "report/test_record_bad_input.py": "a `drill` child process per case: about 75 s of the loop's 180",
    "fuzz/test_fuzz_inputs.py": "hundreds of generated plans, CAB logs and folders: about 15 s",
}
_TESTS = Path(__file__).resolve().parent


def is_integration(item: pytest.Item) -> bool:
    where = Path(str(item.path)).resolve().relative_to(_TESTS)
    return (where.parts[0] in INTEGRATION_FOLDERS or where.as_posix() in SLOW_MODULES
            or bool(INTEGRATION_FIXTURES & set(getattr(item, "fixturenames", ()))))


def pytest_collection_modifyitems(items):
    for item in items:
        if is_integration(item) and item.get_closest_marker("integration") is None:
            item.add_marker(pytest.mark.integration)
    items.sort(key=lambda item: item.nodeid.split("::")[0] != LONGEST_FIRST)   # stable: the rest keep their order


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_RECORD_DIR, ignore_errors=True)
    if _digest(DEFAULT_CAB_LOG) != _DEFAULT_LOG_BEFORE:
        print(f"\nFAILED: the test run wrote the user's default CAB log {DEFAULT_CAB_LOG}")
        session.exitstatus = 1


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
