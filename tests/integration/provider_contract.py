"""One contract, every lab provider: up, endpoints, each fault and its heal, every matrix row's
drill unchanged (same steps, same checkers, the same behaviour asserted), down leaves nothing.
One lab per provider serves the whole module, as APScheduler runs one suite over every job store.

The contract is written once, here; each provider's module (test_provider_contract_embedded.py,
_containers.py, _external.py) names its PROVIDER and takes these tests and this fixture with a star
import. Three modules, not one module with three parameters: `./run test` gives whole modules to its
two workers, and the three providers' rows (about 9 minutes in one module) then run side by side."""

from __future__ import annotations

import contextlib
import json
import os
import threading
import xml.etree.ElementTree as ET
from pathlib import Path

import psycopg
import pytest
import requests

from harness.errors import PlanError
from harness.faults.replication import heal_replication, partition_replication
from harness.lab import proc
from harness.lab.capabilities import DatabaseNodes
from harness.lab.containers import ContainerLab
from harness.lab.embedded import EmbeddedLab
from harness.lab.engine import ContainerEngineUnavailable, find_engine
from harness.lab.external import ExternalConfig, ExternalLab
from harness.report import verify_cab_log
from tests.integration.conftest import TOKEN_ENV, gates_of, not_passed, run_plan, staging_lab_config
from tests.support import wait_for

PROVIDERS = ["embedded", "testcontainers", "external"]


@pytest.fixture(scope="module")
def provider_lab(request):
    """The lab of the module's PROVIDER, one of PROVIDERS."""
    provider = request.module.PROVIDER
    assert provider in PROVIDERS, provider
    if provider == "embedded":
        lab = EmbeddedLab()
    elif provider == "testcontainers":
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
    with lab:  # down() runs even when up() fails half-way
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
    return Answer(
        requests.post(
            lab.api_url + "/intents",
            json={"ring": "r", "platform": "p", "payload": {}},
            headers={"Idempotency-Key": key},
            timeout=15,
        )
    )


def test_up_gives_every_endpoint_on_loopback(provider_lab):
    endpoints = provider_lab.endpoints()
    assert endpoints["api"].startswith("http://127.0.0.1:")
    assert endpoints["toxiproxy"].startswith("http://127.0.0.1:")
    assert set(endpoints["database"]) >= {"pg-a", "pg-b"}
    wait_for(lambda: steady(provider_lab), timeout=30)
    # a client retries a 503 (e.g. the first database connection timing out on a loaded machine);
    # the write must succeed within the deadline, once (the idempotency key)
    answers: list[Answer] = []

    def written() -> bool:
        answers.append(api_write(provider_lab, f"contract-{provider_lab.provider}-up"))
        return answers[-1] in (200, 201)

    wait_for(written, timeout=30, interval=0.5, what="a write answered 200/201", on_fail=lambda: str(answers))


def connect_primary(lab) -> psycopg.Connection:
    name = lab.capability(DatabaseNodes).database_primary()
    if lab.provider == "embedded":
        return psycopg.connect(lab.cluster[name].dsn, autocommit=True)
    if lab.provider == "testcontainers":
        return psycopg.connect(lab[name].dsn, autocommit=True)
    node = lab.node(name)
    return psycopg.connect(node.dsn, password=node.password(), autocommit=True)


@contextlib.contextmanager
def writing(lab, pace_s: float = 0.001):
    """Commits on the primary every pace_s (not waiting for replicas) while the block runs: WAL is
    being sent as a partition starts and while it heals. Yields how many were committed."""
    done, count, failed = threading.Event(), [0], []

    def write():
        try:
            with connect_primary(lab) as conn:
                conn.execute("SET synchronous_commit = local")
                while not done.wait(pace_s):
                    conn.execute("INSERT INTO contract_probe VALUES (now())")
                    count[0] += 1
        except Exception as exc:  # noqa: BLE001 - reported below, in the test's thread
            failed.append(exc)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        yield count
    finally:
        done.set()
        writer.join(30)
    assert not failed, f"the writer failed: {failed[0]!r}"


