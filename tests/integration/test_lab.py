"""The embedded lab's parts under faults: 503s while the database is unreachable, failback gated on lag."""

from __future__ import annotations

import json
import time
from pathlib import Path

import psycopg
import pytest
import requests

from harness.faults import FaultContext, build, injected
from harness.faults.replication import heal_replication, partition_replication
from harness.lab.capabilities import DatabaseNodes
from harness.lab.failover import FailbackRefused
from harness.model import FaultSpec
from tests.support import wait_for


def post(lab, path, **body):
    return requests.post(
        lab.api_url + path,
        json=body,
        timeout=15,
        headers={"Idempotency-Key": body.pop("key", "k"), "X-Correlation-Id": "lab-test"},
    )


def counts(lab) -> tuple[int, int]:
    with psycopg.connect(lab.cluster.primary.dsn) as conn:
        return (
            conn.execute("SELECT count(*) FROM approvals").fetchone()[0],
            conn.execute("SELECT count(*) FROM events").fetchone()[0],
        )


def test_lab_is_up_on_loopback_with_every_part(lab):
    endpoints = lab.endpoints()
    assert endpoints["api"].startswith("http://127.0.0.1:")
    assert all(url.startswith("http://127.0.0.1:") for url in endpoints["instances"].values())
    assert all(pid for pid in lab.processes().values()), lab.processes()
    assert all(ok for ok, _ in lab.steady_state_checks().values()) or wait_for(
        lambda: all(ok for ok, _ in lab.steady_state_checks().values()), timeout=10
    )
    assert requests.get(lab.api_url + "/health", timeout=5).json()["ServiceHealth"] == "Healthy"


def test_database_unreachable_gives_503_naming_the_cause_and_no_partial_write(lab):
    created = post(lab, "/intents", key="lab-503", ring="ring0", platform="intune", payload={}).json()
    post(lab, f"/intents/{created['id']}/evidence", content="pack")
    before = counts(lab)
    link = build(FaultSpec("proxy_down", "db"))
    with injected(link, FaultContext(toxiproxy=lab.toxiproxy)):
        start = time.monotonic()
        approve = post(lab, f"/intents/{created['id']}/approve", approver="cab")
        publish = post(lab, f"/intents/{created['id']}/publish")
        elapsed = time.monotonic() - start
        health = requests.get(lab.api_url + "/health", timeout=15)
    assert approve.status_code == 503 and approve.json()["cause"] == "database"
    assert "database unavailable" in approve.json()["error"]
    assert publish.status_code == 503 and publish.json()["cause"] == "database"
    assert health.status_code == 503 and health.json()["components"]["database"]["status"] == "down"
    assert elapsed < 20
    assert counts(lab) == before  # nothing half-written
    healed = wait_for(
        lambda: post(lab, f"/intents/{created['id']}/approve", approver="cab").status_code == 200, timeout=30
    )
    assert healed and counts(lab)[0] == before[0] + 1


def test_failback_is_refused_while_transaction_lag_exceeds_5_seconds(lab):
    replica = lab.failover.candidate
    primary = lab.capability(DatabaseNodes).database_primary()
    wait_for(lambda: lab.capability(DatabaseNodes).replica_caught_up(replica), timeout=30)
    cut = partition_replication(lab, replica)
    try:
        # a transaction the replica cannot receive (committed locally: no wait for the standby)
        with psycopg.connect(lab.cluster.primary.dsn, autocommit=True) as conn:
            conn.execute("SET synchronous_commit = local")
            conn.execute("CREATE TABLE IF NOT EXISTS lag_probe (at timestamptz)")
            conn.execute("INSERT INTO lag_probe VALUES (now())")
        wait_for(lambda: lab.failover.transaction_lag(replica) > 5.0, timeout=40, interval=0.2)
        with pytest.raises(FailbackRefused) as refused:
            lab.failover.failback(replica, max_lag=5.0)
        assert refused.value.lag > 5.0
        assert lab.capability(DatabaseNodes).database_primary() == primary  # nothing changed
    finally:
        heal_replication(lab, cut)
    wait_for(lambda: lab.failover.transaction_lag(replica) <= 5.0, timeout=40, interval=0.2)
    lag = lab.failover.failback(replica, max_lag=5.0)  # caught up: the switch is allowed
    assert lag <= 5.0 and lab.capability(DatabaseNodes).database_primary() == replica
    wait_for(lambda: all(ok for ok, _ in lab.steady_state_checks().values()), timeout=30)


