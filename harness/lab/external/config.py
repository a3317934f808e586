"""The external provider's plan keys (lab:): what each gives, how each is checked, the secrets it names."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

import psycopg

from ...errors import LabStartError, quoted
from ..hooks import ENV_NAME, Hook, url_problem, url_secret

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
KNOWN_KEYS = {
    "provider",
    "replication",
    "api_url",
    "toxiproxy_url",
    "database",
    "s3",
    "queues",
    "actions",
    "reads",
    "api_tier",
    "proxies",
    "evidence_gateway",
    "clock",
    "allow_destructive",
    "blast_radius",
    "siem_file",
    "name",
    "backups",
}
PLATFORM_NAMES = ("intune", "jamf", "sccm", "landscape", "ansible")  # harness.lab.connectors.PLATFORMS
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
    dsn: str  # without password
    password_env: str | None = None
    password_file: str | None = None

    def password(self) -> str | None:
        """The node's password from its env variable or file; LabStartError names what is missing."""
        if self.password_env:
            value = os.environ.get(self.password_env)
            if not value:
                raise LabStartError(
                    f"database node {self.name}: environment variable "
                    f"{self.password_env} is not set (the plan names it for the password)"
                )
            return value
        if self.password_file:
            return _read_secret_file(f"database node {self.name}: password_file", self.password_file)
        return None

    def query(self, statement: str, params=None, timeout: int = 3) -> list[tuple]:
        with psycopg.connect(self.dsn, password=self.password(), connect_timeout=timeout, autocommit=True) as conn:
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
    from ...inputs import InputError, printable, read_capped
    from ..hooks import TOKEN_MAX

    try:
        return read_capped(file, TOKEN_MAX, "the secret file").decode("utf-8").strip()
    except FileNotFoundError:
        raise LabStartError(f"{what}: cannot read {printable(file, 200)}: no such file") from None
    except (InputError, OSError, UnicodeDecodeError):
        raise LabStartError(
            f"{what}: cannot read {printable(file, 200)} as a UTF-8 regular file of at most 64 KiB"
        ) from None


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
    options: dict = field(default_factory=dict)  # bucket, replica_bucket, replica_endpoint, prefix

    def client(self, service: str, endpoint: str | None = None):
        import boto3
        import botocore.config

        keys = {}
        access = self.access_key.value(f"lab.{'s3' if service == 's3' else 'queues'}.access_key")
        secret = self.secret_key.value(f"lab.{'s3' if service == 's3' else 'queues'}.secret_key")
        if access and secret:
            keys = {"aws_access_key_id": access, "aws_secret_access_key": secret}
        config = botocore.config.Config(
            connect_timeout=5, read_timeout=10, retries={"total_max_attempts": 2}, s3={"addressing_style": "path"}
        )
        return boto3.session.Session(region_name=self.region, **keys).client(
            service, endpoint_url=endpoint or self.endpoint, config=config
        )


BACKUP_TOOLS = ("pgbackrest",)  # barman-cloud: not yet
BACKUPS_KEYS = {"tool", "stanza", "config_file", "repo"}
BACKUP_REPO_SECRETS = ("key", "secret", "cipher_pass")  # each named by <name>_env or <name>_file
BACKUP_REPO_KEYS = {"type", "number", "bucket", "endpoint", "region", "ca_file", "path", "uri_style"} | {
    f"{name}_{kind}" for name in BACKUP_REPO_SECRETS for kind in ("env", "file")
}
STANZA_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")  # fullmatch


@dataclass(frozen=True)
class BackupRepo:
    """The deployment's pgBackRest repository as the plan names it (lab.backups.repo): an S3 bucket,
    its endpoint, and where its secrets are (never their values)."""

    bucket: str
    endpoint: str  # host, as pgBackRest's repoN-s3-endpoint
    region: str
    port: int | None = None  # repoN-storage-port; None: pgBackRest's default (443)
    number: int = 1  # pgBackRest's repoN
    ca_file: str | None = None
    path: str | None = None  # repoN-path inside the bucket; None: the deployment's config or pgBackRest's default
    uri_style: str | None = None  # host or path
    key: Secret = Secret()
    secret: Secret = Secret()
    cipher_pass: Secret = Secret()


