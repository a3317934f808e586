"""Integration tests of the embedded PostgreSQL lab: real servers on loopback, no mocks."""

from __future__ import annotations

import os
import pwd
import select
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg
import pytest

from harness.lab import proc, reaper
from harness.lab.failover import UNREACHABLE, FailoverController
from harness.lab.postgres import (
    LOOPBACK,
    RUN_AS,
    LabError,
    PgBinariesMissing,
    PgCluster,
    PgNode,
    PgStartError,
    check_binaries,
    pg_bin_dir,
    wait_until,
)

pytestmark = pytest.mark.timeout(60)  # integration: tests/conftest.py, by folder

REPO = Path(__file__).resolve().parents[2]
DEADLINE = 15.0  # generous: 2 shared cores

try:
    check_binaries(pg_bin_dir())
except PgBinariesMissing as exc:  # pragma: no cover - depends on the machine
    pytest.skip(str(exc), allow_module_level=True)


# ---- helpers -----------------------------------------------------------------------


def rows(dsn: str, statement: str) -> list[tuple]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(statement).fetchall()


def execute_within(dsn: str, statement: str, timeout: float) -> dict:
    """Run statement in a thread; {"ok": True} if it completed within timeout, else why not.

    A commit waiting for a missing synchronous standby hangs forever, so the caller
    must never block on it directly.
    """
    result: dict = {}

    def work() -> None:
        try:
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(statement)
            result["ok"] = True
        except Exception as exc:  # noqa: BLE001 - reported to the test
            result["error"] = exc

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    worker.join(timeout)
    return result or {"error": f"still waiting after {timeout} s"}


def node_pids(node) -> list[int]:
    return [node.pid, *proc.descendants(node.pid)]


class Forwarder:
    """A minimal TCP forwarder on loopback, standing in for the proxy of a replication link."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.server = socket.create_server((LOOPBACK, 0))
        self.port = self.server.getsockname()[1]
        self.sockets: list[socket.socket] = [self.server]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection((LOOPBACK, self.target_port))
            self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        for s in self.sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()


# ---- fixtures ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory) -> Path:
    """A private registry, so these tests neither see nor reap anyone else's labs."""
    return tmp_path_factory.mktemp("drill-state")


def assert_nothing_left(lab: PgCluster) -> None:
    assert proc.pids_matching(lab.lab_id) == [], "processes of the lab still alive after down()"
    assert not lab.root.exists(), "temp dir of the lab still there after down()"
    assert not lab.state_file.exists(), "state file still there after down()"


@pytest.fixture(scope="module")
def lab(state_dir):
    """Shared by the tests that do not crash nodes: primary, sync replica, async replica."""
    cluster = PgCluster(state_dir=state_dir).with_replica("replica", synchronous=True).with_replica("analytics")
    with cluster:
        yield cluster
    assert_nothing_left(cluster)


@pytest.fixture
def failover_lab(state_dir):
    """A fresh primary + sync replica per test, holding one committed row in table t."""
    cluster = PgCluster(state_dir=state_dir).with_replica("replica", synchronous=True)
    with cluster:
        with psycopg.connect(cluster.primary.dsn, autocommit=True) as conn:
            conn.execute("CREATE TABLE t (x int)")
            conn.execute("INSERT INTO t VALUES (1)")
        yield cluster
    assert_nothing_left(cluster)


# ---- a healthy lab -----------------------------------------------------------------


