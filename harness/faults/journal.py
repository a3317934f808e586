"""The fault journal of one scenario (Chaos Toolkit's journal, Jepsen's nemesis log): every fault
goes through the registry, is recorded when injected and when healed, and whatever is still
active is healed, newest first, when the scenario ends, also after a failed step or Ctrl-C.

Each fault gets the journal's default time limit where its mechanism allows one (TIME_LIMITED):
should the harness die, the fault server, the stand-in or PostgreSQL lifts it by itself.

A fault the target or a hook refused, or that could not reach it (harness.faults.refused), is
recorded "not_injected" with its cause, never "heal": its heal is still run for whatever part of
it may have acted, and only a heal that fails is said (heal_failed); then FaultNotInjected goes up.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..model import EventKind, FaultRecord, FaultSpec
from .base import Fault, FaultContext, build
from .refused import FaultNotInjected, could_not_act

if TYPE_CHECKING:
    from ..lab.base import Lab

DEFAULT_TIME_LIMIT_S = 600.0


@dataclass
class Entry:
    label: str
    fault: Fault
    injected_t: float
    description: str = ""
    healed_t: float | None = None
    heal_error: str | None = None
    not_injected: str | None = None  # the cause, when the fault could not be injected

    @property
    def active(self) -> bool:
        return self.healed_t is None


class FaultJournal:
    """`record(kind, name, **detail)` writes an event (an EventKind: inject, heal, not_injected,
    heal_failed; its EventDetail keys) and returns it with its time t."""

    def __init__(self, lab: Lab | None, record: Callable[..., Any], default_time_limit_s: float = DEFAULT_TIME_LIMIT_S):
        self.lab = lab
        self.record = record
        self.default_time_limit_s = default_time_limit_s
        self.entries: list[Entry] = []

    def context(self) -> FaultContext:
        return FaultContext(toxiproxy=self.lab.toxiproxy if self.lab is not None else None, lab=self.lab)

    def inject(self, spec: FaultSpec, label: str) -> Fault:
        """Validate, record "inject" (the moment harm starts: RTO counts from it), then inject. An
        inject that fails half-way is healed and recorded healed before the error goes up."""
        if spec.time_limit_s is None and getattr(build(spec), "TIME_LIMITED", False):
            spec = dataclasses.replace(spec, time_limit_s=self.default_time_limit_s)
        fault = build(spec)
        event = self.record(
            EventKind.INJECT,
            label,
            fault=fault.describe(),
            type=spec.type,
            target=spec.target,
            time_limit_s=spec.time_limit_s,
        )
        entry = Entry(label, fault, event.t)
        self.entries.append(entry)
        try:
            fault.inject(self.context())
        except Exception as exc:
            refused = could_not_act(exc)
            if refused is None:
                self._heal(entry)
                raise
            code, acted = refused
            cause = str(exc)
            entry.not_injected = cause
            entry.healed_t = self.record(
                EventKind.NOT_INJECTED, label, fault=fault.describe(), cause=cause, exit_code=code
            ).t
            self._heal(entry, quiet=True)
            raise FaultNotInjected(label, cause, code, acted) from exc
        except BaseException:
            self._heal(entry)
            raise
        entry.description = fault.describe()  # once injected it names what it acts on (pg-a, az1, ...)
        return fault

    def active(self) -> list[Entry]:
        return [e for e in self.entries if e.active]

    def find(self, label: str | None = None, target: str | None = None) -> Entry | None:
        """The most recent active fault with this label (or on this target)."""
        for entry in reversed(self.active()):
            if (label is None or entry.label == label) and (target is None or entry.fault.spec.target == target):
                return entry
        return None

    def heal(self, label: str | None = None, target: str | None = None) -> Entry:
        """Heal the most recent active fault with this label (or on this target); an error names
        what is active when none matches."""
        entry = self.find(label, target)
        if entry is None:
            active = ", ".join(f"{e.label} (on {e.fault.spec.target})" for e in self.active()) or "none"
            what = f"label {label!r}" if label else f"target {target!r}"
            raise LookupError(f"no active fault with {what} to heal; active: {active}")
        self._heal(entry, raise_errors=True)
        return entry

    def heal_all(self) -> list[str]:
        """Heal every active fault, newest first, each in its own try; the errors, as text."""
        errors = []
        for entry in reversed(self.active()):
            self._heal(entry)
            if entry.active:
                errors.append(f"{entry.label}: {entry.heal_error}")
        return errors

    def _heal(self, entry: Entry, raise_errors: bool = False, quiet: bool = False) -> None:
        """Heal one fault: "heal" recorded once it is undone; a heal that fails is recorded as
        "heal_failed" and the fault stays active (heal_all tries it again at the scenario's end).
        quiet (a fault not injected): nothing recorded when the heal succeeds, for nothing was
        healed but what part of it may have acted."""
        try:
            entry.fault.heal(self.context())
        except Exception as exc:
            entry.heal_error = f"{type(exc).__name__}: {exc}"
            entry.healed_t = None
            self.record(EventKind.HEAL_FAILED, entry.label, fault=entry.fault.describe(), error=entry.heal_error)
            if raise_errors:
                raise
            return
        entry.heal_error = None
        if not quiet:
            entry.healed_t = self.record(EventKind.HEAL, entry.label, fault=entry.fault.describe()).t

    def records(self, t0: float) -> list[FaultRecord]:
        """The journal for the report: times in seconds from t0."""
        return [
            FaultRecord(
                e.label,
                e.fault.spec.type,
                e.fault.spec.target,
                e.description or e.fault.describe(),
                round(e.injected_t - t0, 3),
                None if e.healed_t is None else round(e.healed_t - t0, 3),
                e.fault.spec.time_limit_s,
                e.heal_error,
                e.not_injected,
            )
            for e in self.entries
        ]

    def injected(self) -> list[Entry]:
        """The faults that were injected (not those the target or a hook refused)."""
        return [e for e in self.entries if e.not_injected is None]
