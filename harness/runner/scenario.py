"""A drill run and its scenarios: what the steps act through, and what the checkers later read.

The harness records, checkers judge: a step acts (injects a fault through the journal, calls the
API, reads a lab part) and every observation lands in the scenario's history; a step that states
a rule adds its checker with `expect()`. Verdicts are computed once, at the scenario's end, from
the history alone (harness.gates). Nothing here is module-global: a process may run drills one
after another (a scheduler thread does).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar, Unpack, cast

from ..faults import FaultJournal
from ..faults.refused import FaultNotInjected
from ..gates import Gate
from ..lab.capabilities import FailoverManagerEvents
from ..model import (
    FAILOVER,
    HARNESS,
    JOURNAL,
    Event,
    EventDetail,
    EventKind,
    FaultSpec,
    GateResult,
    Op,
    OpDetail,
    OpKind,
    Outcome,
    Verdict,
)
from ..progress import Progress
from ..workload import ApiClient, Prober, Recorder, Request, SequencedWriter

if TYPE_CHECKING:
    from ..lab.base import Lab

RESTORE = "restore"  # the restore runbook's log (harness.backup.restore)
# What the harness acts out itself: its events are FORWARDED to the event store by the harness
# (runner.forwarder), marked forwarded, and never satisfy validation rule 2 alone.
FORWARDED = (JOURNAL, RESTORE)
# The sources whose events may be forwarded: FORWARDED, and the failover events of a lab that does
# not post its own (an external target: what the harness observed of its failover; an adapter).
# The embedded and container labs' failover manager posts its own (harness.lab.eventpost).
EMITTERS = (JOURNAL, FAILOVER, RESTORE)


T = TypeVar("T")


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class SteadyStateNotMet(RuntimeError):
    """The lab was not healthy before injection: the scenario stops without doing harm."""


@dataclass
class Workload:
    """The scenario's background clients: a sequenced writer (may be absent) and a prober."""

    writer: SequencedWriter | None
    prober: Prober | None
    clients: list[ApiClient] = field(default_factory=list)

    def stop(self) -> None:
        for loop in (self.writer, self.prober):
            if loop is not None:
                loop.stop()
        for client in self.clients:
            client.close()


# ---- what one step tells a later one: typed per-scenario state (a typo is an attribute error) ----


class StateMissing(LookupError):
    """A step read state no earlier step of its scenario set (a feature's steps out of order)."""


def required(value: T | None, what: str) -> T:
    """`value`, set by an earlier step; StateMissing (naming `what`) when no step set it."""
    if value is None:
        raise StateMissing(f"{what}: no earlier step of this scenario set it")
    return value


@dataclass(frozen=True)
class ProbeIntent:
    """The intent the workload's start creates with its evidence committed, before any fault: the
    approval and publish a fault must then block (runner.common.start_workload)."""

    intent_id: int
    key: str


def probe_or_none(scn: Scenario) -> tuple[int, str]:
    """(intent id, key) of the probe intent; (0, "") when the workload could not create it (the
    calls on it are then refused, and the gates judge that)."""
    return (scn.probe.intent_id, scn.probe.key) if scn.probe is not None else (0, "")


@dataclass(frozen=True)
class PrimaryFault:
    """The fault that took the database primary away (kill-primary:NODE, event-store-block:NODE)."""

    label: str
    node: str  # the primary it hit (rebuilt and failed back to later)


@dataclass(frozen=True)
class EvidencePack:
    """An approved intent with its evidence pack (runner.evidence.commit_evidence)."""

    intent_id: int | None
    key: str
    object_key: str | None


@dataclass(frozen=True)
class StoreFault:
    """The evidence store's fault: its label and the condition it puts the store in."""

    label: str
    condition: str  # "unreachable", "answering 503", ...


@dataclass
class EvidenceState:
    """The evidence-store drill's packs (one with a validated copy in the alternate region, one
    without) and the store's fault."""

    with_copy: EvidencePack | None = None
    without_copy: EvidencePack | None = None
    store_fault: StoreFault | None = None


@dataclass
class BackupState:
    """The backup drills' window of clock hours run, the intents published, the snapshot corrupted."""

    window: tuple[float, float] | None = None
    publishes: list[tuple[int, str] | None] = field(default_factory=list)
    corrupted: str | None = None


