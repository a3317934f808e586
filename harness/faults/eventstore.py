"""Event store faults (matrix row 7, "Event store write blocked"), acting through ctx.lab."""

from __future__ import annotations

from typing import Any, ClassVar

from ..lab.capabilities import EventStoreBlock as WriteBlock
from ..model import FaultSpec
from .base import Fault, FaultContext, FaultError, Param, register

TARGET = "database-primary"


@register
class EventStoreBlock(Fault):
    TYPE = "event_store_block"
    NEEDS = frozenset({"event_store_block"})
    TIME_LIMITED = True  # PostgreSQL ends the blocking session itself (idle_in_transaction_session_timeout)
    DESCRIPTION = (
        "holds LOCK TABLE event_chain_head IN EXCLUSIVE MODE on the database primary (reads "
        "work, every audit-event append waits); heal: roll that session back (a no-op once "
        "the node is gone)"
    )
    PARAMS: ClassVar[dict[str, Param]] = {}

    def __init__(self, spec: FaultSpec):
        super().__init__(spec)
        if spec.target != TARGET:
            raise FaultError(
                f"fault {self.TYPE!r} on {spec.target!r}: the target must be {TARGET!r} "
                f"(whichever node is the primary when it is injected)"
            )
        self.block: Any = None

    def inject(self, ctx: FaultContext) -> None:
        self.block = self.uses(ctx, WriteBlock).block_event_store_writes(time_limit_s=self.spec.time_limit_s)

    def heal(self, ctx: FaultContext) -> None:
        block, self.block = self.block, None
        if block is not None:
            block.release()

    def describe(self) -> str:
        return self.block.describe() if self.block is not None else f"{self.TYPE} on {self.spec.target}"
