"""The container lab: the embedded lab's topology with each part a container (testcontainers).

    clients -> lb (HAProxy) -> controlplane az1..az3 -> toxiproxy:db -> pg-a (primary)
                                                    -> toxiproxy:s3 -> gateway (HTTP faults) -> moto
                                                    -> toxiproxy:s3-replica -> moto (alternate region)
                                                    -> SQS <lab>-<platform> (moto) -> connector-<platform>
    connector-<platform> -> toxiproxy:platform-<platform> -> platform-<platform> (stand-in)
    pg-a -> toxiproxy:repl-pg-b -> pg-b (synchronous replica, failover target)

All containers share one container network, each on an address the lab gives it (so a container
started again after a kill keeps it; the lab's own links use addresses, as a new network's name
service can lag behind), with its name as alias; the harness reaches them only through ports
published on 127.0.0.1, each fixed when its container is made (kept across restarts). The lab's
temp dir is mounted at its own path in every container: the SIEM file, the stand-ins' request
logs, the workers' metrics and HAProxy's stats socket are there, read by the harness. Faults the
provider adds (harness.faults.containers): container kill (SIGKILL), stop, pause (a hung node),
network disconnect.

Images come from the plan (`lab.images`), else the environment (DRILL_IMAGE_POSTGRES,
DRILL_IMAGE_TOXIPROXY, DRILL_IMAGE_MOTO, DRILL_IMAGE_CONTROLPLANE), else the defaults: the
official postgres:15 and ghcr.io/shopify/toxiproxy for those two, and for moto and the
Control Plane (and wherever no registry is reachable) the local base image: an empty root
filesystem imported once, run with the host's /usr, /lib, /etc and this Python read-only
bind-mounted, so the containers run the host's own Debian binaries in their own namespaces.

Lifecycle of up(): 1. engine (Docker, or a Podman socket it starts); 2. base image; 3. network;
4. toxiproxy, moto, PostgreSQL primary, then the replica through its proxy; the S3 fault gateway;
5. the connector tier's queues (one-off container) and platform stand-ins; 6. Control Plane
migrate (one-off container), three instances and the load balancer; 7. the connector workers
and their auto-scaling group; 8. failover controller.
down() removes every container and the network and stops the engine service.
The backup service is the embedded lab's only (capability `backups`): its scenarios are refused here.
"""

from __future__ import annotations

import io
import ipaddress
import os
import secrets
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import psycopg
import requests

from controlplane.control_auth import CONTROL_TOKEN_ENV

from ..errors import LabStartError
from ..net import LOOPBACK, free_port
from ..toxiproxy.client import ToxiproxyControl
from ..wait import poll, until_up
from ..workload.client import ApiClient
from . import proc, reaper
from .base import running
from .connectors import PLATFORMS, ConnectorTier
from .engine import Engine, find_engine
from .eventpost import RoleChangePoster
from .failover import FailoverController
from .haproxy import LoadBalancer
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
)

BASE_IMAGE = "localhost/drill/base:latest"
DEFAULT_IMAGES = {
    "postgres": "postgres:15",
    "toxiproxy": "ghcr.io/shopify/toxiproxy:2.12.0",
    "moto": BASE_IMAGE,
    "controlplane": BASE_IMAGE,
}
PRIMARY, REPLICA = "pg-a", "pg-b"
INSTANCES = ("az1", "az2", "az3")
PG_BIN = "/usr/lib/postgresql/15/bin"
PROXY_PORTS = {
    "db": 15432,
    "repl-pg-a": 15433,
    "repl-pg-b": 15434,
    "s3": 15500,
    "s3-replica": 15501,
    **{f"platform-{p}": 15600 + i for i, p in enumerate(PLATFORMS)},
}
API_PORT, LB_PORT, GATEWAY_PORT, PLATFORM_PORT, MOTO_PORT = 8080, 8000, 8081, 8090, 5000
FIRST_ADDRESS = 10  # the lab's own addresses start at .10 of its network
START_TIMEOUT = 90.0
HOST_MOUNTS = ("/usr", "/lib", "/lib64", "/bin", "/sbin", "/etc")

PG_SETTINGS = """
listen_addresses = '*'
unix_socket_directories = '/tmp'
wal_level = replica
max_wal_senders = 10
max_replication_slots = 10
hot_standby = on
wal_retrieve_retry_interval = '100ms'
wal_sender_timeout = '5s'
wal_receiver_timeout = '5s'
authentication_timeout = '5s'
fsync = off
full_page_writes = off
max_connections = 60
shared_buffers = '32MB'
"""

PRIMARY_SCRIPT = f"""set -e
mkdir -p /data/pg && chown postgres /data/pg && chmod 700 /data/pg
printf '%s' "$DRILL_PG_PASSWORD" > /tmp/pw && chown postgres /tmp/pw
runuser -u postgres -- {PG_BIN}/initdb -D /data/pg -U postgres -A scram-sha-256 --pwfile=/tmp/pw \\
    --no-sync -E UTF8 --locale=C >/dev/null
rm /tmp/pw
printf 'local all all trust\\nhost all all 0.0.0.0/0 scram-sha-256\\nhost replication all 0.0.0.0/0 scram-sha-256\\n' \\
    > /data/pg/pg_hba.conf
cat >> /data/pg/postgresql.conf <<'CONF'
{PG_SETTINGS}
CONF
exec setpriv --reuid=postgres --regid=postgres --init-groups {PG_BIN}/postgres -D /data/pg \
    -c cluster_name="$DRILL_NODE"
"""

