"""The embedded lab: every part a local process on 127.0.0.1, links through Toxiproxy proxies.

    clients -> HAProxy -> Control Plane az1..az3 -> [proxy db] -> PostgreSQL primary (pg-a)
                                                 -> [proxy s3] -> HTTP fault gateway -> moto (S3 + SQS)
                                                 -> [proxy s3-replica] -> moto (alternate region bucket)
                                                 -> SQS <lab>-<platform> (moto) -> connector workers
    connector <platform> -> [proxy platform-<platform>] -> platform API stand-in (Intune, Jamf, ...)
    pg-a -> [proxy repl-pg-b] -> pg-b (synchronous replica, failover target)
    pg-a -> [proxy repl-pg-analytics] -> pg-analytics (asynchronous analytics replica)
    backup service (a thread) -> [proxy db] -> pg_dump -> moto buckets backups, backups-dr, keyvault

Lifecycle of up():
1. reap what killed runs left (registry in the state dir), register this lab;
2. start the fault server (TOXIPROXY_URL / binary / embedded) and moto, in the background;
3. PostgreSQL primary, then each replica streaming through its own proxy;
4. migrate the Control Plane schema and buckets; start the backup service (its first snapshot,
   export and inventory are taken now); start three API instances and HAProxy;
5. start the failover controller; write the lab manifest for `drill lab status`.
down() undoes all of it in reverse, each part in its own try, and is idempotent.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from controlplane.control_auth import CONTROL_TOKEN_ENV

from ..errors import LabStartError
from ..net import LOOPBACK, free_port
from ..toxiproxy.client import ToxiproxyControl
from ..toxiproxy.launcher import ToxiproxyServer, start_toxiproxy
from ..wait import poll, until_up
from ..workload.client import ApiClient
from . import proc, reaper
from .backups import BackupService
from .base import running
from .capabilities import DatabaseNodes
from .connectors import ConnectorTier, ProcessLauncher
from .eventpost import RoleChangePoster
from .failover import FailoverController
from .haproxy import LoadBalancer
from .moto import MotoServer
from .parts import (
    EVIDENCE_BUCKET,
    EVIDENCE_REPLICA_BUCKET,
    S3_ENV,
    ApiInstances,
    ConnectorParts,
    ControlEndpoints,
    EvidenceReads,
    ManagerEvents,
    ObservedNodes,
    SiemFile,
    TopologyLab,
    store_client,
)
from .postgres import APP_DATABASE, APP_ROLE, PgCluster

PRIMARY, SYNC_REPLICA, ANALYTICS = "pg-a", "pg-b", "pg-analytics"
INSTANCES = ("az1", "az2", "az3")
BACKUP_BUCKETS = ("backups", "backups-dr")  # harness.backup.BackupStore's hourly and dr buckets
START_TIMEOUT = 60.0


def manifest_path(lab_id: str) -> Path:
    return reaper.state_dir() / f"{lab_id}.lab.json"


def forget_lab_files(record: dict) -> None:
    """Remove a lab's manifest and secret files (also for a killed run, via the reaper)."""
    lab_id = record.get("lab_id", "")
    if not lab_id:
        return
    manifest_path(lab_id).unlink(missing_ok=True)
    for path in reaper.state_dir().glob(f"{lab_id}.secret.*"):
        path.unlink(missing_ok=True)


reaper.register_cleanup("embedded-lab", forget_lab_files)


