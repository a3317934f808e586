"""Lab provider interface: what every provider (embedded, testcontainers, external) offers a drill."""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

# What a lab can do for a drill: the capabilities as typing.Protocols, and their names (derived)
from .capabilities import CAPABILITIES, GIVES, CapabilityMissing

if TYPE_CHECKING:
    from .capabilities import Failover

__all__ = ["CAPABILITIES", "CapabilityMissing", "Lab", "LabNotUp", "running"]

P = TypeVar("P")
T = TypeVar("T")


class LabNotUp(RuntimeError):
    """A part of the lab was asked for while the lab is not up (before up(), or after down())."""


def running(part: T | None, what: str) -> T:
    """A part up() made (None until then and after down()), or LabNotUp naming it."""
    if part is None:
        raise LabNotUp(f"the lab is not up: {what} is not running")
    return part


class Lab(abc.ABC):
    """A running deployment of the Control Plane and its dependencies.

    Lifecycle: up() -> (drills) -> down(). down() is idempotent and leaves nothing running or
    listening. Faults go through `toxiproxy` (links) or the provider's process handles.
    """

    provider: str = ""
    api_url: str
    toxiproxy: Any  # harness.toxiproxy.client.ToxiproxyControl once up() ran
    failover: Failover | None = None  # the failover observer (the lab's failover manager, or the external
    # lab's watcher), made by up()
    replication: str = "sync"  # "sync" or "async": the database tier's replication mode
    dry_run: bool = False  # probes only: no fault is injected (the external lab unconfirmed)
    on_event: Callable[[str, str, dict], None]  # where the lab's own recovery events go (set by the drill)

    @property
    def observer(self) -> Failover:
        """The failover observer up() made; LabNotUp before up() and after down()."""
        return running(self.failover, "the failover observer")

    @abc.abstractmethod
    def parts(self) -> tuple[object, ...]:
        """The part objects this lab is composed of (harness.lab.parts, harness.lab.external.parts),
        made with the lab (they reach what up() starts through the lab's accessors, LabNotUp before):
        its capabilities are the protocols they implement."""

    def find(self, proto: type[P]) -> P | None:
        """The first part that implements `proto`, or None (a branch, where a drill does not need it)."""
        for part in self.parts():
            if isinstance(part, proto):
                return part
        return None

    def part(self, proto: type[P]) -> P:
        """The part of this lab that implements `proto`, whatever the lab reports of its names (what
        the harness reads of any lab that has it, e.g. its SIEM sink or a node's rows; a fault's
        Fault.uses): CapabilityMissing naming the provider and the protocol when no part does."""
        part = self.find(proto)
        if part is None:
            raise CapabilityMissing(self._lacks(proto))
        return part

    def _lacks(self, proto: type) -> str:
        provider = self.provider or type(self).__name__
        return f"the {provider} lab lacks {proto.__name__} ({(proto.__doc__ or '').splitlines()[0].rstrip('.')})"

    def capability(self, proto: type[P]) -> P:
        """The part of this lab that is the capability `proto` (a protocol of harness.lab.capabilities),
        or CapabilityMissing naming the provider and what it cannot do: a part must implement the
        protocol and, for a protocol that gives capability names, the lab must report one of them."""
        provider = self.provider or type(self).__name__
        part = self.find(proto)
        names = GIVES.get(proto)
        if part is None and not names:
            raise CapabilityMissing(self._lacks(proto))
        if part is None or (names and not set(names) & self.capabilities()):
            raise CapabilityMissing(
                f"the {provider} lab lacks {proto.__name__}: "
                + "; ".join(f"capability {name} ({text})" for name, text in (names or {}).items())
            )
        return part

    def interlock(self) -> str:
        """Why faults are refused in a dry run (the external lab says which plan key and flag)."""
        return "a dry run"

    @abc.abstractmethod
    def set_replication(self, mode: str) -> None:
        """Switch the database tier to `mode` ("sync" or "async") for a plan reusing a running lab."""

    @abc.abstractmethod
    def up(self) -> Lab: ...

    @abc.abstractmethod
    def down(self) -> None: ...

    @abc.abstractmethod
    def endpoints(self) -> dict[str, Any]:
        """Addresses of every part, without secrets (for status output and reports)."""

    @abc.abstractmethod
    def processes(self) -> dict[str, int | None]:
        """{component: pid or None when not running}."""

    @abc.abstractmethod
    def steady_state_checks(self) -> dict[str, tuple[bool, str]]:
        """{check: (ok, detail)} of the lab itself (replication, load balancer)."""

    def capabilities(self) -> frozenset[str]:
        """What this lab can do for a drill (names of harness.lab.capabilities.CAPABILITIES), derived
        from its parts: the names of each protocol some part implements. A plan whose scenarios need
        more is refused before the lab starts."""
        return frozenset(name for proto, names in GIVES.items() if self.find(proto) is not None for name in names)

    def reset_faults(self) -> None:
        """Heal what a killed run may have left (every toxic, every disabled proxy)."""
        self.toxiproxy.reset_all()

    def describe(self) -> dict[str, Any]:
        return {"provider": self.provider}

    def __enter__(self) -> Lab:
        try:
            return self.up()
        except BaseException:
            self.down()
            raise

    def __exit__(self, *exc) -> None:
        self.down()