REPLICA_SCRIPT = f"""set -e
mkdir -p /data/pg && chown postgres /data/pg && chmod 700 /data/pg
until runuser -u postgres -- env PGPASSWORD="$DRILL_PG_PASSWORD" {PG_BIN}/pg_basebackup -D /data/pg -R \\
    -X stream --checkpoint=fast -d "host=$DRILL_UPSTREAM_HOST port=$DRILL_UPSTREAM_PORT user=postgres \\
    application_name=$DRILL_NODE connect_timeout=3"; do rm -rf /data/pg/*; sleep 0.5; done
echo "synchronous_standby_names = ''" >> /data/pg/postgresql.auto.conf
exec setpriv --reuid=postgres --regid=postgres --init-groups {PG_BIN}/postgres -D /data/pg \
    -c cluster_name="$DRILL_NODE"
"""


def remove_lab_containers(record: dict) -> None:
    """Reaper cleanup for a killed run: remove the containers and network labelled with its id."""
    lab_id = record.get("lab_id", "")
    cli = shutil.which("podman") or shutil.which("docker")
    if not lab_id or cli is None:
        return
    label = f"label=drill-lab={lab_id}"
    ids = subprocess.run(
        [cli, "ps", "-aq", "--filter", label], capture_output=True, text=True, timeout=60
    ).stdout.split()
    if ids:
        subprocess.run([cli, "rm", "-f", *ids], capture_output=True, timeout=120)
    networks = subprocess.run(
        [cli, "network", "ls", "-q", "--filter", label], capture_output=True, text=True, timeout=60
    ).stdout.split()
    if networks:
        subprocess.run([cli, "network", "rm", *networks], capture_output=True, timeout=60)


reaper.register_cleanup("container-lab", remove_lab_containers)


def images_for(overrides: dict[str, str] | None = None) -> tuple[dict[str, str], set[str]]:
    """The image of each part, and which of them the user chose (plan, then environment)."""
    images, chosen = dict(DEFAULT_IMAGES), set()
    for kind in images:
        env = os.environ.get(f"DRILL_IMAGE_{kind.upper()}")
        if env:
            images[kind] = env
            chosen.add(kind)
    for kind, image in (overrides or {}).items():
        images[kind] = image
        chosen.add(kind)
    return images, chosen


def resolve_images(client: Any, images: dict[str, str], chosen: set[str]) -> dict[str, str]:
    """Make every image available: present, or pulled. A default (official) image that cannot
    be had falls back to the local base image, and says so; a chosen one must be there."""
    notes = {}
    for kind, image in images.items():
        if image == BASE_IMAGE or _available(client, image):
            continue
        if kind in chosen:
            raise LabStartError(
                f"image {image} for {kind} is not available and cannot be pulled; "
                f"pull or build it, or set DRILL_IMAGE_{kind.upper()}={BASE_IMAGE} "
                f"(the host's own binaries in a container)"
            )
        notes[kind] = f"{image} cannot be pulled: using {BASE_IMAGE} (host binaries)"
        images[kind] = BASE_IMAGE
    return notes


def _available(client: Any, image: str) -> bool:
    try:
        client.images.get(image)
        return True
    except Exception:
        pass
    try:
        client.images.pull(image)
        return True
    except Exception:
        return False


def ensure_base_image(client: Any) -> None:
    """Import the empty root filesystem once (no registry needed)."""
    try:
        client.images.get(BASE_IMAGE)
        return
    except Exception:
        pass
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, mode in (
            ("tmp", 0o1777),
            ("var", 0o755),
            ("var/tmp", 0o1777),
            ("data", 0o755),
            ("run", 0o755),
            ("siem", 0o755),
            ("proc", 0o755),
            ("sys", 0o755),
            ("dev", 0o755),
        ):
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, mode
            tar.addfile(info)
    repository, tag = BASE_IMAGE.rsplit(":", 1)
    client.api.import_image_from_data(buf.getvalue(), repository=repository, tag=tag)


