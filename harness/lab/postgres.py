"""Embedded PostgreSQL lab: one primary and N streaming replicas as local processes on loopback.

Lifecycle of a ``PgCluster``:

1. check the server binaries (DRILL_PG_BIN, default /usr/lib/postgresql/15/bin);
2. reap the leftovers of earlier harness runs whose owner process is dead;
3. create a private temp dir and register it, with every pid started, in the state dir;
4. initdb the primary, start it, create the role and database ``controlplane``;
5. pg_basebackup each replica from an upstream address (the primary's own port by
   default, or a TCP proxy in front of it, so that faults can cut the link), start it;
6. ``down()``: stop every node (SIGKILL what does not stop), remove the dir and the
   state file. Idempotent, and run by the context manager also on Ctrl-C.

Every server listens on 127.0.0.1 only; its unix socket lives inside the temp dir.
PostgreSQL refuses to run as root: when the harness is root, the server tools run as
the unprivileged user ``postgres`` (via ``runuser``) and the dirs are chown'ed to it.
Each process carries the lab id in its command line (data dir path, cluster_name), so a
reaper never kills a pid that has been reused by something else.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import pwd
import secrets
import shutil
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TypeVar

import psycopg
from psycopg import sql

from harness.lab import proc, reaper
from harness.lab.base import running
from harness.net import free_port
from harness.wait import poll

DEFAULT_PG_BIN = "/usr/lib/postgresql/15/bin"
REQUIRED_BINARIES = ("initdb", "pg_ctl", "postgres", "pg_basebackup")
LOOPBACK = "127.0.0.1"
APP_ROLE = "controlplane"
APP_DATABASE = "controlplane"
REPLICATION_ROLE = "replicator"
SUPERUSER = "postgres"
RUN_AS = "postgres"  # unprivileged OS user for the server when the harness is root

log = logging.getLogger(__name__)

T = TypeVar("T")


class LabError(RuntimeError):
    """The lab could not do what was asked; the message says what to fix."""


class PgBinariesMissing(LabError):
    """A PostgreSQL server binary is not where the lab looks for it."""


class PgStartError(LabError):
    """A server did not start (port in use, bad config, ...); the message holds its log tail."""


def pg_bin_dir(explicit: str | os.PathLike | None = None) -> Path:
    """Where the server binaries are: explicit argument, else env DRILL_PG_BIN, else Debian's."""
    return Path(explicit or os.environ.get("DRILL_PG_BIN") or DEFAULT_PG_BIN)


def check_binaries(bin_dir: Path) -> None:
    """Raise PgBinariesMissing naming the first missing binary and the fix."""
    for name in REQUIRED_BINARIES:
        path = bin_dir / name
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise PgBinariesMissing(
                f"PostgreSQL binary {path} not found or not executable: "
                f"install it with `apt-get install postgresql-15`, "
                f"or set DRILL_PG_BIN to the directory holding initdb, pg_ctl, postgres, pg_basebackup"
            )


def wait_until(condition: Callable[[], T], timeout: float, what: str, interval: float = 0.05) -> T:
    """Poll condition until it returns a truthy value; raise TimeoutError naming `what`.

    Exceptions from condition count as "not yet"; the last one is chained to the timeout.
    """
    errors: list[BaseException] = []

    def attempt():
        try:
            return condition()
        except Exception as exc:  # noqa: BLE001 - "not yet", reported at the deadline
            errors.append(exc)
            return None

    polled = poll(attempt, timeout=timeout, interval=interval)
    if polled.ok:
        return polled.value
    last = errors[-1] if errors else None
    raise TimeoutError(
        f"{what}: not reached within {timeout:.1f} s" + (f" (last error: {last})" if last else "")
    ) from last


def default_lab_dir() -> str:
    """Where labs make their temp dirs: /dev/shm when usable, else the system temp dir.

    Creating the ~1000 files of a data dir costs about 1 ms each on this disk and 30 us
    on tmpfs: a primary + replica starts in 0.8 s instead of 4 s.
    """
    shm = "/dev/shm"
    if os.path.isdir(shm) and os.access(shm, os.W_OK | os.X_OK):
        return shm
    return tempfile.gettempdir()


def _is_root() -> bool:
    return os.geteuid() == 0


def _clean_env() -> dict[str, str]:
    # Inherited PGHOST/PGPORT/PGDATA... would silently redirect the tools.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    return env


def _read_pid_file(path: Path) -> int | None:
    try:
        first = path.read_text().splitlines()[0].strip()
        return int(first)
    except (OSError, IndexError, ValueError):
        return None