@dataclass(frozen=True)
class BackupsConfig:
    """lab.backups: the deployment's own backups (pgBackRest), read only: its stanza, optionally its
    own config file (used as it is, never written), and the repository the plan names."""

    tool: str
    stanza: str
    config_file: str | None = None
    repo: BackupRepo | None = None


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
    name: str = ""  # how reports name the target ("external: <name>"); default the API host
    reads: dict[str, Hook] = field(default_factory=dict)
    api_instances: dict[str, str] = field(default_factory=dict)  # availability zone -> its own URL
    probe_window_s: float | None = None
    proxies: dict[str, str] = field(default_factory=dict)  # evidence_store, evidence_replica
    platform_proxies: dict[str, str] = field(default_factory=dict)
    gateway_url: str | None = None
    gateway_token: Secret = Secret()
    clock_token: Secret | None = None
    # node -> the Toxiproxy proxy on its replication link while it is a replica (the failback
    # drill slows the rebuilt node's link: lab.database.replication_proxies)
    replication_proxies: dict[str, str] = field(default_factory=dict)
    # the deployment's pgBackRest repository, restored read-only by the restore drill (lab.backups)
    backups: BackupsConfig | None = None

    def provided(self, key: str) -> bool:
        """The plan sets this key (a path of PROVIDES)."""
        head, _, rest = key.partition(".")
        if head == "actions":
            return rest in self.actions
        if head == "reads":
            return rest in self.reads
        if head == "proxies":
            return bool(self.platform_proxies) if rest == "platforms" else rest in self.proxies
        return bool(
            {
                "database.replication_proxy": self.replication_proxy,
                "siem_file": self.siem_file,
                "s3": self.s3,
                "queues": self.queues,
                "api_tier": self.api_instances,
                "evidence_gateway": self.gateway_url,
                "clock": self.clock_token,
            }.get(key)
        )

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
            raise fail(
                f"lab.{unknown[0]}", f"unknown key for the external provider; known: {', '.join(sorted(KNOWN_KEYS))}"
            )
        for key in ("api_url", "toxiproxy_url"):
            _url(data.get(key), f"lab.{key}", fail, "required: the http(s) URL of the deployment's endpoint")
        database = data.get("database")
        if not isinstance(database, dict) or not isinstance(database.get("nodes"), dict) or len(database["nodes"]) < 2:
            raise fail("lab.database.nodes", "required: at least two nodes, each {dsn, password_env or password_file}")
        nodes = {}
        for name, node in database["nodes"].items():
            if not isinstance(name, str) or not name or "\n" in name:
                raise fail(f"lab.database.nodes.{quoted(name, 30)}", "a node's name is one line of text, e.g. pg-a")
            key = f"lab.database.nodes.{name}"
            if not isinstance(node, dict) or not isinstance(node.get("dsn"), str):
                raise fail(f"{key}.dsn", "required: a libpq conninfo without the password")
            if "password" in node:
                raise fail(
                    key,
                    "a password must not be written in the plan: name it with "
                    "password_env (an environment variable) or password_file",
                )
            problem = _dsn_problem(node["dsn"])
            if problem:
                raise fail(f"{key}.dsn", problem)
            for secret_key in ("password_env", "password_file"):
                value = node.get(secret_key)
                # an empty name would connect without the password the plan meant to give
                if secret_key in node and not (
                    isinstance(value, str)
                    and value.strip()
                    and "\0" not in value
                    and (secret_key == "password_file" or ENV_NAME.fullmatch(value))
                ):
                    raise fail(
                        f"{key}.{secret_key}",
                        "must name an environment variable (password_env, e.g. "
                        "STAGING_PG_PASSWORD) or a file (password_file); leave the "
                        "key out when the node needs no password",
                    )
            nodes[name] = NodeConfig(name, node["dsn"], node.get("password_env"), node.get("password_file"))
        target = database.get("failover_target")
        if not isinstance(target, str) or target not in nodes:
            raise fail(
                "lab.database.failover_target", f"must be one of the nodes: {', '.join(nodes)}; got {quoted(target)}"
            )
        proxy = database.get("replication_proxy")
        if proxy is not None and not isinstance(proxy, str):
            raise fail("lab.database.replication_proxy", f"must be a Toxiproxy proxy name, got {quoted(proxy)}")
        links = database.get("replication_proxies", {})
        if not isinstance(links, dict) or not all(
            isinstance(n, str) and n in nodes and isinstance(v, str) and v.strip() for n, v in links.items()
        ):
            raise fail(
                "lab.database.replication_proxies",
                f"must map nodes ({', '.join(nodes)}) to the Toxiproxy "
                f"proxy on each one's replication link, e.g. "
                f"{{pg-a: repl-pg-a}}",
            )
        actions = _hooks(data, "actions", ACTIONS, fail)
        reads = _hooks(data, "reads", READS, fail)
        allow = data.get("allow_destructive", False)
        if not isinstance(allow, bool):
            raise fail("lab.allow_destructive", "must be true or false")
        radius = data.get("blast_radius", [])
        if not isinstance(radius, list) or not all(isinstance(r, str) and r.strip() for r in radius):
            raise fail(
                "lab.blast_radius",
                "must be a list of names that faults may touch "
                "(Toxiproxy proxy names, database-primary, api-<zone>, "
                "<platform>-api, evidence-gateway, connector-workers)",
            )
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
            _known(
                clock,
                "lab.clock",
                {"token_env", "token_file"},
                fail,
                "a mapping {token_env or token_file}: the bearer token of the Control Plane's /_clock",
            )
            clock_token = _secret_ref(clock, "lab.clock", fail)
        return ExternalConfig(
            api_url=data["api_url"].rstrip("/"),
            toxiproxy_url=data["toxiproxy_url"].rstrip("/"),
            nodes=nodes,
            failover_target=target,
            replication_proxy=proxy,
            actions=actions,
            allow_destructive=allow,
            blast_radius=tuple(radius),
            siem_file=siem,
            s3=_aws(data.get("s3"), "lab.s3", S3_KEYS, ("bucket", "replica_bucket"), fail),
            queues=_aws(data.get("queues"), "lab.queues", QUEUE_KEYS, ("prefix",), fail),
            name=name.strip(),
            reads=reads,
            api_instances=instances,
            probe_window_s=window,
            proxies=proxies,
            platform_proxies=platform_proxies,
            gateway_url=gateway_url,
            gateway_token=gateway_token,
            clock_token=clock_token,
            replication_proxies=dict(links),
            backups=parse_backups(data.get("backups"), fail),
        )