def test_replication_partition_and_its_heal(provider_lab):
    """Under write load: WAL dropped by the partition must not leave a hole in the replica's WAL
    once the heal lets bytes through again (the heal closed the link's connections too late, once,
    and the replica never streamed again)."""
    lab = provider_lab
    replica = lab.failover.candidate
    with connect_primary(lab) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS contract_probe (at timestamptz)")
    with writing(lab) as committed:
        fault = partition_replication(lab, replica)
        try:
            wait_for(lambda: committed[0] >= 20, timeout=30, what="20 commits the cut-off replica cannot receive")
            assert not lab.capability(DatabaseNodes).replica_caught_up(replica)
        finally:
            heal_replication(lab, fault)
        at_heal = committed[0]
        wait_for(lambda: committed[0] >= at_heal + 20, timeout=30, what="20 commits after the heal")
    try:
        wait_for(lambda: lab.capability(DatabaseNodes).replica_caught_up(replica), timeout=40, interval=0.2)
    except AssertionError:  # say where replication stands, for the next reader
        with connect_primary(lab) as conn:
            streaming = conn.execute(
                "SELECT application_name, state, sent_lsn::text, replay_lsn::text,"
                " pg_current_wal_lsn()::text FROM pg_stat_replication"
            ).fetchall()
        try:  # and what the replica and the link say, so that a rare stall can be told apart
            receiver = lab.capability(DatabaseNodes).node_query(
                replica,
                "SELECT status, sender_host, sender_port, latest_end_lsn::text,"
                " last_msg_receipt_time::text FROM pg_stat_wal_receiver",
            )
        except Exception as exc:  # noqa: BLE001 - the diagnosis must not hide the failure
            receiver = f"{type(exc).__name__}: {exc}"
        try:
            link = lab.toxiproxy.proxy(lab.capability(DatabaseNodes).replication_proxy_name(replica))
            link = {"enabled": link.enabled, "listen": link.listen, "toxics": list(link.toxics())}
        except Exception as exc:  # noqa: BLE001
            link = f"{type(exc).__name__}: {exc}"
        try:  # the embedded replica's own server log says why its WAL receiver is not running
            log = lab.cluster[replica].log_tail(30)
        except Exception as exc:  # noqa: BLE001
            log = f"(no server log: {type(exc).__name__}: {exc})"
        raise AssertionError(
            f"{replica} not caught up 40 s after the heal; primary sees {streaming}; "
            f"replica's WAL receiver {receiver}; link {link}; "
            f"lag {lab.failover.transaction_lag(replica)}\n--- {replica}'s log ---\n{log}"
        ) from None


def test_killed_primary_fails_over_and_fails_back(provider_lab):
    lab = provider_lab
    old = lab.capability(DatabaseNodes).database_primary()
    lab.capability(DatabaseNodes).kill_database_node(old)
    assert lab.failover.wait_failed_over(90), lab.failover.error
    assert lab.capability(DatabaseNodes).database_primary() != old
    wait_for(lambda: api_write(lab, f"contract-{lab.provider}-after") in (200, 201), timeout=30)
    lab.failover.rebuild(old, synchronous=True)
    wait_for(lambda: lab.failover.transaction_lag(old) <= 5.0, timeout=40, interval=0.2)
    assert lab.failover.failback(old, max_lag=5.0) <= 5.0
    assert lab.capability(DatabaseNodes).database_primary() == old
    wait_for(lambda: steady(lab), timeout=40)


# ---- every row's drill on every provider: the plans of drills/ as they are, each row's behaviour
# asserted the same way wherever it runs


