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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import requests

from ..errors import FaultError, quoted
from ..steps.registry import (
    EVERY_API_INSTANCE,
    EVIDENCE_GATEWAY,
    FAILBACK_LINKS,
    PROXY,
    REPLICATION_LINK,
    TargetNames,
)
from ..toxiproxy.client import ToxiproxyControl
from ..wait import wait_for
from .base import Lab, LabStartError
from .failover import UNREACHABLE, WRITE_BLOCKED, FailbackRefused, transaction_lag
from .hooks import ENV_NAME, PLAN, REFUSED, Hook, HookError, public_url, url_problem, url_secret

# runbook hooks the plan may name (lab.actions), and the arguments each is called with
ACTIONS = {
    "kill_database_primary": "node",
    "database_failover": "failed, target",
    "database_rebuild": "node, synchronous",
    "database_failback": "to, max_lag, synchronous",
    "kill_api_instance": "instance",
    "redeploy_api_instance": "instance",
    "degrade_platform": "platform, mode (throttle, error, hang or ok), retry_after, requests, for_s",
    "kill_platform": "platform",
    "restart_platform": "platform",
    "block_event_store_writes": "node, time_limit_s",
    "release_event_store_writes": "node",
    "kill_connector_worker": "platform",
    "replace_connector_worker": "platform",
}
# reads of the target's own parts (lab.reads): hooks that answer JSON
READS = {
    "platform_requests": "platform; answers the platform API's request log: a list of "
                         "{at, idempotency_key, path, status, ...}, or {requests: [...]}",
    "connector_replacements": "no argument; answers the workers the auto-scaling group replaced: a list of "
                              "{at, platform, old_pid, new_pid}, or {replacements: [...]}",
}
KNOWN_KEYS = {"provider", "replication", "api_url", "toxiproxy_url", "database", "s3", "queues",
              "actions", "reads", "api_tier", "proxies", "evidence_gateway", "clock",
              "allow_destructive", "blast_radius", "siem_file", "name"}
PLATFORM_NAMES = ("intune", "jamf", "sccm", "landscape", "ansible")   # harness.lab.connectors.PLATFORMS
AWS_KEYS = {"endpoint", "region", "access_key_env", "secret_key_env", "access_key_file", "secret_key_file"}
S3_KEYS = AWS_KEYS | {"bucket", "replica_bucket", "replica_endpoint"}
QUEUE_KEYS = AWS_KEYS | {"prefix"}
CREDENTIAL_WORDS = ("secret", "password", "token", "access_key_id", "key_id", "credential")

# What of the plan gives the external lab each capability (harness.lab.base.CAPABILITIES); the
# backup service is never one of them: the backup and restore rows run on the embedded lab.
PROVIDES: dict[str, tuple[str, ...]] = {
    "database_kill": ("actions.kill_database_primary",),
    "replication_cut": ("database.replication_proxy",),
    "siem": ("siem_file",),
    "api_instances": ("api_tier", "actions.kill_api_instance", "actions.redeploy_api_instance"),
    "evidence_links": ("proxies.evidence_store", "proxies.evidence_replica"),
    "evidence_read": ("s3",),
    "evidence_http_errors": ("evidence_gateway",),
    "platform_api_faults": ("actions.degrade_platform",),
    "platform_link": ("proxies.platforms",),
    "platform_kill": ("actions.kill_platform", "actions.restart_platform"),
    "platform_requests": ("reads.platform_requests",),
    "connector_workers": ("actions.kill_connector_worker", "reads.connector_replacements"),
    "queues": ("queues",),
    "clock": ("clock",),
    "event_store_block": ("actions.block_event_store_writes", "actions.release_event_store_writes"),
}


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
            return _read_secret_file(f"database node {self.name}: password_file", self.password_file)
        return None

    def query(self, statement: str, params=None, timeout: int = 3) -> list[tuple]:
        with psycopg.connect(self.dsn, password=self.password(), connect_timeout=timeout,
                             autocommit=True) as conn:
            return conn.execute(statement, params).fetchall()


