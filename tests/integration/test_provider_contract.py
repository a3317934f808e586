"""One contract, every lab provider: up, endpoints, each fault and its heal, down leaves nothing."""

from __future__ import annotations

import os
import time

import psycopg
import pytest
import requests

from harness.lab import proc
from harness.lab.containers import ContainerLab
from harness.lab.embedded import EmbeddedLab
from harness.lab.engine import ContainerEngineUnavailable, find_engine
from harness.lab.external import ExternalConfig, ExternalLab
from harness.plan import PlanError
from tests.integration.conftest import TOKEN_ENV, staging_lab_config
from tests.support import wait_for

PROVIDERS = ["embedded", "testcontainers", "external"]


@pytest.fixture(scope="module", params=PROVIDERS)
def provider_lab(request):
    if request.param == "embedded":
        lab = EmbeddedLab()
    elif request.param == "testcontainers":
        try:
            find_engine().stop()
        except ContainerEngineUnavailable as why:
            pytest.skip(f"no container engine: {why}")
        lab = ContainerLab()
    else:
        staging = request.getfixturevalue("staging")
        token = open(staging["secret_files"]["runbook-token"]).read()
        os.environ[TOKEN_ENV] = token
        request.addfinalizer(lambda: os.environ.pop(TOKEN_ENV, None))

        def fail(key, message):
            return PlanError(f"{key}: {message}")

        lab = ExternalLab(ExternalConfig.parse(staging_lab_config(staging), fail), confirmed=True)
    with lab:            # down() runs even when up() fails half-way
        yield lab


def steady(lab) -> bool:
    return all(ok for ok, _ in lab.steady_state_checks().values())


class Answer(int):
    """An HTTP status that shows the answer's body when an assertion prints it."""

    def __new__(cls, response: requests.Response):
        answer = super().__new__(cls, response.status_code)
        answer.body = response.text[:300]
        return answer

    def __repr__(self) -> str:
        return f"{int(self)} {self.body}"


def api_write(lab, key: str) -> Answer:
    return Answer(requests.post(lab.api_url + "/intents", json={"ring": "r", "platform": "p", "payload": {}},
                                headers={"Idempotency-Key": key}, timeout=15))


def test_up_gives_every_endpoint_on_loopback(provider_lab):
    endpoints = provider_lab.endpoints()
    assert endpoints["api"].startswith("http://127.0.0.1:")
    assert endpoints["toxiproxy"].startswith("http://127.0.0.1:")
    assert set(endpoints["database"]) >= {"pg-a", "pg-b"}
    wait_for(lambda: steady(provider_lab), timeout=30)
    # a client retries a 503 (e.g. the first database connection timing out on a loaded machine);
    # the write must succeed within the deadline, once (the idempotency key)
    answers, deadline = [], time.monotonic() + 30
    while not answers or answers[-1] not in (200, 201) and time.monotonic() < deadline:
        if answers:
            time.sleep(0.5)
        answers.append(api_write(provider_lab, f"contract-{provider_lab.provider}-up"))
    assert answers[-1] in (200, 201), answers


def connect_primary(lab) -> psycopg.Connection:
    name = lab.database_primary()
    if lab.provider == "embedded":
        return psycopg.connect(lab.cluster[name].dsn, autocommit=True)
    if lab.provider == "testcontainers":
        return psycopg.connect(lab[name].dsn, autocommit=True)
    node = lab.node(name)
    return psycopg.connect(node.dsn, password=node.password(), autocommit=True)


def test_replication_partition_and_its_heal(provider_lab):
    lab = provider_lab
    replica = lab.failover.candidate
    with connect_primary(lab) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS contract_probe (at timestamptz)")
    fault = lab.partition_replication(replica)
    try:
        with connect_primary(lab) as conn:   # a commit the cut-off replica cannot receive
            conn.execute("SET synchronous_commit = local")
            conn.execute("INSERT INTO contract_probe VALUES (now())")
        assert not lab.replica_caught_up(replica)
    finally:
        lab.heal_fault(fault)
    try:
        wait_for(lambda: lab.replica_caught_up(replica), timeout=40, interval=0.2)
    except AssertionError:   # say where replication stands, for the next reader
        with connect_primary(lab) as conn:
            streaming = conn.execute("SELECT application_name, state, sent_lsn::text, replay_lsn::text,"
                                     " pg_current_wal_lsn()::text FROM pg_stat_replication").fetchall()
        try:   # and what the replica and the link say, so that a rare stall can be told apart
            receiver = lab.node_query(replica, "SELECT status, sender_host, sender_port, latest_end_lsn::text,"
                                               " last_msg_receipt_time::text FROM pg_stat_wal_receiver")
        except Exception as exc:  # noqa: BLE001 - the diagnosis must not hide the failure
            receiver = f"{type(exc).__name__}: {exc}"
        try:
            link = lab.toxiproxy.proxy(lab.replication_proxy_name(replica))
            link = {"enabled": link.enabled, "listen": link.listen, "toxics": list(link.toxics())}
        except Exception as exc:  # noqa: BLE001
            link = f"{type(exc).__name__}: {exc}"
        raise AssertionError(f"{replica} not caught up 40 s after the heal; primary sees {streaming}; "
                             f"replica's WAL receiver {receiver}; link {link}; "
                             f"lag {lab.failover.transaction_lag(replica)}") from None


def test_killed_primary_fails_over_and_fails_back(provider_lab):
    lab = provider_lab
    old = lab.database_primary()
    lab.kill_database_node(old)
    assert lab.failover.wait_failed_over(90), lab.failover.error
    assert lab.database_primary() != old
    wait_for(lambda: api_write(lab, f"contract-{lab.provider}-after") in (200, 201), timeout=30)
    lab.failover.rebuild(old, synchronous=True)
    wait_for(lambda: lab.failover.transaction_lag(old) <= 5.0, timeout=40, interval=0.2)
    assert lab.failover.failback(old, max_lag=5.0) <= 5.0
    assert lab.database_primary() == old
    wait_for(lambda: steady(lab), timeout=40)


def test_down_leaves_nothing_running_that_the_provider_started(provider_lab):
    lab = provider_lab
    started = [pid for pid in lab.processes().values() if pid]
    lab.down()
    lab.down()                                            # idempotent
    wait_for(lambda: not [p for p in started if proc.is_alive(p)], timeout=30)
    if lab.provider == "external":                       # staging is not ours: still serving
        assert started == []
        assert requests.get(lab.api_url + "/health", timeout=5).status_code == 200
