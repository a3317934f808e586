"""The blast-radius symbols: what a step touches (harness.steps.registry declares it per step) and a
provider turns into its own target names (its PlanConfigured part's fault_targets: the external
provider, from its plan). Below both, so neither the lab nor the steps import the other for them."""

from __future__ import annotations

from collections.abc import Callable

# a provider's names for one symbol (one or several; none: the symbol touches nothing there)
TargetNames = Callable[[str], tuple[str, ...]]

# The symbols a step may touch. A symbol without a provider-specific meaning is its own name.
DATABASE_PRIMARY = "database-primary"
DATABASE_ALL_NODES = "database-all-nodes"
REPLICATION_LINK = "replication-link"  # the replication link to the failover target
FAILBACK_LINKS = "failback-links"  # the replication links of the nodes a failback returns to
EVERY_API_INSTANCE = "api-every-zone"  # every availability zone's API instance
API_INSTANCE = "api-{instance}"  # one zone's API instance (a step argument `instance`)
PLATFORM_API = "{platform}-api"  # a platform's API (a step argument `platform`)
EVIDENCE_GATEWAY = "evidence-gateway"  # the HTTP fault gateway in front of the evidence store
CONNECTOR_WORKERS = "connector-workers"
BACKUP_STORE = "backup-store"
BACKUP_KEY_VAULT = "backup-key-vault"
BACKUP_SERVICE = "backup-service"
PROXY = "proxy:"  # a named proxy role, e.g. proxy:evidence_replica


def proxy(role: str) -> str:
    """The symbol of a proxy role ("evidence_replica", "evidence_store", "platforms.{platform}")."""
    return PROXY + role


def same_names(symbol: str) -> tuple[str, ...]:
    """A provider without its own names: the symbol is the target's name."""
    return (symbol,)
