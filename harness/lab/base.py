"""Lab provider interface: what every provider (embedded, testcontainers, external) offers a drill."""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

# What a lab can do for a drill: the capabilities as typing.Protocols, and their names (derived)
from .capabilities import CAPABILITIES, GIVES, CapabilityMissing

if TYPE_CHECKING:
    from .capabilities import Failover

__all__ = ["CAPABILITIES", "CapabilityMissing", "Lab", "LabNotUp", "running"]

P = TypeVar("P")
T = TypeVar("T")


class LabNotUp(RuntimeError):
    """A part of the lab was asked for while the lab is not up (before up(), or after down())."""


def running(part: T | None, what: str) -> T:
    """A part up() made (None until then and after down()), or LabNotUp naming it."""
    if part is None:
        raise LabNotUp(f"the lab is not up: {what} is not running")
    return part


class Lab(abc.ABC):
    """A running deployment of the Control Plane and its dependencies.

    Lifecycle: up() -> (drills) -> down(). down() is idempotent and leaves nothing running or
    listening. Faults go through `toxiproxy` (links) or the provider's process handles.
    """

    provider: str = ""
    api_url: str
    toxiproxy: Any  # harness.toxiproxy.client.ToxiproxyControl once up() ran
    failover: Failover | None = None  # the failover observer (the lab's failover manager, or the external
    # lab's watcher), made by up()
    replication: str = "sync"  # "sync" or "async": the database tier's replication mode
    dry_run: bool = False  # probes only: no fault is injected (the external lab unconfirmed)
    on_event: Callable[[str, str, dict], None]  # where the lab's own recovery events go (set by the drill)

    @property
    def observer(self) -> Failover:
        """The failover observer up() made; LabNotUp before up() and after down()."""
        return running(self.failover, "the failover observer")

    def parts(self) -> tuple[object, ...]:
        """The part objects this lab is composed of (harness.lab.parts, harness.lab.external.parts):
        its capabilities are the protocols they implement."""
        return (self,)  # transitional: the lab is its own part until each provider has part objects

    def _part(self, proto: type[P]) -> P | None:
        for part in self.parts():
            if isinstance(part, proto):
                return part
        return None

    def capability(self, proto: type[P]) -> P:
        """The part of this lab that is the capability `proto` (a protocol of harness.lab.capabilities),
        or CapabilityMissing naming the provider and what it cannot do: a part must implement the
        protocol and, for a protocol that gives capability names, the lab must report one of them."""
        provider = self.provider or type(self).__name__
        part = self._part(proto)
        names = GIVES.get(proto)
        if part is None and not names:
            raise CapabilityMissing(
                f"the {provider} lab lacks {proto.__name__} ({(proto.__doc__ or '').splitlines()[0].rstrip('.')})"
            )
        if part is None or (names and not set(names) & self.capabilities()):
            raise CapabilityMissing(
                f"the {provider} lab lacks {proto.__name__}: "
                + "; ".join(f"capability {name} ({text})" for name, text in (names or {}).items())
            )
        return part

    def has(self, proto: type) -> bool:
        """Whether a part of this lab implements `proto` (a branch, where a drill does not need it)."""
        return self._part(proto) is not None

    def interlock(self) -> str:
        """Why faults are refused in a dry run (the external lab says which plan key and flag)."""
        return "a dry run"

    def set_replication(self, mode: str) -> None:
        """Switch the database tier to `mode` ("sync" or "async") for a plan reusing a running lab."""
        raise NotImplementedError(
            f"the {self.provider or type(self).__name__} lab cannot switch its replication mode to {mode}"
        )

    @abc.abstractmethod
    def up(self) -> Lab: ...

    @abc.abstractmethod
    def down(self) -> None: ...

    @abc.abstractmethod
    def endpoints(self) -> dict[str, Any]:
        """Addresses of every part, without secrets (for status output and reports)."""

    @abc.abstractmethod
    def processes(self) -> dict[str, int | None]:
        """{component: pid or None when not running}."""

    @abc.abstractmethod
    def steady_state_checks(self) -> dict[str, tuple[bool, str]]:
        """{check: (ok, detail)} of the lab itself (replication, load balancer)."""

    def capabilities(self) -> frozenset[str]:
        """What this lab can do for a drill (names of harness.lab.capabilities.CAPABILITIES), derived
        from its parts: the names of each protocol some part implements. A plan whose scenarios need
        more is refused before the lab starts."""
        return frozenset(name for proto, names in GIVES.items() if self._part(proto) is not None for name in names)

    def reset_faults(self) -> None:
        """Heal what a killed run may have left (every toxic, every disabled proxy)."""
        self.toxiproxy.reset_all()

    def siem_records(self) -> list[dict] | None:
        """The SIEM sink's records, or None when this provider cannot read it."""
        return None

    # database capabilities
    @abc.abstractmethod
    def database_primary(self) -> str: ...

    @abc.abstractmethod
    def kill_database_node(self, name: str) -> None: ...

    def node_query(self, name: str, statement: str, params=None) -> list[tuple]:
        """One SQL statement on a database node of the lab (a read of the store, e.g. the DR copy)."""
        raise NotImplementedError(f"the {self.provider or type(self).__name__} lab cannot query its database nodes")

    def restore_database_node(self, name: str) -> None:
        """Bring a killed database node back (the heal of database_primary_kill): once another
        node was promoted, rebuilt as its replica and the failover target; else started again."""
        if self.observer.state == "failed_over":
            self.observer.rebuild(name, synchronous=self.replication == "sync")
        else:
            self.observer.restart(name)

    def replica_caught_up(self, name: str) -> bool:
        """The replica has replayed the primary's current WAL position."""
        return self.observer.transaction_lag(name) == 0.0

    def replication_proxy_name(self, replica: str) -> str:
        return f"repl-{replica}"

    def block_event_store_writes(self, time_limit_s: float | None = None) -> Any:
        """Block every append to the event store on the database primary (reads keep working);
        returns a handle whose release() lifts it (harness.lab.eventstore.EventStoreWriteBlock).
        With time_limit_s, the database lifts it by itself after that long. Heal it through the
        fault `event_store_block`, which always releases it."""
        raise NotImplementedError(
            f"the {self.provider or type(self).__name__} lab cannot block event store writes: it needs a "
            f"superuser session on the database primary (available on the embedded lab)"
        )

    # the API tier (harness.lab.capabilities.ApiTier): one API instance per availability zone
    def _no_api_instances(self) -> CapabilityMissing:
        return CapabilityMissing(
            f"the {self.provider or type(self).__name__} lab has no API instance processes "
            f"the harness can kill (capability api_instances)"
        )

    def api_instances(self) -> list[str]:
        raise self._no_api_instances()

    def api_instance_alive(self, name: str) -> bool:
        raise self._no_api_instances()

    def kill_api_instance(self, name: str) -> None:
        raise self._no_api_instances()

    def redeploy_api_instance(self, name: str) -> None:
        raise self._no_api_instances()

    def probe_window(self) -> float:
        """Seconds until the load balancer takes a dead instance out of rotation."""
        raise self._no_api_instances()

    # the evidence store's HTTP fault gateway (harness.lab.capabilities.EvidenceStore)
    def http_gateway(self, name: str) -> str:
        """The control address of the HTTP fault gateway `name` (in front of the evidence store)."""
        raise CapabilityMissing(
            f"the {self.provider or type(self).__name__} lab has no HTTP fault gateway {name!r} "
            f"(capability evidence_http_errors)"
        )

    def gateway_requests(self, name: str = "s3") -> list[dict]:
        """What the HTTP fault gateway `name` received and answered."""
        raise CapabilityMissing(
            f"the {self.provider or type(self).__name__} lab has no HTTP fault gateway {name!r} "
            f"(capability evidence_http_errors)"
        )

    # connector platforms (matrix rows 4-6): the embedded lab runs stand-ins for them
    def _no_platforms(self) -> NotImplementedError:
        return NotImplementedError(
            f"the {self.provider or type(self).__name__} lab has no platform API stand-ins: the connector "
            f"scenarios (scenarios/connectors/) run on the embedded lab"
        )

    def platform_control_url(self, platform: str) -> str:
        raise self._no_platforms()

    def set_platform_mode(self, platform: str, mode: dict[str, Any]) -> None:
        """Make the platform API answer as `mode` says ({"mode": "throttle"|"error"|"hang"|"ok",
        "retry_after", "requests", "for_s"}): here through its stand-in's control endpoint.
        requests.ConnectionError when the platform's server is down."""
        import requests

        requests.post(
            f"{self.platform_control_url(platform)}/_control", json=mode, headers=self.control_headers(), timeout=10
        ).raise_for_status()

    def control_headers(self) -> dict[str, str]:
        """Headers of a call of a control endpoint of the lab (clock, platform stand-ins, fault
        gateway): the embedded lab's bearer token; none here."""
        return {}

    def gateway_headers(self, name: str) -> dict[str, str]:
        """Headers of a call of the HTTP fault gateway `name`'s control path: the lab's control
        headers unless the provider has a token of its own for it."""
        return self.control_headers()

    def kill_platform(self, platform: str) -> None:
        raise self._no_platforms()

    def restart_platform(self, platform: str) -> None:
        raise self._no_platforms()

    def platform_requests(self, platform: str) -> list[dict]:
        """Every request the platform's stand-in saw and what it answered, from its request log."""
        raise self._no_platforms()

    # connector worker pools (spec 1.4): the embedded lab runs one worker per platform in an
    # auto-scaling group that replaces a lost worker
    def kill_connector_worker(self, platform: str) -> int:
        """SIGKILL the platform's connector worker; its pid."""
        raise self._no_platforms()

    def replace_connector_worker(self, platform: str) -> int | None:
        """Start a new worker if the platform's worker exited (what the auto-scaling group does by
        itself); the new pid, or None when one is running."""
        raise self._no_platforms()

    def connector_replacements(self) -> list[dict]:
        """Every worker the auto-scaling group replaced ({"at", "platform", "old_pid", "new_pid"})."""
        raise self._no_platforms()

    # reads of the lab's own stores (evidence observed by the harness, not reported by the system)
    def queue_depth(self, platform: str) -> int:
        """Messages in the platform's intent queue (visible, in flight and delayed)."""
        raise NotImplementedError(
            f"the {self.provider or type(self).__name__} lab cannot read a platform's intent queue depth: "
            f"the harness reads the queues straight from SQS on the embedded lab only"
        )

    def dead_letters(self, platform: str) -> list[dict]:
        """The JSON bodies of the messages now in the platform's dead-letter queue."""
        raise NotImplementedError(
            f"the {self.provider or type(self).__name__} lab cannot read a platform's dead-letter queue: "
            f"the harness reads the queues straight from SQS on the embedded lab only"
        )

    def read_object(self, region: str, key: str) -> bytes | None:
        """The latest version of an evidence object ("primary" or "alternate" region), or None."""
        raise NotImplementedError(
            f"the {self.provider or type(self).__name__} lab cannot read evidence objects: the harness "
            f"reads the buckets straight from S3 on the embedded lab only"
        )

    def object_lock(self, region: str, key: str, version_id: str | None = None) -> dict | None:
        """The Object Lock the store reports for an evidence object ("primary" or "alternate"):
        {"mode", "retain_until" (epoch), "version_id"}, None when there is no such object
        (harness.lab.parts.read_object_lock)."""
        raise NotImplementedError(
            f"the {self.provider or type(self).__name__} lab cannot read evidence objects' locks: the harness "
            f"reads the buckets straight from S3 on the embedded lab only"
        )

    # backup and restore (spec section 3): the embedded lab runs a backup service
    def _no_backups(self) -> NotImplementedError:
        return NotImplementedError(
            f"the {self.provider or type(self).__name__} lab runs no backup service: the backup and restore "
            f"scenarios (scenarios/backup/) run on the embedded lab"
        )

    def backup_service(self) -> Any:
        """The lab's backup service (harness.lab.backups.BackupService): its store, key vault, clock."""
        raise self._no_backups()

    def lose_database(self) -> list[str]:
        """Every database node killed and its data deleted (the primary region's database lost)."""
        raise self._no_backups()

    def database_lost(self) -> bool:
        raise self._no_backups()

    def database_primary_lost(self) -> bool:
        """The primary (not only replicas) was lost: a restore, not only a rebuild, is needed."""
        raise self._no_backups()

    def restore_database(
        self, bucket: str | None = None, verify: bool = True, emit: Any = None, validate: Any = None
    ) -> Any:
        """Restore the lost database from the newest verified snapshot of `bucket` (RestoreOutcome)."""
        raise self._no_backups()

    def rebuild_database_replicas(self) -> None:
        raise self._no_backups()

    def describe(self) -> dict[str, Any]:
        return {"provider": self.provider}

    def __enter__(self) -> Lab:
        try:
            return self.up()
        except BaseException:
            self.down()
            raise

    def __exit__(self, *exc) -> None:
        self.down()
