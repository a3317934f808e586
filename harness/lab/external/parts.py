"""What the external lab acts through: its parts (harness.lab.capabilities: each implements the
protocols of one concern, through the plan's runbook hooks, reads and endpoints), staging's
Toxiproxy under the scenarios' names, the runbook's write block."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol

import requests

from ...errors import FaultError, LabStartError
from ...toxiproxy.client import ToxiproxyControl
from ...wait import wait_for
from ...workload.client import ApiClient
from ..capabilities import Failover
from ..failover import WRITE_BLOCKED
from ..parts import ObservedNodes, read_latest_object, read_object_lock
from ..targets import EVERY_API_INSTANCE, FAILBACK_LINKS, PROXY, REPLICATION_LINK, TargetNames
from .config import PLATFORM_NAMES, ExternalConfig, Staging
from .observer import ExternalFailover


class Site(Staging, Protocol):
    """What the external lab's parts need of it (harness.lab.external.lab.ExternalLab): beside the
    observer's Staging, its failover observer and watcher, its replication mode and its read hooks."""

    replication: str

    @property
    def observer(self) -> Failover: ...

    @property
    def watcher(self) -> ExternalFailover: ...

    def _read(self, name: str, key: str, **arguments: Any) -> list[dict]: ...


KILL_SEEN_TIMEOUT = 30.0  # a killed API instance must be seen dead within it
REDEPLOY_TIMEOUT = 90.0  # a redeployed one live


class ProxyNames:
    """Staging's Toxiproxy under the names the scenarios use: s3 (the evidence store's link),
    s3-replica (the alternate region's), platform-<platform>, each mapped to the proxy the plan
    names (lab.proxies). A scenario name the plan maps to nothing is refused, never passed on: a
    shared server may well hold a proxy of that name that is not the drill's to touch."""

    NAMED = ("proxy", "add_toxic", "remove_toxic", "toxics", "set_enabled", "set_upstream")

    def __init__(self, control: ToxiproxyControl, names: dict[str, str | None]):
        self.control, self.names = control, names

    def real(self, name: str) -> str:
        if name in self.names:
            real = self.names[name]
            if real is None:
                raise FaultError(
                    f"the plan names no Toxiproxy proxy for {name!r}: set {_PROXY_KEYS.get(name, 'lab.proxies')}"
                )
            return real
        return name

    def __getattr__(self, attr: str) -> Any:
        method = getattr(self.control, attr)
        if attr not in self.NAMED:
            return method
        return lambda name, *args, **kwargs: method(self.real(name), *args, **kwargs)


_PROXY_KEYS = {
    "s3": "lab.proxies.evidence_store",
    "s3-replica": "lab.proxies.evidence_replica",
    **{f"platform-{p}": f"lab.proxies.platforms.{p}" for p in PLATFORM_NAMES},
}


class ExternalEventStoreBlock:
    """The event store write block the runbook holds on a node; release() lifts it (idempotent; a
    no-op on the runbook's side once the platform fenced the node)."""

    def __init__(self, lab: Staging, node: str):
        self.lab, self.node, self.held = lab, node, True

    def release(self) -> None:
        if self.held:
            self.held = False
            self.lab.action("release_event_store_writes", node=self.node)

    def describe(self) -> str:
        return f"event store writes blocked on {self.node} (runbook hook block_event_store_writes)"


class ExternalDatabase(ObservedNodes):
    """The deployment's database tier (DatabaseNodes, EventStoreBlock): its nodes read over their
    DSNs, killed and blocked by the runbook, the failover watched from outside."""

    lab: Site

    def __init__(self, lab: Site):
        super().__init__(lab)

    def database_primary(self) -> str:
        return self.lab.current_primary()

    def node_query(self, name: str, statement: str, params=None) -> list[tuple]:
        return self.lab.node(name).query(statement, params)

    def kill_database_node(self, name: str) -> None:
        self.lab.action("kill_database_primary", node=name)
        self.lab.watcher.watch(name)

    def replication_proxy_name(self, replica: str) -> str:
        """The proxy on `replica`'s replication link: lab.database.replication_proxies, else (the
        failover target's) lab.database.replication_proxy; none named: LabStartError."""
        c = self.lab.config
        named = c.replication_proxies.get(replica) or (c.replication_proxy if replica == c.failover_target else None)
        if not named:
            raise LabStartError(
                f"the plan names no Toxiproxy proxy on the replication link to {replica}: set "
                f"lab.database.replication_proxies.{replica}"
            )
        return named

    def block_event_store_writes(self, time_limit_s: float | None = None) -> ExternalEventStoreBlock:
        """The runbook blocks appends on the primary (hook block_event_store_writes); the platform
        must then fence that node and promote the failover target, which is watched from outside."""
        primary = self.database_primary()
        self.lab.action("block_event_store_writes", node=primary, time_limit_s=time_limit_s)
        self.lab.watcher.watch(primary, cause=WRITE_BLOCKED)
        return ExternalEventStoreBlock(self.lab, primary)