def _secret(what: str, env: str | None, file: str | None) -> str | None:
    """A credential from the environment variable or the file the plan names (None: neither named);
    LabStartError names what is missing, never the value."""
    if env:
        value = os.environ.get(env)
        if not value:
            raise LabStartError(f"{what}: environment variable {env} is not set (the plan names it)")
        return value
    if file:
        return _read_secret_file(what, file)
    return None


def _read_secret_file(what: str, file: str) -> str:
    """The secret in `file`, read at use (a regular file of at most 64 KiB: a FIFO is refused, not
    waited on); LabStartError names the file, never the value."""
    from ..inputs import InputError, printable, read_capped
    from .hooks import TOKEN_MAX

    try:
        return read_capped(file, TOKEN_MAX, "the secret file").decode("utf-8").strip()
    except FileNotFoundError:
        raise LabStartError(f"{what}: cannot read {printable(file, 200)}: no such file") from None
    except (InputError, OSError, UnicodeDecodeError):
        raise LabStartError(f"{what}: cannot read {printable(file, 200)} as a UTF-8 regular file of at most "
                            f"64 KiB") from None


@dataclass(frozen=True)
class Secret:
    """Where a credential is: an environment variable or a file the plan names (never the value)."""
    env: str | None = None
    file: str | None = None

    def value(self, what: str) -> str | None:
        return _secret(what, self.env, self.file)