def check_api(results: dict, lab, tmp_path: Path) -> None:
    g = gates_of(results["scenarios"][0])
    assert g["no_failed_requests_beyond_probe_interval"]["measured"]["requests_after_kill"] > 20
    budget = g["availability_budget"]  # the zone's loss and the whole tier's outage, within the allowance
    m = results["scenarios"][0]["measurements"]
    assert budget["verdict"] == "pass" and budget["unit"] == "%" and budget["limit"] == 25.0
    assert m["requests"] > 100 and m["windows_observed"] >= 1 and m["requests_not_served"] > 0
    assert "503 cause api" in g["intents_and_approvals_blocked"]["measured"].values()
    assert g["connectors_serve_queued_work"]["measured"] == {"queued": 2, "applied_once_while_down": 2}
    refused = g["publish_refused_while_unhealthy"]["measured"]
    assert refused["attempted_while_unhealthy"] >= 1 and refused["accepted"] == 0
    assert any("api_tier" in a for a in refused["answers"])
    assert g["publish_accepted_when_healthy"]["measured"]["publish"] == "200"
    faults = {f["label"]: f for f in results["scenarios"][0]["faults"]}
    assert set(faults) >= {"kill-api:az1", "kill-api:all"} and all(f["healed_s"] for f in faults.values())


def check_evidence(results: dict, lab, tmp_path: Path) -> None:
    scenario = results["scenarios"][0]
    g = gates_of(scenario)
    # the backoff as the store's gateway received the attempts: about 0.2, 0.4, 0.8 s
    backoff = g["retry_backoff_exponential_answering_503"]["measured"]
    gaps = backoff["gaps_ms"]
    assert len(gaps) == 3 and 150 <= gaps[0] < gaps[1] < gaps[2] and 1.5 <= backoff["growth"] <= 3
    for condition in ("unreachable", "answering_503"):
        answer = g[f"publish_blocked_store_{condition}"]["measured"]["publish"]
        assert answer.startswith("503 cause evidence_store") and answer.endswith("Impact publish blocked")
    assert g["validated_copy_present"]["measured"]["sha256"] == g["validated_copy_present"]["measured"]["expected"]
    assert g["validated_copy_absent"]["measured"]["sha256"] is None
    assert g["failover_with_validated_copy"]["measured"]["evidence_source"] == "alternate-region"
    assert g["publishing_resumed"]["verdict"] == "pass" and g["impact_event_recorded"]["verdict"] == "pass"
    # RTO on what the outage blocks: publishing
    assert scenario["measurements"]["rto_measured_on"] == "publish" and scenario["measurements"]["rto_seconds"] > 1


def check_event_store(results: dict, lab, tmp_path: Path) -> None:
    scenario = results["scenarios"][0]
    g = gates_of(scenario)
    assert "503 cause event_store" in g["publish_refused_event_store_blocked"]["measured"]["publish"]
    assert g["publish_accepted_only_when_event_store_healthy"]["measured"]["accepted_while_blocked"] == 0
    failover = g["failover_cause_event_store_write_blocked"]["measured"]
    assert failover["detect_cause"] == "event_store_write_blocked" and failover["fenced"] in lab.endpoints()["database"]
    chain = g["event_chain_linked_across_failover"]["measured"]
    assert chain["boundary_linked"] is True and chain["broken_links"] == [] and chain["bad_hashes"] == []
    assert g["audit_events_not_lost"]["measured"]["recorded_before"] > 0
    # EventStoreWriteSuccess counts the refused appends: the drill window shows them (a measurement of
    # its own), the gate judges the hour projected (its measured value, the other measurement)
    ws, figures = g["event_store_write_success"], scenario["measurements"]
    assert figures["event_store_write_success_observed"] < 1.0 and ws["measured"] >= 0.999
    assert figures["event_store_write_success_projected_hour"] == ws["measured"] and ws["limit"] == 0.999
    assert g["no_change_acknowledged_without_event"]["measured"] == 0
    m = scenario["measurements"]
    assert m["lost_writes"] == 0 and m["rpo_seconds"] == 0 and 0 < m["rto_seconds"] < 60
    phases = scenario["phases"]
    assert phases["detect"] <= phases["fence"] <= phases["promote"] <= phases["reconnect"] <= phases["first_write"]
    assert g["transaction_lag_seconds"]["measured"] <= 5
    # the lab is left in steady state, failed back once the harness measured the lag within 5 s
    assert g["steady_state_after_heal"]["verdict"] == "pass" and g["transaction_lag_seconds"]["verdict"] == "pass"
    # parts 2 and 3 on the redundant cluster; the failover controller watches again after them
    after = gates_of(results["scenarios"][1])
    assert after["smoke_verification"]["verdict"] == "pass" and after["rollback_applied_ring0"]["verdict"] == "pass"
    assert lab.failover.state == "watching"


