"""What the embedded and container labs share: the stores' names and credentials, reads straight
from the stores (evidence, not what the system says), and the connector tier's and the S3 fault
gateway's handles. The two labs differ only in how a part runs (a local process or a container)
and at which address it is reached."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests

from .base import running
from .eventpost import RoleChangePoster

if TYPE_CHECKING:
    from ..toxiproxy.client import ToxiproxyControl
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


class LabParts:
    """Mixed into a Lab that runs the whole topology: `connectors` (harness.lab.connectors
    .ConnectorTier), `store_url` (moto as the harness reaches it) and `gateway_url` (the S3
    fault gateway's control address) are set by up(), `control_token` by the constructor."""

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

    # -- the parts up() makes (each None before up() and after down(); LabNotUp names it) -----
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

    def flush_events(self, timeout: float = 30.0) -> bool:
        """Wait until the failover manager's events posted so far were delivered."""
        return self.poster is None or self.poster.flush(timeout)

    def control_headers(self) -> dict[str, str]:
        """What a call of a control endpoint of this lab (clock, platform stand-ins, fault gateway)
        carries: the lab's bearer token, given to those parts in their environment."""
        return {"Authorization": f"Bearer {self.control_token}"}

    # -- API instances (each lab's `instances`: a handle with poll() per zone) and the balancer --
    def api_instances(self) -> list[str]:
        return list(self.instances)

    def api_instance_alive(self, name: str) -> bool:
        return self.instances[name].poll() is None

    def probe_window(self) -> float:
        """Seconds until the load balancer takes a dead instance out of rotation."""
        return self.balancer.probe_window

    # -- connector platforms and workers ---------------------------------------------------
    def platform_control_url(self, platform: str) -> str:
        return self.connector_tier.control_url(platform)

    def kill_platform(self, platform: str) -> None:
        self.connector_tier.kill_platform(platform)

    def restart_platform(self, platform: str) -> None:
        self.connector_tier.restart_platform(platform)

    def platform_requests(self, platform: str) -> list[dict]:
        return self.connector_tier.platform_requests(platform)

    def kill_connector_worker(self, platform: str) -> int:
        return self.connector_tier.kill_worker(platform)

    def replace_connector_worker(self, platform: str) -> int | None:
        return self.connector_tier.replace_worker(platform)

    def connector_replacements(self) -> list[dict]:
        return self.connector_tier.replacements()

    def reset_platforms(self) -> None:
        """Every platform stand-in back up and answering ok."""
        if self.connectors:
            for platform in self.connectors.mocks:
                self.connectors.restart_platform(platform)
                requests.post(
                    f"{self.platform_control_url(platform)}/_control",
                    json={"mode": "ok"},
                    headers=self.control_headers(),
                    timeout=10,
                ).raise_for_status()

    # -- reads of the lab's stores, straight from moto (no proxy, no gateway): evidence ---------
    def queue_depth(self, platform: str) -> int:
        from .connectors import queue_depth

        return queue_depth(store_client("sqs", self.store_url), self.connector_tier.queues[platform]["queue_url"])

    def dead_letters(self, platform: str) -> list[dict]:
        from .connectors import peek_messages

        return peek_messages(store_client("sqs", self.store_url), self.connector_tier.queues[platform]["dlq_url"])

    def read_object(self, region: str, key: str) -> bytes | None:
        buckets = {"primary": EVIDENCE_BUCKET, "alternate": EVIDENCE_REPLICA_BUCKET}
        if region not in buckets:
            raise KeyError(f"no evidence region {region!r}; known: primary, alternate")
        return read_latest_object(store_client("s3", self.store_url), buckets[region], key)

    def object_lock(self, region: str, key: str, version_id: str | None = None) -> dict | None:
        buckets = {"primary": EVIDENCE_BUCKET, "alternate": EVIDENCE_REPLICA_BUCKET}
        if region not in buckets:
            raise KeyError(f"no evidence region {region!r}; known: primary, alternate")
        return read_object_lock(store_client("s3", self.store_url), buckets[region], key, version_id)

    # -- the HTTP fault gateway in front of the primary region's object store -----------------
    def http_gateway(self, name: str) -> str:
        """URL of the HTTP fault gateway of a link (only "s3" here), as the harness reaches it."""
        if name != "s3" or not self.gateway_url:
            raise KeyError(f"no HTTP fault gateway named {name!r}; known: s3")
        return self.gateway_url

    def gateway_requests(self, name: str = "s3") -> list[dict]:
        """Every request the gateway forwarded or answered: {n, at, method, path, status, injected}."""
        reply = requests.get(f"{self.http_gateway(name)}/_drill/requests", headers=self.control_headers(), timeout=10)
        reply.raise_for_status()
        return reply.json()["requests"]
