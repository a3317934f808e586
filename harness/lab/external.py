"""The external provider: a deployment the harness did not start (staging), reached by its endpoints.

Nothing is started or stopped here. Faults go through the Toxiproxy proxies that sit in front
of the staging dependencies, or through the runbook hooks the plan names (a command or an
HTTP call per action). Safety interlock: harm needs `allow_destructive: true` in the plan AND
`--confirm <drill id>` on the command line; without both the drill is a dry run (probes only).
Credentials come from environment variables or files the plan names, never from the plan,
and never appear in results, reports or logs.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

import psycopg
import requests

from ..faults import ToxiproxyControl
from ..wait import wait_for
from .base import Lab, LabStartError
from .failover import FailbackRefused, transaction_lag
from .hooks import Hook

ACTIONS = ("kill_database_primary", "database_failover", "database_rebuild", "database_failback")
KNOWN_KEYS = {"provider", "replication", "api_url", "toxiproxy_url", "database", "s3", "queues",
              "actions", "allow_destructive", "blast_radius", "siem_file", "name"}


@dataclass(frozen=True)
class NodeConfig:
    name: str
    dsn: str                      # without password
    password_env: str | None = None
    password_file: str | None = None

    def password(self) -> str | None:
        """The node's password from its env variable or file; LabStartError names what is missing."""
        if self.password_env:
            value = os.environ.get(self.password_env)
            if not value:
                raise LabStartError(f"database node {self.name}: environment variable "
                                    f"{self.password_env} is not set (the plan names it for the password)")
            return value
        if self.password_file:
            try:
                return Path(self.password_file).read_text().strip()
            except OSError as exc:
                raise LabStartError(f"database node {self.name}: cannot read password_file "
                                    f"{self.password_file}: {exc.strerror}") from None
        return None

    def query(self, statement: str, params=None, timeout: int = 3) -> list[tuple]:
        with psycopg.connect(self.dsn, password=self.password(), connect_timeout=timeout,
                             autocommit=True) as conn:
            return conn.execute(statement, params).fetchall()