def check_connectors(results: dict, lab, tmp_path: Path) -> None:
    throttled, cab_pause, jamf, sccm, failover = (gates_of(s) for s in results["scenarios"])
    # the row runs first (ROWS): no scenario before it lost a worker holding a message, so none waits
    # out that message's visibility timeout (about 27 s) before its faults
    waited = [o for s in results["scenarios"] for o in s["observations"] if "queued from before" in o]
    assert waited == [], waited
    # row 4: other platforms go on; the backoff doubles as Intune saw it; resume needs GraphThrottleCount <= 5
    others = ("jamf", "sccm", "landscape", "ansible")
    assert throttled["other_platforms_continue"]["measured"] == {p: [1] for p in others}
    # two waits to compare at least, as the gate needs (usually three: each intent fails three
    # times; once, on a loaded machine, the intent retried most reached Intune three times, its
    # waits those of attempts 2 and 3: most likely SQS had delivered it a second time, and the
    # connector counts attempts from the receive count)
    backoff = throttled["connector_backoff_2x_intune"]["measured"]
    assert len(backoff["ratios"]) >= 1 and 1.8 <= backoff["growth"] <= 2.2  # the spec's 2x, within 10%
    assert throttled["throttles_counted_intune"]["measured"]["sent_by_platform"] >= 6
    held = throttled["resume_requires_throttle_count_le_5"]["measured"]
    assert held["throttle_count"] >= 6 and held["accepted"] == 0
    assert throttled["promotions_resumed_intune"]["measured"] == {"promotion": "200", "applied": 1}
    assert cab_pause["cab_manual_pause_intune"]["measured"]["degraded_for_s"][0] > 15 * 60
    assert cab_pause["cab_pause_holds_until_lifted"]["verdict"] == "pass"
    # row 5: dead letters after the maximum attempts (as Jamf saw them), requeued, applied once
    assert jamf["dead_lettered_jamf"]["measured"] == {"dead_lettered": 2, "attempts": [4]}
    assert jamf["requeue_confirmed_jamf"]["measured"]["still_dead_lettered"] == 0
    assert jamf["applied_exactly_once_jamf"]["measured"] == {"published": 2, "missing": 0, "duplicated": 0}
    assert jamf["queue_depth_reported_jamf"]["measured"]["reported"] >= 1
    # row 6: the gate is SCCM.SiteHealth; manual import offered only after 24 h
    assert sccm["promotion_refused_sccm"]["measured"]["answers"] == ["503 cause platform:sccm gate SCCM.SiteHealth"]
    assert sccm["site_outage_recorded_sccm"]["measured"]["fallback_offered"] is False
    assert sccm["manual_import_fallback_sccm"]["measured"]["down_for_s"][0] > 24 * 3600
    # RTO of each row on what it blocks: an apply at the platform
    assert [s["measurements"]["rto_measured_on"] for s in results["scenarios"][:4]] == [
        "apply:intune",
        "apply:intune",
        "apply:jamf",
        "apply:sccm",
    ]
    # the domain's failover drill: every worker replaced, a test intent, a Ring 0 rollback on all five
    assert failover["smoke_verification"]["verdict"] == "pass"
    assert failover["rollback_applied_ring0"]["measured"]["platforms"] == 5


