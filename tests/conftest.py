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


# The slowest modules first. `./run test` gives whole modules to its two workers (--dist loadfile) in
# collection order (--no-loadscope-reorder: by default xdist orders modules by their number of tests, and
# the slowest ones, one to four long drills each, started last and made the tail). Seconds per module
# (testcase times summed) in the whole-suite --junitxml run of 2026-12-08 (f35fc0e, 18:42, the 2-core
# machine otherwise idle); modules changed since have that figure scaled by their after/before ratio,
# measured back to back (-n 0, the same machine). A module under 71 s there keeps its place from the
# run before (2026-12-07, loaded ~2x: its figure in brackets); test_event_store.py stays last.
SLOWEST_FIRST = (
    "integration/test_provider_contract_containers.py",  # 297
    "integration/test_provider_contract_external.py",  # 226
    "integration/test_provider_contract_embedded.py",  # 224 (the connectors row first: no leftover wait)
    "integration/test_backup_restore.py",  # 146
    "controlplane/test_connectors.py",  # 119 (124: its teardowns stop the processes at once)
    "integration/test_database_drill.py",  # 111 (107; and test_rule2_events.py's negative, its lab gone)
    "integration/test_chaos.py",  # 81
    "integration/test_external.py",  # 71
    "integration/test_api_tier.py",  # 68 (95: both negatives on the module's lab, one lab in all)
    "lab/test_pgbackrest.py",  # 54 (92; 91-100 -> 54 s with moto's keep-alive TLS, e792897)
    "integration/test_connectors_matrix.py",  # 50 (78: the negative on the module's lab, intune cut)
    "integration/test_evidence_store.py",  # [96] (two negatives on one lab: 35.1 -> 33.3 s)
    "integration/test_cli.py",  # [89]
    "fuzz/test_fuzz_inputs.py",  # [65]
    "toxiproxy/test_server_process.py",  # [62]
    "packaging/test_wheel.py",  # [54]
    "integration/test_event_store.py",  # [36]
)


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
    "toxiproxy_server",  # tests/conftest.py: a Toxiproxy server process (toxi, api use it)
    "pg",  # tests/backup, tests/schedule: a PostgreSQL cluster
    "moto",  # a moto server process
}
# modules too slow for the fast loop (90 s on 2 cores), with the reason; measured with --durations
SLOW_MODULES = {
    "report/test_record_bad_input.py": "53 hostile CAB logs, keys and folders through every record command: about 14 s",
    "fuzz/test_fuzz_inputs.py": "hundreds of generated plans, CAB logs and folders: about 15 s",
}
_TESTS = Path(__file__).resolve().parent


def is_integration(item: pytest.Item) -> bool:
    where = Path(str(item.path)).resolve().relative_to(_TESTS)
    return (
        where.parts[0] in INTEGRATION_FOLDERS
        or where.as_posix() in SLOW_MODULES
        or bool(INTEGRATION_FIXTURES & set(getattr(item, "fixturenames", ())))
    )


def pytest_collection_modifyitems(items):
    for item in items:
        if is_integration(item) and item.get_closest_marker("integration") is None:
            item.add_marker(pytest.mark.integration)
    items.sort(key=lambda item: slowness_rank(Path(str(item.path))))  # stable: the rest keep their order


def slowness_rank(path: Path) -> int:
    """A module's place in the run: its index in SLOWEST_FIRST, or after all of them."""
    where = path.resolve().relative_to(_TESTS).as_posix()
    return SLOWEST_FIRST.index(where) if where in SLOWEST_FIRST else len(SLOWEST_FIRST)


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