class ExternalApiTier:
    """The API tier (ApiTier, matrix row 1): lab.api_tier's instances, killed and redeployed by the
    runbook, seen dead or live on their own /health/live."""

    def __init__(self, lab: Site):
        self.lab = lab

    def api_instances(self) -> list[str]:
        return list(self.lab.config.api_instances)

    def api_instance_alive(self, name: str) -> bool:
        """The instance answers its own /health/live (what the load balancer probes)."""
        client = ApiClient(self.lab.config.api_instances[name], timeout=1)
        try:
            return client.live()
        finally:
            client.close()

    def kill_api_instance(self, name: str) -> None:
        """The runbook kills the zone's instance; returns once the harness sees it dead."""
        instances = self.lab.config.api_instances
        if name not in instances:
            raise FaultError(f"no API instance {name!r} in lab.api_tier.instances; known: {', '.join(instances)}")
        self.lab.action("kill_api_instance", instance=name)
        wait_for(
            lambda: not self.api_instance_alive(name),
            f"API instance {name} still answers after the kill",
            timeout=KILL_SEEN_TIMEOUT,
            interval=0.05,
        )

    def redeploy_api_instance(self, name: str) -> None:
        """The runbook redeploys it; returns once it answers /health/live."""
        self.lab.action("redeploy_api_instance", instance=name)
        wait_for(
            lambda: self.api_instance_alive(name),
            f"API instance {name} not live after the redeploy",
            timeout=REDEPLOY_TIMEOUT,
            interval=0.1,
        )

    def probe_window(self) -> float:
        if self.lab.config.probe_window_s is None:
            raise LabStartError("the plan has no lab.api_tier.probe_window_s")
        return self.lab.config.probe_window_s


class ExternalPlatforms:
    """The connector platforms (PlatformStandIns, matrix rows 4-6) and their workers
    (ConnectorWorkers), through the runbook's actions and reads."""

    def __init__(self, lab: Site):
        self.lab = lab

    def platform_control_url(self, platform: str) -> str:
        raise NotImplementedError(
            "the external lab has no platform API stand-ins: the connector scenarios (scenarios/connectors/) "
            "run on the embedded lab"
        )

    def set_platform_mode(self, platform: str, mode: dict[str, Any]) -> None:
        self.lab.action("degrade_platform", platform=platform, **mode)

    def kill_platform(self, platform: str) -> None:
        self.lab.action("kill_platform", platform=platform)

    def restart_platform(self, platform: str) -> None:
        self.lab.action("restart_platform", platform=platform)

    def platform_requests(self, platform: str) -> list[dict]:
        return self.lab._read("platform_requests", "requests", platform=platform)

    def kill_connector_worker(self, platform: str) -> int:
        answer = self.lab.action("kill_connector_worker", platform=platform)
        pid = answer.get("pid") if isinstance(answer, dict) else None
        return pid if isinstance(pid, int) else 0

    def replace_connector_worker(self, platform: str) -> int | None:
        """The auto-scaling group replaces a lost worker by itself; the hook (if named) makes sure."""
        if "replace_connector_worker" not in self.lab.config.actions:
            return None
        answer = self.lab.action("replace_connector_worker", platform=platform)
        pid = answer.get("pid") if isinstance(answer, dict) else None
        return pid if isinstance(pid, int) else None

    def connector_replacements(self) -> list[dict]:
        return self.lab._read("connector_replacements", "replacements")


class ExternalQueues:
    """The platforms' queues (Queues), read straight from the plan's lab.queues (SQS)."""

    def __init__(self, lab: Site):
        self.config = lab.config

    def _queue_url(self, sqs, platform: str, dead_letters: bool) -> str:
        if self.config.queues is None:
            raise NotImplementedError("the plan has no lab.queues: the external lab cannot read the queues")
        name = f"{self.config.queues.options['prefix']}-{platform}" + ("-dlq" if dead_letters else "")
        return sqs.get_queue_url(QueueName=name)["QueueUrl"]

    def queue_depth(self, platform: str) -> int:
        from ..connectors import queue_depth

        sqs = self.config.queues.client("sqs") if self.config.queues else None
        return queue_depth(sqs, self._queue_url(sqs, platform, False))

    def dead_letters(self, platform: str) -> list[dict]:
        from ..connectors import peek_messages

        sqs = self.config.queues.client("sqs") if self.config.queues else None
        return peek_messages(sqs, self._queue_url(sqs, platform, True))