class EmbeddedLab(TopologyLab):
    provider = "embedded"

    def __init__(
        self,
        replication: str = "sync",
        on_event: Callable[[str, str, dict], None] | None = None,
        failover_interval: float = 0.5,
        failover_misses: int = 3,
        lb_checks: bool = True,
        lb_retries: bool = True,
        cp_flags: tuple[str, ...] = (),
        restore_verifies: bool = True,
    ):
        self.replication = replication
        self.restore_verifies = restore_verifies  # False: a restore runbook that skips hash verification
        self.lb_checks, self.lb_retries = lb_checks, lb_retries  # False: a misbehaving stand-in
        self.cp_flags = tuple(cp_flags)  # e.g. --unsafe-skip-evidence-check: a misbehaving stand-in
        self.gateway: subprocess.Popen | None = None
        self.gateway_url = ""
        self.on_event = on_event or (lambda kind, name, detail: None)
        self.failover_interval, self.failover_misses = failover_interval, failover_misses
        self.lab_id = "drilllab-" + secrets.token_hex(4)
        # bearer token of the control endpoints (clock, platform stand-ins, fault gateway): given to
        # those processes in their environment, sent by every harness client (control_headers())
        self.control_token = secrets.token_urlsafe(24)
        self.root: Path | None = None
        self.registration: reaper.Registration | None = None
        self.toxi_server: ToxiproxyServer | None = None
        self.toxiproxy: ToxiproxyControl | None = None
        self.moto: MotoServer | None = None
        self.cluster: PgCluster | None = None
        self.instances: dict[str, subprocess.Popen] = {}
        self.instance_ports: dict[str, int] = {}
        self._cp_common: list[str] = []
        self._cp_serve: list[str] = []
        self.lb: LoadBalancer | None = None
        self.failover: FailoverController | None = None
        self.poster = None  # the failover manager's own event delivery (TopologyLab), made by up()
        self.api_url = ""
        self.siem_path: Path | None = None
        self.started_in: float | None = None
        self._db_listen: tuple[str, int] | None = None
        self._proxies: list[str] = []
        self.connectors: ConnectorTier | None = None
        self.backups: BackupService | None = None
        self._parts = (
            EmbeddedDatabase(self),
            ApiInstances(self, self._kill_instance, self._redeploy_instance),
            EvidenceReads(self),
            SiemFile(lambda: self.siem_path),
            ConnectorParts(self),
            ControlEndpoints(self),
            EmbeddedBackups(self),
            ManagerEvents(self),
        )

    # -- its own parts up() makes (each None before up() and after down(); LabNotUp names it) --
    @property
    def database(self) -> PgCluster:
        return running(self.cluster, "the database cluster")

    @property
    def object_store(self) -> MotoServer:
        return running(self.moto, "the object store (moto)")

    @property
    def toxiproxy_server(self) -> ToxiproxyServer:
        return running(self.toxi_server, "the Toxiproxy server")

    @property
    def manager(self) -> FailoverController:
        """The lab's failover manager (what `failover` is once up() ran)."""
        return running(self.failover, "the failover manager")

    # -- lifecycle ---------------------------------------------------------------------------
    def up(self) -> EmbeddedLab:
        start = time.monotonic()
        reaper.reap_stale()
        self.root = Path(tempfile.mkdtemp(prefix=f"{self.lab_id}-"))
        os.chmod(self.root, 0o755)  # PostgreSQL runs as an unprivileged user below it
        self.registration = reaper.Registration(self.lab_id, "embedded-lab", tag=self.lab_id)
        self.registered.add_dir(self.root)
        try:
            self.toxi_server = start_toxiproxy()
            self.toxiproxy = ToxiproxyControl(self.toxiproxy_server.url)
            self.reset_faults()
            self.moto = MotoServer()
            self.object_store.start()
            self.store_url = self.object_store.endpoint_url
            self.connectors = ConnectorTier(
                self.root,
                self.lab_id,
                ProcessLauncher(self.root, self.registration, self._aws_env()),
                self._proxy,
                self.object_store.endpoint_url,
                control_env={CONTROL_TOKEN_ENV: self.control_token},
            )
            with ThreadPoolExecutor(max_workers=1) as pool:  # queues and platforms while PostgreSQL starts
                platforms = pool.submit(self.connector_tier.start_queues_and_mocks)
                self._start_database()
                platforms.result()
            moto = self.object_store.endpoint_url.split("//", 1)[1]
            self._start_gateway(self.object_store.endpoint_url)
            s3 = self._proxy("s3", self.gateway_url.split("//", 1)[1])  # primary region
            s3_replica = self._proxy("s3-replica", moto)  # alternate region
            lb_port = free_port()
            with ThreadPoolExecutor(max_workers=1) as pool:  # the workers while the API starts
                workers = pool.submit(self.connector_tier.start_workers, f"http://{LOOPBACK}:{lb_port}")
                self._start_controlplane(f"http://{s3}", f"http://{s3_replica}")
                self._start_load_balancer(lb_port)
                workers.result()
            self.poster = RoleChangePoster(self.api_url, self.lab_id)
            self.failover = FailoverController(
                self.cluster,
                self.toxiproxy,
                "db",
                SYNC_REPLICA,
                self._event,
                interval=self.failover_interval,
                misses=self.failover_misses,
                replication_proxy=self._replication_proxy,
            )
            self.manager.start()
        except LabStartError:
            raise
        except Exception as exc:
            raise LabStartError(f"embedded lab did not start: {type(exc).__name__}: {exc}") from exc
        self.started_in = time.monotonic() - start
        self._write_manifest()
        return self

    def down(self) -> None:
        steps = [
            lambda: self.backups.stop() if self.backups else None,
            lambda: self.failover.stop() if self.failover else None,
            lambda: self.poster.close() if self.poster else None,
            lambda: self.connectors.stop() if self.connectors else None,
            lambda: self.lb.stop() if self.lb else None,
            self._stop_controlplane,
            self._stop_gateway,
            lambda: self.cluster.down() if self.cluster else None,
            lambda: self.moto.down() if self.moto else None,
            self._remove_proxies,
            lambda: self.toxi_server.stop() if self.toxi_server else None,
        ]
        for step in steps:
            try:
                step()
            except Exception as exc:  # keep tearing down the rest
                print(f"lab down: {type(exc).__name__}: {exc}", file=sys.stderr)
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
        if self.registration is not None:
            self.registered.close()
            forget_lab_files({"lab_id": self.lab_id})
        self.failover = self.lb = self.cluster = self.moto = self.toxi_server = self.connectors = None
        self.backups = self.poster = None

    # -- parts -------------------------------------------------------------------------------
    def _proxy(self, name: str, upstream: str) -> str:
        proxy = self.fault_server.ensure_proxy(name, upstream)
        if name not in self._proxies:
            self._proxies.append(name)
        return proxy.listen

    def _replication_proxy(self, replica: str, upstream: Any) -> tuple[str, int]:
        listen = self._proxy(f"repl-{replica}", f"{upstream.host}:{upstream.port}")
        host, port = listen.rsplit(":", 1)
        return host, int(port)

    def _start_database(self) -> None:
        self.cluster = PgCluster(primary_name=PRIMARY)
        self.database.start()
        primary = self.database.primary
        for name, synchronous in ((SYNC_REPLICA, self.replication == "sync"), (ANALYTICS, False)):
            host, port = self._replication_proxy(name, primary)
            self.database.add_replica(name, host, port, synchronous=synchronous)
        self._proxy("db", f"{primary.host}:{primary.port}")

    def _db_address(self) -> tuple[str, int]:
        """The client endpoint (the db proxy's listen address: it never moves, a failover changes
        its upstream). Read once: toxiproxy-python keeps its server's address process-wide, so a
        background thread (the backup service's) must not call it while another lab starts."""
        if self._db_listen is None:
            host, port = self.fault_server.proxy("db").listen.rsplit(":", 1)
            self._db_listen = (host, int(port))
        return self._db_listen

    def _db_conninfo(self) -> str:
        host, port = self._db_address()
        return f"host={host} port={port} dbname={APP_DATABASE} user={APP_ROLE}"

    @staticmethod
    def _aws_env() -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "AWS_"))}
        env.update(S3_ENV, PYTHONUNBUFFERED="1")
        return env

    def _cp_env(self) -> dict[str, str]:
        return {**self._aws_env(), "PGPASSWORD": self.database.password, CONTROL_TOKEN_ENV: self.control_token}

    def _start_gateway(self, upstream: str) -> None:
        """The HTTP fault gateway in front of the primary region's object store."""
        self.gateway = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "harness.lab.httpfault",
                "--port",
                "0",
                "--upstream",
                upstream,
                "--tag",
                self.lab_id,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env={**os.environ, CONTROL_TOKEN_ENV: self.control_token},
        )
        self.registered.add_pid(self.gateway.pid)
        line = running(self.gateway.stdout, "the HTTP fault gateway's output").readline().strip()
        if not line.startswith("listening "):
            raise LabStartError("the HTTP fault gateway in front of S3 did not start")
        self.gateway_url = f"http://{line.split()[1]}"

    def _stop_gateway(self) -> None:
        gateway, self.gateway = self.gateway, None
        proc.stop_process(gateway)
        if gateway is not None and gateway.stdout:
            gateway.stdout.close()

    def _start_controlplane(self, s3_url: str, s3_replica_url: str) -> None:
        self.siem_path = self.workdir / "siem.jsonl"
        common = ["--database", self._db_conninfo(), "--s3-endpoint", s3_url, "--evidence-bucket", EVIDENCE_BUCKET]
        self._cp_common = common
        self._cp_serve = [
            *common,
            "--s3-replica-endpoint",
            s3_replica_url,
            "--evidence-replica-bucket",
            EVIDENCE_REPLICA_BUCKET,
            "--sqs-endpoint",
            self.object_store.endpoint_url,
            "--queue-prefix",
            self.connector_tier.prefix,
            "--allow-clock-control",
            *[arg for bucket in BACKUP_BUCKETS for arg in ("--backup-bucket", bucket)],
            "--backup-endpoint",
            self.object_store.endpoint_url,
        ]
        migrate = subprocess.run(
            [
                sys.executable,
                "-m",
                "controlplane",
                "migrate",
                *common,
                "--evidence-replica-bucket",
                EVIDENCE_REPLICA_BUCKET,
            ],
            env=self._cp_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        if migrate.returncode != 0:
            raise LabStartError(f"Control Plane migrate failed: {migrate.stderr.strip()[-500:]}")
        self._start_backups()
        for name in INSTANCES:
            self._start_instance(name, free_port())
        deadline = time.monotonic() + START_TIMEOUT
        for name in INSTANCES:
            self._wait_instance(name, deadline)

    def _backup_dsn(self) -> str:
        return self.database.primary.dsn_via(*self._db_address())

    def _start_backups(self) -> None:
        self.backups = BackupService(
            store_client("s3", self.object_store.endpoint_url),
            self._backup_dsn,
            self.database.pg_bin,
            self.workdir / "backup-work",
            (EVIDENCE_BUCKET, EVIDENCE_REPLICA_BUCKET),
            self.workdir / "backup.log",
        )
        try:
            self.backups.start()
        except Exception as exc:
            raise LabStartError(
                f"the backup service did not take the lab's first snapshot: {type(exc).__name__}: {exc}"
            ) from exc

    def _start_instance(self, name: str, port: int) -> None:
        log = open(self.workdir / f"controlplane-{name}.log", "ab")
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "controlplane",
                "serve",
                "--instance",
                name,
                "--host",
                LOOPBACK,
                "--port",
                str(port),
                *self._cp_serve,
                *self.cp_flags,
                "--siem",
                str(self.siem_path),
                "--db-timeout",
                "2",
            ],
            env=self._cp_env(),
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        self.registered.add_pid(process.pid)
        self.instances[name], self.instance_ports[name] = process, port

    def _wait_instance(self, name: str, deadline: float) -> None:
        """Until the instance answers its /health/live (the Control Plane client's `live`)."""
        client = ApiClient(f"http://{LOOPBACK}:{self.instance_ports[name]}", timeout=0.5)
        try:
            up = until_up(
                client.live, lambda: self.instances[name].poll() is not None, max(0.0, deadline - time.monotonic())
            )
        finally:
            client.close()
        if up != "up":
            tail = (self.workdir / f"controlplane-{name}.log").read_text()[-800:]
            raise LabStartError(f"Control Plane instance {name} did not start:\n{tail}")

    # -- API instances: the stateless tier's faults ---------------------------------------------
    def _kill_instance(self, name: str) -> None:
        """SIGKILL one API instance (an availability zone's service is gone)."""
        self.registered.kill(self.instances[name])

    def _redeploy_instance(self, name: str) -> None:
        """Start the instance again on its port (what an auto-redeploy does); waits until live."""
        if self.instances[name].poll() is None:
            return
        self._start_instance(name, self.instance_ports[name])
        self._wait_instance(name, time.monotonic() + START_TIMEOUT)

    @contextlib.contextmanager
    def control_plane_flags(self, *flags: str) -> Iterator[None]:
        """The Control Plane instances run with `flags` added (e.g. --unsafe-skip-siem: a misbehaving
        stand-in for one negative drill) while the block runs, then with the lab's own flags again,
        also when the block raises. Each time every instance is restarted on its own port (the load
        balancer's backend) and waited for until live and UP behind the balancer; the database,
        queues, connectors and every other part are not touched (the Control Plane keeps its state
        in the database). Cheaper than a lab of its own: about 2 s per restart against a lab start."""
        own = self.cp_flags
        self._restart_controlplane((*own, *flags))
        try:
            yield
        finally:
            self._restart_controlplane(own)

    def _restart_controlplane(self, flags: tuple[str, ...]) -> None:
        self.cp_flags = flags
        ports = dict(self.instance_ports)
        self._stop_controlplane()
        for name, port in ports.items():
            self._start_instance(name, port)
        deadline = time.monotonic() + START_TIMEOUT
        for name in ports:
            self._wait_instance(name, deadline)
        self._wait_balanced(max(0.0, deadline - time.monotonic()))

    @contextlib.contextmanager
    def balancer_settings(self, checks: bool, retries: bool) -> Iterator[None]:
        """HAProxy runs with health checks and retries as given (False, False: the misconfigured
        balancer of a negative drill) while the block runs, then as the lab's own again, also when
        the block raises: restarted each time on its own port (the lab's API URL), every other part
        untouched."""
        own = (self.lb_checks, self.lb_retries)
        self._restart_balancer(checks, retries)
        try:
            yield
        finally:
            self._restart_balancer(*own)

    def _restart_balancer(self, checks: bool, retries: bool) -> None:
        port = self.balancer.port
        self.balancer.stop()
        self.lb_checks, self.lb_retries = checks, retries
        self._start_load_balancer(port)
        self._wait_balanced(START_TIMEOUT)

    def _wait_balanced(self, timeout: float) -> None:
        """Until the balancer has every Control Plane instance UP (or unchecked), as steady state says."""
        balanced = poll(
            self.balancer.server_states,
            until=lambda states: all(states.get(name) in ("UP", "no check") for name in self.instance_ports),
            timeout=timeout,
            interval=0.1,
        )
        if not balanced.ok:
            raise LabStartError(f"the load balancer did not take the Control Plane instances: {balanced.value}")

    def _start_load_balancer(self, listen_port: int) -> None:
        backends = {name: f"{LOOPBACK}:{port}" for name, port in self.instance_ports.items()}
        self.lb = LoadBalancer(self.workdir, backends, listen_port, checks=self.lb_checks, retries=self.lb_retries)
        self.registered.add_pid(self.balancer.start())
        self.api_url = self.balancer.url

    def _stop_controlplane(self) -> None:
        for process in self.instances.values():
            if process.poll() is None:
                process.terminate()
        for process in self.instances.values():
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill_tree([process.pid])
        self.instances.clear()

    def _remove_proxies(self) -> None:
        if self.toxiproxy is None or self.toxi_server is None or self.toxi_server.kind == "embedded":
            return  # the embedded server goes away with its proxies
        for name in self._proxies:
            try:
                self.fault_server.proxy(name).destroy()
            except Exception:
                pass

    def write_secret(self, name: str, value: str) -> Path:
        """One secret of this lab in a file only its owner can read (removed with the lab)."""
        # in the private state dir, by exclusive creation and rename: a planted symlink is not followed
        return reaper.write_private(reaper.state_dir() / f"{self.lab_id}.secret.{name}", value, 0o600)

    def _write_manifest(self) -> None:
        # owner_start_time: `drill lab down` signals the owner only while it is this process
        data = {
            "lab_id": self.lab_id,
            "provider": self.provider,
            "owner_pid": os.getpid(),
            "owner_start_time": proc.start_time(os.getpid()),
            "started_in_s": round(self.started_in or 0, 2),
            "endpoints": self.endpoints(),
        }
        reaper.write_private(manifest_path(self.lab_id), json.dumps(data, indent=1), 0o600)

    # -- what drills and status use ------------------------------------------------------------
    def endpoints(self) -> dict[str, Any]:
        nodes = self.cluster.nodes if self.cluster else {}
        return {
            "api": self.api_url,
            "instances": {n: f"http://{LOOPBACK}:{p}" for n, p in self.instance_ports.items()},
            "toxiproxy": self.toxi_server.url if self.toxi_server else None,
            "s3": self.moto.endpoint_url if self.moto else None,
            "s3_gateway": self.gateway_url or None,
            "database": {n: f"{node.host}:{node.port} ({node.role})" for n, node in nodes.items()},
            "siem": str(self.siem_path) if self.siem_path else None,
            "platforms": self.connectors.endpoints() if self.connectors else {},
        }

    def processes(self) -> dict[str, int | None]:
        result: dict[str, int | None] = {}
        if self.cluster:
            for name, node in self.database.nodes.items():
                result[f"postgres:{name}"] = node.pid if node.is_running() else None
        for name, process in self.instances.items():
            result[f"controlplane:{name}"] = process.pid if process.poll() is None else None
        haproxy = self.lb.process if self.lb else None
        if haproxy:
            result["haproxy"] = haproxy.pid if haproxy.poll() is None else None
        moto = self.moto.process if self.moto else None
        if moto:
            result["moto"] = moto.pid if moto.poll() is None else None
        if self.gateway is not None:
            result["httpfault"] = self.gateway.pid if self.gateway.poll() is None else None
        if self.connectors:
            result.update(self.connector_tier.processes())
        toxiproxy = self.toxi_server.process if self.toxi_server else None
        if toxiproxy:
            result["toxiproxy"] = toxiproxy.pid
        return result

    def describe(self) -> dict[str, Any]:
        primary = self.cluster.primary if self.cluster else None
        version = primary.query("SHOW server_version")[0][0] if primary else None
        return {
            "provider": self.provider,
            "lab_id": self.lab_id,
            "replication": self.replication,
            "postgresql": version,
            "toxiproxy": f"{self.toxiproxy_server.kind} {self.toxiproxy_server.version}",
            "api_instances": len(self.instances),
            "load_balancer": "HAProxy",
            "lab_start_seconds": round(self.started_in or 0, 2),
        }

    def steady_state_checks(self) -> dict[str, tuple[bool, str]]:
        checks: dict[str, tuple[bool, str]] = {}
        states = self.balancer.server_states()
        down = [n for n in INSTANCES if states.get(n) not in ("UP", "no check")]  # no check: in rotation
        checks["load_balancer"] = (not down, f"instances not UP: {down}" if down else "all UP")
        try:
            streaming = {
                r[0]: r[1]
                for r in self.database.primary.query("SELECT application_name, state FROM pg_stat_replication")
            }
        except Exception as exc:
            streaming = {}
            checks["database_primary"] = (False, str(exc))
        candidate = self.manager.candidate
        ok = streaming.get(candidate) == "streaming"
        checks["replication"] = (ok, f"{candidate}: {streaming.get(candidate, 'not connected')}")
        checks["failover_controller"] = (self.manager.state == "watching", self.manager.state)
        return checks

    def set_replication(self, mode: str) -> None:
        """sync: the failover replica confirms every commit; async: commits do not wait for it."""
        names = [self.manager.candidate] if mode == "sync" else []
        self.database.primary.set_synchronous(names)
        self.replication = mode

    def reset_faults(self) -> None:
        """Every toxic and disabled proxy, and every platform stand-in back up and answering ok. On
        a shared fault server (TOXIPROXY_URL) only this lab's proxies: never other drills' faults."""
        if self.toxi_server is not None and self.toxi_server.kind == "external":
            self.fault_server.reset_proxies(self._proxies)
        else:
            super().reset_faults()
        self.reset_platforms()


