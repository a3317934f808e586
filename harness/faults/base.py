"""Fault family base: a fault is data (FaultSpec) plus a registered type that injects and heals it.

Faults cause harm and never judge. Every fault names its heal, and `injected()` runs the
heal in `finally`, so a failed step or Ctrl-C still heals.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from ..errors import FaultError as FaultError  # raised by every fault; defined at the bottom layer
from ..lab.base import Lab
from ..lab.capabilities import CapabilityMissing
from ..model import FaultSpec
from ..toxiproxy.client import ToxiproxyControl

REQUIRED = object()
P = TypeVar("P")


@dataclass(frozen=True)
class Param:
    type: type | tuple[type, ...]
    default: Any = REQUIRED
    choices: tuple[Any, ...] | None = None
    minimum: float | None = None
    doc: str = ""


@dataclass
class FaultContext:
    """What faults act through: the Toxiproxy control (a link's proxy) and the lab, which a fault asks
    for as the capability protocol it acts through (Fault.uses)."""

    toxiproxy: ToxiproxyControl | None = None
    lab: Lab | None = None

    def links(self, fault: str) -> ToxiproxyControl:
        """The Toxiproxy control a link's fault acts through; FaultError naming the fault without one."""
        if self.toxiproxy is None:
            raise FaultError(f"fault {fault!r} needs the Toxiproxy control of its links (ctx.toxiproxy)")
        return self.toxiproxy


class Fault:
    """One registered fault type. Subclasses set TYPE, NEEDS, PARAMS, and implement inject/heal."""

    TYPE: ClassVar[str] = ""
    DESCRIPTION: ClassVar[str] = ""
    PARAMS: ClassVar[dict[str, Param]] = {}
    # What the fault needs of a lab: capability names (harness.lab.capabilities.CAPABILITIES), checked
    # before anything is injected (harness.chaos.runner.capability). Every registered type declares it,
    # itself or a family base: frozenset() when a link's proxy (asked of Toxiproxy) is all it needs.
    NEEDS: ClassVar[frozenset[str]]
    # True when the fault's mechanism lifts it by itself after spec.time_limit_s (a dead-man switch
    # should the harness die): toxics, a disabled proxy, the HTTP gateway, a platform stand-in's
    # mode, the event store block. Never for kills: a killed process cannot come back by itself.
    TIME_LIMITED: ClassVar[bool] = False

    def __init__(self, spec: FaultSpec):
        self.spec = spec
        self.params = self.validate(spec)

    @classmethod
    def validate(cls, spec: FaultSpec) -> dict[str, Any]:
        where = f"fault {spec.type!r} on {spec.target!r}"
        if not spec.target or not isinstance(spec.target, str):
            raise FaultError(f"{where}: 'target' must name what the fault acts on")
        unknown = sorted(set(spec.params) - set(cls.PARAMS))
        if unknown:
            raise FaultError(
                f"{where}: unknown parameter(s) {', '.join(unknown)}; known: {', '.join(sorted(cls.PARAMS)) or 'none'}"
            )
        values = {}
        for name, p in cls.PARAMS.items():
            if name not in spec.params:
                if p.default is REQUIRED:
                    raise FaultError(f"{where}: missing required parameter {name!r} ({p.doc})")
                values[name] = p.default
                continue
            value = spec.params[name]
            if isinstance(value, bool) and bool not in _types(p.type) or not isinstance(value, p.type):
                raise FaultError(f"{where}: parameter {name!r} must be {_type_name(p.type)}, got {value!r}")
            if p.choices is not None and value not in p.choices:
                raise FaultError(f"{where}: parameter {name!r} must be one of {', '.join(map(str, p.choices))}")
            if p.minimum is not None and isinstance(value, (int, float)) and value < p.minimum:
                raise FaultError(f"{where}: parameter {name!r} must be >= {p.minimum}, got {value!r}")
            values[name] = value
        if spec.time_limit_s is not None and not (
            isinstance(spec.time_limit_s, (int, float)) and spec.time_limit_s > 0
        ):
            raise FaultError(f"{where}: time_limit_s must be a number of seconds > 0")
        return values

    def inject(self, ctx: FaultContext) -> None:
        raise NotImplementedError

    def heal(self, ctx: FaultContext) -> None:
        """Undo inject(). Must be safe to call twice and after a partial inject."""
        raise NotImplementedError

    def uses(self, ctx: FaultContext, proto: type[P]) -> P:
        """The lab as the capability `proto` (a protocol of harness.lab.capabilities) this fault acts
        through: FaultError without a lab, CapabilityMissing when the lab lacks the protocol's members.
        Whether a provider reports the capability's names (NEEDS) is checked before anything is
        injected (harness.chaos.runner, a plan's step needs), not here."""
        lab = ctx.lab
        if lab is None:
            raise FaultError(f"fault {self.TYPE!r} needs a lab (ctx.lab)")
        part = lab.find(proto) if isinstance(lab, Lab) else lab if isinstance(lab, proto) else None
        if part is None:
            raise CapabilityMissing(
                f"fault {self.TYPE!r} acts through {proto.__name__}, which the lab ({type(lab).__name__}) lacks"
            )
        return part

    def describe(self) -> str:
        params = ", ".join(f"{k}={v}" for k, v in self.params.items())
        return f"{self.TYPE} on {self.spec.target}" + (f" ({params})" if params else "")


def _types(t: type | tuple[type, ...]) -> tuple[type, ...]:
    return t if isinstance(t, tuple) else (t,)


def _type_name(t: type | tuple[type, ...]) -> str:
    return " or ".join(x.__name__ for x in _types(t))


REGISTRY: dict[str, type[Fault]] = {}


def register(cls: type[Fault]) -> type[Fault]:
    """Add a fault type to the registry; a type that does not declare what it needs of a lab (NEEDS,
    itself or a family base) is refused here, when its module is imported, not when a run asks."""
    if not any("NEEDS" in vars(k) for k in cls.__mro__ if k is not Fault):
        raise TypeError(
            f"fault type {cls.TYPE!r} ({cls.__name__}) declares no NEEDS: the lab capabilities it "
            f"needs (harness.lab.capabilities.CAPABILITIES), frozenset() for none"
        )
    if not (isinstance(cls.NEEDS, frozenset) and all(isinstance(n, str) and n for n in cls.NEEDS)):
        raise TypeError(
            f"fault type {cls.TYPE!r} ({cls.__name__}): NEEDS must be a frozenset of capability names, "
            f"got {cls.NEEDS!r}"
        )
    REGISTRY[cls.TYPE] = cls
    return cls


def build(spec: FaultSpec) -> Fault:
    """The fault for a spec; an unknown type fails here, before anything runs."""
    try:
        cls = REGISTRY[spec.type]
    except KeyError:
        raise FaultError(f"unknown fault type {spec.type!r}; known: {', '.join(sorted(REGISTRY))}") from None
    return cls(spec)


def spec_from_dict(data: Mapping[str, Any], where: str = "fault") -> FaultSpec:
    """A FaultSpec from plan data: {type, target, time_limit_s?, <params>...}."""
    if not isinstance(data, Mapping):
        raise FaultError(f"{where}: expected a mapping with 'type' and 'target'")
    data = dict(data)
    missing = [k for k in ("type", "target") if k not in data]
    if missing:
        raise FaultError(f"{where}: missing {', '.join(repr(m) for m in missing)}")
    spec = FaultSpec(
        type=data.pop("type"), target=data.pop("target"), time_limit_s=data.pop("time_limit_s", None), params=data
    )
    build(spec)  # validate now
    return spec


@contextlib.contextmanager
def injected(fault: Fault, ctx: FaultContext, on_event: Callable[[str, Fault], None] | None = None) -> Iterator[Fault]:
    """Inject the fault for the duration of the block; heal it always, even on error or Ctrl-C."""
    try:
        fault.inject(ctx)
        if on_event:
            on_event("inject", fault)
        yield fault
    finally:
        fault.heal(ctx)
        if on_event:
            on_event("heal", fault)
