"""Frozen data shared by every family: operations, histories, fault specs, verdicts, gates."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping


class Verdict(str, enum.Enum):
    """Three-state verdict. An error is UNKNOWN, never PASS; the worst verdict wins."""

    PASS = "pass"
    FAIL = "fail"
    UNKNOWN = "unknown"

    @property
    def rank(self) -> int:
        return {Verdict.PASS: 0, Verdict.UNKNOWN: 1, Verdict.FAIL: 2}[self]

    @staticmethod
    def worst(verdicts: Iterable["Verdict"]) -> "Verdict":
        """Worst of the verdicts: fail > unknown > pass. No verdict at all is UNKNOWN."""
        verdicts = list(verdicts)
        if not verdicts:
            return Verdict.UNKNOWN
        return max(verdicts, key=lambda v: v.rank)


class Outcome(str, enum.Enum):
    """How a client operation ended (Jepsen's ok / fail / info)."""

    OK = "ok"        # completed and acknowledged
    FAIL = "fail"    # definitely did not take effect
    INFO = "info"    # indeterminate: timed out or connection lost mid-flight


@dataclass(frozen=True)
class Op:
    """One client operation. Times are seconds on one monotonic clock shared with events."""

    id: int
    kind: str                      # "write", "read", "probe", ...
    t_invoke: float
    t_complete: float | None       # None while in flight / never completed
    outcome: Outcome
    value: Any = None              # write: the key written; read: what was read
    correlation_id: str = ""
    wall_invoke: float = 0.0       # epoch seconds at invoke, for reports only
    error: str = ""


@dataclass(frozen=True)
class Event:
    """A fault or recovery event on the same monotonic clock as the ops.

    kind is "inject" or "heal" for faults, or a recovery phase name
    ("detect", "promote", "reconnect", ...).
    """

    kind: str
    name: str
    t: float
    wall: float = 0.0
    correlation_id: str = ""
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class History:
    """Everything a drill observed: client operations and fault/recovery events."""

    ops: tuple[Op, ...] = ()
    events: tuple[Event, ...] = ()

    def first_event(self, kind: str) -> Event | None:
        matching = [e for e in self.events if e.kind == kind]
        return min(matching, key=lambda e: e.t) if matching else None


@dataclass(frozen=True)
class FaultSpec:
    """A fault as data: its registered type, what it targets, its parameters.

    Validated against the fault registry before anything runs; an unknown type or
    parameter is an error, never a silent no-op.
    """

    type: str
    target: str
    params: Mapping[str, Any] = field(default_factory=dict)
    time_limit_s: float | None = None   # dead-man switch: server heals by itself after this


@dataclass(frozen=True)
class GateResult:
    """One validation rule evaluated: what was measured against which threshold."""

    id: str
    description: str
    measured: Any
    threshold: Any
    verdict: Verdict
    detail: str = ""