def check_database(results: dict, lab, tmp_path: Path) -> None:
    scenario = results["scenarios"][0]
    g = gates_of(scenario)
    m = scenario["measurements"]
    assert 0 < m["rto_seconds"] < 60 and m["rto_measured_on"] == "write"
    assert m["rpo_seconds"] == 0 and m["lost_writes"] == 0 and m["duplicated_writes"] == 0
    # the failover's outage shows in the harness's own requests: a bad 5-minute window, within the allowance
    assert m["requests_not_served"] > 0 and m["bad_windows"] >= 1 and g["availability_budget"]["verdict"] == "pass"
    assert {"detect", "promote", "reconnect", "first_write"} <= set(scenario["phases"])
    assert scenario["phases"]["detect"] <= scenario["phases"]["promote"] <= scenario["phases"]["first_write"]
    # every rule judged from what the harness saw
    blocked = g["publish_approval_blocked"]["measured"]
    assert all(blocked[k].startswith("503 cause database") for k in ("approve", "publish"))
    assert blocked["acknowledged"] == []  # nothing acknowledged between the kill and the promotion
    assert g["transaction_lag_seconds"]["measured"] <= 5
    # the failback was requested while the harness measured lag > 5 s, and the action refused it
    assert m["failback_lag_at_request_s"] > 5 and m["failback_refused"] is True
    approvals = g["approval_event_count"]["measured"]
    # every acknowledged approval once; an indeterminate one (in flight at the read, or its answer
    # lost with the primary) may be there or not: containers once had 7 events, 6 acked + 1 such
    acked, maybe = approvals["acknowledged"], approvals["indeterminate"]
    assert acked > 0 and approvals["missing"] == approvals["unexpected"] == approvals["duplicated"] == []
    assert acked <= approvals["ApprovalEventCount"] <= acked + maybe
    assert g["event_chain_intact"]["measured"]["bad_hashes"] == []
    rule2 = g["correlation_ids_recorded"]["measured"]  # rule 2 on what the deployment logged itself
    assert rule2["deployment_failover_events_checked"] >= 3 and rule2["failovers_not_logged_by_deployment"] == []
    assert rule2["deployment_audit_events_checked"] > 0 and rule2["forwarded_events_delivered"] >= 2  # inject, heal
    if lab.provider == "embedded":  # what test_rule2_events.py asserted on an embedded lab of its own
        check_rule2_sources(scenario, rule2, lab)
    assert g["steady_state_after_heal"]["verdict"] == "pass" and g["faults_healed"]["verdict"] == "pass"
    # the primary's kill, and the replication latency that made the lag exceed 5 s at the failback request
    kill, latency = sorted(scenario["faults"], key=lambda f: f["injected_s"])
    assert kill["type"] == "database_primary_kill" and kill["healed_s"] > kill["injected_s"]
    assert latency["type"] == "latency" and latency["healed_s"] > latency["injected_s"]
    # outputs
    out = tmp_path / "out"
    on_disk = json.loads((out / "results.json").read_text())
    assert on_disk["schema_version"] == 4 and on_disk["verdict"] == "pass"
    assert {"drill", "correlation_id", "started_at", "finished_at", "scenarios"} <= set(on_disk)
    suite = ET.parse(out / "junit.xml").getroot()
    assert suite.iter("testcase") and not list(suite.iter("failure"))
    html = (out / "report.html").read_text()
    assert "PASS" in html and results["correlation_id"] in html and "<svg" in html
    assert "of the month&#39;s error budget, allowance 25%: met" in html  # the error budget, in one sentence
    assert verify_cab_log(tmp_path / "cab.jsonl") == (True, None)


def stored_drill_events(lab) -> list[dict]:
    """Every DrillEvent in the deployment's event store, oldest first."""
    stored: list[dict] = []
    while True:
        reply = requests.get(
            lab.api_url + "/events",
            params={"type": "DrillEvent", "limit": 1000, "after": stored[-1]["seq"] if stored else 0},
            timeout=15,
        )
        assert reply.status_code == 200, reply.text[:300]
        page = reply.json()["events"]
        if not page:
            return stored
        stored += page