def release_shared_memory(datadir: Path) -> bool:
    """Remove the System V segment that a SIGKILLed postmaster of datadir left behind.

    A killed server cannot detach and remove its (small) SysV segment; it is reclaimed when
    the same data dir starts again, but leaks if the dir is wiped. Only a segment that
    still has the key written in postmaster.pid and no process attached is removed.
    Returns True when a segment was removed.
    """
    try:
        key, shmid = (int(x) for x in (datadir / "postmaster.pid").read_text().splitlines()[6].split())
        with open("/proc/sysvipc/shm") as f:
            table = [line.split() for line in f.readlines()[1:]]
    except (OSError, IndexError, ValueError):
        return False
    for row in table:
        # key shmid perms size cpid lpid nattch ...
        if int(row[1]) == shmid and int(row[0]) == key and int(row[6]) == 0:
            libc = ctypes.CDLL(None, use_errno=True)
            return libc.shmctl(ctypes.c_int(shmid), ctypes.c_int(0), None) == 0  # 0 = IPC_RMID
    return False


def _release_lab_shared_memory(rec: dict) -> None:
    for d in rec.get("dirs", []):
        for pidfile in Path(d).glob("*/data/postmaster.pid"):
            release_shared_memory(pidfile.parent)


reaper.register_cleanup("postgres", _release_lab_shared_memory)


# Settings every node gets (drill.conf, included last from postgresql.conf).
BASE_SETTINGS: dict[str, str] = {
    "listen_addresses": LOOPBACK,
    "wal_level": "replica",
    "max_wal_senders": "10",
    "max_replication_slots": "10",
    "wal_keep_size": "256MB",  # a replica cut off for a while can still catch up
    "hot_standby": "on",
    "hot_standby_feedback": "on",
    # With the default 5 s a promote sometimes waits 5 s for the next WAL retry.
    "wal_retrieve_retry_interval": "100ms",
    # Detect a cut replication link in seconds, not the default minute.
    "wal_sender_timeout": "5s",
    "wal_receiver_timeout": "5s",
    # A walreceiver's connection attempt has no client-side timeout (libpqwalreceiver ignores
    # connect_timeout): through a black-holed link it waits until the server gives up on the
    # handshake. 5 s instead of 60 s lets replication resume soon after a partition heals.
    "authentication_timeout": "5s",
    "wal_receiver_status_interval": "1s",
    "max_connections": "60",
    "shared_buffers": "32MB",
    "max_wal_size": "256MB",
    "log_line_prefix": "%m [%p] %q%a ",
    "log_min_messages": "warning",
    "password_encryption": "scram-sha-256",
    # Dynamic shared memory as files in the data dir: a SIGKILLed server would otherwise
    # leak its /dev/shm/PostgreSQL.* segments once its data dir is wiped.
    "dynamic_shared_memory_type": "mmap",
}
# Only processes are crashed in this lab, never the OS: the page cache survives a SIGKILL,
# so fsync adds nothing but time. durable=True restores it.
FAST_SETTINGS = {"fsync": "off", "full_page_writes": "off"}

PG_HBA = f"""\
# Written by the drill harness: loopback only.
local   all          all                       trust
host    all          all          {LOOPBACK}/32   scram-sha-256
host    replication  {REPLICATION_ROLE}   {LOOPBACK}/32   scram-sha-256
"""


def _conf_value(value: str) -> str:
    return "'" + str(value).replace("\\", "\\\\").replace("'", "''") + "'"


# What initdb writes into postgresql.conf (everything else there is a comment); the auto.conf of a
# fresh data dir has no settings. A template's copy with anything else is not used.
INITDB_SETTINGS = frozenset(
    {
        "max_connections",
        "shared_buffers",
        "dynamic_shared_memory_type",
        "max_wal_size",
        "min_wal_size",
        "log_timezone",
        "datestyle",
        "timezone",
        "lc_messages",
        "lc_monetary",
        "lc_numeric",
        "lc_time",
        "default_text_search_config",
    }
)


def _setting_names(path: Path) -> list[str]:
    names = []
    for line in path.read_text(errors="replace").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            names.append(line.replace("=", " ").split()[0].lower())
    return names


def pristine_config_problem(datadir: Path) -> str | None:
    """None when datadir's config files hold only what initdb writes; else what is wrong. Each
    file must be a regular file (no symlink)."""
    try:
        for name in ("postgresql.conf", "postgresql.auto.conf", "pg_hba.conf", "pg_ident.conf"):
            if not stat.S_ISREG(os.lstat(datadir / name).st_mode):
                return f"{name} is not a regular file"
        extra = [n for n in _setting_names(datadir / "postgresql.conf") if n not in INITDB_SETTINGS]
        if extra:
            return f"postgresql.conf sets {', '.join(sorted(set(extra)))}, which initdb does not"
        auto = _setting_names(datadir / "postgresql.auto.conf")
        if auto:
            return f"postgresql.auto.conf sets {', '.join(sorted(set(auto)))}"
    except OSError as exc:
        return f"config unreadable: {exc}"
    return None