def _url(value: Any, key: str, fail, what: str) -> str:
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        raise fail(key, what)
    problem = url_problem(value)  # http://[::1 or a port of 99999: refused now, not a crash later
    if problem:
        raise fail(key, f"{problem}; {what}")
    if _userinfo(value):
        raise fail(key, "credentials must not be written in a URL of the plan (user:password@); remove them")
    secret = url_secret(value)
    if secret:
        raise fail(
            key,
            f"a credential must not be written in the plan ({secret}); name an environment "
            f"variable or a file that holds it",
        )
    return value.rstrip("/")


def _known(value: Any, key: str, known: set[str], fail, what: str) -> None:
    """value is a mapping of known keys only; a credential written as a key is refused as such."""
    if not isinstance(value, dict):
        raise fail(key, f"must be {what}")
    for k in value:
        if not isinstance(k, str) or k not in known:
            shown = str(k)[:40]
            if (
                isinstance(k, str)
                and any(w in k.lower() for w in CREDENTIAL_WORDS)
                and not k.endswith(("_env", "_file"))
            ):
                raise fail(
                    f"{key}.{shown}",
                    "a credential must not be written in the plan: name an "
                    "environment variable (..._env) or a file (..._file) that holds it",
                )
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
            raise fail(
                f"lab.{section}.{quoted(name, 40).strip(chr(39))}", f"unknown {section[:-1]}; known: {', '.join(known)}"
            )
    return {name: Hook.parse(name, hook, fail, section=f"lab.{section}") for name, hook in hooks.items()}


def _api_tier(value: Any, fail) -> tuple[dict[str, str], float | None]:
    if value is None:
        return {}, None
    what = "a mapping {instances: {<zone>: <the instance's own URL>}, probe_window_s: <seconds>}"
    _known(value, "lab.api_tier", {"instances", "probe_window_s"}, fail, what)
    instances = value.get("instances")
    if not isinstance(instances, dict) or not instances:
        raise fail(
            "lab.api_tier.instances",
            "required: each availability zone's API instance and its own URL "
            "(the harness sees it dead or live at <URL>/health/live)",
        )
    out = {}
    for zone, url in instances.items():
        if not isinstance(zone, str) or not zone or any(c.isspace() for c in zone):
            raise fail("lab.api_tier.instances", f"a zone's name is one word, e.g. az1; got {str(zone)[:40]!r}")
        out[zone] = _url(url, f"lab.api_tier.instances.{zone}", fail, "must be the http(s) URL of the instance")
    window = value.get("probe_window_s")
    if isinstance(window, bool) or not isinstance(window, (int, float)) or not 0 < window <= 600:
        raise fail(
            "lab.api_tier.probe_window_s",
            "required: the seconds the load balancer takes to take a dead "
            "instance out of rotation (its probe interval x failures to "
            "fall, plus one interval), e.g. 1.5",
        )
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
    _known(
        platforms,
        "lab.proxies.platforms",
        set(PLATFORM_NAMES),
        fail,
        f"a mapping of platform ({', '.join(PLATFORM_NAMES)}) to its Toxiproxy proxy",
    )
    for platform, name in platforms.items():
        if not isinstance(name, str) or not name:
            raise fail(f"lab.proxies.platforms.{platform}", "must be the name of a Toxiproxy proxy")
    return proxies, dict(platforms)