@dataclass(frozen=True)
class AwsEndpoint:
    """An S3 or SQS endpoint of the target, read straight by the harness (evidence, not what the
    system says). Keys from the variables or files the plan names, else boto3's own chain."""
    endpoint: str
    region: str = "us-east-1"
    access_key: Secret = Secret()
    secret_key: Secret = Secret()
    options: dict = field(default_factory=dict)     # bucket, replica_bucket, replica_endpoint, prefix

    def client(self, service: str, endpoint: str | None = None):
        import boto3
        import botocore.config

        keys = {}
        access = self.access_key.value(f"lab.{'s3' if service == 's3' else 'queues'}.access_key")
        secret = self.secret_key.value(f"lab.{'s3' if service == 's3' else 'queues'}.secret_key")
        if access and secret:
            keys = {"aws_access_key_id": access, "aws_secret_access_key": secret}
        config = botocore.config.Config(connect_timeout=5, read_timeout=10, retries={"total_max_attempts": 2},
                                        s3={"addressing_style": "path"})
        return boto3.session.Session(region_name=self.region, **keys).client(
            service, endpoint_url=endpoint or self.endpoint, config=config)


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
    s3: AwsEndpoint | None = None
    queues: AwsEndpoint | None = None
    name: str = ""                # how reports name the target ("external: <name>"); default the API host
    reads: dict[str, Hook] = field(default_factory=dict)
    api_instances: dict[str, str] = field(default_factory=dict)   # availability zone -> its own URL
    probe_window_s: float | None = None
    proxies: dict[str, str] = field(default_factory=dict)         # evidence_store, evidence_replica
    platform_proxies: dict[str, str] = field(default_factory=dict)
    gateway_url: str | None = None
    gateway_token: Secret = Secret()
    clock_token: Secret | None = None
    # node -> the Toxiproxy proxy on its replication link while it is a replica (the failback
    # drill slows the rebuilt node's link: lab.database.replication_proxies)
    replication_proxies: dict[str, str] = field(default_factory=dict)

    def provided(self, key: str) -> bool:
        """The plan sets this key (a path of PROVIDES)."""
        head, _, rest = key.partition(".")
        if head == "actions":
            return rest in self.actions
        if head == "reads":
            return rest in self.reads
        if head == "proxies":
            return bool(self.platform_proxies) if rest == "platforms" else rest in self.proxies
        return bool({"database.replication_proxy": self.replication_proxy, "siem_file": self.siem_file,
                     "s3": self.s3, "queues": self.queues, "api_tier": self.api_instances,
                     "evidence_gateway": self.gateway_url, "clock": self.clock_token}.get(key))

    def capabilities(self) -> frozenset[str]:
        return frozenset(cap for cap, keys in PROVIDES.items() if all(self.provided(k) for k in keys))

    def missing_keys(self, capability: str) -> list[str]:
        """What the plan must set under lab: to give the capability ([] when it has it, or when no
        key can: the backup service)."""
        return [f"lab.{k}" for k in PROVIDES.get(capability, ()) if not self.provided(k)]

    @staticmethod
    def parse(data: dict, fail: Callable[[str, str], Exception]) -> ExternalConfig:
        unknown = sorted(str(k) for k in data if k not in KNOWN_KEYS)
        if unknown:
            raise fail(f"lab.{unknown[0]}", f"unknown key for the external provider; known: "
                                            f"{', '.join(sorted(KNOWN_KEYS))}")
        for key in ("api_url", "toxiproxy_url"):
            _url(data.get(key), f"lab.{key}", fail, "required: the http(s) URL of the deployment's endpoint")
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
            if "password" in node:
                raise fail(key, "a password must not be written in the plan: name it with "
                                "password_env (an environment variable) or password_file")
            problem = _dsn_problem(node["dsn"])
            if problem:
                raise fail(f"{key}.dsn", problem)
            for secret_key in ("password_env", "password_file"):
                value = node.get(secret_key)
                # an empty name would connect without the password the plan meant to give
                if secret_key in node and not (isinstance(value, str) and value.strip() and "\0" not in value
                                               and (secret_key == "password_file" or ENV_NAME.fullmatch(value))):
                    raise fail(f"{key}.{secret_key}", "must name an environment variable (password_env, e.g. "
                                                      "STAGING_PG_PASSWORD) or a file (password_file); leave the "
                                                      "key out when the node needs no password")
            nodes[name] = NodeConfig(name, node["dsn"], node.get("password_env"), node.get("password_file"))
        target = database.get("failover_target")
        if not isinstance(target, str) or target not in nodes:
            raise fail("lab.database.failover_target", f"must be one of the nodes: {', '.join(nodes)}; "
                                                       f"got {quoted(target)}")
        proxy = database.get("replication_proxy")
        if proxy is not None and not isinstance(proxy, str):
            raise fail("lab.database.replication_proxy", f"must be a Toxiproxy proxy name, got {quoted(proxy)}")
        links = database.get("replication_proxies", {})
        if not isinstance(links, dict) or not all(isinstance(n, str) and n in nodes and isinstance(v, str)
                                                  and v.strip() for n, v in links.items()):
            raise fail("lab.database.replication_proxies", f"must map nodes ({', '.join(nodes)}) to the Toxiproxy "
                                                           f"proxy on each one's replication link, e.g. "
                                                           f"{{pg-a: repl-pg-a}}")
        actions = _hooks(data, "actions", ACTIONS, fail)
        reads = _hooks(data, "reads", READS, fail)
        allow = data.get("allow_destructive", False)
        if not isinstance(allow, bool):
            raise fail("lab.allow_destructive", "must be true or false")
        radius = data.get("blast_radius", [])
        if not isinstance(radius, list) or not all(isinstance(r, str) and r.strip() for r in radius):
            raise fail("lab.blast_radius", "must be a list of names that faults may touch "
                                           "(Toxiproxy proxy names, database-primary, api-<zone>, "
                                           "<platform>-api, evidence-gateway, connector-workers)")
        siem = data.get("siem_file")
        if siem is not None and not isinstance(siem, str):
            raise fail("lab.siem_file", "must be a path")
        name = data.get("name", urlsplit(data["api_url"]).hostname or data["api_url"])
        if not isinstance(name, str) or not name.strip() or not name.isprintable() or len(name) > 200:
            raise fail("lab.name", "must be one line naming the target (no control character), e.g. staging-eu")
        instances, window = _api_tier(data.get("api_tier"), fail)
        proxies, platform_proxies = _proxies(data.get("proxies"), fail)
        gateway_url, gateway_token = _gateway(data.get("evidence_gateway"), fail)
        clock = data.get("clock")
        clock_token = None
        if clock is not None:
            _known(clock, "lab.clock", {"token_env", "token_file"}, fail,
                   "a mapping {token_env or token_file}: the bearer token of the Control Plane's /_clock")
            clock_token = _secret_ref(clock, "lab.clock", fail)
        return ExternalConfig(
            api_url=data["api_url"].rstrip("/"), toxiproxy_url=data["toxiproxy_url"].rstrip("/"),
            nodes=nodes, failover_target=target, replication_proxy=proxy,
            actions=actions, allow_destructive=allow, blast_radius=tuple(radius), siem_file=siem,
            s3=_aws(data.get("s3"), "lab.s3", S3_KEYS, ("bucket", "replica_bucket"), fail),
            queues=_aws(data.get("queues"), "lab.queues", QUEUE_KEYS, ("prefix",), fail),
            name=name.strip(), reads=reads, api_instances=instances, probe_window_s=window,
            proxies=proxies, platform_proxies=platform_proxies, gateway_url=gateway_url,
            gateway_token=gateway_token, clock_token=clock_token, replication_proxies=dict(links))