@dataclass(eq=False)
class Scenario:
    """One scenario's journal: its history (recorder), faults (journal), checkers and results."""

    drill: DrillRun
    name: str
    feature: str
    tags: list[str]
    correlation_id: str
    description: str = ""
    recorder: Recorder = field(default_factory=Recorder)
    checks: list[Gate] = field(default_factory=list)
    gates: list[GateResult] = field(default_factory=list)
    observations: list[str] = field(default_factory=list)
    error: str | None = None
    aborted: bool = False
    steps_total: int = 0
    steps_done: int = 0
    started_at: str = field(default_factory=utc_now)
    finished_at: str | None = None
    recovery: tuple[str, str] | None = None  # (fault label, what it blocks): RTO is measured on it
    not_applicable: dict[str, str] = field(default_factory=dict)
    workload: Workload | None = None
    published: dict[str, list[dict]] = field(default_factory=dict)  # platform -> [{intent_id, key}]
    # what one step tells a later one (typed: see the state classes above)
    probe: ProbeIntent | None = None  # the probe intent (start_workload)
    probe_approved: bool = False  # approved once (runner.api)
    primary: PrimaryFault | None = None  # the database primary's fault (database, eventstore)
    lost_az: str | None = None  # the availability zone whose API instance was killed
    evidence: EvidenceState = field(default_factory=EvidenceState)
    backup: BackupState = field(default_factory=BackupState)
    figures: dict[str, Any] = field(default_factory=dict)  # measurements beside the gates (results.json)
    not_run: FaultNotInjected | None = None  # a fault the target or a hook refused: no verdict

    def __post_init__(self) -> None:
        self.journal = FaultJournal(self.drill.lab, lambda kind, name, **d: self.event(kind, name, JOURNAL, **d))

    @property
    def lab(self) -> Lab:
        return self.drill.lab

    def writer(self) -> SequencedWriter:
        """The workload's sequenced writer (start_workload); StateMissing when it has none."""
        return required(self.workload.writer if self.workload is not None else None, "the workload's writer")

    # -- the rules --------------------------------------------------------------------------
    def expect(self, gate: Gate) -> Gate:
        """State a rule: its checker is evaluated on the whole history when the scenario ends."""
        self.checks.append(gate)
        return gate

    def recover_on(self, fault: str, on: str) -> None:
        """RTO and RPO count from `fault` and are measured on what it blocks ("write", "publish",
        "apply:<platform>"). The last call wins: a scenario's main fault comes after its setup."""
        self.recovery = (fault, on)

    # -- what happened ----------------------------------------------------------------------
    def event(
        self,
        kind: EventKind,
        name: str,
        source: str = HARNESS,
        wall: float | None = None,
        **detail: Unpack[EventDetail],
    ) -> Event:
        """Record an event (at `wall`, an epoch time, when the lab gave one). One the harness acted
        out (DrillRun.forwards) is also delivered to the event store by the harness's forwarder,
        marked `forwarded: True`; a failover event of a lab that posts its own is recorded only (the
        timeline), with no event id of the harness's."""
        forwarded = self.drill.forwards(source)
        if forwarded:
            detail["forwarded"] = True
        event_id = "" if not forwarded and source == FAILOVER else None
        event = self.recorder.event(
            kind, name, self.correlation_id, source=source, event_id=event_id, wall=wall, **detail
        )
        self.drill.progress.event(kind, name)
        if forwarded and self.drill.forwarder is not None:
            self.drill.forwarder.submit(event)
        return event

    def observe(self, text: str) -> None:
        self.observations.append(text)

    def checkpoint(self, name: str) -> Event:
        """Mark the moment a step looked (a checker judges what happened before it)."""
        return self.event(EventKind.CHECKPOINT, name)

    def inject(self, spec: FaultSpec, label: str) -> Any:
        """Inject (the journal records "inject" first: RTO counts from it), then mark the moment the
        fault was in place ("in_place", a harness marker): an operation invoked before it may have
        got in ahead of the harm, and does not count as recovery (measure.recovery.rto)."""
        try:
            fault = self.journal.inject(spec, label)
        except FaultNotInjected as exc:
            # the scenario could not act: said as such, never judged (harness.faults.refused)
            self.not_run = self.not_run or exc
            raise
        self.event(EventKind.IN_PLACE, label)
        return fault

    def heal(self, label: str | None = None, target: str | None = None) -> None:
        self.journal.heal(label, target)

    def call(
        self,
        kind: OpKind,
        request: Request,
        value: Any = None,
        detail: OpDetail | None = None,
        read: Callable[[Any], Any] | None = None,
        timeout: float = 10.0,
        correlation_id: str | None = None,
    ) -> Op:
        """One operation of the Control Plane's API (a workload.ControlPlane request, through the
        load balancer), recorded as an op of `kind`; it carries the scenario's correlation id unless
        another is given."""
        cid = correlation_id or self.correlation_id
        client = ApiClient(self.lab.api_url, timeout=timeout)
        try:
            return self.recorder.invoke(
                kind, lambda: client.send(request, cid), value=value, correlation_id=cid, detail=detail, read=read
            )
        finally:
            client.close()

    def read(self, kind: OpKind, fetch: Callable[[], Any], detail: OpDetail | None = None) -> Op:
        """A read of a lab part (a queue, a bucket, the SIEM file), recorded as an op whose value is
        what fetch() answered; an exception is recorded as an indeterminate read."""

        def call():
            return Outcome.OK, fetch(), ""

        return self.recorder.invoke(kind, call, correlation_id=self.correlation_id, detail=detail)

    @property
    def verdict(self) -> Verdict:
        """Worst gate; a scenario that did not run every step can fail but never pass; one that could
        not act (not_run) has no gate judged: unknown."""
        if self.not_run is not None:
            return Verdict.UNKNOWN
        worst = Verdict.worst(g.verdict for g in self.gates)
        incomplete = self.error is not None or self.steps_done < self.steps_total
        if incomplete and worst.rank < Verdict.UNKNOWN.rank:  # pass or waived
            return Verdict.UNKNOWN
        return worst