class PgNode:
    """One PostgreSQL server of the lab: a primary or a streaming replica.

    Roles: "primary", "replica", or "former-primary" (a primary another node was
    promoted over; rebuild it with rebuild_as_replica_of()).
    """

    def __init__(self, cluster: PgCluster, name: str, port: int, role: str) -> None:
        self.cluster = cluster
        self.name = name
        self.port = port
        self.role = role
        self.synchronous = False
        self.upstream: PgNode | None = None
        self.upstream_addr: tuple[str, int] | None = None
        self.lost = False  # killed and its data directory deleted (PgCluster.lose_node)
        self.dir = cluster.root / name
        self.datadir = self.dir / "data"
        self.logfile = self.dir / "server.log"
        self._pid: int | None = None

    def __repr__(self) -> str:
        return f"PgNode({self.name!r}, role={self.role!r}, port={self.port})"

    # ---- addresses -------------------------------------------------------------------

    @property
    def host(self) -> str:
        return LOOPBACK

    @property
    def dsn(self) -> str:
        """psycopg conninfo of the application role over TCP (contains the lab's password)."""
        return self.dsn_via(self.host, self.port)

    def dsn_via(self, host: str, port: int, dbname: str = APP_DATABASE) -> str:
        """The application conninfo through another address, e.g. a TCP proxy."""
        return psycopg.conninfo.make_conninfo(
            host=host, port=port, dbname=dbname, user=APP_ROLE, password=self.cluster.password, connect_timeout=3
        )

    @property
    def admin_dsn(self) -> str:
        """Superuser conninfo over the node's unix socket (trust; not reachable by TCP)."""
        return psycopg.conninfo.make_conninfo(
            host=str(self.cluster.socket_dir), port=self.port, dbname="postgres", user=SUPERUSER, connect_timeout=3
        )

    def connect(self, admin: bool = False, **kwargs) -> psycopg.Connection:
        """A new autocommit connection (application role, or superuser with admin=True)."""
        kwargs.setdefault("autocommit", True)
        return psycopg.connect(self.admin_dsn if admin else self.dsn, **kwargs)

    def query(self, statement, params=None) -> list[tuple]:
        """Run one statement as superuser; return its rows (empty when it has none)."""
        with self.connect(admin=True) as conn:
            cur = conn.execute(statement, params)
            return cur.fetchall() if cur.description else []

    # ---- process state ---------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """The postmaster's pid while it runs, else None."""
        return self._live_pid()

    def _is_our_postmaster(self, pid: int | None) -> bool:
        # Alive, not a zombie, a postgres process, and serving *this* data dir
        # (a stale postmaster.pid may name a pid reused by anything).
        return (
            pid is not None
            and proc.is_alive(pid)
            and proc.comm(pid) in ("postgres", "postmaster")
            and str(self.datadir) in proc.cmdline(pid)
        )

    def _live_pid(self) -> int | None:
        for pid in (self._pid, _read_pid_file(self.datadir / "postmaster.pid")):
            if self._is_our_postmaster(pid):
                return pid
        return None

    def is_running(self) -> bool:
        return self._live_pid() is not None

    def _clear_stale_locks(self) -> None:
        """Remove lock files left by a killed postmaster.

        The server trusts a lock file whose pid still answers kill(pid, 0), and a zombie
        does, so a crashed node would refuse to restart until init reaps the zombie.
        """
        for lock in (self.datadir / "postmaster.pid", self.cluster.socket_dir / f".s.PGSQL.{self.port}.lock"):
            if lock.exists() and not self._is_our_postmaster(_read_pid_file(lock)):
                lock.unlink(missing_ok=True)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"

    # ---- lifecycle -------------------------------------------------------------------

    def start(self, timeout: float | None = None) -> None:
        """Start the server and wait until it accepts connections. No-op if it runs."""
        if self.is_running():
            return
        timeout = timeout or self.cluster.start_timeout
        self._clear_stale_locks()
        result = self.cluster._run(
            ["pg_ctl", "start", "-w", "-s", "-t", str(int(timeout)), "-D", str(self.datadir), "-l", str(self.logfile)],
            timeout=timeout + 10,
            check=False,
        )
        pid = _read_pid_file(self.datadir / "postmaster.pid")
        if result.returncode != 0 or pid is None or not self._is_our_postmaster(pid):
            tail = self.log_tail()
            hint = ""
            if "Address already in use" in tail:
                hint = f" (port {self.port} on {LOOPBACK} is in use by another process)"
            raise PgStartError(
                f"PostgreSQL node {self.name!r} did not start{hint}; "
                f"pg_ctl said: {(result.stderr or result.stdout).strip() or 'nothing'}\n"
                f"--- tail of {self.logfile} ---\n{tail}"
            )
        self._pid = pid
        self.cluster.registration.add_pid(pid)
        self.wait_ready(time.monotonic() + timeout)

    def wait_ready(self, deadline: float | None = None) -> None:
        """Poll a real connection until the server answers SELECT 1.

        deadline is an absolute time.monotonic() value (default: 30 s from now).
        Fails early, with the log tail, if the postmaster dies while we wait.
        """
        deadline = deadline if deadline is not None else time.monotonic() + 30.0
        last: list[Exception] = []

        def state() -> str | None:
            try:
                with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
                    conn.execute("SELECT 1")
                return "ready"
            except psycopg.Error as exc:
                last.append(exc)
            return None if self.is_running() else "exited"

        polled = poll(
            state, until=lambda s: s is not None, timeout=max(0.0, deadline - time.monotonic()), interval=0.02
        )
        if polled.value == "exited":
            raise PgStartError(
                f"PostgreSQL node {self.name!r} exited while starting\n"
                f"--- tail of {self.logfile} ---\n{self.log_tail()}"
            )
        if not polled.ok:
            raise PgStartError(
                f"PostgreSQL node {self.name!r} not ready in time: {last[-1] if last else ''}\n"
                f"--- tail of {self.logfile} ---\n{self.log_tail()}"
            )

    def stop(self, mode: str = "fast", timeout: float = 30.0) -> None:
        """Stop the server (pg_ctl modes: smart, fast, immediate). No-op if it is not running."""
        pid = self._live_pid()
        if pid is None:
            self._clear_stale_locks()
            return
        result = self.cluster._run(
            ["pg_ctl", "stop", "-w", "-s", "-m", mode, "-t", str(int(timeout)), "-D", str(self.datadir)],
            timeout=timeout + 10,
            check=False,
        )
        if proc.wait_gone([pid], timeout=5.0):
            raise LabError(
                f"PostgreSQL node {self.name!r} (pid {pid}) did not stop ({mode}): "
                f"{(result.stderr or result.stdout).strip()}"
            )
        self._forget_pid(pid)

    def kill(self, timeout: float = 10.0) -> None:
        """Crash the node: SIGKILL the postmaster and every child, wait until none is alive.

        A process-group kill is not enough: PostgreSQL children call setsid().
        Raises LabError if anything survives the deadline. No-op if not running.
        """
        pid = self._live_pid()
        if pid is None:
            return
        survivors = proc.kill_tree([pid], timeout=timeout)
        if survivors:
            raise LabError(f"PostgreSQL node {self.name!r}: pids {survivors} still alive {timeout:.0f} s after SIGKILL")
        release_shared_memory(self.datadir)
        self._forget_pid(pid)

    def _forget_pid(self, pid: int) -> None:
        self._pid = None
        self.cluster.registration.remove_pid(pid)

    # ---- replication -----------------------------------------------------------------

    def promote(self, timeout: float = 30.0) -> None:
        """Promote this replica to primary (pg_ctl promote -w).

        The promoted node's synchronous_standby_names is emptied: a value copied from the
        old primary would make every write wait for a standby that is not there.
        """
        if self.role != "replica":
            raise LabError(f"node {self.name!r} is {self.role}, only a replica can be promoted")
        self.cluster._run(
            ["pg_ctl", "promote", "-w", "-s", "-t", str(int(timeout)), "-D", str(self.datadir)], timeout=timeout + 10
        )
        self._set_setting("synchronous_standby_names", "")
        for other in self.cluster.nodes.values():
            if other.role == "primary":
                other.role = "former-primary"
        self.role = "primary"
        self.synchronous = False
        self.upstream = None
        self.upstream_addr = None

    def rebuild_as_replica_of(
        self,
        node: PgNode,
        upstream_host: str | None = None,
        upstream_port: int | None = None,
        synchronous: bool = False,
    ) -> None:
        """Wipe this node and make it a streaming replica of node (usually the new primary).

        1. kill the server if it still runs (a former primary must not accept writes);
        2. remove the data dir and pg_basebackup it from upstream_host:upstream_port
           (default: node's own address);
        3. start it as a replica and wait until it accepts connections;
        4. with synchronous=True, add it to node's synchronous_standby_names.
        """
        if node is self:
            raise LabError(f"node {self.name!r} cannot replicate from itself")
        self.kill()
        shutil.rmtree(self.datadir, ignore_errors=True)
        self.cluster._make_replica(self, node, upstream_host or node.host, upstream_port or node.port, synchronous)

    def follow(self, node: PgNode, upstream_host: str | None = None, upstream_port: int | None = None) -> None:
        """Point this running replica at another upstream (e.g. the new primary after a failover,
        or a proxy) without a rebuild: rewrites primary_conninfo and reloads."""
        if self.role != "replica":
            raise LabError(f"node {self.name!r} is {self.role}, only a replica can follow")
        host, port = upstream_host or node.host, upstream_port or node.port
        self._set_setting("primary_conninfo", self.cluster._primary_conninfo(self.name, host, port))
        self.upstream, self.upstream_addr = node, (host, port)

    def set_synchronous(self, standby_names: str | Iterable[str], num_sync: int = 1) -> None:
        """On a primary: set synchronous_standby_names (ALTER SYSTEM + reload) and wait until
        the server uses it. A string is used as is; names become 'FIRST num_sync (a, b)';
        no names means asynchronous commits."""
        if isinstance(standby_names, str):
            value = standby_names
        else:
            names = list(standby_names)
            value = (f"FIRST {num_sync} (" + ", ".join(f'"{n}"' for n in names) + ")") if names else ""
        self._set_setting("synchronous_standby_names", value)
        if isinstance(standby_names, str):
            return
        # Each walsender re-reads the setting on its own after the reload; until then
        # pg_stat_replication still reports the old sync_state.
        wanted = set(names)

        def walsenders_applied() -> bool:
            rows = self.query("SELECT application_name, sync_priority FROM pg_stat_replication")
            return all((prio > 0) == (name in wanted) for name, prio in rows)

        wait_until(walsenders_applied, 10.0, f"{self.name}: walsenders use synchronous_standby_names")

    def _set_setting(self, name: str, value: str, timeout: float = 10.0) -> None:
        """ALTER SYSTEM SET name = value, reload, and poll until a new session sees it."""
        with self.connect(admin=True) as conn:
            conn.execute(sql.SQL("ALTER SYSTEM SET {} = {}").format(sql.Identifier(name), sql.Literal(value)))
            conn.execute("SELECT pg_reload_conf()")

        # The reload is a signal: a session started before the postmaster re-read the file
        # still sees the old value, so poll with fresh sessions.
        def applied() -> bool:
            return self.query("SELECT current_setting(%s)", (name,))[0][0] == value

        wait_until(applied, timeout, f"{self.name}: {name} reloaded")

    def is_in_recovery(self) -> bool:
        return bool(self.query("SELECT pg_is_in_recovery()")[0][0])

    def replication_lag_seconds(self, standby: str | None = None) -> float:
        """Replication lag in seconds; math.inf when unknown (no replication running).

        On a replica: 0 when it streams and has replayed everything it received, else
        now() - the commit time of the last replayed transaction (an upper bound: an idle
        primary makes a disconnected replica look more and more behind).
        On a primary: the largest replay lag of its standbys (or of the one named
        `standby`) from pg_stat_replication; 0 for a standby that has replayed all WAL.
        """
        if self.is_in_recovery():
            row = self.query(
                "SELECT pg_last_wal_receive_lsn() IS NOT NULL"
                "       AND pg_last_wal_replay_lsn() >= pg_last_wal_receive_lsn(),"
                "       EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())::float8,"
                "       (SELECT status FROM pg_stat_wal_receiver) = 'streaming'"
            )[0]
            caught_up, since_replay, streaming = row
            if streaming and caught_up:
                return 0.0
            return float("inf") if since_replay is None else max(0.0, since_replay)
        rows = self.query(
            "SELECT application_name, replay_lsn >= pg_current_wal_lsn(),"
            "       EXTRACT(EPOCH FROM replay_lag)::float8"
            "  FROM pg_stat_replication WHERE state = 'streaming'"
            "   AND (%s::text IS NULL OR application_name = %s::text)",
            (standby, standby),
        )
        if not rows:
            return float("inf")
        return max(0.0 if caught_up else (lag or 0.0) for _, caught_up, lag in rows)