def check_rule2_sources(scenario: dict, rule2: dict, lab) -> None:
    """Validation rule 2 on what the deployment logged by itself: the Control Plane's own audit
    events and the failover manager's own posts, the harness's forwarded journal events apart."""
    assert rule2["deployment_audit_events_checked"] > 25  # the workload's writes, at least
    assert rule2["failovers_observed"] >= 1
    figures = scenario["measurements"]
    assert figures["rule2_deployment_failover_events_checked"] == rule2["deployment_failover_events_checked"]
    # the harness forwarded its own acts, never the failover manager's events
    events = scenario["events"]
    assert {e["kind"] for e in events if e["forwarded"]} >= {"inject", "heal"}
    assert all(not e["forwarded"] and not e["event_id"] for e in events if e["source"] == "failover-controller")
    assert any(e["kind"] == "promote" for e in events if e["source"] == "failover-controller")
    # in the store: the manager's posts under its own correlation ids, the harness's marked forwarded;
    # this drill's from its first forwarded event on (the shared lab's earlier tests posted theirs)
    stored = stored_drill_events(lab)
    forwarded = {e["event_id"] for e in events if e["forwarded"]}
    first = min(r["seq"] for r in stored if r["payload"].get("event_id") in forwarded)
    emitters = {(r["payload"]["kind"], r["payload"].get("emitter")) for r in stored if r["seq"] >= first}
    assert ("promote", "failover-manager") in emitters and ("inject", "harness-forwarder") in emitters
    assert ("promote", "harness-forwarder") not in {(r["payload"]["kind"], r["payload"].get("emitter")) for r in stored}
    assert all(
        r["correlation_id"].startswith("failover-manager/")
        for r in stored
        if r["payload"].get("emitter") == "failover-manager"
    )


# Each domain's quarterly plan: its matrix rows and their after-failover checks. The connectors row
# first: every after-failover part kills the connector workers while the workload publishes, and a
# worker killed holding a message leaves it invisible for the queue's visibility timeout (30 s); the
# connectors row's scenarios wait for the queues to drain before their faults (queues_drained), so
# behind another row they waited out that timeout (55-73 s a row; 36 s first). Nothing after it waits.
ROWS = {
    "connectors": ("quarterly-connectors.yaml", check_connectors),
    "api": ("quarterly-api.yaml", check_api),
    "database": ("quarterly-database.yaml", check_database),
    "evidence-store": ("quarterly-evidence-store.yaml", check_evidence),
    "event-store": ("quarterly-event-store.yaml", check_event_store),
}


def worker_logs(lab, row: str) -> str:
    """On a failed connectors row, what the lab's connector workers logged last (one JSON line per
    operation: attempt, outcome, the wait chosen): why a retry came late."""
    tier = getattr(lab, "connectors", None)
    if row != "connectors" or tier is None:
        return ""
    return "".join(f"\nconnector-{p} log:\n{tier.launcher.tail(f'connector-{p}', 40)}" for p in ("intune", "jamf"))


@pytest.mark.parametrize("row", list(ROWS))
def test_every_row_runs_unchanged_and_behaves_as_the_matrix_says(provider_lab, row, tmp_path, request):
    plan, check = ROWS[row]
    code, results = run_plan(plan, provider_lab, tmp_path)
    assert results is not None, f"{plan} was refused on the {provider_lab.provider} lab (see the log)"
    assert code == 0, not_passed(results) + worker_logs(provider_lab, row)
    assert results["environment"]["provider"] == provider_lab.provider
    check(results, provider_lab, tmp_path)
    if provider_lab.provider == "external":
        # the runbook token, the database password and the S3/SQS keys, all read from files the
        # plan names: none reaches results.json, junit.xml, report.html or the CAB log
        staging = request.getfixturevalue("staging")
        texts = [p.read_text() for p in (tmp_path / "out").iterdir() if p.is_file()]
        texts.append((tmp_path / "cab.jsonl").read_text())
        assert {"results.json", "junit.xml", "report.html"} <= {p.name for p in (tmp_path / "out").iterdir()}
        for name, file in staging["secret_files"].items():
            secret = Path(file).read_text().strip()
            assert len(secret) > 10 and not any(secret in text for text in texts), name


def test_down_leaves_nothing_running_that_the_provider_started(provider_lab):
    lab = provider_lab
    started = [pid for pid in lab.processes().values() if pid]
    lab.down()
    lab.down()  # idempotent
    wait_for(lambda: not [p for p in started if proc.is_alive(p)], timeout=30)
    if lab.provider == "external":  # staging is not ours: still serving
        assert started == []
        assert requests.get(lab.api_url + "/health", timeout=5).status_code == 200
