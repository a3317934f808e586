"""The external provider: a deployment the harness did not start (staging), reached by its endpoints.

Nothing is started or stopped here. Faults go through the Toxiproxy proxies that sit in front
of the staging dependencies, or through the runbook hooks the plan names (a command or an
HTTP call per action). Safety interlock: harm needs `allow_destructive: true` in the plan AND
`--confirm <drill id>` on the command line; without both the drill is a dry run (probes only).
Credentials come from environment variables or files the plan names, never from the plan,
and never appear in results, reports or logs.
"""

from .config import (
    ACTIONS,
    AWS_KEYS,
    CREDENTIAL_WORDS,
    KNOWN_KEYS,
    PLATFORM_NAMES,
    PROVIDES,
    QUEUE_KEYS,
    READS,
    S3_KEYS,
    SECRET_CONNINFO_KEYS,
    AwsEndpoint,
    ExternalConfig,
    NodeConfig,
    Secret,
)
from .lab import ExternalLab
from .observer import ExternalFailover
from .parts import KILL_SEEN_TIMEOUT, REDEPLOY_TIMEOUT, ExternalEventStoreBlock, ProxyNames

__all__ = [
    "ACTIONS",
    "AWS_KEYS",
    "CREDENTIAL_WORDS",
    "KILL_SEEN_TIMEOUT",
    "KNOWN_KEYS",
    "PLATFORM_NAMES",
    "PROVIDES",
    "QUEUE_KEYS",
    "READS",
    "REDEPLOY_TIMEOUT",
    "S3_KEYS",
    "SECRET_CONNINFO_KEYS",
    "AwsEndpoint",
    "ExternalConfig",
    "ExternalEventStoreBlock",
    "ExternalFailover",
    "ExternalLab",
    "NodeConfig",
    "ProxyNames",
    "Secret",
]
