"""The Control Plane with its event store write-blocked (matrix row 7): a real EXCLUSIVE lock on the
chain head held on the primary. Writes are refused and write nothing, publish is refused, reads
and health stay fast; the UNSAFE flag shows what the drill must catch."""

from __future__ import annotations

import asyncio
import time
import uuid

import psycopg
import pytest

from controlplane import health
from harness.lab.eventstore import EventStoreWriteBlock
from tests.controlplane.test_controlplane import approve, call, commit_evidence, new_intent, sql, table_counts

pytestmark = pytest.mark.timeout(180)  # integration: tests/conftest.py, by folder


def block(cplab) -> EventStoreWriteBlock:
    primary = cplab.pg.primary
    return EventStoreWriteBlock.hold(
        primary.name, lambda **kw: psycopg.connect(primary.admin_dsn, dbname="controlplane", **kw)
    )


def create(instance, key: str):
    return call(instance, "POST", "/intents", key=key, body={"ring": "ring0", "platform": "intune"})


def timed(fn, *args, **kwargs):
    started = time.monotonic()
    result = fn(*args, **kwargs)
    return time.monotonic() - started, result


def test_a_blocked_event_store_refuses_writes_and_publish_writes_nothing_and_recovers(cplab):
    az1 = cplab.instances["az1"]
    intent = new_intent(az1)
    commit_evidence(az1, intent["id"])
    assert approve(az1, intent["id"]).status_code == 200
    before = table_counts(cplab)
    failed_before = call(az1, "GET", "/metrics/event-store").json()["failed"]
    key = f"t-{uuid.uuid4()}"

    held = block(cplab)
    try:
        took, health = timed(call, az1, "GET", "/health")
        assert health.status_code == 503 and took < 2.0, took
        parts = health.json()["components"]
        assert parts["database"]["status"] == "up"
        assert parts["event_store"]["status"] == "down" and "write blocked" in parts["event_store"]["detail"]

        took, created = timed(create, az1, key)
        assert created.status_code == 503 and took < 4.0, (created.text, took)
        assert created.json()["cause"] == "event_store"
        assert created.json()["error"].startswith("event store write blocked: ")

        published = call(az1, "POST", f"/intents/{intent['id']}/publish")
        assert published.status_code == 503 and published.json()["cause"] == "event_store", published.text

        assert call(az1, "GET", "/events").status_code == 200  # reads still work
        assert call(az1, "GET", "/metrics/event-store").json()["failed"] == failed_before + 1
        assert table_counts(cplab) == before  # nothing written
        assert held.held
    finally:
        held.release()
    assert not held.held

    assert create(az1, key).status_code == 201  # the same write, now accepted
    assert call(az1, "POST", f"/intents/{intent['id']}/publish").status_code == 200
    assert call(az1, "GET", "/health").json()["ServiceHealth"] == "Healthy"
    assert call(az1, "GET", "/events/verify").json()["ok"] is True


def test_an_unsafe_instance_acknowledges_a_change_without_its_audit_event(cplab):
    unsafe = cplab.serve("unsafe", extra=("--unsafe-ignore-event-store",))
    key = f"t-{uuid.uuid4()}"
    try:
        held = block(cplab)
        try:
            assert call(unsafe, "GET", "/health").json()["ServiceHealth"] == "Healthy"  # ignores the store
            created = create(unsafe, key)
            assert created.status_code == 201, created.text
        finally:
            held.release()
        events = sql(
            cplab,
            "SELECT count(*) FROM events WHERE type = 'IntentCreated' AND payload->>'idempotency_key' = %s",
            (key,),
        )
        assert events == [(0,)]  # acknowledged, not audited
        assert call(unsafe, "GET", "/metrics/event-store").json()["committed_without_event"] == 1
        assert "UNSAFE: --unsafe-ignore-event-store" in unsafe.log_text()
    finally:
        cplab.stop("unsafe")


def test_releasing_a_block_on_a_node_that_is_gone_is_a_no_op(cplab):
    held = block(cplab)
    with psycopg.connect(cplab.pg.primary.admin_dsn, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            ("drill-fault-event-store-block",),
        )
    held.release()
    held.release()
    assert create(cplab.instances["az1"], f"t-{uuid.uuid4()}").status_code == 201


def test_a_connection_lost_inside_the_health_lock_check_is_unavailable_not_a_crash(cplab, monkeypatch):
    """Killed between the lock and its rollback, psycopg only logs the failed rollback and lets
    psycopg.Rollback escape: /health answered 500. It must be a lost connection (a 503 upstream)."""
    primary = cplab.pg.primary
    execute = psycopg.AsyncConnection.execute

    async def dies_after_the_lock(conn, query, *args, **kwargs):
        cursor = await execute(conn, query, *args, **kwargs)
        if str(query).startswith("LOCK TABLE event_chain_head"):
            primary.query("SELECT pg_terminate_backend(%s)", (conn.info.backend_pid,))
        return cursor

    async def probe() -> bool:
        async with await psycopg.AsyncConnection.connect(
            primary.admin_dsn, dbname="controlplane", autocommit=True
        ) as conn:
            return await health.event_store_writable(conn)

    assert asyncio.run(probe()) is True
    monkeypatch.setattr(psycopg.AsyncConnection, "execute", dies_after_the_lock)
    with pytest.raises(psycopg.OperationalError):
        asyncio.run(probe())