@dataclass(frozen=True)
class ExternalConfig:
    api_url: str
    toxiproxy_url: str
    nodes: dict[str, NodeConfig]
    failover_target: str
    replication_proxy: str | None
    actions: dict[str, Hook]
    allow_destructive: bool = False
    blast_radius: tuple[str, ...] = ()
    siem_file: str | None = None
    s3: dict = field(default_factory=dict)
    queues: dict = field(default_factory=dict)
    name: str = ""                # how reports name the target ("external: <name>"); default the API host

    @staticmethod
    def parse(data: dict, fail: Callable[[str, str], Exception]) -> "ExternalConfig":
        from ..plan import quoted

        unknown = sorted(str(k) for k in data if k not in KNOWN_KEYS)
        if unknown:
            raise fail(f"lab.{unknown[0]}", f"unknown key for the external provider; known: "
                                            f"{', '.join(sorted(KNOWN_KEYS))}")
        for key in ("api_url", "toxiproxy_url"):
            if not isinstance(data.get(key), str) or not data[key].startswith(("http://", "https://")):
                raise fail(f"lab.{key}", "required: the http(s) URL of the deployment's endpoint")
            if _userinfo(data[key]):
                raise fail(f"lab.{key}", "credentials must not be written in a URL of the plan "
                                         "(user:password@); remove them")
        database = data.get("database")
        if not isinstance(database, dict) or not isinstance(database.get("nodes"), dict) \
                or len(database["nodes"]) < 2:
            raise fail("lab.database.nodes", "required: at least two nodes, each {dsn, password_env or "
                                             "password_file}")
        nodes = {}
        for name, node in database["nodes"].items():
            if not isinstance(name, str) or not name or "\n" in name:
                raise fail(f"lab.database.nodes.{quoted(name, 30)}", "a node's name is one line of text, e.g. pg-a")
            key = f"lab.database.nodes.{name}"
            if not isinstance(node, dict) or not isinstance(node.get("dsn"), str):
                raise fail(f"{key}.dsn", "required: a libpq conninfo without the password")
            if "password" in node or _dsn_has_password(node["dsn"]):
                raise fail(f"{key}.dsn" if "password" not in node else key,
                           "a password must not be written in the plan: name it with "
                           "password_env (an environment variable) or password_file")
            for secret_key in ("password_env", "password_file"):
                if node.get(secret_key) is not None and not isinstance(node[secret_key], str):
                    raise fail(f"{key}.{secret_key}", "must name an environment variable (password_env) "
                                                      "or a file (password_file)")
            nodes[name] = NodeConfig(name, node["dsn"], node.get("password_env"), node.get("password_file"))
        target = database.get("failover_target")
        if not isinstance(target, str) or target not in nodes:
            raise fail("lab.database.failover_target", f"must be one of the nodes: {', '.join(nodes)}; "
                                                       f"got {quoted(target)}")
        proxy = database.get("replication_proxy")
        if proxy is not None and not isinstance(proxy, str):
            raise fail("lab.database.replication_proxy", f"must be a Toxiproxy proxy name, got {quoted(proxy)}")
        actions_data = data.get("actions") or {}
        if not isinstance(actions_data, dict):
            raise fail("lab.actions", "must be a mapping of action name to hook")
        for name in actions_data:
            if not isinstance(name, str) or name not in ACTIONS:
                raise fail(f"lab.actions.{quoted(name, 40).strip(chr(39))}",
                           f"unknown action; known: {', '.join(ACTIONS)}")
        actions = {name: Hook.parse(name, hook, fail) for name, hook in actions_data.items()}
        allow = data.get("allow_destructive", False)
        if not isinstance(allow, bool):
            raise fail("lab.allow_destructive", "must be true or false")
        radius = data.get("blast_radius", [])
        if not isinstance(radius, list) or not all(isinstance(r, str) for r in radius):
            raise fail("lab.blast_radius", "must be a list of names that faults may touch "
                                           "(Toxiproxy proxy names, database-primary)")
        siem = data.get("siem_file")
        if siem is not None and not isinstance(siem, str):
            raise fail("lab.siem_file", "must be a path")
        for key in ("s3", "queues"):
            if data.get(key) is not None and not isinstance(data[key], dict):
                raise fail(f"lab.{key}", "must be a mapping")
        name = data.get("name", urlsplit(data["api_url"]).hostname or data["api_url"])
        if not isinstance(name, str) or not name.strip() or "\n" in name:
            raise fail("lab.name", "must be one line naming the target, e.g. staging-eu")
        return ExternalConfig(
            api_url=data["api_url"].rstrip("/"), toxiproxy_url=data["toxiproxy_url"].rstrip("/"),
            nodes=nodes, failover_target=target, replication_proxy=proxy,
            actions=actions, allow_destructive=allow, blast_radius=tuple(radius), siem_file=siem,
            s3=data.get("s3") or {}, queues=data.get("queues") or {}, name=name.strip())


def _userinfo(url: str) -> bool:
    """The URL carries user:password@ (or a user name alone: a token written as a user)."""
    try:
        return "@" in urlsplit(url).netloc
    except ValueError:
        return False


def _dsn_has_password(dsn: str) -> bool:
    """A password written in a conninfo: `password=...` (key/value, or a URI query parameter) or
    the password of a URI's user:password@ (postgresql:// or postgres://)."""
    if "password=" in dsn.replace(" ", "").lower():
        return True
    if dsn.strip().lower().startswith(("postgresql://", "postgres://")):
        try:
            netloc = urlsplit(dsn.strip()).netloc
        except ValueError:
            return ":" in dsn.split("@", 1)[0].split("//", 1)[-1]
        return ":" in netloc.rpartition("@")[0]
    return False