def _gateway(value: Any, fail) -> tuple[str | None, Secret]:
    if value is None:
        return None, Secret()
    _known(
        value,
        "lab.evidence_gateway",
        {"url", "token_env", "token_file"},
        fail,
        "a mapping {url, token_env or token_file}: the HTTP fault gateway in front of the evidence store",
    )
    url = _url(
        value.get("url"),
        "lab.evidence_gateway.url",
        fail,
        "required: the http(s) URL of the HTTP fault gateway (python -m harness.lab.httpfault)",
    )
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
            raise fail(
                f"{key}.{name}",
                "required: a name"
                + (
                    " (the Control Plane's --queue-prefix: queues <prefix>-<platform> and <prefix>-<platform>-dlq)"
                    if name == "prefix"
                    else " of a bucket"
                ),
            )
    options = {k: value[k] for k in ("bucket", "replica_bucket", "prefix") if k in value}
    if "replica_endpoint" in value:
        options["replica_endpoint"] = _url(
            value["replica_endpoint"],
            f"{key}.replica_endpoint",
            fail,
            "must be the http(s) URL of the alternate region's object store",
        )
    keys = [_secret_ref(value, key, fail, prefix) for prefix in ("access_key", "secret_key")]
    if bool(keys[0].env or keys[0].file) != bool(keys[1].env or keys[1].file):
        raise fail(
            f"{key}.secret_key_env",
            "name both keys (access_key_env/_file and secret_key_env/_file), or neither (boto3's own credential chain)",
        )
    return AwsEndpoint(endpoint, region, keys[0], keys[1], options)


def parse_backups(value: Any, fail) -> BackupsConfig | None:
    """lab.backups: {tool: pgbackrest, stanza, config_file, repo: {...}}; each bad key refused naming it."""
    if value is None:
        return None
    key = "lab.backups"
    _known(value, key, BACKUPS_KEYS, fail, "a mapping {tool: pgbackrest, stanza, config_file, repo: {type: s3, ...}}")
    tool = value.get("tool")
    if tool not in BACKUP_TOOLS:
        raise fail(
            f"{key}.tool",
            f"must be pgbackrest (the deployment's backup tool; barman-cloud is not supported yet), got {quoted(tool)}",
        )
    stanza = value.get("stanza")
    if not isinstance(stanza, str) or not STANZA_NAME.fullmatch(stanza):
        raise fail(
            f"{key}.stanza",
            f"required: the deployment's pgBackRest stanza (letters, digits, - _ .), got {quoted(stanza)}",
        )
    config_file = value.get("config_file")
    if config_file is not None and not _absolute_path(config_file):
        raise fail(
            f"{key}.config_file",
            "must be the absolute path of the deployment's pgbackrest.conf (read, never written), "
            "e.g. /etc/pgbackrest/pgbackrest.conf",
        )
    repo = _backup_repo(value.get("repo"), f"{key}.repo", config_file is not None, fail)
    if repo is None and config_file is None:
        raise fail(
            f"{key}.repo",
            "required: the repository {type: s3, bucket, endpoint, region, key_env, secret_env, ...}, "
            "or config_file (the deployment's pgbackrest.conf that names it)",
        )
    return BackupsConfig(tool, stanza, config_file, repo)


