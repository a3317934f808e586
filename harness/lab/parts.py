"""What the embedded and container labs share: the stores' names and credentials, reads straight
from the stores (evidence, not what the system says), and the part objects a lab is composed of
(harness.lab.capabilities: each part implements the protocols of one concern). The two labs
differ only in how a part runs (a local process or a container) and at which address it is
reached; where they differ, a part takes the lab's own callable or is subclassed in its module.

A part is made with its lab and reaches the lab's running pieces through the lab's typed
accessors (LabNotUp before up() and after down()): the lab's capabilities are known before it
starts (a plan is checked against them first)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import requests

from .base import Lab, running
from .eventpost import RoleChangePoster

if TYPE_CHECKING:
    from ..toxiproxy.client import ToxiproxyControl
    from .capabilities import Failover
    from .connectors import ConnectorTier
    from .haproxy import LoadBalancer
    from .reaper import Registration

EVIDENCE_BUCKET = "evidence"
EVIDENCE_REPLICA_BUCKET = "evidence-replica"
# moto accepts any credentials; these are not secrets, and still never printed
S3_ENV = {"AWS_ACCESS_KEY_ID": "drill", "AWS_SECRET_ACCESS_KEY": "drill-secret", "AWS_DEFAULT_REGION": "us-east-1"}


def store_client(service: str, endpoint_url: str):
    """A boto3 client of moto itself (not through a proxy or gateway), with the lab's credentials;
    its own session, so that threads may each make one."""
    import boto3
    import botocore.config

    config = botocore.config.Config(
        connect_timeout=5, read_timeout=10, retries={"total_max_attempts": 2}, s3={"addressing_style": "path"}
    )
    session = boto3.session.Session(
        aws_access_key_id=S3_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=S3_ENV["AWS_SECRET_ACCESS_KEY"],
        region_name=S3_ENV["AWS_DEFAULT_REGION"],
    )
    return session.client(service, endpoint_url=endpoint_url, config=config)


def read_latest_object(s3, bucket: str, key: str) -> bytes | None:
    """The latest version of an object, or None when the key has none (never written, or its
    latest version is a delete marker)."""
    import botocore.exceptions

    try:
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except botocore.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return None
        raise


def read_object_lock(s3, bucket: str, key: str, version_id: str | None = None) -> dict | None:
    """The Object Lock the store reports for an object version (HEAD): {"mode": ObjectLockMode or
    None, "retain_until": epoch or None, "version_id"}; None when the key has no such version."""
    import botocore.exceptions

    kwargs = {"VersionId": version_id} if version_id else {}
    try:
        head = s3.head_object(Bucket=bucket, Key=key, **kwargs)
    except botocore.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound", "NoSuchVersion"):
            return None
        raise
    until = head.get("ObjectLockRetainUntilDate")
    return {
        "mode": head.get("ObjectLockMode"),
        "retain_until": until.timestamp() if until else None,
        "version_id": head.get("VersionId"),
    }


class TopologyLab(Lab):
    """A Lab that runs the whole topology (the embedded and container labs): `connectors`
    (harness.lab.connectors.ConnectorTier), `store_url` (moto as the harness reaches it) and
    `gateway_url` (the S3 fault gateway's control address) are set by up(), `control_token` by the
    constructor. Its capabilities are its part objects (below), made by the constructor."""

    connectors: ConnectorTier | None = None
    instances: dict[str, Any]  # set by each lab
    lb: LoadBalancer | None = None
    toxiproxy: ToxiproxyControl | None
    root: Path | None
    registration: Registration | None
    store_url: str = ""
    gateway_url: str = ""
    control_token: str = ""
    poster: RoleChangePoster | None = None  # that delivery, made by up()
    on_event: Callable[[str, str, dict], None]
    _parts: tuple[object, ...] = ()

    def parts(self) -> tuple[object, ...]:
        return self._parts

    # -- the pieces up() makes (each None before up() and after down(); LabNotUp names it) -----
    @property
    def fault_server(self) -> ToxiproxyControl:
        return running(self.toxiproxy, "the fault server (Toxiproxy)")

    @property
    def balancer(self) -> LoadBalancer:
        return running(self.lb, "the load balancer")

    @property
    def connector_tier(self) -> ConnectorTier:
        return running(self.connectors, "the connector tier")

    @property
    def registered(self) -> Registration:
        """The lab's entry in the reaper's registry (what a later run cleans up if this one dies)."""
        return running(self.registration, "the lab's registration")

    @property
    def workdir(self) -> Path:
        return running(self.root, "the lab's working directory")

    def _event(self, kind: str, name: str, detail: dict) -> None:
        """The failover controller's event: posted by the lab's own poster (as a failover manager's
        role-change callback would), and into the harness's history (its timeline; not forwarded)."""
        if self.poster is not None:
            self.poster.post(kind, name, detail)
        self.on_event(kind, name, detail)

    def _control_headers(self) -> dict[str, str]:
        """What a call of a control endpoint of this lab (clock, platform stand-ins, fault gateway)
        carries: the lab's bearer token, given to those parts in their environment."""
        return {"Authorization": f"Bearer {self.control_token}"}

    def reset_platforms(self) -> None:
        """Every platform stand-in back up and answering ok."""
        if self.connectors:
            for platform in self.connectors.mocks:
                self.connectors.restart_platform(platform)
                requests.post(
                    f"{self.connectors.control_url(platform)}/_control",
                    json={"mode": "ok"},
                    headers=self._control_headers(),
                    timeout=10,
                ).raise_for_status()


class Observed(Protocol):
    """What a database tier needs of its lab (a Lab has it): the failover observer, the replication mode."""

    replication: str

    @property
    def observer(self) -> Failover: ...


class ObservedNodes:
    """What every database tier shares (DatabaseNodes): a killed node restored and a replica's lag
    read through the lab's failover observer. A provider's tier adds which node is primary, the
    kill and the read (subclasses in each provider's module)."""

    def __init__(self, lab: Observed):
        self.lab = lab

    def restore_database_node(self, name: str) -> None:
        """Bring a killed database node back (the heal of database_primary_kill): once another
        node was promoted, rebuilt as its replica and the failover target; else started again."""
        observer = self.lab.observer
        if observer.state == "failed_over":
            observer.rebuild(name, synchronous=self.lab.replication == "sync")
        else:
            observer.restart(name)

    def replica_caught_up(self, name: str) -> bool:
        """The replica has replayed the primary's current WAL position."""
        return self.lab.observer.transaction_lag(name) == 0.0

    def replication_proxy_name(self, replica: str) -> str:
        return f"repl-{replica}"


class ApiInstances:
    """The API tier (ApiTier): one instance per availability zone (each lab's `instances`: a handle
    with poll()), behind the load balancer; the lab kills and redeploys one its own way."""

    def __init__(self, lab: TopologyLab, kill: Callable[[str], None], redeploy: Callable[[str], None]):
        self.lab, self._kill, self._redeploy = lab, kill, redeploy

    def api_instances(self) -> list[str]:
        return list(self.lab.instances)

    def api_instance_alive(self, name: str) -> bool:
        return self.lab.instances[name].poll() is None

    def kill_api_instance(self, name: str) -> None:
        """SIGKILL one API instance (an availability zone's service is gone)."""
        self._kill(name)

    def redeploy_api_instance(self, name: str) -> None:
        """The instance again on its port (what an auto-redeploy does); waits until live."""
        self._redeploy(name)

    def probe_window(self) -> float:
        """Seconds until the load balancer takes a dead instance out of rotation."""
        return self.lab.balancer.probe_window


class ConnectorParts:
    """The connector tier (harness.lab.connectors.ConnectorTier): the platform API stand-ins
    (PlatformStandIns), the worker pools in their auto-scaling group (ConnectorWorkers) and the
    intent and dead-letter queues, read straight from moto's SQS (Queues)."""

    def __init__(self, lab: TopologyLab):
        self.lab = lab

    # -- the platform API stand-ins ------------------------------------------------------------
    def platform_control_url(self, platform: str) -> str:
        return self.lab.connector_tier.control_url(platform)

    def set_platform_mode(self, platform: str, mode: dict[str, Any]) -> None:
        """Make the platform API answer as `mode` says ({"mode": "throttle"|"error"|"hang"|"ok",
        "retry_after", "requests", "for_s"}) through its stand-in's control endpoint.
        requests.ConnectionError when the platform's server is down."""
        requests.post(
            f"{self.platform_control_url(platform)}/_control",
            json=mode,
            headers=self.lab._control_headers(),
            timeout=10,
        ).raise_for_status()

    def kill_platform(self, platform: str) -> None:
        self.lab.connector_tier.kill_platform(platform)

    def restart_platform(self, platform: str) -> None:
        self.lab.connector_tier.restart_platform(platform)

    def platform_requests(self, platform: str) -> list[dict]:
        """Every request the platform's stand-in saw and what it answered, from its request log."""
        return self.lab.connector_tier.platform_requests(platform)

    # -- the worker pools (spec 1.4): one worker per platform, replaced when lost ------------------
    def kill_connector_worker(self, platform: str) -> int:
        """SIGKILL the platform's connector worker; its pid."""
        return self.lab.connector_tier.kill_worker(platform)

    def replace_connector_worker(self, platform: str) -> int | None:
        """Start a new worker if the platform's worker exited (what the auto-scaling group does by
        itself); the new pid, or None when one is running."""
        return self.lab.connector_tier.replace_worker(platform)

    def connector_replacements(self) -> list[dict]:
        """Every worker the auto-scaling group replaced ({"at", "platform", "old_pid", "new_pid"})."""
        return self.lab.connector_tier.replacements()

    # -- the queues, straight from moto (evidence, not what the system says) ---------------------
    def queue_depth(self, platform: str) -> int:
        """Messages in the platform's intent queue (visible, in flight and delayed)."""
        from .connectors import queue_depth

        queues = self.lab.connector_tier.queues[platform]
        return queue_depth(store_client("sqs", self.lab.store_url), queues["queue_url"])

    def dead_letters(self, platform: str) -> list[dict]:
        """The JSON bodies of the messages now in the platform's dead-letter queue."""
        from .connectors import peek_messages

        queues = self.lab.connector_tier.queues[platform]
        return peek_messages(store_client("sqs", self.lab.store_url), queues["dlq_url"])


class EvidenceReads:
    """The evidence store (EvidenceStore): its buckets read straight from moto (no proxy, no
    gateway) and the HTTP fault gateway in front of the primary region's object store."""

    BUCKETS = {"primary": EVIDENCE_BUCKET, "alternate": EVIDENCE_REPLICA_BUCKET}

    def __init__(self, lab: TopologyLab):
        self.lab = lab
        self._clients: dict[str, Any] = {}  # store URL -> its S3 client (thread-safe, reused)

    def _s3(self) -> Any:
        """One client per store URL: making one costs about 0.25 s, a HEAD through it 5 ms."""
        url = self.lab.store_url
        if url not in self._clients:
            self._clients[url] = store_client("s3", url)
        return self._clients[url]

    def _bucket(self, region: str) -> str:
        if region not in self.BUCKETS:
            raise KeyError(f"no evidence region {region!r}; known: primary, alternate")
        return self.BUCKETS[region]

    def read_object(self, region: str, key: str) -> bytes | None:
        """The latest version of an evidence object ("primary" or "alternate" region), or None."""
        return read_latest_object(store_client("s3", self.lab.store_url), self._bucket(region), key)

    def object_lock(self, region: str, key: str, version_id: str | None = None) -> dict | None:
        """The Object Lock the store reports for an evidence object (read_object_lock)."""
        return read_object_lock(self._s3(), self._bucket(region), key, version_id)

    def http_gateway(self, name: str) -> str:
        """URL of the HTTP fault gateway of a link (only "s3" here), as the harness reaches it."""
        if name != "s3" or not self.lab.gateway_url:
            raise KeyError(f"no HTTP fault gateway named {name!r}; known: s3")
        return self.lab.gateway_url

    def gateway_headers(self, name: str) -> dict[str, str]:
        """Headers of a call of the gateway's control path: the lab's control token."""
        return self.lab._control_headers()

    def gateway_requests(self, name: str = "s3") -> list[dict]:
        """Every request the gateway forwarded or answered: {n, at, method, path, status, injected}."""
        reply = requests.get(
            f"{self.http_gateway(name)}/_drill/requests", headers=self.gateway_headers(name), timeout=10
        )
        reply.raise_for_status()
        return reply.json()["requests"]


class SiemFile:
    """The SIEM sink (Siem): the JSON lines file the Control Plane instances append to."""

    def __init__(self, path: Callable[[], Path | None]):
        self._path = path

    def siem_records(self) -> list[dict] | None:
        """The sink's records: none yet when the file was never written; None when the lab has no
        SIEM sink (not up). A line that is no JSON object is skipped."""
        path = self._path()
        if path is None:
            return None
        if not path.exists():
            return []
        records = []
        for line in path.read_text().splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
        return records


class ControlEndpoints:
    """The lab's control endpoints (Clock): the Control Plane's /_clock takes the lab's bearer token."""

    def __init__(self, lab: TopologyLab):
        self.lab = lab

    def control_headers(self) -> dict[str, str]:
        return self.lab._control_headers()


class ManagerEvents:
    """The lab's own failover manager posts its role changes (FailoverManagerEvents)."""

    def __init__(self, lab: TopologyLab):
        self.lab = lab

    def flush_events(self, timeout: float = 30.0) -> bool:
        """Wait until the failover manager's events posted so far were delivered."""
        return self.lab.poster is None or self.lab.poster.flush(timeout)
