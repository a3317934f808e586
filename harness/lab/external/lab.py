"""The external lab: a deployment the harness did not start (staging), reached by its endpoints."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
import requests

from ...errors import LabStartError
from ...toxiproxy.client import ToxiproxyControl
from ...workload.client import ApiClient, ControlPlane
from ..base import Lab, running
from ..hooks import PLAN, HookError, public_url
from ..targets import EVIDENCE_GATEWAY
from .config import PLATFORM_NAMES, ExternalConfig, NodeConfig
from .observer import ExternalFailover
from .parts import (
    ExternalApiTier,
    ExternalClock,
    ExternalDatabase,
    ExternalEvidence,
    ExternalPlan,
    ExternalPlatforms,
    ExternalQueues,
    ExternalSiem,
    ProxyNames,
)


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
        # its parts: each acts through the plan's runbook hooks, reads and endpoints
        self.database = ExternalDatabase(self)
        self.api = ExternalApiTier(self)
        self.evidence = ExternalEvidence(self)
        self._parts: tuple[object, ...] = (
            self.database,
            self.api,
            self.evidence,
            ExternalSiem(self),
            ExternalPlatforms(self),
            ExternalQueues(self),
            ExternalClock(self),
            ExternalPlan(config),
        )

    def parts(self) -> tuple[object, ...]:
        return self._parts

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
        deployment (harness.lab.external.PROVIDES), of what its parts implement."""
        return self.config.capabilities() & super().capabilities()

    # -- lifecycle: nothing to start, only to check -----------------------------------------
    def up(self) -> ExternalLab:
        client = ApiClient(self.api_url, timeout=5)
        try:
            reply = client.send(ControlPlane.health())
        finally:
            client.close()
        if reply.status is None:  # no HTTP answer at all
            raise LabStartError(f"external API {self.api_url} does not answer: {reply.error}")
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
            down = [z for z in self.config.api_instances if not self.api.api_instance_alive(z)]
            checks["api_instances"] = (not down, f"not live: {down}" if down else "all live")
        return checks

    def set_replication(self, mode: str) -> None:
        raise NotImplementedError(f"the external lab cannot switch its replication mode to {mode}")

    def current_primary(self) -> str:
        """The node that answers as primary (LabStartError when none does)."""
        for name, node in self.config.nodes.items():
            try:
                if not node.query("SELECT pg_is_in_recovery()", timeout=2)[0][0]:
                    return name
            except (psycopg.Error, LabStartError):
                continue
        raise LabStartError("no database node answers as primary")

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
                    f"{self.config.gateway_url}/_drill/fault", headers=self.evidence.gateway_headers("s3"), timeout=10
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


GATEWAY_TARGET = EVIDENCE_GATEWAY


def _public(dsn: str) -> str:
    """A conninfo for display: host, port, dbname and user only."""
    parts = [p for p in dsn.split() if p.split("=", 1)[0] in ("host", "port", "dbname", "user")]
    return " ".join(parts)
