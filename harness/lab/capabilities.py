"""What a lab can do for a drill, as small typing.Protocols: each capability is declared once, here.

A provider is composed of part objects (harness.lab.parts, harness.lab.external.parts), each
implementing the protocols of one concern. A drill asks for a capability with
`lab.capability(ApiTier)` (harness.lab.base.Lab): the part that implements it, or CapabilityMissing
(a NotImplementedError) naming what is missing. The capability names a plan's steps need
(harness.steps.needs) and a provider reports (Lab.capabilities()) derive from the protocols its
parts implement: CAPABILITIES is built from GIVES, never written a second time.

A protocol is asked at run time as Jepsen's `satisfies?`: a part must implement it (a
runtime_checkable isinstance) and, for a protocol that gives capability names, the lab must report
at least one of them (the external lab has a part for every protocol but Backups and Containers,
and reports only the capabilities its plan configures).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from collections.abc import Callable


@runtime_checkable
class DatabaseNodes(Protocol):
    """The database tier's nodes: which is primary, kill and restore one, read one, name the link to a
    replica (harness.faults.replication cuts it)."""

    def database_primary(self) -> str: ...
    def kill_database_node(self, name: str) -> None: ...
    def restore_database_node(self, name: str) -> None: ...
    def node_query(self, name: str, statement: str, params: Any = None) -> list[tuple]: ...
    def replica_caught_up(self, name: str) -> bool: ...
    def replication_proxy_name(self, replica: str) -> str: ...


@runtime_checkable
class Failover(Protocol):
    """A failover observer, shared by the embedded and container labs' failover manager
    (harness.lab.failover.FailoverController) and the external lab's observer (ExternalFailover):
    `state` is "watching", "failing_over", "failed_over" or "failed"; `candidate` the node it
    promotes next."""

    state: str
    candidate: str

    def wait_failed_over(self, timeout: float, /) -> bool: ...
    def transaction_lag(self, replica: str, /) -> float: ...
    def rebuild(self, old: str, /, synchronous: bool) -> None: ...
    def restart(self, name: str, /) -> None: ...
    def failback(self, to: str, /, max_lag: float = 5.0, synchronous: bool = True) -> float | None: ...


@runtime_checkable
class ApiTier(Protocol):
    """The API instances, one per availability zone, behind the load balancer."""

    def api_instances(self) -> list[str]: ...
    def api_instance_alive(self, name: str) -> bool: ...
    def kill_api_instance(self, name: str) -> None: ...
    def redeploy_api_instance(self, name: str) -> None: ...
    def probe_window(self) -> float: ...


@runtime_checkable
class EvidenceStore(Protocol):
    """The evidence store (S3, primary and alternate region) read straight, and its HTTP fault gateway."""

    def read_object(self, region: str, key: str) -> bytes | None: ...
    def object_lock(self, region: str, key: str, version_id: str | None = None) -> dict | None: ...
    def http_gateway(self, name: str) -> str: ...
    def gateway_headers(self, name: str) -> dict[str, str]: ...
    def gateway_requests(self, name: str = "s3") -> list[dict]: ...


@runtime_checkable
class Siem(Protocol):
    """The SIEM sink the deployment's audit events reach."""

    def siem_records(self) -> list[dict] | None: ...


@runtime_checkable
class PlatformStandIns(Protocol):
    """The platform APIs behind the connectors (matrix rows 4-6): make one answer errors, kill and
    restart its site server, read what it received."""

    def platform_control_url(self, platform: str) -> str: ...
    def set_platform_mode(self, platform: str, mode: dict[str, Any]) -> None: ...
    def kill_platform(self, platform: str) -> None: ...
    def restart_platform(self, platform: str) -> None: ...
    def platform_requests(self, platform: str) -> list[dict]: ...


@runtime_checkable
class ConnectorWorkers(Protocol):
    """The connector worker pools in their auto-scaling group (spec 1.4)."""

    def kill_connector_worker(self, platform: str) -> int: ...
    def replace_connector_worker(self, platform: str) -> int | None: ...
    def connector_replacements(self) -> list[dict]: ...