class ContainerNode:
    """A PostgreSQL node in a container, with the interface the failover controller uses."""

    def __init__(self, lab: ContainerLab, name: str, role: str):
        self.lab, self.name, self.role = lab, name, role
        self.container: Any = None
        self.host, self.port = LOOPBACK, 0

    @property
    def dsn(self) -> str:
        return (
            f"host={self.host} port={self.port} dbname=controlplane user=controlplane "
            f"password={self.lab.password} connect_timeout=3"
        )

    def query(self, statement: str, params=None) -> list[tuple]:
        with psycopg.connect(
            host=self.host,
            port=self.port,
            dbname="postgres",
            user="postgres",
            password=self.lab.password,
            connect_timeout=3,
            autocommit=True,
        ) as conn:
            cur = conn.execute(statement, params)
            return cur.fetchall() if cur.description else []

    def start(self, script: str, upstream: tuple[str, int] | None = None) -> None:
        env = {"DRILL_PG_PASSWORD": self.lab.password, "DRILL_NODE": self.name}
        if upstream:
            env.update(DRILL_UPSTREAM_HOST=upstream[0], DRILL_UPSTREAM_PORT=str(upstream[1]))
        self.container = self.lab.run(
            "postgres", self.name, ["/bin/sh", "-c", script], env, port=5432, tmpfs={"/data": "rw,mode=755"}
        )
        self.port = self.lab.published(self.container, 5432)
        self.wait_ready()

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        def exited() -> bool:
            self.container.reload()
            return self.container.status == "exited"

        state = until_up(lambda: self.query("SELECT 1"), exited, timeout, interval=0.1)
        if state == "exited":
            raise LabStartError(f"{self.name} exited: {self.logs()}")
        if state != "up":
            raise LabStartError(f"{self.name} not ready in {timeout:.0f} s: {self.logs()}")

    def logs(self) -> str:
        try:
            return self.container.logs(tail=15).decode(errors="replace")
        except Exception:
            return "(no logs)"

    def is_running(self) -> bool:
        try:
            self.container.reload()
            return self.container.status == "running"
        except Exception:
            return False

    def kill(self) -> None:
        """SIGKILL the container: every process of the node dies at once."""
        self.container.kill()
        poll(self.is_running, until=lambda running: not running, timeout=30)

    def stop(self, mode: str = "fast") -> None:
        """Shut PostgreSQL down (it is the container's first process): SIGINT = fast, SIGTERM = smart."""
        self.container.kill(signal="SIGINT" if mode == "fast" else "SIGTERM")
        poll(self.is_running, until=lambda running: not running, timeout=30)

    def promote(self) -> None:
        # SQL, not `pg_ctl promote` through an exec session (podman keeps those monitored for minutes)
        if not self.query("SELECT pg_promote(wait => true, wait_seconds => 30)")[0][0]:
            raise LabStartError(f"promote of {self.name} did not finish within 30 s")
        self.query("ALTER SYSTEM SET synchronous_standby_names = ''")
        self.query("SELECT pg_reload_conf()")
        for other in self.lab.nodes.values():
            if other.role == "primary":
                other.role = "former-primary"
        self.role = "primary"

    def set_synchronous(self, names: list[str]) -> None:
        value = ("FIRST 1 (" + ", ".join(f'"{n}"' for n in names) + ")") if names else ""
        self.query(f"ALTER SYSTEM SET synchronous_standby_names = '{value}'")
        self.query("SELECT pg_reload_conf()")

    def rebuild_as_replica_of(
        self, node: ContainerNode, upstream_host: str, upstream_port: int, synchronous: bool = False
    ) -> None:
        """Replace this node's container with a fresh replica streaming from upstream."""
        self.lab.remove(self.container)
        self.role = "replica"
        self.start(REPLICA_SCRIPT, (upstream_host, upstream_port))
        self.lab.wait_streaming(node, self.name)
        if synchronous:
            node.set_synchronous([self.name])


class ContainerProcess:
    """A part's container where the embedded lab has a subprocess (poll, pid, kill, wait):
    the connector tier, the API instances and the load balancer use it unchanged. Liveness is
    read from /proc (the container's first process, by pid and start time: no engine call)."""

    def __init__(self, container: Any):
        self.container = container
        self.returncode: int | None = None
        self._track()

    def _track(self) -> None:
        self.container.reload()
        self.pid = self.container.attrs["State"].get("Pid") or 0
        self._started = proc.start_time(self.pid) if self.pid else None

    def poll(self) -> int | None:
        if self.returncode is None and not proc.same_process(self.pid, self._started):
            try:
                self.container.reload()
                state = self.container.attrs["State"]
                if state.get("Status") in ("running", "paused"):
                    return None
                self.returncode = int(state.get("ExitCode") or -9)
            except Exception:  # removed: gone for good
                self.returncode = -9
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        polled = poll(self.poll, until=lambda code: code is not None, timeout=timeout or 60, interval=0.05)
        if polled.value is None:
            raise subprocess.TimeoutExpired(self.container.name, timeout or 60)
        return polled.value

    def kill(self) -> None:
        """SIGKILL: every process of the container dies at once."""
        if self.poll() is None:
            self.container.kill()
        self.wait(30)


class ContainerLauncher:
    """How the container lab runs a part of its connector tier (the methods of
    harness.lab.connectors.ProcessLauncher): a container of the base image on the lab network."""

    listen_host = "0.0.0.0"  # inside the container's own network namespace

    def __init__(self, lab: ContainerLab, env: dict[str, str]):
        self.lab, self.env = lab, env

    def spawn(
        self, name: str, args: list[str], env: dict[str, str] | None = None, listen: int | None = None
    ) -> ContainerProcess:
        container = self.lab.run("controlplane", name, self.lab.cp(*args), {**self.env, **(env or {})}, port=listen)
        return ContainerProcess(container)

    def run_once(self, args: list[str]) -> str:
        container = self.lab.run("controlplane", f"once-{args[0]}", self.lab.cp(*args), self.env)
        try:
            status = container.wait(timeout=120)
            out = container.logs(stdout=True, stderr=False).decode(errors="replace")
            if status.get("StatusCode") != 0:
                raise LabStartError(
                    f"controlplane {args[0]} failed: {container.logs(tail=10).decode(errors='replace')[-400:]}"
                )
            return out
        finally:
            self.lab.remove(self.lab.containers.pop(f"once-{args[0]}", None))

    def port(self) -> int:
        return PLATFORM_PORT

    def reach(self, name: str, port: int) -> str:
        return f"{self.lab.ip(name)}:{port}"

    def control(self, name: str, port: int) -> str:
        return f"{LOOPBACK}:{self.lab.host_ports[(name, port)]}"

    def kill(self, process: ContainerProcess) -> None:
        process.kill()

    def tail(self, name: str, lines: int = 8) -> str:
        """The last `lines` lines of the part's log, after those of each container it replaced."""
        earlier = [
            f"(replaced container {i + 1})\n" + "".join(log.splitlines(keepends=True)[-lines:])
            for i, log in enumerate(self.lab.replaced_logs.get(name, []))
        ]
        try:
            current = self.lab._container(name).logs(tail=lines).decode(errors="replace")
        except Exception:
            current = "(no logs)"
        return "".join(earlier) + ("(current container)\n" if earlier else "") + current

    def stop(self, processes: list[ContainerProcess]) -> None:
        """Nothing: down() removes every container of the lab."""