class PgCluster:
    """A primary and its streaming replicas in one temp dir; use as a context manager.

        with PgCluster().with_replica("replica", synchronous=True) as lab:
            psycopg.connect(lab.primary.dsn)

    Replicas added with with_replica() stream straight from the primary; add_replica()
    after start() can stream through another address (a proxy).
    """

    def __init__(
        self,
        pg_bin: str | os.PathLike | None = None,
        primary_name: str = "primary",
        base_dir: str | os.PathLike | None = None,
        state_dir: str | os.PathLike | None = None,
        settings: Mapping[str, str] | None = None,
        durable: bool = False,
        start_timeout: float = 30.0,
        use_template: bool = True,
    ) -> None:
        self.pg_bin = pg_bin_dir(pg_bin)
        self.primary_name = primary_name
        self.base_dir = Path(base_dir or os.environ.get("DRILL_LAB_DIR") or default_lab_dir())
        self.state_dir = state_dir
        self.settings = {**BASE_SETTINGS, **({} if durable else FAST_SETTINGS), **(settings or {})}
        self.start_timeout = start_timeout
        self.use_template = use_template
        self.lab_id = "drillpg-" + secrets.token_hex(4)
        self.password = secrets.token_urlsafe(18)
        self.nodes: dict[str, PgNode] = {}
        self.root = Path()
        self._planned: list[tuple[str, bool]] = []
        self._registration: reaper.Registration | None = None
        self._lock = threading.Lock()
        self._down = False
        self._uid_gid: tuple[int | None, int | None] = (None, None)

    def with_replica(self, name: str, synchronous: bool = False) -> PgCluster:
        """Plan a replica streaming directly from the primary, created by start()."""
        self._planned.append((name, synchronous))
        return self

    @property
    def primary(self) -> PgNode:
        """The current primary (changes after a promote)."""
        for node in self.nodes.values():
            if node.role == "primary":
                return node
        raise LabError("the lab has no primary")

    @property
    def replicas(self) -> list[PgNode]:
        return [n for n in self.nodes.values() if n.role == "replica"]

    @property
    def registration(self) -> reaper.Registration:
        """The cluster's entry in the reaper's registry, made by start(); LabNotUp before."""
        return running(self._registration, "the database cluster's registration")

    @property
    def state_file(self) -> Path | None:
        """This lab's entry in the leftover registry (absent after down())."""
        return self._registration.path if self._registration else None

    def __getitem__(self, name: str) -> PgNode:
        return self.nodes[name]

    # ---- lifecycle -------------------------------------------------------------------

    def __enter__(self) -> PgCluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.down()

    def start(self) -> PgCluster:
        """Bring up the primary and the planned replicas (see the module docstring).

        On any failure, Ctrl-C included, whatever was started is torn down before the
        exception propagates: nothing is left half-started.
        """
        check_binaries(self.pg_bin)
        if _is_root():
            try:
                entry = pwd.getpwnam(RUN_AS)
            except KeyError:
                raise LabError(
                    f"running as root, but there is no user {RUN_AS!r} to run PostgreSQL as "
                    f"(`apt-get install postgresql-15` creates it)"
                ) from None
            self._uid_gid = (entry.pw_uid, entry.pw_gid)
        try:
            return self._start()
        except BaseException:
            self.down()
            raise

    def _make_root(self) -> None:
        """The lab's temp dir under base_dir (a dead run's leftovers reaped first), registered with
        the reaper, and its socket dir; both still owned by us (the caller hands them over)."""
        reaper.reap_stale(self.state_dir)
        self.root = Path(tempfile.mkdtemp(prefix=f"{self.lab_id}-", dir=self.base_dir))
        self._registration = reaper.Registration(self.lab_id, "postgres", tag=self.lab_id, directory=self.state_dir)
        self._registration.add_dir(self.root)
        self.socket_dir = self.root / "sock"
        self.socket_dir.mkdir()

    def _start(self) -> PgCluster:
        self._make_root()
        self.passfile = self.root / "pgpass"
        # exclusive creation, never through a symlink, 0600 from the start (holds the password)
        fd = os.open(self.passfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(f"*:*:*:{REPLICATION_ROLE}:{self.password}\n")
        self._own(self.root)

        primary = self._init_primary(self.primary_name)
        primary.query(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(APP_DATABASE), sql.Identifier(APP_ROLE))
        )
        for name, synchronous in self._planned:
            self.add_replica(name, synchronous=synchronous)
        return self

    def _init_primary(self, name: str) -> PgNode:
        """A new, empty, running primary with the lab's roles (no application database)."""
        primary = self._new_node(name, "primary")
        self._mkdir(primary.dir)
        # The template is only a speed-up: when there is none, or it cannot be trusted, initdb.
        if not (self.use_template and self._copy_template(primary.datadir)):
            self._initdb(primary.datadir)
            if self.use_template:
                self._store_template(primary.datadir)
        self._write_config(primary.datadir / "pg_hba.conf", PG_HBA)
        self._write_config(primary.datadir / "postgresql.conf", "\ninclude 'drill.conf'\n", append=True)
        self._write_node_conf(primary)
        self._own(primary.dir)
        primary.start()
        primary.query(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(APP_ROLE), sql.Literal(self.password))
        )
        primary.query(
            sql.SQL("CREATE ROLE {} LOGIN REPLICATION PASSWORD {}").format(
                sql.Identifier(REPLICATION_ROLE), sql.Literal(self.password)
            )
        )
        # like a staging monitoring user: may read replication state (pg_stat_replication, ...)
        primary.query(sql.SQL("GRANT pg_monitor TO {}").format(sql.Identifier(APP_ROLE)))
        return primary

    def lose_node(self, name: str) -> None:
        """SIGKILL a node and delete its data directory: the node and its data are gone."""
        node = self.nodes[name]
        node.kill()
        shutil.rmtree(node.dir, ignore_errors=True)
        node.lost = True

    def replace_lost(
        self,
        name: str,
        primary: bool,
        upstream_host: str | None = None,
        upstream_port: int | None = None,
        synchronous: bool = False,
    ) -> PgNode:
        """A lost node back under its name, on a new port: an empty primary (for a restore), or a
        replica of the current primary (base-backed-up from, and streaming from, the upstream)."""
        old = self.nodes.get(name)
        if old is None or not old.lost:
            raise LabError(f"node {name!r} is not lost")
        del self.nodes[name]
        if primary:
            return self._init_primary(name)
        return self.add_replica(name, upstream_host, upstream_port, synchronous=synchronous)

    def add_replica(
        self, name: str, upstream_host: str | None = None, upstream_port: int | None = None, synchronous: bool = False
    ) -> PgNode:
        """Create, start and return a streaming replica of the current primary.

        It is base-backed-up from, and streams from, upstream_host:upstream_port (default:
        the primary's own address; pass a proxy's address to be able to cut the link).
        synchronous=True adds it to the primary's synchronous_standby_names once it runs.
        """
        if name in self.nodes:
            raise LabError(f"node {name!r} already exists")
        primary = self.primary
        node = self._new_node(name, "replica")
        self._make_replica(node, primary, upstream_host or primary.host, upstream_port or primary.port, synchronous)
        return node

    def down(self) -> None:
        """Stop every node (SIGKILL what does not stop), remove the temp dir and the state file.

        Idempotent. Raises LabError only if a process survives SIGKILL; the state file is
        then kept so that a later reap_stale() retries.
        """
        with self._lock:
            if self._down:
                return
            self._down = True
        survivors: list[int] = []
        for node in reversed(list(self.nodes.values())):
            try:
                node.stop(mode="fast", timeout=10)
            except Exception:  # noqa: BLE001 - fall through to SIGKILL
                pass
            try:
                node.kill()
            except LabError:
                pass
        # Anything carrying our tag (a pg_basebackup interrupted by Ctrl-C, ...).
        leftovers = proc.pids_matching(self.lab_id)
        if leftovers:
            survivors = proc.kill_tree(leftovers, timeout=10)
        if self.root != Path() and self.root.exists():
            shutil.rmtree(self.root, ignore_errors=True)
        if self._registration is not None:
            if survivors:
                raise LabError(f"lab {self.lab_id}: pids {survivors} survived SIGKILL")
            self._registration.close()

    # ---- internals -------------------------------------------------------------------

    _INITDB_ARGS = ("-U", SUPERUSER, "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions", "-A", "trust")

    def _initdb(self, datadir: Path) -> None:
        self._run(["initdb", "-D", str(datadir), *self._INITDB_ARGS], timeout=120)

    # ---- the initdb template cache ------------------------------------------------------
    # A copy of a pristine initdb'ed data dir takes a fraction of initdb's time (measured here:
    # initdb 0.6-2.5 s, a copy on tmpfs ~0.05 s). Its data dir becomes a primary, so the cache must
    # be ours alone: <base_dir>/drill-pg-templates-<uid>, 0700, owned by this user (refused, and
    # initdb used instead, when anything else is there), each template stored by the harness
    # itself (a copy owned by this user, chown'ed to the server user only in the lab's copy), and
    # its config checked again in every copy: only the settings initdb writes, no includes.

    def _template_key(self) -> str:
        binaries = [self.pg_bin / "initdb", self.pg_bin / "postgres"]
        facts = [(str(b), b.stat().st_mtime_ns, b.stat().st_size) for b in binaries]
        return hashlib.sha256(repr((facts, self._INITDB_ARGS, os.geteuid())).encode()).hexdigest()[:16]

    def _template_cache(self) -> Path | None:
        """The private cache dir (created 0700 if missing), or None when it cannot be trusted."""
        try:
            return reaper.ensure_private_dir(
                self.base_dir / f"drill-pg-templates-{os.geteuid()}", what="the initdb template cache"
            )
        except (reaper.UnsafeStateDir, OSError) as exc:
            log.warning("not using an initdb template: %s", exc)
            return None

    def _copy_template(self, datadir: Path) -> bool:
        """Copy the cached template to datadir; False (nothing left behind) when there is no
        trustworthy one."""
        cache = self._template_cache()
        if cache is None:
            return False
        template = cache / self._template_key()
        try:
            st = os.lstat(template)
            if (
                not stat.S_ISDIR(st.st_mode)
                or st.st_uid != os.geteuid()
                or st.st_mode & 0o022
                or not (template / "PG_VERSION").exists()
            ):
                return False
            shutil.copytree(template, datadir, symlinks=True)
            problem = pristine_config_problem(datadir)
            if problem:
                log.warning("initdb template %s not used, removed: %s", template, problem)
                shutil.rmtree(template, ignore_errors=True)
                raise LabError(problem)
            self._own(datadir)
            return True
        except (OSError, LabError):
            shutil.rmtree(datadir, ignore_errors=True)
            return False

    def _store_template(self, datadir: Path) -> None:
        """Keep a copy of a fresh initdb'ed datadir (not yet configured or started) in the cache.
        Built aside and renamed into place, so concurrent labs never see a half-written one."""
        cache = self._template_cache()
        if cache is None or pristine_config_problem(datadir):
            return
        template = cache / self._template_key()
        if template.exists():
            return
        building = Path(tempfile.mkdtemp(prefix=f".{self.lab_id}.", dir=cache))
        try:
            shutil.copytree(datadir, building / "data", symlinks=True)  # new files: ours
            try:
                os.rename(building / "data", template)
            except OSError:
                pass  # another lab stored it first
        except OSError as exc:
            log.warning("initdb template not stored: %s", exc)
        finally:
            shutil.rmtree(building, ignore_errors=True)

    def _new_node(self, name: str, role: str) -> PgNode:
        node = PgNode(self, name, free_port(), role)
        self.nodes[name] = node
        return node

    def _make_replica(self, node: PgNode, upstream: PgNode, host: str, port: int, synchronous: bool) -> None:
        self._mkdir(node.dir)
        self._run(
            [
                "pg_basebackup",
                "-D",
                str(node.datadir),
                "-X",
                "stream",
                "-c",
                "fast",
                "--no-sync",
                "-d",
                self._conninfo(host, port, REPLICATION_ROLE),
            ],
            timeout=300,
        )
        self._write_node_conf(node)
        # Our own auto.conf replaces the copied one: it may hold the primary's
        # synchronous_standby_names, which would make this node hang writes once promoted.
        self._write_config(
            node.datadir / "postgresql.auto.conf",
            "# Written by the drill harness.\n"
            f"primary_conninfo = {_conf_value(self._primary_conninfo(node.name, host, port))}\n",
        )
        self._write_config(node.datadir / "standby.signal", "")
        self._own(node.dir)
        node.role = "replica"
        node.upstream, node.upstream_addr = upstream, (host, port)
        node.start()
        node.synchronous = synchronous
        # Up means streaming (also through a proxy: the upstream sees the same name).
        wait_until(
            lambda: upstream.query(
                "SELECT 1 FROM pg_stat_replication WHERE application_name = %s AND state = 'streaming'", (node.name,)
            ),
            self.start_timeout,
            f"{node.name} streaming from {upstream.name}",
        )
        if synchronous:
            upstream.set_synchronous(
                [
                    n.name
                    for n in self.nodes.values()
                    if n.role == "replica" and n.synchronous and n.upstream is upstream
                ]
            )

    def _primary_conninfo(self, name: str, host: str, port: int) -> str:
        return self._conninfo(host, port, REPLICATION_ROLE, application_name=name)

    def _conninfo(self, host: str, port: int, user: str, **extra) -> str:
        return psycopg.conninfo.make_conninfo(
            host=host, port=port, user=user, passfile=str(self.passfile), connect_timeout=3, **extra
        )

    def _write_node_conf(self, node: PgNode) -> None:
        settings = {
            **self.settings,
            "port": str(node.port),
            "unix_socket_directories": str(self.socket_dir),
            "cluster_name": f"{self.lab_id}/{node.name}",
        }
        self._write_config(
            node.datadir / "drill.conf",
            "# Written by the drill harness; postgresql.conf includes it last.\n"
            + "".join(f"{k} = {_conf_value(v)}\n" for k, v in settings.items()),
        )

    def _write_config(self, path: Path, text: str, append: bool = False) -> None:
        """Write a file of a node's data dir without following a symlink anywhere on the way.

        When the harness is root, the folders below the lab's own are the server user's: a link
        planted there (drill.conf -> /etc/...) must not make root write through it. So each
        folder from the lab's base dir down is opened with O_NOFOLLOW, the text goes to a new
        temp file (O_CREAT | O_EXCL | O_NOFOLLOW, 0600, given to the server's user) renamed over
        the name: a rename replaces a link itself, never its target. append=True keeps what the
        file held (read the same way) before the text."""
        flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            parts = path.parent.relative_to(self.root.parent).parts
        except ValueError:
            raise LabError(f"{path}: not inside the lab's folder {self.root}") from None
        folder = -1
        try:
            folder = os.open(self.root.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            for part in parts:
                inner = os.open(part, flags, dir_fd=folder)
                os.close(folder)
                folder = inner
        except OSError as exc:
            if folder >= 0:
                os.close(folder)
            raise LabError(
                f"cannot write {path}: {path.parent} is not a folder of the lab ({exc.strerror}); "
                f"a symlink on the way is not followed"
            ) from None
        tmp = f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            data = text.encode()
            if append:
                fd = os.open(path.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=folder)
                with os.fdopen(fd, "rb") as f:
                    data = f.read() + data
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=folder)
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                    uid, gid = self._uid_gid
                    if uid is not None and gid is not None:
                        os.fchown(f.fileno(), uid, gid)
                os.replace(tmp, path.name, src_dir_fd=folder, dst_dir_fd=folder)
            except BaseException:
                try:
                    os.unlink(tmp, dir_fd=folder)
                except FileNotFoundError:
                    pass
                raise
        except OSError as exc:
            raise LabError(f"cannot write {path}: {exc.strerror or exc} (a symlink there is not followed)") from None
        finally:
            os.close(folder)

    def _mkdir(self, path: Path) -> None:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._own(path)

    def _own(self, path: Path) -> None:
        """Give path (recursively) to the server's OS user when we are root."""
        uid, gid = self._uid_gid
        if uid is None or gid is None:  # set together (we are root), or neither
            return
        os.chown(path, uid, gid)
        if path.is_dir():
            for parent, dirs, files in os.walk(path):
                for entry in dirs + files:
                    os.chown(os.path.join(parent, entry), uid, gid, follow_symlinks=False)

    def _run(self, args: list[str], timeout: float, check: bool = True) -> subprocess.CompletedProcess:
        """Run a server tool (as user postgres when we are root) in its own session, so that
        a Ctrl-C in the terminal reaches the harness, which then stops the lab in order."""
        cmd = [str(self.pg_bin / args[0]), *args[1:]]
        if self._uid_gid[0] is not None:
            cmd = ["runuser", "-u", RUN_AS, "--", *cmd]
        result = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=_clean_env(),
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=self.root,
        )
        if check and result.returncode != 0:
            raise LabError(
                f"{args[0]} failed (exit {result.returncode}): {(result.stderr or result.stdout).strip()[-2000:]}"
            )
        return result
