"""Process faults of the lab: the database primary crashes, an availability zone's API instance is
lost, a connector worker is lost. Each kills with SIGKILL (no time limit: a killed process cannot come back
by itself) and names its heal: the node back (rebuilt as a replica once another was promoted), the instance
redeployed."""

from __future__ import annotations

from typing import ClassVar

from ..lab.capabilities import ApiTier, ConnectorWorkers, DatabaseNodes
from ..lab.connectors import PLATFORMS
from ..model import FaultSpec
from .base import Fault, FaultContext, FaultError, Param, register
from .refused import may_have_acted

DATABASE_PRIMARY = "database-primary"


@register
class DatabasePrimaryKill(Fault):
    TYPE = "database_primary_kill"
    NEEDS = frozenset({"database_kill"})
    DESCRIPTION = (
        "SIGKILLs the database primary's postmaster and every child (a crash); heal: the node "
        "back, rebuilt as a replica of the promoted primary (or started again if none was promoted)"
    )
    PARAMS: ClassVar[dict[str, Param]] = {}

    def __init__(self, spec: FaultSpec):
        super().__init__(spec)
        if spec.target != DATABASE_PRIMARY:
            raise FaultError(
                f"fault {self.TYPE!r} on {spec.target!r}: the target must be {DATABASE_PRIMARY!r} "
                f"(whichever node is the primary when it is injected)"
            )
        self.node: str | None = None  # the node killed, until it is back
        self.killed: str | None = None  # the node killed, for the record

    def inject(self, ctx: FaultContext) -> None:
        db = self.uses(ctx, DatabaseNodes)
        self.node = db.database_primary()
        try:
            db.kill_database_node(self.node)
        except Exception as exc:
            if not may_have_acted(exc):  # the kill was refused: nothing to bring back
                self.node = None
            raise
        self.killed = self.node

    def describe(self) -> str:
        return f"{self.TYPE} on {self.node or self.killed or self.spec.target} (SIGKILL)"

    def heal(self, ctx: FaultContext) -> None:
        node, self.node = self.node, None
        if node is not None:
            self.uses(ctx, DatabaseNodes).restore_database_node(node)


@register
class ApiInstanceKill(Fault):
    TYPE = "api_instance_kill"
    NEEDS = frozenset({"api_instances"})
    DESCRIPTION = (
        "SIGKILLs an availability zone's API instance (target az1, az2, az3), or every instance "
        "still up (target all); heal: redeploy what it killed"
    )
    PARAMS: ClassVar[dict[str, Param]] = {}

    def __init__(self, spec: FaultSpec):
        super().__init__(spec)
        self.killed: list[str] = []

    def inject(self, ctx: FaultContext) -> None:
        api = self.uses(ctx, ApiTier)
        names = (
            [self.spec.target]
            if self.spec.target != "all"
            else [n for n in api.api_instances() if api.api_instance_alive(n)]
        )
        for name in names:
            self.killed.append(name)
            try:
                api.kill_api_instance(name)
            except Exception as exc:
                if not may_have_acted(exc):  # refused: that instance needs no redeploy
                    self.killed.remove(name)
                raise

    def heal(self, ctx: FaultContext) -> None:
        for name in list(self.killed):
            self.uses(ctx, ApiTier).redeploy_api_instance(name)
            self.killed.remove(name)

    def describe(self) -> str:
        which = ", ".join(self.killed) if self.killed else self.spec.target
        return f"{self.TYPE} on {which} (SIGKILL)"


@register
class ConnectorWorkerKill(Fault):
    TYPE = "connector_worker_kill"
    NEEDS = frozenset({"connector_workers"})
    DESCRIPTION = (
        "SIGKILLs a platform's connector worker (target a platform, e.g. intune, or all); the "
        "lab's auto-scaling group replaces it; heal: a worker running for each platform killed"
    )
    PARAMS: ClassVar[dict[str, Param]] = {}

    def __init__(self, spec: FaultSpec):
        super().__init__(spec)
        if spec.target != "all" and spec.target not in PLATFORMS:
            raise FaultError(
                f"fault {self.TYPE!r} on {spec.target!r}: the target must be a platform "
                f"({', '.join(PLATFORMS)}) or 'all'"
            )
        self.killed: list[str] = []

    def inject(self, ctx: FaultContext) -> None:
        for platform in PLATFORMS if self.spec.target == "all" else (self.spec.target,):
            self.uses(ctx, ConnectorWorkers).kill_connector_worker(platform)
            self.killed.append(platform)

    def heal(self, ctx: FaultContext) -> None:
        for platform in list(self.killed):
            # a no-op once the auto-scaling group did it
            self.uses(ctx, ConnectorWorkers).replace_connector_worker(platform)
            self.killed.remove(platform)

    def describe(self) -> str:
        return f"{self.TYPE} on {', '.join(self.killed) or self.spec.target} (SIGKILL)"