def _url(value: Any, key: str, fail, what: str) -> str:
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        raise fail(key, what)
    problem = url_problem(value)        # http://[::1 or a port of 99999: refused now, not a crash later
    if problem:
        raise fail(key, f"{problem}; {what}")
    if _userinfo(value):
        raise fail(key, "credentials must not be written in a URL of the plan (user:password@); remove them")
    secret = url_secret(value)
    if secret:
        raise fail(key, f"a credential must not be written in the plan ({secret}); name an environment "
                        f"variable or a file that holds it")
    return value.rstrip("/")


def _known(value: Any, key: str, known: set[str], fail, what: str) -> None:
    """value is a mapping of known keys only; a credential written as a key is refused as such."""
    if not isinstance(value, dict):
        raise fail(key, f"must be {what}")
    for k in value:
        if not isinstance(k, str) or k not in known:
            shown = str(k)[:40]
            if isinstance(k, str) and any(w in k.lower() for w in CREDENTIAL_WORDS) and \
                    not k.endswith(("_env", "_file")):
                raise fail(f"{key}.{shown}", "a credential must not be written in the plan: name an "
                                             "environment variable (..._env) or a file (..._file) that holds it")
            raise fail(f"{key}.{shown}", f"unknown key; known: {', '.join(sorted(known))}")


def _secret_ref(value: dict, key: str, fail, prefix: str = "token") -> Secret:
    env, file = value.get(f"{prefix}_env"), value.get(f"{prefix}_file")
    for k, v in ((f"{prefix}_env", env), (f"{prefix}_file", file)):
        if v is not None and (not isinstance(v, str) or not v):
            raise fail(f"{key}.{k}", "must name an environment variable (_env) or a file (_file)")
    return Secret(env, file)


def _hooks(data: dict, section: str, known: dict[str, str], fail) -> dict[str, Hook]:
    hooks = data.get(section) or {}
    if not isinstance(hooks, dict):
        raise fail(f"lab.{section}", "must be a mapping of name to hook ({command: [...]} or {http: {url}})")
    for name in hooks:
        if not isinstance(name, str) or name not in known:
            raise fail(f"lab.{section}.{quoted(name, 40).strip(chr(39))}",
                       f"unknown {section[:-1]}; known: {', '.join(known)}")
    return {name: Hook.parse(name, hook, fail, section=f"lab.{section}") for name, hook in hooks.items()}


def _api_tier(value: Any, fail) -> tuple[dict[str, str], float | None]:
    if value is None:
        return {}, None
    what = "a mapping {instances: {<zone>: <the instance's own URL>}, probe_window_s: <seconds>}"
    _known(value, "lab.api_tier", {"instances", "probe_window_s"}, fail, what)
    instances = value.get("instances")
    if not isinstance(instances, dict) or not instances:
        raise fail("lab.api_tier.instances", "required: each availability zone's API instance and its own URL "
                                             "(the harness sees it dead or live at <URL>/health/live)")
    out = {}
    for zone, url in instances.items():
        if not isinstance(zone, str) or not zone or any(c.isspace() for c in zone):
            raise fail("lab.api_tier.instances", f"a zone's name is one word, e.g. az1; got {str(zone)[:40]!r}")
        out[zone] = _url(url, f"lab.api_tier.instances.{zone}", fail, "must be the http(s) URL of the instance")
    window = value.get("probe_window_s")
    if isinstance(window, bool) or not isinstance(window, (int, float)) or not 0 < window <= 600:
        raise fail("lab.api_tier.probe_window_s", "required: the seconds the load balancer takes to take a dead "
                                                  "instance out of rotation (its probe interval x failures to "
                                                  "fall, plus one interval), e.g. 1.5")
    return out, float(window)