@dataclass(eq=False)
class DrillRun:
    """The drill being run: its lab, targets, correlation id and the scenarios run so far."""

    drill: str
    lab: Lab
    targets: dict[str, float]
    waivers: dict = field(default_factory=dict)  # target key -> harness.spec_floors.Waiver (gates.waiver)
    replication: str = "sync"
    hold_real_time: bool = False  # "N minutes pass" without clock control: held in real time (plan)
    availability: Any = None  # harness.plan.AvailabilityPolicy (None: the defaults)
    tags: str | None = None
    correlation_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    scenarios: list[Scenario] = field(default_factory=list)
    feature_order: list[str] = field(default_factory=list)  # scenarios run in this order of files
    started_at: str = field(default_factory=utc_now)
    finished_at: str | None = None
    forwarder: Any = None  # runner.forwarder.EventForwarder
    progress: Progress = field(default_factory=lambda: Progress(quiet=True))

    def begin(self, name: str, feature: str, tags: list[str], description: str = "") -> Scenario:
        scenario = Scenario(self, name, feature, tags, f"{self.correlation_id}/{len(self.scenarios) + 1}", description)
        self.scenarios.append(scenario)
        self.progress("scenario", name)
        return scenario

    @property
    def current(self) -> Scenario | None:
        return self.scenarios[-1] if self.scenarios else None

    def forwards(self, source: str) -> bool:
        """Whether the harness delivers events of `source` itself (see FORWARDED and EMITTERS)."""
        return source in FORWARDED or (source == FAILOVER and self.lab.find(FailoverManagerEvents) is None)

    def lab_event(self, kind: str, name: str, detail: dict) -> None:
        """The lab's own recovery events (failover controller): into the running scenario. The lab
        names its kind as a string (an EventKind's value: tests/unit/gates/test_eventkind.py) and
        may time the event itself (`wall`: when an outside observer saw it happen)."""
        if self.current is not None and self.current.finished_at is None:
            fields = dict(detail)
            wall = fields.pop("wall", None)
            self.current.event(EventKind(kind), name, FAILOVER, wall=wall, **cast(EventDetail, fields))