class EmbeddedDatabase(ObservedNodes):
    """The embedded lab's database tier (DatabaseNodes, EventStoreBlock): the local PostgreSQL
    cluster under the lab's failover manager."""

    lab: EmbeddedLab

    def __init__(self, lab: EmbeddedLab):
        super().__init__(lab)

    def database_primary(self) -> str:
        return self.lab.database.primary.name

    def node_query(self, name: str, statement: str, params=None) -> list[tuple]:
        import psycopg

        with psycopg.connect(self.lab.database[name].admin_dsn, dbname=APP_DATABASE, autocommit=True) as conn:
            cur = conn.execute(statement, params)
            return cur.fetchall() if cur.description else []

    def kill_database_node(self, name: str) -> None:
        self.lab.database[name].kill()

    def block_event_store_writes(self, time_limit_s: float | None = None) -> Any:
        """Hold LOCK TABLE event_chain_head IN EXCLUSIVE MODE on the primary as superuser (over
        its unix socket): see harness.lab.eventstore. Release through the fault's heal; with
        time_limit_s, PostgreSQL ends it by itself after that long."""
        import psycopg

        from .eventstore import EventStoreWriteBlock

        primary = self.lab.database.primary
        return EventStoreWriteBlock.hold(
            primary.name,
            lambda **kw: psycopg.connect(primary.admin_dsn, dbname=APP_DATABASE, **kw),
            time_limit_s=time_limit_s,
        )