def _proxies(value: Any, fail) -> tuple[dict[str, str], dict[str, str]]:
    if value is None:
        return {}, {}
    what = "a mapping {evidence_store: PROXY, evidence_replica: PROXY, platforms: {<platform>: PROXY}}"
    _known(value, "lab.proxies", {"evidence_store", "evidence_replica", "platforms"}, fail, what)
    proxies = {}
    for key in ("evidence_store", "evidence_replica"):
        if key in value:
            if not isinstance(value[key], str) or not value[key]:
                raise fail(f"lab.proxies.{key}", "must be the name of a Toxiproxy proxy")
            proxies[key] = value[key]
    platforms = value.get("platforms") or {}
    _known(platforms, "lab.proxies.platforms", set(PLATFORM_NAMES), fail,
           f"a mapping of platform ({', '.join(PLATFORM_NAMES)}) to its Toxiproxy proxy")
    for platform, name in platforms.items():
        if not isinstance(name, str) or not name:
            raise fail(f"lab.proxies.platforms.{platform}", "must be the name of a Toxiproxy proxy")
    return proxies, dict(platforms)


def _gateway(value: Any, fail) -> tuple[str | None, Secret]:
    if value is None:
        return None, Secret()
    _known(value, "lab.evidence_gateway", {"url", "token_env", "token_file"}, fail,
           "a mapping {url, token_env or token_file}: the HTTP fault gateway in front of the evidence store")
    url = _url(value.get("url"), "lab.evidence_gateway.url", fail,
               "required: the http(s) URL of the HTTP fault gateway (python -m harness.lab.httpfault)")
    return url, _secret_ref(value, "lab.evidence_gateway", fail)


def _aws(value: Any, key: str, known: set[str], required: tuple[str, ...], fail) -> AwsEndpoint | None:
    if value is None:
        return None
    _known(value, key, known, fail, f"a mapping with {', '.join(sorted(known))}")
    endpoint = _url(value.get("endpoint"), f"{key}.endpoint", fail, "required: the http(s) URL of the service")
    region = value.get("region", "us-east-1")
    if not isinstance(region, str) or not region:
        raise fail(f"{key}.region", "must be a region name, e.g. us-east-1")
    for name in required:
        if not isinstance(value.get(name), str) or not value[name]:
            raise fail(f"{key}.{name}", "required: a name" + (" (the Control Plane's --queue-prefix: queues "
                                                               "<prefix>-<platform> and <prefix>-<platform>-dlq)"
                                                               if name == "prefix" else " of a bucket"))
    options = {k: value[k] for k in ("bucket", "replica_bucket", "prefix") if k in value}
    if "replica_endpoint" in value:
        options["replica_endpoint"] = _url(value["replica_endpoint"], f"{key}.replica_endpoint", fail,
                                           "must be the http(s) URL of the alternate region's object store")
    keys = [_secret_ref(value, key, fail, prefix) for prefix in ("access_key", "secret_key")]
    if bool(keys[0].env or keys[0].file) != bool(keys[1].env or keys[1].file):
        raise fail(f"{key}.secret_key_env", "name both keys (access_key_env/_file and secret_key_env/_file), "
                                            "or neither (boto3's own credential chain)")
    return AwsEndpoint(endpoint, region, keys[0], keys[1], options)


def _userinfo(url: str) -> bool:
    """The URL carries user:password@ (or a user name alone: a token written as a user)."""
    try:
        return "@" in urlsplit(url).netloc
    except ValueError:
        return False


SECRET_CONNINFO_KEYS = ("password", "sslpassword")