@runtime_checkable
class Queues(Protocol):
    """The platforms' intent queues and dead-letter queues, read straight from SQS."""

    def queue_depth(self, platform: str) -> int: ...
    def dead_letters(self, platform: str) -> list[dict]: ...


@runtime_checkable
class Clock(Protocol):
    """The lab's control endpoints (the Control Plane's /_clock, stand-ins' /_control): what a call carries."""

    def control_headers(self) -> dict[str, str]: ...


@runtime_checkable
class EventStoreBlock(Protocol):
    """Block event store writes on the database primary (matrix row 7)."""

    def block_event_store_writes(self, time_limit_s: float | None = None) -> Any: ...


@runtime_checkable
class Backups(Protocol):
    """The backup service (spec section 3): snapshots, exports, the key vault and restores."""

    def backup_service(self) -> Any: ...
    def lose_database(self) -> list[str]: ...
    def database_lost(self) -> bool: ...
    def database_primary_lost(self) -> bool: ...
    def restore_database(
        self, bucket: str | None = None, verify: bool = True, emit: Any = None, validate: Any = None
    ) -> Any: ...
    def rebuild_database_replicas(self) -> None: ...


@runtime_checkable
class Containers(Protocol):
    """Each part in a container of its own (the testcontainers lab): the container faults act on them."""

    def container(self, name: str) -> Any: ...
    def recreate(self, name: str) -> Any: ...
    def disconnect(self, name: str) -> None: ...
    def reconnect(self, name: str) -> None: ...


@runtime_checkable
class FailoverManagerEvents(Protocol):
    """The lab's own failover manager posts its role changes to the Control Plane (the harness does
    not forward them) and can wait until they were delivered."""

    def flush_events(self, timeout: float = 30.0) -> bool: ...


@runtime_checkable
class PlanConfigured(Protocol):
    """A provider configured by its plan (the external lab): which plan keys give a capability, and
    the blast radius its faults must stay inside."""

    @property
    def blast_radius(self) -> tuple[str, ...]: ...
    def missing_keys(self, capability: str) -> list[str]: ...
    # its names for the symbols a step touches (harness.steps.registry.TargetNames)
    def fault_targets(self) -> Callable[[str], tuple[str, ...]]: ...


# The capability names each protocol gives (what a step needs, harness.steps.needs), with what
# they mean. A protocol without names (Containers, Failover, ...) is asked by its members alone.
GIVES: dict[type, dict[str, str]] = {
    DatabaseNodes: {
        "database_kill": "kill the database primary and observe the failover",
        "replication_cut": "cut the replication link to the failover replica",
    },
    ApiTier: {"api_instances": "kill and redeploy the API instance of one availability zone"},
    EvidenceStore: {
        "evidence_links": "cut the links to the evidence store (primary and alternate region)",
        "evidence_read": "read the evidence buckets straight from the object store",
        "evidence_http_errors": "make the evidence store answer HTTP errors and read what it received "
        "(an HTTP fault gateway in front of it)",
    },
    Siem: {"siem": "read the SIEM sink"},
    PlatformStandIns: {
        "platform_api_faults": "make a platform API answer 429 or 503 (its stand-in's control endpoint)",
        "platform_link": "add latency to the link to a platform API (a Toxiproxy proxy)",
        "platform_kill": "kill and restart a platform's site server",
        "platform_requests": "read what each platform API received (its request log)",
    },
    ConnectorWorkers: {"connector_workers": "kill connector workers and see the auto-scaling group replace them"},
    Queues: {"queues": "read a platform's queue depth and dead-letter queue straight from SQS"},
    Clock: {"clock": "move the Control Plane's clock (its /_clock control endpoint)"},
    EventStoreBlock: {"event_store_block": "block event store writes on the database primary"},
    Backups: {"backups": "the backup service: snapshots, exports, the key vault and restores"},
}

CAPABILITIES: dict[str, str] = {name: text for names in GIVES.values() for name, text in names.items()}
PROTOCOL_OF: dict[str, type] = {name: proto for proto, names in GIVES.items() for name in names}


class CapabilityMissing(NotImplementedError):
    """The lab lacks a capability a drill asked for (the message names it and the provider)."""
