"""The event store write block on a real PostgreSQL primary: a time limit lifts it by itself."""

from __future__ import annotations

import psycopg
import pytest

from harness.faults import FaultContext, build
from harness.lab.eventstore import APPLICATION_NAME, EventStoreWriteBlock
from harness.lab.postgres import APP_DATABASE, PgBinariesMissing, PgCluster, check_binaries, pg_bin_dir
from harness.model import FaultSpec
from tests.support import wait_for

pytestmark = pytest.mark.timeout(60)  # integration: tests/conftest.py, by folder

try:
    check_binaries(pg_bin_dir())
except PgBinariesMissing as exc:  # pragma: no cover - depends on the machine
    pytest.skip(str(exc), allow_module_level=True)


@pytest.fixture(scope="module")
def primary(tmp_path_factory):
    """A primary alone (no replica), with the chain-head table made by hand in the app database."""
    with PgCluster(state_dir=tmp_path_factory.mktemp("drill-state")) as cluster:
        with psycopg.connect(cluster.primary.dsn, autocommit=True) as conn:
            conn.execute("CREATE TABLE event_chain_head (id int PRIMARY KEY, seq bigint, hash text)")
            conn.execute("INSERT INTO event_chain_head VALUES (1, 0, '')")
        yield cluster.primary


def superuser(node):
    return lambda **kw: psycopg.connect(node.admin_dsn, dbname=APP_DATABASE, **kw)


def appender_can_lock(node) -> bool:
    """What an appender takes first; NOWAIT: False at once while the block holds its lock."""
    with psycopg.connect(node.dsn) as conn:
        try:
            conn.execute("LOCK TABLE event_chain_head IN ROW SHARE MODE NOWAIT")
            return True
        except psycopg.errors.LockNotAvailable:
            return False


def block_sessions(node) -> int:
    """Locks on event_chain_head held by the block's session (application_name), from pg_locks."""
    with superuser(node)(autocommit=True) as conn:
        return conn.execute(
            "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
            "WHERE a.application_name = %s AND l.granted "
            "AND l.relation = 'event_chain_head'::regclass",
            (APPLICATION_NAME,),
        ).fetchone()[0]


class OneNodeLab:
    """What the event_store_block fault uses of a lab, on this primary (as EmbeddedLab does)."""

    def __init__(self, node) -> None:
        self.node = node

    def block_event_store_writes(self, time_limit_s=None):
        return EventStoreWriteBlock.hold(self.node.name, superuser(self.node), time_limit_s=time_limit_s)


def test_a_block_with_a_time_limit_is_lifted_by_postgresql_itself(primary):
    fault = build(FaultSpec("event_store_block", "database-primary", time_limit_s=0.5))
    ctx = FaultContext(lab=OneNodeLab(primary))
    fault.inject(ctx)
    try:
        assert not appender_can_lock(primary) and block_sessions(primary) == 1
        wait_for(lambda: appender_can_lock(primary), timeout=15)  # gone without any heal
        assert block_sessions(primary) == 0
    finally:
        fault.heal(ctx)  # a no-op now: the session is already gone
    assert appender_can_lock(primary)


def test_a_block_without_a_time_limit_holds_until_released(primary):
    block = EventStoreWriteBlock.hold(primary.name, superuser(primary))
    try:
        assert block.held and not appender_can_lock(primary) and block_sessions(primary) == 1
    finally:
        block.release()
    assert appender_can_lock(primary) and block_sessions(primary) == 0


@pytest.mark.parametrize("limit", [0, -1, float("nan"), float("inf"), True])
def test_a_bad_time_limit_is_refused_before_connecting(limit):
    def connect(**kw):
        raise AssertionError("connected despite a bad time limit")

    with pytest.raises(ValueError, match="time_limit_s"):
        EventStoreWriteBlock.hold("primary", connect, time_limit_s=limit)