def _dsn_problem(dsn: str) -> str | None:
    """What is wrong with a node's conninfo, as libpq itself reads it (psycopg's parser, so that
    `password\t=x`, `?%70assword=x` and a URI's user:password@ are all seen): a password written
    in it, or text libpq cannot read. The message never quotes the conninfo (it may hold the
    secret); None when it is fine."""
    if "\0" in dsn:      # libpq would stop reading there, and miss a password after it
        return "has a NUL character; write the conninfo without it"
    if not dsn.strip():
        return "required: a libpq conninfo without the password, e.g. 'host=pg-a port=5432 dbname=x user=drill'"
    try:
        parsed = psycopg.conninfo.conninfo_to_dict(dsn)
    except (psycopg.Error, ValueError, TypeError):
        return ("not a conninfo libpq can read (key=value pairs such as 'host=pg-a port=5432 dbname=x "
                "user=drill', or a postgresql:// URI, the scheme in lowercase); fix its syntax, and leave any "
                "password out of it: name it with password_env or password_file")
    found = [k for k in SECRET_CONNINFO_KEYS if k in parsed]
    if found:
        return (f"a password must not be written in the plan ({found[0]} in the conninfo): name it with "
                f"password_env (an environment variable) or password_file")
    return None


class ExternalFailover:
    """Watches a failover the platform performs (or the failover hook asks for), from outside:
    detect = the old primary stops answering; promote = the target accepts writes
    (pg_is_in_recovery() false); reconnect = the API's health reports its database part up again
    (it reaches a writable primary).

    After an event store write block (matrix row 7) the old primary still answers: the platform
    must fence it before it promotes the target. Both are watched in one loop: fence (with
    detect, cause event_store_write_blocked) = the blocked primary stops answering, timed at the
    earliest moment the polls allow (the start of the last poll it answered); promote = the
    target accepts writes, timed when a poll saw it (not_before_s says how early it may have
    been, as for the failover after a kill). So the fence comes after the promote only when a
    poll of the old primary that began after the target was seen writable still got an answer:
    an observed split brain, which the gate fails. Both changing between two polls is the order
    the platform promises, and the polls cannot tell it apart from the other."""

    def __init__(self, lab: ExternalLab):
        self.lab = lab
        self.candidate = lab.config.failover_target
        self.state = "watching"
        self.error: str | None = None
        self._thread: threading.Thread | None = None

    def watch(self, failed: str, cause: str = UNREACHABLE) -> None:
        self.state = "failing_over"
        observe = self._observe if cause == UNREACHABLE else self._observe_fenced
        self._thread = threading.Thread(target=observe, args=(failed,), daemon=True)
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

    def _reconnected(self) -> bool:
        """The API reaches a writable primary again: its health's database part is up (the whole
        ServiceHealth lags behind it: the instances' heartbeats on the new primary)."""
        try:
            body = requests.get(self.lab.api_url + "/health", timeout=2).json()
            return ((body.get("components") or {}).get("database") or {}).get("status") == "up"
        except (requests.RequestException, ValueError, AttributeError):
            return False

    def _wait_reconnect(self, deadline: float, why: dict) -> None:
        """Emit reconnect timed at the earliest moment the polls allow: the start of the last poll
        that did not see the API reconnected (or of the first poll, when it already did). Seen from
        outside, the reconnect lies between that and the answer that saw it (window_s); a client
        write can go through inside that window, so timing it at the answer would put the
        reconnect after the first write it made possible."""
        earliest = time.time()
        while True:
            started = time.time()
            if self._reconnected():
                self.lab.on_event("reconnect", "api", {**why, "wall": earliest,
                                                       "window_s": round(time.time() - earliest, 3),
                                                       "observed": "the API reaches a writable primary"})
                return
            if time.monotonic() > deadline:
                raise TimeoutError("the API did not reach a writable primary again")
            earliest = started
            time.sleep(0.02)

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
            self._wait_reconnect(deadline, {})
            self.state = "failed_over"
        except Exception as exc:
            self.state, self.error = "error", f"{type(exc).__name__}: {exc}"
            emit("failover_error", target, {"error": self.error})

    def _observe_fenced(self, failed: str, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        target, emit, why = self.candidate, self.lab.on_event, {"cause": WRITE_BLOCKED}
        fenced = promoted = False
        try:
            hook = self.lab.config.actions.get("database_failover")
            if hook is not None:
                hook.run(failed=failed, target=target, cause=WRITE_BLOCKED)
            # the fence is timed at the earliest moment the polls allow (the start of the last poll
            # that still got an answer), the promote when it was seen (not_before_s: how early)
            answering_since = writable_since = time.time()
            while not (fenced and promoted):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{'the target was not promoted' if fenced else failed + ' was not fenced'} "
                                       f"within {timeout:.0f} s")
                if not fenced:
                    started = time.time()
                    if self._answers(failed):
                        answering_since = started
                    else:
                        window = round(time.time() - answering_since, 3)
                        emit("detect", failed, {**why, "wall": answering_since, "window_s": window,
                                                "observed": "the write-blocked primary was fenced"})
                        emit("fence", failed, {**why, "wall": answering_since, "window_s": window,
                                               "observed": "the write-blocked primary stopped answering"})
                        fenced = True
                if not promoted:
                    started = time.time()
                    if not self._writable(target):
                        writable_since = started
                    else:
                        seen = time.time()     # on the clock the fence's time is on
                        emit("promote", target, {**why, "wall": seen, "not_before_s": round(seen - writable_since, 3),
                                                 "observed": "target accepts writes"})
                        promoted = True
                time.sleep(0.02)
            self._wait_reconnect(deadline, why)
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

    def failback(self, to: str, max_lag: float = 5.0, synchronous: bool = True) -> float | None:
        """Ask the runbook hook `database_failback` to switch back to `to`. The harness does not
        check the lag first: the action owns the decision, and must refuse (409: FailbackRefused)
        or wait while the lag is over max_lag; the drill measures the lag itself meanwhile.
        Returns the lag the hook's answer names (its word only: transaction_lag_s), if any."""
        current = self.lab.database_primary()
        try:
            answer = self.lab.action("database_failback", to=to, max_lag=max_lag, synchronous=synchronous)
        except HookError as refused:
            if refused.kind == REFUSED and " answered 409" in str(refused):
                raise FailbackRefused(None, max_lag, str(refused)) from None
            raise
        said = answer.get("transaction_lag_s") if isinstance(answer, dict) else None
        lag = float(said) if isinstance(said, (int, float)) and not isinstance(said, bool) else None
        self.lab.on_event("failback", to, {"transaction_lag_s": lag, "said_by": "database_failback"})
        self.candidate, self.state = current, "watching"
        return lag


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
            if self.names[name] is None:
                raise FaultError(f"the plan names no Toxiproxy proxy for {name!r}: set "
                                 f"{_PROXY_KEYS.get(name, 'lab.proxies')}")
            return self.names[name]
        return name

    def __getattr__(self, attr: str) -> Any:
        method = getattr(self.control, attr)
        if attr not in self.NAMED:
            return method
        return lambda name, *args, **kwargs: method(self.real(name), *args, **kwargs)


