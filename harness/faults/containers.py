"""Container faults (container lab): the natural faults for "an availability zone is lost".

Each targets a part of the lab by name (az1, pg-b, moto, ...) through ctx.lab, and names its heal.
"""

from __future__ import annotations

from typing import Any, ClassVar

from ..lab.capabilities import Containers
from ..wait import wait_for
from .base import Fault, FaultContext, Param, register


def _wait_status(container: Any, status: str, timeout: float = 30.0) -> None:
    def current() -> str:
        container.reload()
        state: str = container.status
        return state

    wait_for(current, f"container {container.name} {status}", until=lambda s: s == status, timeout=timeout)


class ContainerFault(Fault):
    PARAMS: ClassVar[dict[str, Param]] = {}
    NEEDS = frozenset()  # no capability name: it needs the container lab itself (harness.chaos.runner checks it)

    def container(self, ctx: FaultContext) -> Any:  # a docker SDK container (untyped)
        return self.handles(ctx).container(self.spec.target)

    def handles(self, ctx: FaultContext) -> Containers:
        handles = ctx.lab.find(Containers) if ctx.lab is not None else None
        if handles is None:
            raise RuntimeError(f"fault {self.TYPE} needs the container lab (lab: testcontainers)")
        return handles


@register
class ContainerKill(ContainerFault):
    TYPE = "container_kill"
    DESCRIPTION = "SIGKILLs the container (every process of it); heal: the part again, in a new container"

    def inject(self, ctx: FaultContext) -> None:
        container = self.container(ctx)
        container.kill()
        _wait_status(container, "exited")

    def heal(self, ctx: FaultContext) -> None:
        container = self.container(ctx)
        container.reload()
        if container.status != "running":
            _wait_status(self.handles(ctx).recreate(self.spec.target), "running")


@register
class ContainerStop(ContainerKill):
    TYPE = "container_stop"
    DESCRIPTION = "stops the container (SIGTERM, then SIGKILL after 10 s); heal: the part again, in a new container"

    def inject(self, ctx: FaultContext) -> None:
        container = self.container(ctx)
        container.stop(timeout=10)
        _wait_status(container, "exited")


@register
class ContainerPause(ContainerFault):
    TYPE = "container_pause"
    DESCRIPTION = "freezes every process of the container (a hung node); heal: unpause"

    def inject(self, ctx: FaultContext) -> None:
        self.container(ctx).pause()

    def heal(self, ctx: FaultContext) -> None:
        container = self.container(ctx)
        container.reload()
        if container.status == "paused":
            container.unpause()


@register
class NetworkDisconnect(ContainerFault):
    TYPE = "network_disconnect"
    DESCRIPTION = "takes the container off the lab network; heal: reconnect it with its alias"

    def inject(self, ctx: FaultContext) -> None:
        self.handles(ctx).disconnect(self.spec.target)

    def heal(self, ctx: FaultContext) -> None:
        self.handles(ctx).reconnect(self.spec.target)