def _absolute_path(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("/") and "\0" not in value and value.isprintable()


def _backup_repo(value: Any, key: str, has_config: bool, fail) -> BackupRepo | None:
    if value is None:
        return None
    if isinstance(value, dict):
        for literal in BACKUP_REPO_SECRETS:
            if literal in value:
                raise fail(
                    f"{key}.{literal}",
                    f"a credential must not be written in the plan: name an environment variable "
                    f"({literal}_env) or a file ({literal}_file) that holds it",
                )
    _known(value, key, BACKUP_REPO_KEYS, fail, "a mapping {type: s3, bucket, endpoint, region, ...}")
    if value.get("type", "s3") != "s3":
        raise fail(f"{key}.type", f"must be s3 (the only repository type supported here), got {quoted(value['type'])}")
    number = value.get("number", 1)
    if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= 256:
        raise fail(
            f"{key}.number", f"must be pgBackRest's repository number, 1 to 256 (repo1: 1), got {quoted(number)}"
        )
    bucket = value.get("bucket")
    if not isinstance(bucket, str) or not bucket or not bucket.isprintable() or len(bucket) > 255:
        raise fail(f"{key}.bucket", "required: the name of the bucket that holds the repository")
    host, port = _s3_endpoint(value.get("endpoint"), f"{key}.endpoint", fail)
    region = value.get("region")
    if not isinstance(region, str) or not region or not region.isprintable():
        raise fail(f"{key}.region", "required: the bucket's region, e.g. eu-west-1")
    for name in ("ca_file",):
        if name in value and not _absolute_path(value[name]):
            raise fail(
                f"{key}.{name}", "must be the absolute path of the CA certificate (PEM) the endpoint's is signed by"
            )
    path = value.get("path")
    if path is not None and not _absolute_path(path):
        raise fail(f"{key}.path", "must be the repository's path in the bucket (repoN-path), e.g. /pgbackrest")
    uri_style = value.get("uri_style")
    if uri_style is not None and uri_style not in ("host", "path"):
        raise fail(f"{key}.uri_style", f"must be host or path (repoN-s3-uri-style), got {quoted(uri_style)}")
    refs = {}
    for name in BACKUP_REPO_SECRETS:
        env, file = value.get(f"{name}_env"), value.get(f"{name}_file")
        if env is not None and file is not None:
            raise fail(f"{key}.{name}_file", f"name one of {name}_env or {name}_file, not both")
        if env is not None and not (isinstance(env, str) and ENV_NAME.fullmatch(env)):
            raise fail(f"{key}.{name}_env", "must name an environment variable, e.g. PGBACKREST_S3_KEY")
        if file is not None and not _absolute_path(file):
            raise fail(f"{key}.{name}_file", "must be the absolute path of a file that holds it")
        refs[name] = Secret(env, file)
    named = {name for name, ref in refs.items() if ref.env or ref.file}
    if ("key" in named) != ("secret" in named) or ("key" not in named and not has_config):
        missing = "key" if "key" not in named else "secret"
        raise fail(
            f"{key}.{missing}_env",
            f"required: name the S3 {'access key' if missing == 'key' else 'secret key'} with {missing}_env or "
            f"{missing}_file (both keys, or neither when config_file holds them)",
        )
    return BackupRepo(
        bucket=bucket,
        endpoint=host,
        region=region,
        port=port,
        number=number,
        ca_file=value.get("ca_file"),
        path=path,
        uri_style=uri_style,
        key=refs["key"],
        secret=refs["secret"],
        cipher_pass=refs["cipher_pass"],
    )


def _s3_endpoint(value: Any, key: str, fail) -> tuple[str, int | None]:
    """An S3 endpoint as pgBackRest takes it (TLS only): https://HOST[:PORT] or HOST[:PORT]."""
    what = "required: the object store's endpoint, https://HOST[:PORT] or HOST[:PORT] (pgBackRest speaks TLS only)"
    if not isinstance(value, str) or not value:
        raise fail(key, what)
    if value.startswith("http://"):
        raise fail(key, f"pgBackRest's S3 driver speaks TLS only: use https://; {what[10:]}")
    url = _url(value if value.startswith("https://") else f"https://{value}", key, fail, what)
    parts = urlsplit(url)
    if parts.path not in ("", "/") or parts.query or parts.fragment or not parts.hostname:
        raise fail(key, f"a host and port only, no path or query; {what[10:]}")
    return parts.hostname, parts.port


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
    if "\0" in dsn:  # libpq would stop reading there, and miss a password after it
        return "has a NUL character; write the conninfo without it"
    if not dsn.strip():
        return "required: a libpq conninfo without the password, e.g. 'host=pg-a port=5432 dbname=x user=drill'"
    try:
        parsed = psycopg.conninfo.conninfo_to_dict(dsn)
    except (psycopg.Error, ValueError, TypeError):
        return (
            "not a conninfo libpq can read (key=value pairs such as 'host=pg-a port=5432 dbname=x "
            "user=drill', or a postgresql:// URI, the scheme in lowercase); fix its syntax, and leave any "
            "password out of it: name it with password_env or password_file"
        )
    found = [k for k in SECRET_CONNINFO_KEYS if k in parsed]
    if found:
        return (
            f"a password must not be written in the plan ({found[0]} in the conninfo): name it with "
            f"password_env (an environment variable) or password_file"
        )
    return None


class Staging(Protocol):
    """What the external lab's observer and parts need of it (ExternalLab): its configuration, its API,
    its database nodes, its runbook actions and where its own events go."""

    config: ExternalConfig
    api_url: str
    on_event: Callable[[str, str, dict], None]

    def node(self, name: str) -> NodeConfig: ...

    def action(self, name: str, **arguments: Any) -> Any: ...

    def current_primary(self) -> str: ...