class ContainerLoadBalancer(LoadBalancer):
    """The same HAProxy configuration in a container of the lab network, in front of the
    instances' addresses; its stats socket is in the lab's temp dir (mounted), read from the host."""

    def __init__(self, lab: ContainerLab, backends: dict[str, str]):
        super().__init__(lab.workdir, backends, LB_PORT, host="0.0.0.0")
        self.lab = lab
        self.maxconn = 400  # within a container's open-file limit (1024)

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.lab.host_ports[('lb', LB_PORT)]}"

    def start(self, timeout: float = 30.0) -> int:
        self.write_config()
        container = self.lab.run("controlplane", "lb", [self.binary, "-db", "-f", str(self.config)], {}, port=LB_PORT)
        self.process = process = ContainerProcess(container)
        port = self.lab.host_ports[("lb", LB_PORT)]

        def up() -> bool:
            requests.get(f"http://{LOOPBACK}:{port}/", timeout=1)
            return self.socket.exists()

        if until_up(up, lambda: process.poll() is not None, timeout, interval=0.1) != "up":
            raise LabStartError(f"the load balancer container did not start: {container.logs(tail=10)!r}")
        return process.pid

    def stop(self) -> None:
        self.process = None  # its container goes with the lab


class ContainerLab(TopologyLab):
    provider = "testcontainers"

    def __init__(
        self,
        replication: str = "sync",
        images: dict[str, str] | None = None,
        on_event: Callable[[str, str, dict], None] | None = None,
        failover_interval: float = 0.5,
        failover_misses: int = 3,
    ):
        self.replication = replication
        self.images, self.chosen_images = images_for(images)
        self.image_notes: dict[str, str] = {}
        self.on_event = on_event or (lambda kind, name, detail: None)
        self.failover_interval, self.failover_misses = failover_interval, failover_misses
        self.lab_id = "drillctr-" + secrets.token_hex(4)
        self.password = secrets.token_urlsafe(18)
        self.engine: Engine | None = None
        self.client: Any = None
        self.network: Any = None
        self.containers: dict[str, Any] = {}
        self.addresses: dict[str, str] = {}
        self.nodes: dict[str, ContainerNode] = {}
        self.toxiproxy: ToxiproxyControl | None = None
        self.lb: LoadBalancer | None = None
        self.failover: FailoverController | None = None
        self.poster = None  # the failover manager's own event delivery (TopologyLab), made by up()
        self.root: Path | None = None
        self.registration: reaper.Registration | None = None
        self.api_url = ""
        self.started_in: float | None = None
        self.instance_ports: dict[str, int] = {}
        self.instances: dict[str, ContainerProcess] = {}
        self.host_ports: dict[tuple[str, int], int] = {}  # (container, port inside) -> 127.0.0.1 port
        self.specs: dict[str, dict] = {}  # how each part was run (recreate())
        self.replaced_logs: dict[str, list[str]] = {}  # name -> logs of its replaced containers
        self.subnet: Any = None
        self.control_token = secrets.token_urlsafe(24)
        self.connectors: ConnectorTier | None = None
        self._parts = (
            ContainerDatabase(self),
            ApiInstances(self, self._kill_instance, self._redeploy_instance),
            EvidenceReads(self),
            SiemFile(lambda: self.root / "siem.jsonl" if self.root else None),
            ConnectorParts(self),
            ControlEndpoints(self),
            ContainerHandles(self),
            ManagerEvents(self),
        )

    @property
    def manager(self) -> FailoverController:
        """The lab's failover manager (what `failover` is once up() ran); LabNotUp before."""
        return running(self.failover, "the failover manager")

    # -- container plumbing ------------------------------------------------------------------
    def _mounts(self, image: str) -> dict[str, dict]:
        mounts = {}
        if image == BASE_IMAGE:
            paths = list(HOST_MOUNTS) + [sys.base_prefix, str(Path(__file__).resolve().parents[2])]
            mounts = {p: {"bind": p, "mode": "ro"} for p in paths if os.path.exists(p)}
        if self.root is not None:  # the lab's files: SIEM, request logs, metrics, stats socket
            mounts[str(self.root)] = {"bind": str(self.root), "mode": "rw"}
        return mounts

    def address_of(self, name: str) -> str:
        """The lab's address for a part (the same for every container of that name)."""
        if name not in self.addresses:
            self.addresses[name] = str(self.subnet.network_address + FIRST_ADDRESS + len(self.addresses))
        return self.addresses[name]

    def run(
        self,
        kind: str,
        name: str,
        command: list[str] | None,
        env: dict[str, str],
        port: int | None = None,
        tmpfs: dict | None = None,
        volumes: dict | None = None,
        **create: Any,
    ) -> Any:
        """Start one container with testcontainers on the lab network (alias = name), its port
        published on 127.0.0.1 only; returns the docker-py container (kill, pause, exec...)."""
        from docker.types import EndpointConfig
        from testcontainers.core.container import DockerContainer

        self.specs[name] = dict(
            kind=kind, name=name, command=command, env=env, port=port, tmpfs=tmpfs, volumes=volumes, **create
        )
        image = self.images[kind]
        earlier = self.containers.pop(name, None)
        if earlier is not None:  # its log outlives it, for a failure's diagnostics (tail())
            try:
                self.replaced_logs.setdefault(name, []).append(earlier.logs(tail=200).decode(errors="replace"))
            except Exception:
                pass
        self.remove(earlier)
        container = (
            DockerContainer(image)
            .with_name(f"{self.lab_id}-{name}")
            .with_envs(**env)
            .with_network(self.network)
            .with_network_aliases(name)
        )
        if command is not None:
            container = container.with_command(command)
        for host_path, mount in {**self._mounts(image), **(volumes or {})}.items():
            container = container.with_volume_mapping(host_path, mount["bind"], mount["mode"])
        if port:  # never on every interface; fixed now, so a restart keeps it
            host_port = self.host_ports.setdefault((name, port), free_port())
            # the docker SDK takes (host, port); testcontainers annotates a port only
            container.ports[f"{port}/tcp"] = (LOOPBACK, host_port)  # type: ignore[assignment]
        container.tmpfs = tmpfs or {}
        address = self.address_of(name)
        endpoint = EndpointConfig(self.client.api._version, aliases=[name], ipv4_address=address)
        # a fixed MAC for the fixed address: a part made again is reached at once, not after the
        # neighbours' ARP entries for its old MAC time out (seconds to minutes of lost packets)
        endpoint["MacAddress"] = "02:42:" + ":".join(f"{int(octet):02x}" for octet in address.split("."))
        kwargs: dict[str, Any] = {
            "labels": {"drill-lab": self.lab_id},
            "networking_config": {self.network.name: endpoint},
            **create,
        }
        if kind == "postgres":
            kwargs["entrypoint"] = []  # the official image's entrypoint would run initdb itself
        try:
            container.with_kwargs(**kwargs).start()
        except BaseException:  # made but not started (e.g. the runtime refused it): not left behind
            try:
                self.remove(self.client.containers.get(f"{self.lab_id}-{name}"))
            except Exception:
                pass
            raise
        wrapped = container.get_wrapped_container()
        self.containers[name] = wrapped
        return wrapped

    def _recreate(self, name: str) -> Any:
        """A killed or stopped part back as a new container of the same spec, address and ports.
        Not the same container started again: podman tears a killed container's network down
        after the kill, asynchronously, and a start before that teardown ends loses its network."""
        container = self.run(**self.specs[name])
        if name in self.instances:
            self.instances[name] = ContainerProcess(container)
        return container

    def published(self, container: Any, port: int) -> int:
        """The 127.0.0.1 port of a part's port."""
        name = container.name[len(self.lab_id) + 1 :]
        return self.host_ports[(name, port)]

    def remove(self, container: Any) -> None:
        if container is None:
            return
        try:
            container.remove(force=True)
        except Exception:
            pass

    def _container(self, name: str) -> Any:
        """The docker-py container of a part (the container faults reach it through ContainerHandles)."""
        try:
            return self.containers[name]
        except KeyError:
            raise KeyError(f"no container named {name!r}; known: {', '.join(sorted(self.containers))}") from None

    def ip(self, name: str) -> str:
        """A part's address on the lab network. The lab's own links use addresses, not names:
        a new network's name service can lag behind its first connections."""
        return self.address_of(name)

    # -- lifecycle ---------------------------------------------------------------------------
    def up(self) -> ContainerLab:
        import docker

        start = time.monotonic()
        reaper.reap_stale()
        self.root = Path(tempfile.mkdtemp(prefix=f"{self.lab_id}-"))
        os.chmod(self.root, 0o755)
        # the tag must not match the engine's own processes (conmon carries container names):
        # the temp dir's path is only in the command lines of what this lab starts itself
        self.registration = reaper.Registration(self.lab_id, "container-lab", tag=str(self.root))
        self.registered.add_dir(self.root)
        try:
            self.engine = find_engine()
            self.engine.configure_testcontainers()
            self.client = docker.DockerClient(base_url=self.engine.docker_host, timeout=120)
            ensure_base_image(self.client)
            self.image_notes = resolve_images(self.client, self.images, self.chosen_images)
            from testcontainers.core.network import Network

            self.network = Network(docker_network_kw={"labels": {"drill-lab": self.lab_id}}).create()
            self.network._network.reload()
            self.subnet = ipaddress.ip_network(self.network._network.attrs["IPAM"]["Config"][0]["Subnet"])
            self._start_toxiproxy()
            self._start_moto()
            self._start_database()
            self._start_gateway()
            env = {**S3_ENV, "PYTHONUNBUFFERED": "1", "HOME": "/tmp"}
            self.connectors = ConnectorTier(
                self.root,
                self.lab_id,
                ContainerLauncher(self, env),
                lambda name, upstream: "%s:%d" % self._proxy(name, upstream),
                f"http://{self.ip('moto')}:{MOTO_PORT}",
                control_env={CONTROL_TOKEN_ENV: self.control_token},
            )
            self.connector_tier.start_queues_and_mocks()
            self._start_controlplane()
            self.lb = ContainerLoadBalancer(self, {n: f"{self.ip(n)}:{API_PORT}" for n in INSTANCES})
            self.balancer.start()
            self.api_url = self.balancer.url
            self.connector_tier.start_workers(f"http://{self.ip('lb')}:{LB_PORT}")
            self.poster = RoleChangePoster(self.api_url, self.lab_id)
            self.failover = FailoverController(
                self,
                self.toxiproxy,
                "db",
                REPLICA,
                self._event,
                interval=self.failover_interval,
                misses=self.failover_misses,
                replication_proxy=self._replication_proxy,
                address_of=lambda node: f"{self.ip(node.name)}:5432",
            )
            self.manager.start()
        except LabStartError:
            raise
        except Exception as exc:
            raise LabStartError(f"container lab did not start: {type(exc).__name__}: {exc}") from exc
        self.started_in = time.monotonic() - start
        return self

    def _remove_part(self, name: str) -> None:
        self.remove(self.containers.pop(name, None))

    def down(self) -> None:
        steps: list[Callable[[], object]] = [
            lambda: self.failover.stop() if self.failover else None,
            lambda: self.poster.close() if self.poster else None,
            lambda: self.connectors.stop() if self.connectors else None,
            lambda: self.lb.stop() if self.lb else None,
        ]
        for name in list(self.containers):
            steps.append(partial(self._remove_part, name))
        steps += [
            lambda: self.network.remove() if self.network else None,
            lambda: self.client.close() if self.client else None,
            lambda: self.engine.stop() if self.engine else None,
        ]
        for step in steps:
            try:
                step()
            except Exception as exc:
                print(f"container lab down: {type(exc).__name__}: {exc}", file=sys.stderr)
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
        if self.registration is not None:
            self.registered.close()
        self.failover = self.lb = self.network = self.client = self.engine = self.connectors = None
        self.poster = None

    # -- parts ---------------------------------------------------------------------------------
    def _python(self) -> str:
        return str(Path(sys.executable))

    def _start_toxiproxy(self) -> None:
        if self.images["toxiproxy"] == BASE_IMAGE:
            # proxies listen on every interface of the container (its network namespace only)
            command = [
                self._python(),
                "-m",
                "harness.toxiproxy",
                "--host",
                "0.0.0.0",
                "--port",
                "8474",
                "--allow-listen",
                "0.0.0.0",
            ]
        else:
            command = ["-host=0.0.0.0"]
        container = self.run("toxiproxy", "toxiproxy", command, {}, port=8474)
        url = f"http://{LOOPBACK}:{self.published(container, 8474)}"
        if (
            until_up(lambda: requests.get(url + "/version", timeout=1), lambda: False, START_TIMEOUT, interval=0.1)
            != "up"
        ):
            raise LabStartError(f"toxiproxy container did not answer: {container.logs(tail=10)}")
        self.toxiproxy = ToxiproxyControl(url)
        self.toxiproxy_url = url

    def _proxy(self, name: str, upstream: str) -> tuple[str, int]:
        port = PROXY_PORTS[name]
        # inside the toxiproxy container's own network namespace: every interface of it
        self.fault_server.ensure_proxy(name, upstream, listen=f"0.0.0.0:{port}")
        return self.ip("toxiproxy"), port

    def _replication_proxy(self, replica: str, upstream: Any) -> tuple[str, int]:
        return self._proxy(f"repl-{replica}", f"{self.ip(upstream.name)}:5432")

    def _start_moto(self) -> None:
        if self.images["moto"] == BASE_IMAGE:
            command = [self._python(), "-m", "moto.server", "-H", "0.0.0.0", "-p", "5000"]
        else:
            command = None
        moto = self.run("moto", "moto", command, {}, port=MOTO_PORT)
        self.store_url = f"http://{LOOPBACK}:{self.published(moto, MOTO_PORT)}"
        if (
            until_up(lambda: requests.get(self.store_url, timeout=1), lambda: False, START_TIMEOUT, interval=0.1)
            != "up"
        ):
            raise LabStartError(f"moto container did not answer: {moto.logs(tail=10)!r}")
        self._proxy("s3-replica", f"{self.ip('moto')}:{MOTO_PORT}")  # the alternate region

    def _start_gateway(self) -> None:
        """The HTTP fault gateway in front of the primary region's object store."""
        command = [
            self._python(),
            "-m",
            "harness.lab.httpfault",
            "--host",
            "0.0.0.0",
            "--port",
            str(GATEWAY_PORT),
            "--upstream",
            f"http://{self.ip('moto')}:{MOTO_PORT}",
            "--tag",
            self.lab_id,
        ]
        gateway = self.run(
            "controlplane", "gateway", command, {CONTROL_TOKEN_ENV: self.control_token}, port=GATEWAY_PORT
        )
        self.gateway_url = f"http://{LOOPBACK}:{self.published(gateway, GATEWAY_PORT)}"
        if (
            until_up(
                lambda: (
                    requests.get(
                        f"{self.gateway_url}/_drill/requests", headers=self._control_headers(), timeout=1
                    ).status_code
                    == 200
                ),
                lambda: False,
                START_TIMEOUT,
                interval=0.1,
            )
            != "up"
        ):
            raise LabStartError(f"the S3 fault gateway container did not start: {gateway.logs(tail=10)!r}")
        self._proxy("s3", f"{self.ip('gateway')}:{GATEWAY_PORT}")

    def _start_database(self) -> None:
        primary = ContainerNode(self, PRIMARY, "primary")
        self.nodes[PRIMARY] = primary
        primary.start(PRIMARY_SCRIPT)
        primary.query(f"CREATE ROLE controlplane LOGIN PASSWORD '{self.password}'")
        primary.query("CREATE DATABASE controlplane OWNER controlplane")
        primary.query("GRANT pg_monitor TO controlplane")
        replica = ContainerNode(self, REPLICA, "replica")
        self.nodes[REPLICA] = replica
        replica.start(REPLICA_SCRIPT, self._replication_proxy(REPLICA, primary))
        self.wait_streaming(primary, REPLICA)
        if self.replication == "sync":
            primary.set_synchronous([REPLICA])
        self._proxy("db", f"{self.ip(PRIMARY)}:5432")  # an address, like every lab link

    def wait_streaming(self, primary: ContainerNode, replica: str, timeout: float = START_TIMEOUT) -> None:
        if not poll(
            lambda: primary.query(
                "SELECT 1 FROM pg_stat_replication WHERE application_name = %s AND state = 'streaming'", (replica,)
            ),
            timeout=timeout,
            interval=0.1,
        ).ok:
            raise LabStartError(f"{replica} is not streaming from {primary.name}")

    def cp(self, *args: str) -> list[str]:
        """The command line of `python -m controlplane ARGS` in a container."""
        return [self._python(), "-m", "controlplane", *args]

    def _cp_command(self, *args: str) -> list[str]:
        toxiproxy = self.ip("toxiproxy")
        return self.cp(
            *args,
            "--database",
            f"host={toxiproxy} port={PROXY_PORTS['db']} dbname=controlplane user=controlplane",
            "--s3-endpoint",
            f"http://{toxiproxy}:{PROXY_PORTS['s3']}",
            "--evidence-bucket",
            EVIDENCE_BUCKET,
            "--evidence-replica-bucket",
            EVIDENCE_REPLICA_BUCKET,
        )

    def _cp_env(self) -> dict[str, str]:
        return {
            **S3_ENV,
            "PGPASSWORD": self.password,
            "PYTHONUNBUFFERED": "1",
            "HOME": "/tmp",
            CONTROL_TOKEN_ENV: self.control_token,
        }

    def _serve_command(self, name: str) -> list[str]:
        return self._cp_command(
            "serve",
            "--instance",
            name,
            "--host",
            "0.0.0.0",
            "--port",
            str(API_PORT),
            "--siem",
            str(self.workdir / "siem.jsonl"),
            "--db-timeout",
            "2",
            "--s3-replica-endpoint",
            f"http://{self.ip('toxiproxy')}:{PROXY_PORTS['s3-replica']}",
            "--sqs-endpoint",
            f"http://{self.ip('moto')}:{MOTO_PORT}",
            "--queue-prefix",
            self.connector_tier.prefix,
            "--allow-clock-control",
        )

    def _start_controlplane(self) -> None:
        env = self._cp_env()
        for attempt in range(3):  # a new network's name service can take a moment
            migrate = self.run("controlplane", "migrate", self._cp_command("migrate"), env)
            status, logs = migrate.wait(timeout=120), migrate.logs(tail=10).decode(errors="replace")
            self.remove(self.containers.pop("migrate"))
            if status.get("StatusCode") == 0:
                break
            if attempt == 2:
                raise LabStartError(f"Control Plane migrate failed: {logs}")
        for name in INSTANCES:
            container = self.run("controlplane", name, self._serve_command(name), env, port=API_PORT)
            self.instances[name] = ContainerProcess(container)
            self.instance_ports[name] = self.published(container, API_PORT)
        deadline = time.monotonic() + START_TIMEOUT
        for name in INSTANCES:
            self._wait_instance(name, deadline)

    def _wait_instance(self, name: str, deadline: float) -> None:
        """Until the instance answers its /health/live (the Control Plane client's `live`)."""
        client = ApiClient(f"http://{LOOPBACK}:{self.instance_ports[name]}", timeout=1)
        try:
            up = until_up(
                client.live,
                lambda: self.instances[name].poll() is not None,
                max(0.0, deadline - time.monotonic()),
                interval=0.1,
            )
        finally:
            client.close()
        if up != "up":
            logs = self.containers[name].logs(tail=10).decode(errors="replace")
            raise LabStartError(f"Control Plane container {name} did not start: {logs}")

    # -- API instances: the stateless tier's faults (container kill, a new container) ------------
    def _kill_instance(self, name: str) -> None:
        """SIGKILL one API instance's container (an availability zone's service is gone)."""
        self.instances[name].kill()

    def _redeploy_instance(self, name: str) -> None:
        """A new container of the instance (same address and port); waits until live."""
        if self.instances[name].poll() is None:
            return
        self._recreate(name)
        self._wait_instance(name, time.monotonic() + START_TIMEOUT)

    def reset_faults(self) -> None:
        super().reset_faults()
        self.reset_platforms()

    # -- the cluster interface the failover controller uses ------------------------------------
    @property
    def primary(self) -> ContainerNode:
        for node in self.nodes.values():
            if node.role == "primary":
                return node
        raise LabStartError("the lab has no primary")

    def __getitem__(self, name: str) -> ContainerNode:
        return self.nodes[name]

    # -- what drills use ------------------------------------------------------------------------
    def endpoints(self) -> dict[str, Any]:
        return {
            "api": self.api_url,
            "instances": {n: f"http://{LOOPBACK}:{p}" for n, p in self.instance_ports.items()},
            "toxiproxy": getattr(self, "toxiproxy_url", None),
            "database": {n: f"{node.host}:{node.port} ({node.role})" for n, node in self.nodes.items()},
            "s3": self.store_url or None,
            "s3_gateway": self.gateway_url or None,
            "siem": str(self.root / "siem.jsonl") if self.root else None,
            "platforms": self.connectors.endpoints() if self.connectors else {},
            "engine": self.engine.docker_host if self.engine else None,
        }

    def processes(self) -> dict[str, int | None]:
        result: dict[str, int | None] = {}
        for name, container in self.containers.items():
            try:
                container.reload()
                result[f"container:{name}"] = container.attrs["State"].get("Pid") or None
            except Exception:
                result[f"container:{name}"] = None
        return result

    def describe(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "lab_id": self.lab_id,
            "replication": self.replication,
            "engine": self.engine.kind if self.engine else None,
            "images": ", ".join(f"{k}={v}" for k, v in self.images.items()),
            "image_notes": "; ".join(self.image_notes.values()) or "none",
            "api_instances": len(self.instance_ports),
            "load_balancer": "HAProxy (container)",
            "lab_start_seconds": round(self.started_in or 0, 2),
        }

    def steady_state_checks(self) -> dict[str, tuple[bool, str]]:
        states = self.balancer.server_states()
        down = [n for n in INSTANCES if states.get(n) not in ("UP", "no check")]  # no check: in rotation
        checks = {"load_balancer": (not down, f"instances not UP: {down}" if down else "all UP")}
        candidate = self.manager.candidate
        try:
            rows = self.primary.query("SELECT state FROM pg_stat_replication WHERE application_name = %s", (candidate,))
            state = rows[0][0] if rows else "not connected"
        except psycopg.Error as exc:
            state = f"primary unreachable: {type(exc).__name__}"
        checks["replication"] = (state == "streaming", f"{candidate}: {state}")
        checks["failover_controller"] = (self.manager.state == "watching", self.manager.state)
        return checks

    def set_replication(self, mode: str) -> None:
        self.primary.set_synchronous([self.manager.candidate] if mode == "sync" else [])
        self.replication = mode


