"""Frozen data shared by every family: operations, histories, fault specs, verdicts, gates, results."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, TypedDict, cast


class Verdict(str, enum.Enum):
    """A gate's verdict. An error is UNKNOWN, never PASS; the worst verdict wins. WAIVED: the gate
    met only a target the plan loosened under a waiver, not the spec's floor (harness.spec_floors):
    never a pass (docs/verdicts.md)."""

    PASS = "pass"
    FAIL = "fail"
    UNKNOWN = "unknown"
    WAIVED = "waived"

    @property
    def rank(self) -> int:
        return {Verdict.PASS: 0, Verdict.WAIVED: 1, Verdict.UNKNOWN: 2, Verdict.FAIL: 3}[self]

    @staticmethod
    def worst(verdicts: Iterable[Verdict]) -> Verdict:
        """Worst of the verdicts: fail > unknown > waived > pass. No verdict at all is UNKNOWN."""
        verdicts = list(verdicts)
        if not verdicts:
            return Verdict.UNKNOWN
        return max(verdicts, key=lambda v: v.rank)


class Outcome(str, enum.Enum):
    """How a client operation ended (Jepsen's ok / fail / info)."""

    OK = "ok"  # completed and acknowledged
    FAIL = "fail"  # definitely did not take effect
    INFO = "info"  # indeterminate: timed out or connection lost mid-flight


class OpKind(enum.StrEnum):
    """What an operation of the harness's own clients did: the `kind` the runner records (Op.kind)
    and the gates read. The contract between them: each member's comment says what the op's
    `value` holds, then (after " / ") its `detail` keys. A StrEnum: a recorded string kind compares
    equal to its member, and str() / f-strings / JSON give the plain string.
    tests/unit/gates/test_opkind.py checks that every kind a gate reads is a member and every member
    is recorded or read somewhere."""

    # the workload and the steps' own calls of the Control Plane
    WRITE = "write"  # key (idempotency key) / workload, intent_id
    CREATE_INTENT = "create_intent"  # key sent, or the intent id answered / smoke, error, cause
    EVIDENCE = "evidence"  # key / intent_id, smoke, error, cause, Impact
    APPROVE = "approve"  # key / intent_id, gate (of a refusal), error, cause
    PUBLISH = "publish"  # key / intent_id, platform, ring, phase, workload, error, cause, Impact
    PROMOTE = "promote"  # intent key / platform, to_ring, intent_id, gate (of a refusal)
    READ_INTENT = "read_intent"  # the intent read / intent_id
    PROBE = "probe"  # - / (GET /health: ServiceHealth, components)
    HEALTH = "health"  # - / ServiceHealth, components
    FINAL_READ = "final_read"  # keys read back / published (keys read back Published)
    FINAL_APPLIED = "final_applied"  # keys the platforms applied (one per applied arrival)
    STEADY_STATE = "steady_state"  # {check: [ok, detail]} / phase before|after
    # reads of the event store and the SIEM
    READ_EVENTS = "read_events"  # event rows / type, correlation_id
    READ_AUDIT = "read_audit"  # the scenario's event rows (by correlation id)
    READ_DRILL_EVENTS = "read_drill_events"  # the scenario's DrillEvent rows (by correlation id)
    READ_DEPLOYMENT_EVENTS = "read_deployment_events"  # DrillEvent rows of the scenario's time, any
    #                                        correlation id (the deployment's own failover events among them)
    READ_CHAIN = "read_chain"  # every event row of the chain
    READ_SIEM = "read_siem"  # the SIEM sink's records (the scenario's, and every DrillEvent)
    READ_SIEM_SMOKE = "read_siem_smoke"  # the SIEM records of the smoke verification's correlation id
    # the evidence store
    STORE_READ = "store_read"  # sha256 of the object read, or None / key, expected
    STORE_LOCK = "store_lock"  # [{object_key, region, mode, retain_until, written_at}] / scope, objects
    # the platform connectors and queues
    PLATFORMS_VIEW = "platforms_view"  # the Control Plane's view of its platforms
    PLATFORM_VIEW = "platform_view"  # the Control Plane's view of one platform / platform
    QUEUE_METRICS = "queue_metrics"  # the Control Plane's queue metrics
    QUEUE_DEPTH = "queue_depth"  # the harness's own read of a queue / platform
    DEAD_LETTERS = "dead_letters"  # the dead-lettered keys / platform
    REQUEUE = "requeue"  # the answer / platform
    CAB_LIFT = "cab_lift"  # the answer / platform
    CLOCK_ADVANCE = "clock_advance"  # the answer (the Control Plane's clock moved) / seconds
    RING_ROLLBACK = "ring_rollback"  # the answer / ring
    # the database tier
    LAG = "lag"  # TransactionLag seconds / node
    IN_RECOVERY = "in_recovery"  # whether the node is in recovery / node
    FAILBACK = "failback"  # the answer / node, requested
    # post-failover validation
    SERVICES = "services"  # {ServiceHealth, components, lab_checks}
    TABLE_CHECKSUMS = "table_checksums"  # {primary: {table: [rows, checksum]}, dr: ...}
    EVENT_GROWTH = "event_growth"  # event counts before and after
    APPROVAL_COUNTS = "approval_counts"  # approval counts of both copies
    VALIDATE_DRILL_EVENTS = "validate_drill_events"  # the store's DrillEvent rows
    VALIDATE_SIEM = "validate_siem"  # the SIEM's DrillEvent records
    # backup and restore
    BACKUP_CATALOGUE = "backup_catalogue"  # every snapshot in the backup store / phase, cp_now
    EXPORT_DELETE_ATTEMPT = "export_delete_attempt"  # {deleted, error}: a delete of a locked export
    EVIDENCE_VERSIONS = "evidence_versions"  # the versions the harness listed
    INVENTORY_READ = "inventory_read"  # the day's inventory (eventstore_sha256)
    RESTORE = "restore"  # {snapshot_id, phases} of the restore runbook / bucket, verify
    RESTORED_DATA = "restored_data"  # counts, chain and approvals of the restored database
    RESTORED_SAMPLE = "restored_sample"  # the intents read back from the restored database
    KEY_READ = "key_read"  # fingerprint of the backup key / phase before|deleted|recovered
    KEY_PURGE = "key_purge"  # "purged", or the error of the purge attempt
    REPLAY_CREATE = "replay_create"  # key (an intent replayed after a restore)
    REPLAY_EVIDENCE = "replay_evidence"  # key / intent_id
    REPLAY_APPROVE = "replay_approve"  # key / intent_id
    REPLAY_PUBLISH = "replay_publish"  # key / intent_id
    REPLAY_READ = "replay_read"  # keys of the replayed intents read back after a restore


class OpDetail(TypedDict, total=False):
    """What an op's `detail` holds: the keys the runner and the workload record (Scenario.call and
    read, Recorder.invoke take an OpDetail, so mypy checks each key and its type where a detail is
    built) and the answer's fields the client keeps (workload.client.DETAIL_FIELDS); the gates
    read them back through detail_of(op), checked the same way. Which kind carries which key:
    OpKind's comments."""

    # recorded by the runner and the workload
    intent_id: Any  # the intent's id as answered (None: never created)
    key: str  # store_read: the pack's idempotency key
    idempotency_key: str
    platform: str
    ring: str
    to_ring: str
    phase: str  # steady_state before|after; backup phases; key_read before|deleted|recovered
    workload: bool  # an op of the background writer
    smoke: str  # the smoke verification's key
    uncommitted: str  # the intent approved without committed evidence (rule 1)
    object_key: str | None
    expected: str  # the sha256 a store read expects
    scope: str  # store_lock: evidence | eventstore
    objects: int
    node: str
    primary: str
    primary_node: str
    dr_node: str
    requested: str  # failback: when it was requested
    type: str  # read_events: the event type read
    correlation_id: str
    since: float
    bucket: str
    verify: bool
    cp_now: float
    eventstore_sha256: str | None
    published: list[str]  # final_read: keys read back Published
    # the answer's fields (workload.client.Reply.detail)
    error: str
    cause: str
    gate: str
    Impact: str
    ServiceHealth: str
    evidence_source: str
    ValidatedCopyExists: bool
    state: str
    outcome: str
    instance: str
    requeued: Any
    sha256: str
    attempts: int
    components: dict[str, Any]


def detail_of(op: Op) -> OpDetail:
    """An op's detail as its typed contract (what the gates read)."""
    return cast(OpDetail, op.detail)


@dataclass(frozen=True)
class Op:
    """One operation of the harness's own clients. Times are seconds on one monotonic clock
    shared with the events. `status` and `detail` keep what was answered (the HTTP status and
    the answer's fields a gate reads: cause, gate, Impact, ServiceHealth, ...)."""

    id: int
    kind: str  # an OpKind (the runner may record its string: they compare equal)
    t_invoke: float
    t_complete: float | None  # None while in flight / never completed
    outcome: Outcome
    value: Any = None  # write: the key written; read: what was read
    correlation_id: str = ""
    wall_invoke: float = 0.0  # epoch seconds at invoke, for reports and clock-hour rules
    error: str = ""
    status: int | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.OK

    @property
    def done(self) -> float:
        """Completion time, or the invoke time of an op that never completed."""
        return self.t_complete if self.t_complete is not None else self.t_invoke


class EventKind(enum.StrEnum):
    """What an event says happened: the `kind` the runner, the fault journal, the lab and the
    restore runbook record (Event.kind) and the gates read. The contract between them: each
    member's comment says who emits it, then (after " / ") its `detail` keys (EventDetail). A
    StrEnum, as OpKind: Recorder.event refuses a kind that is not a member and keeps its plain
    string, so results.json and the reports hold the same strings as before. The lab's failover
    controller and the restore runbook (harness.backup.restore) name their kinds as strings (they
    sit below the runner and pass them through a callback); the runner makes them members where
    they come in, and tests/unit/gates/test_eventkind.py checks every string they use is one."""

    # the fault journal (source journal; name = the fault's label)
    INJECT = "inject"  # harm starts: RTO counts from it / fault, type, target, time_limit_s
    HEAL = "heal"  # the fault healed / fault
    NOT_INJECTED = "not_injected"  # the target or a hook refused the fault / fault, cause, exit_code
    HEAL_FAILED = "heal_failed"  # the heal raised / fault, error
    # harness markers (source harness)
    IN_PLACE = "in_place"  # the fault is in place (name = its label)
    CHECKPOINT = "checkpoint"  # a step looked (name = what it looked at)
    CLOCK = "clock"  # the harness moved the Control Plane's clock / seconds
    CLOCK_MISSING = "clock_missing"  # "N minutes pass" without clock control, not held / seconds
    TIME_HELD = "time_held"  # "N minutes pass" held in real time / seconds
    HALT = "halt"  # a chaos run stopped early / reason
    CHAOS_END = "chaos_end"  # a chaos run's fault sequence ended / faults
    # the lab's failover controller or observer (source failover-controller; name = the node)
    DETECT = "detect"  # the primary was found failed / misses, interval_s, cause, observed, window_s
    FENCE = "fence"  # the failed primary was fenced / signal, cause, observed, window_s
    PROMOTE = "promote"  # the replica was promoted / cause, observed, not_before_s
    RECONNECT = "reconnect"  # the clients reach the new primary / upstream, cause, observed, window_s
    REBUILD = "rebuild"  # the old primary rebuilt as a replica / upstream
    RESTART = "restart"  # a node restarted
    LAG_CHECK = "lag_check"  # TransactionLag checked before a failback / transaction_lag_s, limit_s
    FAILBACK = "failback"  # the failback / transaction_lag_s, said_by
    FAILOVER_ERROR = "failover_error"  # the failover did not complete / error
    # the restore runbook (source restore; name = the snapshot id, or "restore")
    RESTORE_DOWNLOAD = "restore_download"  # snapshot_id, bucket, seconds, bytes
    RESTORE_VERIFY = "restore_verify"  # snapshot_id, ok, reasons, seconds
    RESTORE_DECRYPT = "restore_decrypt"  # snapshot_id, key_name, key_version, seconds
    RESTORE_REHYDRATE = "restore_rehydrate"  # snapshot_id, seconds
    RESTORE_REFUSED = "restore_refused"  # snapshot_id, taken_at, phase, reason
    RESTORE_FAILED = "restore_failed"  # snapshot_id, phase, reason, tried
    RESTORE_DONE = "restore_done"  # snapshot_id, snapshot_kind, bucket, taken_at, key_version, tables, chain,
    #                                approvals, seconds, tried
    # a lab part's own request log, imported (Recorder.import_records; name = source = the part)
    PLATFORM_REQUEST = "platform_request"  # a platform stand-in's request / n, platform, path, idempotency_key,
    #                                        intent_id, ring, correlation_id, status, outcome, count, action
    GATEWAY_REQUEST = "gateway_request"  # the fault gateway's request / n, method, path, status, injected
    WORKER_REPLACED = "worker_replaced"  # a connector worker replaced (source asg) / platform, old_pid, new_pid, exit


class EventDetail(TypedDict, total=False):
    """What an event's `detail` holds: the keys the runner, the journal, the lab and the restore
    runbook record (Recorder.event and Scenario.event take them as keyword arguments typed by this,
    so mypy checks each key and its type where an event is made in the runner) and the fields of a
    lab part's imported records. The gates read them through event_detail_of(event). Which kind
    carries which key: EventKind's comments."""

    # the fault journal
    fault: str  # the fault as it describes itself
    type: str  # its registered type
    target: str
    time_limit_s: float | None
    exit_code: int
    # the harness
    forwarded: bool  # delivered to the event store by the harness's forwarder
    seconds: float  # clock, clock_missing, time_held; a restore phase's duration
    reason: str  # halt; restore_refused, restore_failed
    faults: int  # chaos_end: how many faults the run injected
    # the failover controller or observer
    cause: str  # not_injected: why; detect/fence/promote/reconnect: WRITE_BLOCKED (absent: unreachable)
    misses: int
    interval_s: float
    signal: str
    upstream: str
    observed: str  # what an outside observer saw
    window_s: float  # how long the observation could be early
    not_before_s: float
    transaction_lag_s: float | None
    limit_s: float
    said_by: str
    error: str
    # the restore runbook
    snapshot_id: str | None
    snapshot_kind: str
    bucket: str
    taken_at: float  # epoch seconds on the Control Plane's clock
    phase: str | None
    tried: int
    ok: bool
    reasons: list[str]
    bytes: int
    key_name: str
    key_version: Any
    tables: dict[str, Any]
    chain: dict[str, Any] | None
    approvals: Any
    # a lab part's imported record (platform stand-in, fault gateway, connector ASG)
    n: int
    platform: str
    path: str
    method: str
    status: int
    idempotency_key: str | None
    intent_id: Any
    ring: str | None
    # (a record's correlation_id becomes the event's own correlation_id: Recorder.event's parameter)
    outcome: str
    count: int
    action: str
    injected: bool
    old_pid: int
    new_pid: int
    exit: int | None


def event_detail_of(event: Event) -> EventDetail:
    """An event's detail as its typed contract (what the gates read)."""
    return cast(EventDetail, event.detail)


# Who saw or emitted an event: the harness's fault journal, the lab's failover controller, a
# lab part's own request log (platform:<name>, gateway:<name>), or the harness itself.
JOURNAL, FAILOVER, HARNESS = "journal", "failover-controller", "harness"


@dataclass(frozen=True)
class Event:
    """Something that happened, on the same monotonic clock as the ops.

    kind: an EventKind (its plain string: the two compare equal): the fault journal's inject and
    heal (name = the fault's label), a recovery phase from the lab (detect, promote, reconnect,
    ...), a lab part's record (platform_request, gateway_request), a harness marker (checkpoint,
    clock); its detail: EventDetail. `event_id` is set on the events delivered to the event store
    and the SIEM (validation rule 2)."""

    kind: str  # an EventKind's value
    name: str
    t: float
    wall: float = 0.0
    correlation_id: str = ""
    detail: Mapping[str, Any] = field(default_factory=dict)
    source: str = HARNESS
    event_id: str = ""


@dataclass(frozen=True)
class History:
    """Everything a scenario observed: client operations and events, one clock."""

    ops: tuple[Op, ...] = ()
    events: tuple[Event, ...] = ()

    def ops_of(self, *kinds: str) -> list[Op]:
        return [o for o in self.ops if o.kind in kinds]

    def events_of(self, *kinds: EventKind, name: str | None = None, source: str | None = None) -> list[Event]:
        return [
            e
            for e in self.events
            if e.kind in kinds and (name is None or e.name == name) and (source is None or e.source == source)
        ]

    def first_event(self, kind: EventKind, name: str | None = None, after: float | None = None) -> Event | None:
        matching = [e for e in self.events_of(kind, name=name) if after is None or e.t >= after]
        return min(matching, key=lambda e: e.t) if matching else None

    def window(self, label: str) -> tuple[float, float | None] | None:
        """(inject, heal or None) of the fault journal's first fault with this label."""
        inject = self.first_event(EventKind.INJECT, label)
        if inject is None:
            return None
        heal = self.first_event(EventKind.HEAL, label, after=inject.t)
        return inject.t, heal.t if heal else None

    def at(self, wall: float) -> float:
        """The history clock's time of an epoch time (e.g. a stored event's timestamp)."""
        if self.ops:
            return self.ops[0].t_invoke + (wall - self.ops[0].wall_invoke)
        if self.events:
            return self.events[0].t + (wall - self.events[0].wall)
        return wall

    def clock_offset(self, t: float) -> float:
        """Seconds the Control Plane's clock had been moved forward by the harness at time t."""
        return sum(float(event_detail_of(e).get("seconds", 0)) for e in self.events_of(EventKind.CLOCK) if e.t <= t)


@dataclass(frozen=True)
class FaultSpec:
    """A fault as data: its registered type, what it targets, its parameters.

    Validated against the fault registry before anything runs; an unknown type or
    parameter is an error, never a silent no-op.
    """

    type: str
    target: str
    params: Mapping[str, Any] = field(default_factory=dict)
    time_limit_s: float | None = None  # dead-man switch: healed by itself after this


GATE_JUDGES = ("system", "runbook", "lab")  # what a gate can judge (harness.gates.base.JUDGES)


@dataclass(frozen=True)
class GateResult:
    """One validation rule evaluated: what was measured against which threshold.

    `threshold` is the rule as people read it. When the rule is one numeric comparison, `operator`
    and `limit` say it for machines (pass exactly when `measured operator limit`), `unit` what the
    numbers count; all three None for any other rule. `judges` says what the rule is evidence
    about: "system" (the deployment), "runbook" (a procedure the harness performs) or "lab" (a
    lab-only part); None in results written before gates said it."""

    id: str
    description: str
    measured: Any
    threshold: Any
    verdict: Verdict
    detail: str = ""
    operator: str | None = None
    limit: float | int | None = None
    unit: str | None = None
    judges: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "description": self.description,
            "measured": self.measured,
            "threshold": self.threshold,
            "verdict": self.verdict.value,
            "detail": self.detail,
            "operator": self.operator,
            "limit": self.limit,
            "unit": self.unit,
            "judges": self.judges,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> GateResult:
        """A gate from results.json; one written before operator/limit/unit (or judges) existed
        reads them None."""
        try:
            verdict = Verdict(str(data.get("verdict", "unknown")).lower())
        except ValueError:
            verdict = Verdict.UNKNOWN
        operator = data.get("operator")
        limit = data.get("limit")
        unit = data.get("unit")
        judges = data.get("judges")
        return cls(
            str(data.get("id", "")),
            str(data.get("description", "")),
            data.get("measured"),
            data.get("threshold"),
            verdict,
            str(data.get("detail") or ""),
            operator if operator in ("<=", ">=", "<", ">", "==") else None,
            limit if isinstance(limit, (int, float)) and not isinstance(limit, bool) else None,
            None if unit is None else str(unit),
            judges if judges in GATE_JUDGES else None,
        )


@dataclass(frozen=True)
class FaultRecord:
    """One fault of a scenario's journal, for the report: what, on what, when (seconds from the
    scenario's first record) and how it ended."""

    label: str
    type: str
    target: str
    description: str
    injected_s: float | None
    healed_s: float | None
    time_limit_s: float | None = None
    heal_error: str | None = None
    not_injected: str | None = None  # why it could not be injected (harness.faults.refused), if so


@dataclass
class ScenarioResult:
    """A scenario as the report reads it. `measurements` are figures (seconds, counts, ratios);
    `gates` the verdicts; `not_applicable` says why a figure is n/a (e.g. nothing blocked)."""

    name: str
    feature: str = ""
    tags: list[str] = field(default_factory=list)
    verdict: Verdict = Verdict.UNKNOWN
    description: str = ""
    matrix_row: dict[str, Any] | None = None
    started_at: str | None = None
    finished_at: str | None = None
    measurements: dict[str, Any] = field(default_factory=dict)
    not_applicable: dict[str, str] = field(default_factory=dict)
    phases: dict[str, float] = field(default_factory=dict)
    lost_write_keys: list[str] = field(default_factory=list)
    observations: list[str] = field(default_factory=list)
    error: str | None = None
    correlation_id: str = ""
    correlation_ids: list[str] = field(default_factory=list)
    faults: list[FaultRecord] = field(default_factory=list)
    timeline: dict[str, Any] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    operations: dict[str, dict[str, int]] = field(default_factory=dict)
    gates: list[GateResult] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["verdict"] = self.verdict.value
        data["gates"] = [g.to_json() for g in self.gates]
        data["faults"] = [{f.name: getattr(r, f.name) for f in fields(r)} for r in self.faults]
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ScenarioResult:
        values = _known(cls, data, name=str(data.get("name") or "scenario"))
        values["faults"] = [
            FaultRecord(**{k: r.get(k) for k in FaultRecord.__dataclass_fields__}) for r in data.get("faults") or ()
        ]
        return cls(**values)


@dataclass
class DrillResult:
    """A whole drill as results.json, the JUnit file, the HTML report and the CAB log read it."""

    drill: str
    title: str = ""
    ha_domain: str = ""
    plan: str = ""
    correlation_id: str = ""
    started_at: str | None = None
    finished_at: str | None = None
    verdict: Verdict = Verdict.UNKNOWN
    targets: dict[str, Any] = field(default_factory=dict)
    # the spec's floor of each target (harness.spec_floors) and the plan's waivers, each with the
    # "scenario/gate" ids it was used for (gates whose verdict is waived)
    spec_floors: dict[str, Any] = field(default_factory=dict)
    waivers: list[dict[str, Any]] = field(default_factory=list)
    schedule: str | None = None
    environment: dict[str, Any] = field(default_factory=dict)
    scenarios: list[ScenarioResult] = field(default_factory=list)
    gates: list[GateResult] = field(default_factory=list)
    correlation_ids: list[str] = field(default_factory=list)
    note: str | None = None
    dry_run: bool = False
    # the CAB record (harness.signoff, harness.provenance, harness.report.risk, harness.report.since)
    signoff: dict[str, Any] = field(default_factory=dict)
    environment_class: str = ""
    system_version: str | None = None
    harness: dict[str, Any] = field(default_factory=dict)
    plan_sha256: str | None = None
    risk: dict[str, Any] = field(default_factory=dict)
    since_last_run: list[dict[str, Any]] = field(default_factory=list)
    # a run that could not act (harness.faults.refused): {cause, exit_code, scenarios}; None otherwise
    not_run: dict[str, Any] | None = None
    schema_version: int = 4

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"schema_version": self.schema_version}
        data.update({f.name: getattr(self, f.name) for f in fields(self) if f.name != "schema_version"})
        data["verdict"] = self.verdict.value
        data["scenarios"] = [s.to_json() for s in self.scenarios]
        data["gates"] = [g.to_json() for g in self.gates]
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DrillResult:
        """A result from results.json (or a partial mapping: what is missing reads unknown)."""
        values = _known(cls, data, drill=str(data.get("drill") or "drill"))
        values["scenarios"] = [ScenarioResult.from_json(s) for s in data.get("scenarios") or ()]
        return cls(**values)


