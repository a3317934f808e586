"""The external lab: a deployment the harness did not start (staging), reached by its endpoints."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import requests

from ...errors import FaultError, LabStartError
from ...toxiproxy.client import ToxiproxyControl
from ...wait import wait_for
from ..base import Lab, running
from ..failover import WRITE_BLOCKED
from ..hooks import PLAN, HookError, public_url
from ..targets import (
    EVERY_API_INSTANCE,
    EVIDENCE_GATEWAY,
    FAILBACK_LINKS,
    PROXY,
    REPLICATION_LINK,
    TargetNames,
)
from .config import PLATFORM_NAMES, ExternalConfig, NodeConfig
from .observer import ExternalFailover
from .parts import ExternalEventStoreBlock, ProxyNames

KILL_SEEN_TIMEOUT = 30.0  # a killed API instance must be seen dead within it
REDEPLOY_TIMEOUT = 90.0  # a redeployed one live


class ExternalLab(Lab):
    provider = "external"

    def __init__(self, config: ExternalConfig, confirmed: bool, replication: str = "sync"):
        self.config = config
        self.api_url = config.api_url
        self.confirmed = confirmed
        self.dry_run = not (config.allow_destructive and confirmed)
        self.replication = replication
        self.on_event: Callable[[str, str, dict], None] = lambda kind, name, detail: None
        self.toxiproxy: ProxyNames | None = None
        self._toxiproxy: ToxiproxyControl | None = None  # the server under its own names
        self.failover: ExternalFailover | None = None

    @property
    def watcher(self) -> ExternalFailover:
        """The failover observer up() made; LabNotUp before."""
        return running(self.failover, "the failover observer")

    def interlock(self) -> str:
        if not self.config.allow_destructive:
            return "the plan does not set allow_destructive: true"
        if not self.confirmed:
            return "the command line has no --confirm <drill id>"
        return ""

    def capabilities(self) -> frozenset[str]:
        """What the plan's hooks, proxies, reads and endpoints let the harness do to this
        deployment (harness.lab.external.PROVIDES)."""
        return self.config.capabilities()

    def missing_keys(self, capability: str) -> list[str]:
        """The lab: keys a plan must set for this lab to have the capability."""
        return self.config.missing_keys(capability)

    @property
    def blast_radius(self) -> tuple[str, ...]:
        """What the plan's lab.blast_radius lets faults touch (harness.lab.capabilities.PlanConfigured)."""
        return self.config.blast_radius

    # -- lifecycle: nothing to start, only to check -----------------------------------------
    def up(self) -> ExternalLab:
        try:
            requests.get(self.api_url + "/health", timeout=5)
        except requests.RequestException as exc:
            raise LabStartError(f"external API {self.api_url} does not answer: {type(exc).__name__}") from None
        self._toxiproxy = ToxiproxyControl(self.config.toxiproxy_url)
        names: dict[str, str | None] = {
            "s3": self.config.proxies.get("evidence_store"),
            "s3-replica": self.config.proxies.get("evidence_replica"),
        }
        names.update({f"platform-{p}": self.config.platform_proxies.get(p) for p in PLATFORM_NAMES})
        self.toxiproxy = ProxyNames(self._toxiproxy, names)
        try:
            self._toxiproxy.version()
        except Exception as exc:
            raise LabStartError(
                f"Toxiproxy at {self.config.toxiproxy_url} does not answer: {type(exc).__name__}"
            ) from None
        for node in self.config.nodes.values():
            try:
                node.query("SELECT 1")
            except psycopg.Error as exc:
                raise LabStartError(
                    f"database node {node.name} ({_public(node.dsn)}) does not answer: {type(exc).__name__}"
                ) from None
        self.failover = ExternalFailover(self)
        return self

    def down(self) -> None:
        """Nothing of the deployment is stopped: it is not ours. Faults heal in the scenarios."""

    # -- what drills use ----------------------------------------------------------------------
    def node(self, name: str) -> NodeConfig:
        return self.config.nodes[name]

    def action(self, name: str, **arguments: Any) -> Any:
        if self.dry_run:
            raise PermissionError(f"dry run: action {name} refused ({self.interlock()})")
        hook = self.config.actions.get(name)
        if hook is None:
            raise HookError(f"the plan has no lab.actions.{name} hook for this step", PLAN, acted=False)
        return hook.run(**arguments)

    def _read(self, name: str, key: str, **arguments: Any) -> list[dict]:
        """A read hook's answer: a list, or {key: list}. NotImplementedError when the plan has no
        such read (the drill then says what it could not see)."""
        hook = self.config.reads.get(name)
        if hook is None:
            raise NotImplementedError(f"the plan has no lab.reads.{name} hook: the external lab cannot read it")
        answer = hook.run(**arguments)
        if isinstance(answer, dict):
            answer = answer.get(key)
        if not isinstance(answer, list) or not all(isinstance(r, dict) for r in answer):
            raise HookError(f"hook {name} answered no list of records (a JSON list, or {{{key!r}: [...]}})")
        return answer

    def endpoints(self) -> dict[str, Any]:
        c = self.config
        return {
            "api": self.api_url,
            "toxiproxy": c.toxiproxy_url,
            "database": {n: _public(node.dsn) for n, node in c.nodes.items()},
            "instances": {z: public_url(u) for z, u in c.api_instances.items()},
            "proxies": {**c.proxies, **{f"platform-{p}": n for p, n in c.platform_proxies.items()}},
            "s3": c.s3.endpoint if c.s3 else None,
            "s3_gateway": public_url(c.gateway_url) if c.gateway_url else None,
            "queues": c.queues.endpoint if c.queues else None,
            "actions": {n: h.describe() for n, h in c.actions.items()},
            "reads": {n: h.describe() for n, h in c.reads.items()},
        }

    def processes(self) -> dict[str, int | None]:
        return {}

    def describe(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "target": self.config.name,
            "api": self.api_url,
            "replication": self.replication,
            "mode": "dry run (probes only)" if self.dry_run else "destructive (confirmed)",
            "blast_radius": ", ".join(self.config.blast_radius) or "none",
        }

    def steady_state_checks(self) -> dict[str, tuple[bool, str]]:
        target = self.watcher.candidate
        try:
            status = self.node(target).query("SELECT status FROM pg_stat_wal_receiver")
            streaming = bool(status) and status[0][0] == "streaming"
            detail = f"{target}: {status[0][0] if status else 'not connected'}"
        except (psycopg.Error, LabStartError) as exc:
            streaming, detail = False, f"{target}: {type(exc).__name__}"
        checks = {
            "replication": (streaming, detail),
            "failover_controller": (self.watcher.state == "watching", self.watcher.state),
        }
        if self.config.api_instances:
            down = [z for z in self.config.api_instances if not self.api_instance_alive(z)]
            checks["api_instances"] = (not down, f"not live: {down}" if down else "all live")
        return checks

    def database_primary(self) -> str:
        for name, node in self.config.nodes.items():
            try:
                if not node.query("SELECT pg_is_in_recovery()", timeout=2)[0][0]:
                    return name
            except (psycopg.Error, LabStartError):
                continue
        raise LabStartError("no database node answers as primary")

    def node_query(self, name: str, statement: str, params=None) -> list[tuple]:
        return self.node(name).query(statement, params)

    def kill_database_node(self, name: str) -> None:
        self.action("kill_database_primary", node=name)
        self.watcher.watch(name)

    def replication_proxy_name(self, replica: str) -> str:
        """The proxy on `replica`'s replication link: lab.database.replication_proxies, else (the
        failover target's) lab.database.replication_proxy; none named: LabStartError."""
        c = self.config
        named = c.replication_proxies.get(replica) or (c.replication_proxy if replica == c.failover_target else None)
        if not named:
            raise LabStartError(
                f"the plan names no Toxiproxy proxy on the replication link to {replica}: set "
                f"lab.database.replication_proxies.{replica}"
            )
        return named

    # -- the event store (matrix row 7) ----------------------------------------------------------
    def block_event_store_writes(self, time_limit_s: float | None = None) -> ExternalEventStoreBlock:
        """The runbook blocks appends on the primary (hook block_event_store_writes); the platform
        must then fence that node and promote the failover target, which is watched from outside."""
        primary = self.database_primary()
        self.action("block_event_store_writes", node=primary, time_limit_s=time_limit_s)
        self.watcher.watch(primary, cause=WRITE_BLOCKED)
        return ExternalEventStoreBlock(self, primary)

    # -- the API tier (matrix row 1) -------------------------------------------------------------
    def api_instances(self) -> list[str]:
        return list(self.config.api_instances)

    def api_instance_alive(self, name: str) -> bool:
        """The instance answers its own /health/live (what the load balancer probes)."""
        try:
            return requests.get(f"{self.config.api_instances[name]}/health/live", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def kill_api_instance(self, name: str) -> None:
        """The runbook kills the zone's instance; returns once the harness sees it dead."""
        if name not in self.config.api_instances:
            raise FaultError(
                f"no API instance {name!r} in lab.api_tier.instances; known: {', '.join(self.config.api_instances)}"
            )
        self.action("kill_api_instance", instance=name)
        wait_for(
            lambda: not self.api_instance_alive(name),
            f"API instance {name} still answers after the kill",
            timeout=KILL_SEEN_TIMEOUT,
            interval=0.05,
        )

    def redeploy_api_instance(self, name: str) -> None:
        """The runbook redeploys it; returns once it answers /health/live."""
        self.action("redeploy_api_instance", instance=name)
        wait_for(
            lambda: self.api_instance_alive(name),
            f"API instance {name} not live after the redeploy",
            timeout=REDEPLOY_TIMEOUT,
            interval=0.1,
        )

    def probe_window(self) -> float:
        if self.config.probe_window_s is None:
            raise LabStartError("the plan has no lab.api_tier.probe_window_s")
        return self.config.probe_window_s

    # -- the connector platforms (matrix rows 4-6) and their workers ------------------------------
    def set_platform_mode(self, platform: str, mode: dict[str, Any]) -> None:
        self.action("degrade_platform", platform=platform, **mode)

    def kill_platform(self, platform: str) -> None:
        self.action("kill_platform", platform=platform)

    def restart_platform(self, platform: str) -> None:
        self.action("restart_platform", platform=platform)

    def platform_requests(self, platform: str) -> list[dict]:
        return self._read("platform_requests", "requests", platform=platform)

    def kill_connector_worker(self, platform: str) -> int:
        answer = self.action("kill_connector_worker", platform=platform)
        pid = answer.get("pid") if isinstance(answer, dict) else None
        return pid if isinstance(pid, int) else 0

    def replace_connector_worker(self, platform: str) -> int | None:
        """The auto-scaling group replaces a lost worker by itself; the hook (if named) makes sure."""
        if "replace_connector_worker" not in self.config.actions:
            return None
        answer = self.action("replace_connector_worker", platform=platform)
        pid = answer.get("pid") if isinstance(answer, dict) else None
        return pid if isinstance(pid, int) else None

    def connector_replacements(self) -> list[dict]:
        return self._read("connector_replacements", "replacements")

    def control_headers(self) -> dict[str, str]:
        """The Control Plane's clock control (/_clock) takes the token of lab.clock."""
        token = self.config.clock_token.value("lab.clock") if self.config.clock_token else None
        return {"Authorization": f"Bearer {token}"} if token else {}

    # -- reads of the target's stores, straight from S3 and SQS (evidence, not what it says) -------
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
        from ..parts import read_latest_object

        return read_latest_object(*self._evidence_bucket(region), key)

    def object_lock(self, region: str, key: str, version_id: str | None = None) -> dict | None:
        from ..parts import read_object_lock

        return read_object_lock(*self._evidence_bucket(region), key, version_id)

    # -- the HTTP fault gateway in front of the evidence store ----------------------------------
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

    # -- heal and judge --------------------------------------------------------------------------
    def reset_faults(self) -> None:
        """Staging's Toxiproxy is shared: heal only the harness's own toxics (drill_*) on the
        proxies of the blast radius, never anything else; the evidence gateway forwards again and
        each platform API of the radius answers normally again (a killed run's leftovers)."""
        if self.dry_run:
            return
        radius = self.config.blast_radius
        server = self._toxiproxy
        for name in radius:
            if server is None:
                break  # before up(): no proxy to heal
            try:
                proxy = server.proxy(name)
            except Exception:
                continue  # not a proxy (e.g. database-primary)
            for toxic in proxy.toxics():
                if toxic.startswith("drill_"):
                    server.remove_toxic(name, toxic)
            if not proxy.enabled:
                server.set_enabled(name, True)
        if GATEWAY_TARGET in radius and self.config.gateway_url:
            try:
                requests.delete(
                    f"{self.config.gateway_url}/_drill/fault", headers=self.gateway_headers("s3"), timeout=10
                )
            except requests.RequestException:
                pass  # the steady state says whether the store answers
        if "degrade_platform" in self.config.actions:
            for platform in PLATFORM_NAMES:
                if f"{platform}-api" in radius:
                    try:
                        self.action("degrade_platform", platform=platform, mode="ok")
                    except HookError:
                        pass  # its server is down: the scenario's steady state says so

    def siem_records(self) -> list[dict] | None:
        if not self.config.siem_file:
            return None
        try:
            lines = Path(self.config.siem_file).read_text().splitlines()
        except OSError:
            return None
        return [json.loads(line) for line in lines if line.strip().startswith("{")]

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


GATEWAY_TARGET = EVIDENCE_GATEWAY


def _public(dsn: str) -> str:
    """A conninfo for display: host, port, dbname and user only."""
    parts = [p for p in dsn.split() if p.split("=", 1)[0] in ("host", "port", "dbname", "user")]
    return " ".join(parts)