class ContainerDatabase(ObservedNodes):
    """The container lab's database tier (DatabaseNodes, EventStoreBlock): a PostgreSQL container
    per node under the lab's failover manager."""

    lab: ContainerLab

    def __init__(self, lab: ContainerLab):
        super().__init__(lab)

    def database_primary(self) -> str:
        return self.lab.primary.name

    def node_query(self, name: str, statement: str, params=None) -> list[tuple]:
        with psycopg.connect(self.lab[name].dsn, autocommit=True) as conn:
            cur = conn.execute(statement, params)
            return cur.fetchall() if cur.description else []

    def kill_database_node(self, name: str) -> None:
        self.lab.nodes[name].kill()

    def block_event_store_writes(self, time_limit_s: float | None = None) -> Any:
        """LOCK TABLE event_chain_head IN EXCLUSIVE MODE on the primary as superuser, over its
        published port (harness.lab.eventstore)."""
        from .eventstore import EventStoreWriteBlock

        primary = self.lab.primary
        return EventStoreWriteBlock.hold(
            primary.name,
            lambda **kw: psycopg.connect(
                host=primary.host,
                port=primary.port,
                user="postgres",
                password=self.lab.password,
                dbname="controlplane",
                **kw,
            ),
            time_limit_s=time_limit_s,
        )


class ContainerHandles:
    """Each part in a container of its own (Containers): what the container faults act on."""

    def __init__(self, lab: ContainerLab):
        self.lab = lab

    def container(self, name: str) -> Any:
        """The docker-py container of a part."""
        return self.lab._container(name)

    def recreate(self, name: str) -> Any:
        """A killed or stopped part back as a new container of the same spec, address and ports."""
        return self.lab._recreate(name)

    def disconnect(self, name: str) -> None:
        self.lab.network._network.disconnect(self.container(name).id)

    def reconnect(self, name: str) -> None:
        container = self.container(name)
        container.reload()
        if self.lab.network.name not in (container.attrs["NetworkSettings"].get("Networks") or {}):
            # back on its old address: the proxies in front of it point there
            self.lab.network._network.connect(container.id, aliases=[name], ipv4_address=self.lab.addresses.get(name))