class EmbeddedBackups:
    """The backup service and the restore runbook (Backups, spec section 3): embedded only."""

    def __init__(self, lab: EmbeddedLab):
        self.lab = lab

    def backup_service(self) -> BackupService:
        return running(self.lab.backups, "the backup service")

    def lose_database(self) -> list[str]:
        """The primary region's database is gone: the failover controller stops watching (there is
        nothing left to fail over to), every node is SIGKILLed and its data directory deleted."""
        self.lab.manager.stop()
        lost = []
        for name in list(self.lab.database.nodes):
            self.lab.database.lose_node(name)
            lost.append(name)
        return lost

    def database_lost(self) -> bool:
        return any(node.lost for node in self.lab.database.nodes.values())

    def database_primary_lost(self) -> bool:
        return any(node.lost and node.role == "primary" for node in self.lab.database.nodes.values())

    def restore_database(
        self,
        bucket: str | None = None,
        verify: bool = True,
        emit: Callable[[str, str, dict], None] | None = None,
        validate: Callable[[str], None] | None = None,
    ) -> Any:
        """The restore runbook after the database is lost: a fresh primary under the lost primary's
        name, harness.backup.restore (newest snapshot of `bucket` whose every hash verifies, unless
        verify=False or the lab's restore_verifies is False) rehydrated into it with pg_restore,
        `validate(node)` (reads of the restored data before any client reaches it), the Control
        Plane's clock set back to where it was, and the client endpoint repointed. Returns the
        RestoreOutcome; replicas are rebuilt by rebuild_database_replicas()."""
        from ..backup import pg_restore_into, restore

        lab = self.lab
        name = next(n for n, node in lab.database.nodes.items() if node.lost and node.role == "primary")
        fresh = lab.database.replace_lost(name, primary=True)
        password = lab.database.password

        def rehydrate(dump: Path) -> None:
            pg_restore_into(fresh.admin_dsn, lab.database.pg_bin, dump, APP_DATABASE, APP_ROLE, password)

        backups = self.backup_service()
        outcome = restore(
            backups.store,
            backups.vault,
            rehydrate,
            bucket=bucket,
            verify=verify and lab.restore_verifies,
            emit=emit or (lambda kind, name, detail: None),
        )
        if outcome.ok and validate is not None:
            validate(name)
        offset = backups.clock_offset_s
        if outcome.ok and offset is not None:
            # the restored cp_clock row holds the offset at snapshot time: the lab's clock goes on
            lab.capability(DatabaseNodes).node_query(name, "UPDATE cp_clock SET offset_s = %s WHERE id = 1", (offset,))
        lab.fault_server.set_upstream("db", f"{fresh.host}:{fresh.port}")
        self.backup_service().forget()
        return outcome

    def rebuild_database_replicas(self) -> None:
        """Every lost replica rebuilt from the restored primary through its replication proxy (the
        failover target synchronous again), and the failover controller watching again."""
        lab = self.lab
        primary = lab.database.primary
        for name, node in list(lab.database.nodes.items()):
            if node.lost:
                host, port = lab._replication_proxy(name, primary)
                synchronous = name == lab.manager.candidate and lab.replication == "sync"
                lab.database.replace_lost(
                    name, primary=False, upstream_host=host, upstream_port=port, synchronous=synchronous
                )
        lab.manager.start()