class ExternalEvidence:
    """The evidence store (EvidenceStore): its buckets read straight from the plan's lab.s3, and
    the HTTP fault gateway lab.evidence_gateway in front of it."""

    def __init__(self, lab: Site):
        self.config = lab.config

    def _evidence_bucket(self, region: str) -> tuple[Any, str]:
        """(S3 client, bucket) of an evidence region, primary or alternate, as the plan's lab.s3 names it."""
        s3 = self.config.s3
        if s3 is None:
            raise NotImplementedError("the plan has no lab.s3: the external lab cannot read evidence objects")
        if region not in ("primary", "alternate"):
            raise KeyError(f"no evidence region {region!r}; known: primary, alternate")
        endpoint = s3.options.get("replica_endpoint") if region == "alternate" else None
        return s3.client("s3", endpoint), s3.options["bucket" if region == "primary" else "replica_bucket"]

    def read_object(self, region: str, key: str) -> bytes | None:
        return read_latest_object(*self._evidence_bucket(region), key)

    def object_lock(self, region: str, key: str, version_id: str | None = None) -> dict | None:
        return read_object_lock(*self._evidence_bucket(region), key, version_id)

    def http_gateway(self, name: str) -> str:
        if name != "s3" or not self.config.gateway_url:
            raise KeyError(f"no HTTP fault gateway named {name!r}: set lab.evidence_gateway")
        return self.config.gateway_url

    def gateway_headers(self, name: str) -> dict[str, str]:
        token = self.config.gateway_token.value("lab.evidence_gateway")
        return {"Authorization": f"Bearer {token}"} if token else {}

    def gateway_requests(self, name: str = "s3") -> list[dict]:
        """Every request the gateway forwarded or answered: {n, at, method, path, status, injected}."""
        reply = requests.get(
            f"{self.http_gateway(name)}/_drill/requests", headers=self.gateway_headers(name), timeout=10
        )
        reply.raise_for_status()
        return reply.json()["requests"]


class ExternalSiem:
    """The SIEM sink (Siem): the plan's lab.siem_file, JSON lines."""

    def __init__(self, lab: Site):
        self.config = lab.config

    def siem_records(self) -> list[dict] | None:
        if not self.config.siem_file:
            return None
        try:
            lines = Path(self.config.siem_file).read_text().splitlines()
        except OSError:
            return None
        return [json.loads(line) for line in lines if line.strip().startswith("{")]


class ExternalClock:
    """The Control Plane's clock control (Clock): /_clock takes the token of lab.clock."""

    def __init__(self, lab: Site):
        self.config = lab.config

    def control_headers(self) -> dict[str, str]:
        token = self.config.clock_token.value("lab.clock") if self.config.clock_token else None
        return {"Authorization": f"Bearer {token}"} if token else {}


class ExternalPlan:
    """What the plan configures (PlanConfigured): which keys give a capability, the blast radius its
    faults must stay inside, and its names for the symbols a step touches."""

    def __init__(self, config: ExternalConfig):
        self.config = config

    def missing_keys(self, capability: str) -> list[str]:
        """The lab: keys a plan must set for this lab to have the capability."""
        return self.config.missing_keys(capability)

    @property
    def blast_radius(self) -> tuple[str, ...]:
        """What the plan's lab.blast_radius lets faults touch."""
        return self.config.blast_radius

    def fault_targets(self) -> TargetNames:
        """The names of lab.blast_radius for what a step touches: each step declares the symbols it
        touches once (harness.steps.registry); this turns a symbol into this lab's names. A proxy
        the plan does not name shows as the key that would name it, so the radius check refuses it."""
        c = self.config

        def proxy(value: str | None, key: str) -> str:
            return value or f"(no proxy: set {key})"

        def names(symbol: str) -> tuple[str, ...]:
            if symbol == REPLICATION_LINK:
                return (proxy(c.replication_proxy, "lab.database.replication_proxy"),)
            if symbol == FAILBACK_LINKS:
                # the failback drill slows the link of the node the failback returns to (the old primary:
                # any node but the failover target); a node without a named proxy is not slowed (unknown)
                return tuple(v for n, v in c.replication_proxies.items() if n != c.failover_target)
            if symbol == EVERY_API_INSTANCE:
                return tuple(f"api-{z}" for z in c.api_instances) or ("api-<every zone: set lab.api_tier>",)
            if symbol.startswith(PROXY):
                role = symbol[len(PROXY) :]
                kind, _, platform = role.partition(".")
                value = c.platform_proxies.get(platform) if kind == "platforms" else c.proxies.get(role)
                return (proxy(value, f"lab.proxies.{role}"),)
            return (symbol,)

        return names