def test_primary_and_sync_replica_come_up_and_replicate_a_row(lab):
    primary, replica, analytics = lab["primary"], lab["replica"], lab["analytics"]
    states = dict(primary.query("SELECT application_name, sync_state FROM pg_stat_replication"))
    assert states == {"replica": "sync", "analytics": "async"}
    assert replica.is_in_recovery() and analytics.is_in_recovery()

    with psycopg.connect(primary.dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE replicated (v text)")
        conn.execute("INSERT INTO replicated VALUES ('written on the primary')")
    for node in (replica, analytics):
        wait_until(
            lambda node=node: rows(node.dsn, "SELECT v FROM replicated") == [("written on the primary",)],
            DEADLINE,
            f"row readable on {node.name}",
        )


def test_servers_listen_on_loopback_only_with_sockets_inside_the_lab(lab):
    for node in lab.nodes.values():
        assert node.query("SHOW listen_addresses") == [("127.0.0.1",)]
        socket_dir = node.query("SHOW unix_socket_directories")[0][0]
        assert Path(socket_dir).is_relative_to(lab.root)


def test_the_application_role_owns_the_controlplane_database(lab):
    assert rows(lab.primary.dsn, "SELECT current_user, current_database()") == [("controlplane", "controlplane")]
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(lab.primary.dsn.replace(lab.password, "wrong")).close()


def test_replication_lag_is_zero_once_replicas_caught_up(lab):
    wait_until(lambda: lab.primary.replication_lag_seconds() <= 1.0, DEADLINE, "primary sees lag <= 1 s")
    for name in ("replica", "analytics"):
        wait_until(lambda name=name: lab[name].replication_lag_seconds() <= 1.0, DEADLINE, f"{name} lag <= 1 s")


def test_set_synchronous_changes_which_standby_commits_wait_for(lab):
    primary = lab.primary
    try:
        primary.set_synchronous(["analytics"])
        wait_until(
            lambda: (
                dict(primary.query("SELECT application_name, sync_state FROM pg_stat_replication"))
                == {"replica": "async", "analytics": "sync"}
            ),
            DEADLINE,
            "analytics becomes sync",
        )
    finally:
        primary.set_synchronous(["replica"])
    assert primary.query("SHOW synchronous_standby_names") == [('FIRST 1 ("replica")',)]


def test_a_replica_can_stream_through_another_address(lab):
    forwarder = Forwarder(lab.primary.port)
    try:
        via = lab.add_replica("via_proxy", LOOPBACK, forwarder.port)
        conninfo = via.query("SHOW primary_conninfo")[0][0]
        assert f"port={forwarder.port}" in conninfo and f"port={lab.primary.port}" not in conninfo
        with psycopg.connect(lab.primary.dsn, autocommit=True) as conn:
            conn.execute("CREATE TABLE through_proxy (v int)")
            conn.execute("INSERT INTO through_proxy VALUES (7)")
        wait_until(
            lambda: rows(via.dsn, "SELECT v FROM through_proxy") == [(7,)],
            DEADLINE,
            "row streamed through the forwarder",
        )
    finally:
        if "via_proxy" in lab.nodes:
            lab["via_proxy"].kill()
        forwarder.close()


def test_start_on_a_port_in_use_fails_with_the_server_log(lab):
    analytics = lab["analytics"]
    analytics.stop()
    blocker = socket.create_server((LOOPBACK, analytics.port))
    try:
        with pytest.raises(PgStartError) as err:
            analytics.start(timeout=10)
        assert f"port {analytics.port}" in str(err.value)
        assert "Address already in use" in str(err.value)
    finally:
        blocker.close()
    analytics.start()
    assert analytics.is_running()


def test_a_failover_probe_whose_connection_dies_inside_its_lock_check_is_a_miss(lab, monkeypatch):
    """The primary killed between the probe's LOCK and its rollback: psycopg only logs the failed
    rollback and lets psycopg.Rollback escape. That once ended the watcher silently ("watching",
    no failover after a kill); the probe must call it a miss, as any lost connection."""
    with psycopg.connect(lab["primary"].dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS event_chain_head (id int)")
    execute = psycopg.Connection.execute

    def dies_after_the_lock(conn, query, *args, **kwargs):
        cursor = execute(conn, query, *args, **kwargs)
        if str(query).startswith("LOCK TABLE event_chain_head"):
            lab["primary"].query("SELECT pg_terminate_backend(%s)", (conn.info.backend_pid,))
        return cursor

    controller = FailoverController(lab, None, "db", "replica", on_event=lambda *event: None)
    assert controller._probe(lab["primary"]) is None  # healthy: the lock is granted
    monkeypatch.setattr(psycopg.Connection, "execute", dies_after_the_lock)
    assert controller._probe(lab["primary"]) == UNREACHABLE


# ---- crash, promote, rebuild -------------------------------------------------------


def test_kill_leaves_no_postgres_process_of_the_node_alive(failover_lab):
    primary, replica = failover_lab["primary"], failover_lab["replica"]
    pids = node_pids(primary)
    assert len(pids) >= 5  # postmaster, checkpointer, bgwriter, walwriter, walsender, ...
    started = time.monotonic()
    primary.kill()
    assert time.monotonic() - started < 10
    assert [p for p in pids if proc.is_alive(p)] == []
    assert not primary.is_running()
    assert replica.is_running()


def test_a_killed_node_restarts_despite_its_stale_postmaster_pid(failover_lab):
    replica = failover_lab["replica"]
    replica.kill()
    assert (replica.datadir / "postmaster.pid").exists()  # what a crash leaves behind
    replica.start()
    assert replica.is_running() and replica.is_in_recovery()


def test_promote_after_kill_makes_the_replica_writable(failover_lab):
    primary, replica = failover_lab["primary"], failover_lab["replica"]
    primary.kill()
    replica.promote()
    assert failover_lab.primary is replica and primary.role == "former-primary"
    assert not replica.is_in_recovery()
    # A copied synchronous_standby_names would make this commit wait forever.
    assert replica.query("SHOW synchronous_standby_names") == [("",)]
    assert execute_within(replica.dsn, "INSERT INTO t VALUES (2)", DEADLINE) == {"ok": True}
    assert rows(replica.dsn, "SELECT x FROM t ORDER BY x") == [(1,), (2,)]


def test_rebuild_brings_the_old_primary_back_as_a_replica_with_small_lag(failover_lab):
    old, new = failover_lab["primary"], failover_lab["replica"]
    old.kill()
    new.promote()
    assert execute_within(new.dsn, "INSERT INTO t VALUES (2)", DEADLINE) == {"ok": True}

    old.rebuild_as_replica_of(new, synchronous=True)
    assert old.role == "replica" and old.is_in_recovery()
    assert dict(new.query("SELECT application_name, sync_state FROM pg_stat_replication")) == {"primary": "sync"}
    assert execute_within(new.dsn, "INSERT INTO t VALUES (3)", DEADLINE) == {"ok": True}
    wait_until(
        lambda: rows(old.dsn, "SELECT x FROM t ORDER BY x") == [(1,), (2,), (3,)],
        DEADLINE,
        "rows of the new primary on the rebuilt node",
    )
    wait_until(lambda: old.replication_lag_seconds() <= 5.0, DEADLINE, "rebuilt replica lag <= 5 s")
    wait_until(lambda: new.replication_lag_seconds("primary") <= 5.0, DEADLINE, "lag seen by new primary <= 5 s")


def test_an_async_replica_follows_the_promoted_primary(state_dir):
    with PgCluster(state_dir=state_dir).with_replica("replica", synchronous=True).with_replica("analytics") as lab:
        lab["primary"].kill()
        lab["replica"].promote()
        lab["analytics"].follow(lab["replica"])
        assert execute_within(lab["replica"].dsn, "CREATE TABLE after_failover (v int)", DEADLINE) == {"ok": True}
        wait_until(
            lambda: rows(lab["analytics"].dsn, "SELECT count(*) FROM after_failover") == [(0,)],
            DEADLINE,
            "analytics replays the new timeline",
        )
    assert_nothing_left(lab)


# ---- cleanup and leftovers ---------------------------------------------------------


def test_down_is_idempotent_and_leaves_nothing_listening(state_dir):
    lab = PgCluster(state_dir=state_dir).start()
    port = lab.primary.port
    lab.down()
    lab.down()
    assert_nothing_left(lab)
    with pytest.raises(OSError):
        socket.create_connection((LOOPBACK, port), timeout=1).close()


def test_down_runs_when_the_body_is_interrupted(state_dir):
    with pytest.raises(KeyboardInterrupt):
        with PgCluster(state_dir=state_dir) as lab:
            raise KeyboardInterrupt  # what Ctrl-C raises in the harness
    assert_nothing_left(lab)


LAB_OWNER = """
import sys, time
from harness.lab.postgres import PgCluster
lab = PgCluster(state_dir=sys.argv[1]).with_replica("replica", synchronous=True).start()
print(lab.lab_id, lab.root, flush=True)
time.sleep(300)
"""


def test_reap_stale_cleans_a_lab_whose_owner_was_killed(state_dir, tmp_path):
    owner_state = tmp_path / "state"
    owner = subprocess.Popen(
        [sys.executable, "-c", LAB_OWNER, str(owner_state)], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    try:
        ready, _, _ = select.select([owner.stdout], [], [], 40)
        assert ready, "the lab owner did not start its lab in time"
        lab_id, root = owner.stdout.readline().split()
        assert proc.pids_matching(lab_id), "the owner's lab is not running"
        assert reaper.reap_stale(owner_state) == []  # its owner is alive: left alone
        assert proc.pids_matching(lab_id)
    finally:
        owner.send_signal(signal.SIGKILL)  # the harness dies mid-drill: no down()
        owner.wait(10)
        owner.stdout.close()

    assert reaper.reap_stale(owner_state) == [lab_id]
    assert proc.pids_matching(lab_id) == []
    assert not Path(root).exists()
    assert list(owner_state.glob("*.json")) == []


def test_missing_binary_error_names_the_path_and_the_fix(tmp_path, monkeypatch, state_dir):
    monkeypatch.setenv("DRILL_PG_BIN", str(tmp_path))
    with pytest.raises(PgBinariesMissing) as err:
        PgCluster(state_dir=state_dir).start()
    message = str(err.value)
    assert str(tmp_path / "initdb") in message
    assert "apt-get install postgresql-15" in message and "DRILL_PG_BIN" in message


# ---- configuration files written as root into the server user's folders ----------------------


@pytest.fixture
def unstarted_node(tmp_path, state_dir):
    """A node's data dir laid out as start() lays it out (nothing started), owned by the server's
    user when the tests run as root, as in a real lab."""
    cluster = PgCluster(base_dir=tmp_path / "base", state_dir=state_dir)
    (tmp_path / "base").mkdir()
    cluster.root = Path(tempfile.mkdtemp(prefix=f"{cluster.lab_id}-", dir=tmp_path / "base"))
    cluster.socket_dir = cluster.root / "sock"
    if os.geteuid() == 0:
        entry = pwd.getpwnam(RUN_AS)
        cluster._uid_gid = (entry.pw_uid, entry.pw_gid)
    node = PgNode(cluster, "primary", 54321, "primary")
    node.datadir.mkdir(parents=True)
    outside = tmp_path / "outside.conf"
    outside.write_text("precious\n")
    return cluster, node, outside


def test_a_symlink_planted_at_drill_conf_is_replaced_not_followed(unstarted_node):
    """The server's user owns the data dir: a link drill.conf -> a file of root's must not make
    the harness (root) write that file."""
    cluster, node, outside = unstarted_node
    (node.datadir / "drill.conf").symlink_to(outside)
    cluster._write_node_conf(node)
    assert outside.read_text() == "precious\n"
    written = node.datadir / "drill.conf"
    st = os.lstat(written)
    assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
    assert "port = '54321'" in written.read_text()
    if cluster._uid_gid[0] is not None:
        assert (st.st_uid, st.st_gid) == cluster._uid_gid  # the server can read it
    assert [p.name for p in node.datadir.iterdir()] == ["drill.conf"]  # no temp file left


@pytest.mark.parametrize("name", ["pg_hba.conf", "postgresql.auto.conf", "standby.signal"])
def test_no_configuration_file_is_written_through_a_symlink(unstarted_node, name):
    cluster, node, outside = unstarted_node
    (node.datadir / name).symlink_to(outside)
    cluster._write_config(node.datadir / name, "host all all 0.0.0.0/0 trust\n")
    assert outside.read_text() == "precious\n" and not (node.datadir / name).is_symlink()


def test_an_append_to_a_symlinked_postgresql_conf_is_refused(unstarted_node):
    cluster, node, outside = unstarted_node
    (node.datadir / "postgresql.conf").symlink_to(outside)
    with pytest.raises(LabError, match="a symlink there is not followed"):
        cluster._write_config(node.datadir / "postgresql.conf", "\ninclude 'drill.conf'\n", append=True)
    assert outside.read_text() == "precious\n"


def test_a_data_dir_swapped_for_a_symlink_is_not_written_into(unstarted_node, tmp_path):
    """A link on the way (the data dir itself) is not followed either."""
    cluster, node, outside = unstarted_node
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    node.datadir.rmdir()
    node.datadir.symlink_to(elsewhere)
    with pytest.raises(LabError, match="a symlink on the way is not followed"):
        cluster._write_node_conf(node)
    assert list(elsewhere.iterdir()) == []