_PROXY_KEYS = {"s3": "lab.proxies.evidence_store", "s3-replica": "lab.proxies.evidence_replica",
               **{f"platform-{p}": f"lab.proxies.platforms.{p}" for p in PLATFORM_NAMES}}


class ExternalEventStoreBlock:
    """The event store write block the runbook holds on a node; release() lifts it (idempotent; a
    no-op on the runbook's side once the platform fenced the node)."""

    def __init__(self, lab: ExternalLab, node: str):
        self.lab, self.node, self.held = lab, node, True

    def release(self) -> None:
        if self.held:
            self.held = False
            self.lab.action("release_event_store_writes", node=self.node)

    def describe(self) -> str:
        return f"event store writes blocked on {self.node} (runbook hook block_event_store_writes)"


KILL_SEEN_TIMEOUT = 30.0     # a killed API instance must be seen dead within it
REDEPLOY_TIMEOUT = 90.0      # a redeployed one live


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
        self._toxiproxy: ToxiproxyControl | None = None   # the server under its own names
        self.failover: ExternalFailover | None = None

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
        names: dict[str, str | None] = {"s3": self.config.proxies.get("evidence_store"),
                                        "s3-replica": self.config.proxies.get("evidence_replica")}
        names.update({f"platform-{p}": self.config.platform_proxies.get(p) for p in PLATFORM_NAMES})
        self.toxiproxy = ProxyNames(self._toxiproxy, names)
        try:
            self._toxiproxy.version()
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
        return {"api": self.api_url, "toxiproxy": c.toxiproxy_url,
                "database": {n: _public(node.dsn) for n, node in c.nodes.items()},
                "instances": {z: public_url(u) for z, u in c.api_instances.items()},
                "proxies": {**c.proxies, **{f"platform-{p}": n for p, n in c.platform_proxies.items()}},
                "s3": c.s3.endpoint if c.s3 else None, "s3_gateway": public_url(c.gateway_url) if c.gateway_url else None,
                "queues": c.queues.endpoint if c.queues else None,
                "actions": {n: h.describe() for n, h in c.actions.items()},
                "reads": {n: h.describe() for n, h in c.reads.items()}}

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
        checks = {"replication": (streaming, detail),
                  "failover_controller": (self.failover.state == "watching", self.failover.state)}
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
        self.failover.watch(name)

    def partition_replication(self, replica: str) -> Any:
        if self.dry_run:
            raise PermissionError(f"dry run: fault refused ({self.interlock()})")
        if not self.config.replication_proxy:
            raise LabStartError("the plan has no lab.database.replication_proxy to cut")
        return super().partition_replication(replica)

    def replication_proxy_name(self, replica: str) -> str:
        """The proxy on `replica`'s replication link: lab.database.replication_proxies, else (the
        failover target's) lab.database.replication_proxy; none named: LabStartError."""
        c = self.config
        named = c.replication_proxies.get(replica) or (c.replication_proxy if replica == c.failover_target else None)
        if not named:
            raise LabStartError(f"the plan names no Toxiproxy proxy on the replication link to {replica}: set "
                                f"lab.database.replication_proxies.{replica}")
        return named

    # -- the event store (matrix row 7) ----------------------------------------------------------
    def block_event_store_writes(self, time_limit_s: float | None = None) -> ExternalEventStoreBlock:
        """The runbook blocks appends on the primary (hook block_event_store_writes); the platform
        must then fence that node and promote the failover target, which is watched from outside."""
        primary = self.database_primary()
        self.action("block_event_store_writes", node=primary, time_limit_s=time_limit_s)
        self.failover.watch(primary, cause=WRITE_BLOCKED)
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
            raise FaultError(f"no API instance {name!r} in lab.api_tier.instances; known: "
                             f"{', '.join(self.config.api_instances)}")
        self.action("kill_api_instance", instance=name)
        wait_for(lambda: not self.api_instance_alive(name), f"API instance {name} still answers after the kill",
                 timeout=KILL_SEEN_TIMEOUT, interval=0.05)

    def redeploy_api_instance(self, name: str) -> None:
        """The runbook redeploys it; returns once it answers /health/live."""
        self.action("redeploy_api_instance", instance=name)
        wait_for(lambda: self.api_instance_alive(name), f"API instance {name} not live after the redeploy",
                 timeout=REDEPLOY_TIMEOUT, interval=0.1)

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
        from .connectors import queue_depth

        sqs = self.config.queues.client("sqs") if self.config.queues else None
        return queue_depth(sqs, self._queue_url(sqs, platform, False))

    def dead_letters(self, platform: str) -> list[dict]:
        from .connectors import peek_messages

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
        from .parts import read_latest_object

        return read_latest_object(*self._evidence_bucket(region), key)

    def object_lock(self, region: str, key: str, version_id: str | None = None) -> dict | None:
        from .parts import read_object_lock

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
        reply = requests.get(f"{self.http_gateway(name)}/_drill/requests", headers=self.gateway_headers(name),
                             timeout=10)
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
        for name in radius:
            try:
                proxy = self._toxiproxy.proxy(name)
            except Exception:
                continue   # not a proxy (e.g. database-primary)
            for toxic in proxy.toxics():
                if toxic.startswith("drill_"):
                    self._toxiproxy.remove_toxic(name, toxic)
            if not proxy.enabled:
                self._toxiproxy.set_enabled(name, True)
        if GATEWAY_TARGET in radius and self.config.gateway_url:
            try:
                requests.delete(f"{self.config.gateway_url}/_drill/fault", headers=self.gateway_headers("s3"),
                                timeout=10)
            except requests.RequestException:
                pass      # the steady state says whether the store answers
        if "degrade_platform" in self.config.actions:
            for platform in PLATFORM_NAMES:
                if f"{platform}-api" in radius:
                    try:
                        self.action("degrade_platform", platform=platform, mode="ok")
                    except HookError:
                        pass   # its server is down: the scenario's steady state says so

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
                role = symbol[len(PROXY):]
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
