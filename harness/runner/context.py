"""What one drill run holds while its scenarios execute: the lab, the plan's targets, the records."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Any

from ..model import GateResult, Verdict
from ..workload import Recorder


def utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


@dataclass
class ScenarioRun:
    """One scenario's journal: history, gates, measurements and what was observed."""

    name: str
    feature: str
    tags: list[str]
    correlation_id: str
    recorder: Recorder = field(default_factory=Recorder)
    gates: list[GateResult] = field(default_factory=list)
    measurements: dict[str, Any] = field(default_factory=dict)
    phases: dict[str, float] = field(default_factory=dict)
    lost_write_keys: list[str] = field(default_factory=list)
    observations: list[str] = field(default_factory=list)
    error: str | None = None
    aborted: bool = False
    steps_total: int = 0
    steps_done: int = 0
    description: str = ""       # the feature's text: matrix row, Impact, behaviour, mitigation
    started_at: str = field(default_factory=utc_now)
    finished_at: str | None = None
    state: dict[str, Any] = field(default_factory=dict)   # scratch space shared by the steps

    def gate(self, result: GateResult) -> GateResult:
        self.gates.append(result)
        return result

    def observe(self, text: str) -> None:
        self.observations.append(text)

    def event(self, kind: str, name: str, **detail: Any):
        return self.recorder.event(kind, name, self.correlation_id, **detail)

    @property
    def verdict(self) -> Verdict:
        """Worst gate; a scenario that did not run every step can fail but never pass."""
        worst = Verdict.worst(g.verdict for g in self.gates)
        incomplete = self.error is not None or self.steps_done < self.steps_total
        if incomplete and worst is Verdict.PASS:
            return Verdict.UNKNOWN
        return worst


@dataclass
class DrillContext:
    """The drill run: its lab, targets, correlation id and the scenarios run so far."""

    drill: str
    lab: Any
    targets: dict[str, float]
    correlation_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    scenarios: list[ScenarioRun] = field(default_factory=list)
    tags: str | None = None
    feature_order: list[str] = field(default_factory=list)   # scenarios run in this order of files
    replication: str = "sync"
    started_at: str = field(default_factory=utc_now)
    finished_at: str | None = None

    def begin(self, name: str, feature: str, tags: list[str]) -> ScenarioRun:
        run = ScenarioRun(name=name, feature=feature, tags=tags,
                          correlation_id=f"{self.correlation_id}/{len(self.scenarios) + 1}")
        self.scenarios.append(run)
        return run

    @property
    def current(self) -> ScenarioRun:
        if not self.scenarios:
            raise RuntimeError("no scenario is running")
        return self.scenarios[-1]


# The drill being run in this process; the pytest-bdd plugin hands it to the steps.
ACTIVE: DrillContext | None = None