def _known(cls: type, data: Mapping[str, Any], **required: Any) -> dict[str, Any]:
    """The fields of `cls` present in `data` (None ones left to their defaults), its verdict and
    gates parsed, and the required ones given."""
    names = {f.name for f in fields(cls)}
    values = {k: v for k, v in data.items() if k in names and v is not None}
    values.update(
        required, verdict=_verdict(data.get("verdict")), gates=[gate_from_json(g) for g in data.get("gates") or ()]
    )
    return values


def _verdict(value: Any) -> Verdict:
    try:
        return Verdict(str(getattr(value, "value", value) or "").lower())
    except ValueError:
        return Verdict.UNKNOWN


@dataclass(frozen=True)
class WaivedGateResult(GateResult):
    """A gate whose target the plan waived (harness.spec_floors, harness.gates.waiver), verdict
    WAIVED: it met the plan's looser target (its threshold and limit) but not the spec's floor.
    `waiver` is the waiver (gate, reason, approved_by, expires, target, floor, operator, clause)."""

    waiver: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "waiver": dict(self.waiver)}


def gate_from_json(data: Mapping[str, Any]) -> GateResult:
    """A gate of results.json: a WaivedGateResult when it carries its waiver."""
    result = GateResult.from_json(data)
    waiver = data.get("waiver")
    if isinstance(waiver, Mapping):
        return WaivedGateResult(**{f.name: getattr(result, f.name) for f in fields(GateResult)}, waiver=dict(waiver))
    return result