def siem_has(lab, correlation_id: str) -> bool:
    lines = lab.siem_path.read_text().splitlines() if lab.siem_path.exists() else []
    return any(json.loads(line)["correlation_id"] == correlation_id for line in lines)


def create_intent(lab, correlation_id: str) -> int:
    answer = requests.post(
        lab.api_url + "/intents",
        json={"ring": "ring0", "platform": "intune", "payload": {}},
        timeout=15,
        headers={"Idempotency-Key": correlation_id, "X-Correlation-Id": correlation_id},
    )
    return answer.status_code


def test_control_plane_flags_are_on_only_inside_the_block_and_the_rest_of_the_lab_is_untouched(lab):
    """A negative drill can borrow a module's lab: control_plane_flags restarts only the Control
    Plane instances with an unsafe flag (really on: in each instance's command line, and the
    misbehaviour shows) and back (really off again, also when the block raises); every other
    process, every port and the steady state stay as they were."""

    def flags_of() -> dict[str, list[str]]:
        return {
            name: Path(f"/proc/{process.pid}/cmdline").read_bytes().decode().split("\0")
            for name, process in lab.instances.items()
        }

    others = {name: pid for name, pid in lab.processes().items() if not name.startswith("controlplane:")}
    endpoints, ports = lab.endpoints(), dict(lab.instance_ports)
    assert not any("--unsafe-skip-siem" in args for args in flags_of().values())

    class Done(Exception):
        pass

    with pytest.raises(Done):
        with lab.control_plane_flags("--unsafe-skip-siem"):
            assert set(flags_of()) == set(ports) and all("--unsafe-skip-siem" in a for a in flags_of().values())
            assert all(ok for ok, _ in lab.steady_state_checks().values()), lab.steady_state_checks()
            assert create_intent(lab, "flags-on") == 201 and not siem_has(lab, "flags-on")
            raise Done
    assert not any("--unsafe-skip-siem" in args for args in flags_of().values())
    assert all(ok for ok, _ in lab.steady_state_checks().values()), lab.steady_state_checks()
    assert create_intent(lab, "flags-off") == 201 and siem_has(lab, "flags-off")
    assert not siem_has(lab, "flags-on")
    assert lab.cp_flags == () and dict(lab.instance_ports) == ports and lab.endpoints() == endpoints
    assert {name: pid for name, pid in lab.processes().items() if not name.startswith("controlplane:")} == others


def servers(config: str) -> list[str]:
    return [line.strip() for line in config.splitlines() if line.strip().startswith("server ")]


def test_balancer_settings_are_on_only_inside_the_block_and_the_rest_of_the_lab_is_untouched(lab):
    """A negative drill's misconfigured balancer on a module's lab: balancer_settings restarts only
    HAProxy without health checks and retries (really: its configuration, and HAProxy's own stats
    say "no check") and back (checks UP again, also when the block raises), on the same URL."""
    others = {name: pid for name, pid in lab.processes().items() if name != "haproxy"}
    url, config = lab.api_url, lab.lb.config

    class Done(Exception):
        pass

    with pytest.raises(Done):
        with lab.balancer_settings(checks=False, retries=False):
            text = config.read_text()
            assert not any(line.endswith(" check") for line in servers(text)) and len(servers(text)) == 3
            assert "retries 0" in text and "retry-on" not in text
            assert set(lab.lb.server_states().values()) == {"no check"}
            assert requests.get(lab.api_url + "/health", timeout=5).status_code == 200
            raise Done
    text = config.read_text()
    assert all(line.endswith(" check") for line in servers(text)) and "retry-on conn-failure" in text
    assert set(lab.lb.server_states().values()) == {"UP"}
    assert (lab.lb_checks, lab.lb_retries) == (True, True) and lab.api_url == url
    assert requests.get(lab.api_url + "/health", timeout=5).status_code == 200
    assert {name: pid for name, pid in lab.processes().items() if name != "haproxy"} == others
    assert all(ok for ok, _ in lab.steady_state_checks().values()), lab.steady_state_checks()