class ExternalFailover:
    """Watches a failover the platform performs (or the failover hook asks for), from outside:
    detect = the old primary stops answering; promote = the target accepts writes
    (pg_is_in_recovery() false); reconnect = the API reports ServiceHealth = Healthy again."""

    def __init__(self, lab: "ExternalLab"):
        self.lab = lab
        self.candidate = lab.config.failover_target
        self.state = "watching"
        self.error: str | None = None
        self._thread: threading.Thread | None = None

    def watch(self, failed: str) -> None:
        self.state = "failing_over"
        self._thread = threading.Thread(target=self._observe, args=(failed,), daemon=True)
        self._thread.start()

    def _answers(self, name: str) -> bool:
        try:
            self.lab.node(name).query("SELECT 1", timeout=1)
            return True
        except (psycopg.Error, LabStartError):
            return False

    def _writable(self, name: str) -> bool:
        try:
            return not self.lab.node(name).query("SELECT pg_is_in_recovery()", timeout=1)[0][0]
        except (psycopg.Error, LabStartError):
            return False

    def _healthy(self) -> bool:
        try:
            body = requests.get(self.lab.api_url + "/health", timeout=2).json()
            return body.get("ServiceHealth") == "Healthy"
        except (requests.RequestException, ValueError):
            return False

    def _observe(self, failed: str, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        target, emit = self.candidate, self.lab.on_event

        def left() -> float:
            return max(0.0, deadline - time.monotonic())
        try:
            wait_for(lambda: not self._answers(failed), f"{failed} still answers", timeout=left(), interval=0.1)
            emit("detect", failed, {"observed": "primary stopped answering"})
            hook = self.lab.config.actions.get("database_failover")
            if hook is not None:
                hook.run(failed=failed, target=target)
            in_recovery = [time.monotonic()]      # the start of the last poll that found it still a replica

            def writable() -> bool:
                started = time.monotonic()
                if self._writable(target):
                    return True
                in_recovery[0] = started
                return False
            wait_for(writable, f"{target} was not promoted", timeout=left(), interval=0.1)
            # seen from outside, a poll late: it was promoted no earlier than that last poll began
            emit("promote", target, {"observed": "target accepts writes",
                                     "not_before_s": round(time.monotonic() - in_recovery[0], 3)})
            wait_for(self._healthy, "the API did not report Healthy again", timeout=left(), interval=0.1)
            emit("reconnect", "api", {"observed": "ServiceHealth = Healthy"})
            self.state = "failed_over"
        except Exception as exc:
            self.state, self.error = "error", f"{type(exc).__name__}: {exc}"
            emit("failover_error", target, {"error": self.error})

    def wait_failed_over(self, timeout: float) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
        return self.state == "failed_over"

    def transaction_lag(self, replica: str) -> float:
        primary = self.lab.node(self.lab.database_primary())
        return transaction_lag(primary.query, self.lab.node(replica).query)

    def rebuild(self, old: str, synchronous: bool) -> None:
        """The runbook rebuilds the old primary as a replica: it is then the failover target."""
        self.lab.action("database_rebuild", node=old, synchronous=synchronous)
        self.lab.on_event("rebuild", old, {})
        self.candidate, self.state = old, "watching"

    def restart(self, name: str) -> None:
        raise RuntimeError(f"no failover happened and the external lab has no runbook action to start {name} "
                           f"again: the platform must restore it")

    def failback(self, to: str, max_lag: float = 5.0, synchronous: bool = True) -> float:
        lag = self.transaction_lag(to)
        self.lab.on_event("lag_check", to, {"transaction_lag_s": lag, "limit_s": max_lag})
        if lag > max_lag:
            raise FailbackRefused(lag, max_lag)
        current = self.lab.database_primary()
        self.lab.action("database_failback", to=to, max_lag=max_lag, synchronous=synchronous)
        self.lab.on_event("failback", to, {"transaction_lag_s": lag})
        self.candidate, self.state = current, "watching"
        return lag


class ExternalLab(Lab):
    provider = "external"

    def __init__(self, config: ExternalConfig, confirmed: bool, replication: str = "sync"):
        self.config = config
        self.api_url = config.api_url
        self.confirmed = confirmed
        self.dry_run = not (config.allow_destructive and confirmed)
        self.replication = replication
        self.on_event: Callable[[str, str, dict], None] = lambda kind, name, detail: None
        self.toxiproxy: ToxiproxyControl | None = None
        self.failover: ExternalFailover | None = None

    def interlock(self) -> str:
        if not self.config.allow_destructive:
            return "the plan does not set allow_destructive: true"
        if not self.confirmed:
            return "the command line has no --confirm <drill id>"
        return ""

    def capabilities(self) -> frozenset[str]:
        """What the plan's hooks, proxies and files let the harness do to this deployment."""
        caps = set()
        if "kill_database_primary" in self.config.actions:
            caps.add("database_kill")
        if self.config.replication_proxy:
            caps.add("replication_cut")
        if self.config.siem_file:
            caps.add("siem")
        return frozenset(caps)

    # -- lifecycle: nothing to start, only to check -----------------------------------------
    def up(self) -> "ExternalLab":
        try:
            requests.get(self.api_url + "/health", timeout=5)
        except requests.RequestException as exc:
            raise LabStartError(f"external API {self.api_url} does not answer: {type(exc).__name__}") from None
        self.toxiproxy = ToxiproxyControl(self.config.toxiproxy_url)
        try:
            self.toxiproxy.version()
        except Exception as exc:
            raise LabStartError(f"Toxiproxy at {self.config.toxiproxy_url} does not answer: "
                                f"{type(exc).__name__}") from None
        for node in self.config.nodes.values():
            try:
                node.query("SELECT 1")
            except psycopg.Error as exc:
                raise LabStartError(f"database node {node.name} ({_public(node.dsn)}) does not answer: "
                                    f"{type(exc).__name__}") from None
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
            raise LabStartError(f"the plan has no lab.actions.{name} hook for this step")
        return hook.run(**arguments)

    def endpoints(self) -> dict[str, Any]:
        return {"api": self.api_url, "toxiproxy": self.config.toxiproxy_url,
                "database": {n: _public(c.dsn) for n, c in self.config.nodes.items()},
                "s3": self.config.s3.get("endpoint"), "actions": {n: h.describe() for n, h in
                                                                   self.config.actions.items()}}

    def processes(self) -> dict[str, int | None]:
        return {}

    def describe(self) -> dict[str, Any]:
        return {"provider": self.provider, "target": self.config.name, "api": self.api_url,
                "replication": self.replication, "mode": "dry run (probes only)" if self.dry_run else "destructive (confirmed)",
                "blast_radius": ", ".join(self.config.blast_radius) or "none"}

    def steady_state_checks(self) -> dict[str, tuple[bool, str]]:
        target = self.failover.candidate
        try:
            status = self.node(target).query("SELECT status FROM pg_stat_wal_receiver")
            streaming = bool(status) and status[0][0] == "streaming"
            detail = f"{target}: {status[0][0] if status else 'not connected'}"
        except (psycopg.Error, LabStartError) as exc:
            streaming, detail = False, f"{target}: {type(exc).__name__}"
        return {"replication": (streaming, detail),
                "failover_controller": (self.failover.state == "watching", self.failover.state)}

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
        self.failover.watch(name)

    def partition_replication(self, replica: str) -> Any:
        if self.dry_run:
            raise PermissionError(f"dry run: fault refused ({self.interlock()})")
        if not self.config.replication_proxy:
            raise LabStartError("the plan has no lab.database.replication_proxy to cut")
        return super().partition_replication(replica)

    def replication_proxy_name(self, replica: str) -> str:
        return self.config.replication_proxy

    def reset_faults(self) -> None:
        """Staging's Toxiproxy is shared: heal only the harness's own toxics (drill_*) on the
        proxies of the blast radius, never anything else."""
        if self.dry_run:
            return
        for name in self.config.blast_radius:
            try:
                proxy = self.toxiproxy.proxy(name)
            except Exception:
                continue   # not a proxy (e.g. database-primary)
            for toxic in proxy.toxics():
                if toxic.startswith("drill_"):
                    self.toxiproxy.remove_toxic(name, toxic)
            if not proxy.enabled:
                self.toxiproxy.set_enabled(name, True)

    def siem_records(self) -> list[dict] | None:
        if not self.config.siem_file:
            return None
        try:
            lines = Path(self.config.siem_file).read_text().splitlines()
        except OSError:
            return None
        return [json.loads(line) for line in lines if line.strip().startswith("{")]

    def fault_targets(self) -> dict[str, str]:
        """What each destructive step of the database drills touches (for the blast radius)."""
        return {"the database primary is killed": "database-primary",
                "the replication link to the replica is cut": self.config.replication_proxy or "?"}


def _public(dsn: str) -> str:
    """A conninfo for display: host, port, dbname and user only."""
    parts = [p for p in dsn.split() if p.split("=", 1)[0] in ("host", "port", "dbname", "user")]
    return " ".join(parts)
